"""Support of real-engine previews against the local cloud: the engine fixture, violations read from the CLI."""

from __future__ import annotations

import re

import pytest

from ght_socle.engine import Engine, find_engine
from ght_socle.engine.provider import find_plugin
from ght_socle.engine.versions import OPENSTACK_VERSION

# "- [mandatory] [severity: critical]  net-no-world-ingress  (openstack:networking:SecGroupRule: ssh)"
VIOLATION_LINE = re.compile(r"^\s*- \[(mandatory|advisory)\] \[severity: \w+\]\s+([a-z0-9-]+)\s", re.MULTILINE)


@pytest.fixture(scope="module")
def engine() -> Engine:
    found = find_engine()
    assert found is not None and find_plugin() is not None, \
        f"no pulumi CLI or openstack plugin {OPENSTACK_VERSION}: run `make engine`"
    return found


def policy_violations(output: str) -> set[tuple[str, str]]:
    """(policy name, enforcement level) of each violation the CLI reports under "Policies:"."""
    return {(name, level) for level, name in VIOLATION_LINE.findall(output)}
