"""Shared fixtures of the policy tests: the fixture builders, the catalog, cached plans of the project stacks."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

POLICY_TESTS = Path(__file__).resolve().parent
sys.path.insert(0, str(POLICY_TESTS))  # builders.py, cases.py

from ght_socle.catalog import Catalog, default_catalog  # noqa: E402


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return default_catalog()
