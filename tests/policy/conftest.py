"""Shared fixtures of the policy tests: the fixture builders, the catalog, cached plans of the project stacks."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

POLICY_TESTS = Path(__file__).resolve().parent
sys.path.insert(0, str(POLICY_TESTS))  # policy_builders.py, policy_cases.py

from policy_builders import PROJECT_STACKS  # noqa: E402

from ght_socle.catalog import Catalog, default_catalog  # noqa: E402
from ght_socle.plan_model import Plan  # noqa: E402


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return default_catalog()


@pytest.fixture(scope="session")
def stack_plans() -> dict[str, Plan]:
    """Plans of the project's stacks, computed once per session (each takes a few seconds)."""
    from ght_socle.plan import run_plan

    return {name: run_plan(stack=name) for name in PROJECT_STACKS}
