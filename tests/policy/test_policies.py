"""Every policy on its violating and compliant fixtures, through the offline engine."""

from __future__ import annotations

from collections import defaultdict

import pytest
from policy_cases import CASES, Case

from ght_socle.catalog import Catalog
from ght_socle.policy.engine import check_plan
from ght_socle.policy.registry import all_policies, get_policy, implemented_policies


@pytest.mark.parametrize("case", CASES, ids=[f"{c.policy}:{'bad' if c.violates else 'good'}:{c.label}" for c in CASES])
def test_policy_fixture(case: Case, catalog: Catalog) -> None:
    result = check_plan(case.plan, catalog, policies=[get_policy(case.policy)])
    assert not result.skipped, result.skipped
    messages = [f"{f.resource_name}: {f.message}" for f in result.findings]
    if case.violates:
        assert messages, f"{case.policy} found nothing in '{case.label}'"
        assert {f.policy for f in result.findings} == {case.policy}
        assert all(f.message and f.fix for f in result.findings)
    else:
        assert messages == [], f"{case.policy} flagged compliant fixture '{case.label}'"


def test_every_policy_has_violating_and_compliant_fixtures() -> None:
    kinds: dict[str, set[bool]] = defaultdict(set)
    for case in CASES:
        kinds[case.policy].add(case.violates)
    missing = {p.name: {True, False} - kinds[p.name] for p in all_policies() if kinds[p.name] != {True, False}}
    assert missing == {}


def test_registry_has_at_least_thirty_distinct_policies() -> None:
    policies = implemented_policies()
    assert len(policies) >= 30
    assert len({p.check for p in all_policies()}) == len(policies)


def test_registry_matches_the_catalog(catalog: Catalog) -> None:
    declared = {name: rule.id for rule in catalog for name in rule.checks.iac}
    assert implemented_policies() == declared


def test_policies_describe_themselves() -> None:
    for policy in all_policies():
        assert policy.description and policy.fix, policy.name
        assert policy.kind in ("resource", "stack")
        assert policy.name.split("-")[0] == policy.rule_id.split("-")[0].lower()
