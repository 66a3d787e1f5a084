"""The project's own stacks meet every mandatory policy, and the policies really read them."""

from __future__ import annotations

import copy

import pytest
from policy_builders import PROJECT_STACKS

from ght_socle.catalog import Catalog
from ght_socle.plan_model import Plan
from ght_socle.policy import helpers as t
from ght_socle.policy.engine import check_plan
from ght_socle.policy.waivers import apply_waivers, default_waivers_file, load_waivers


@pytest.mark.parametrize("stack", PROJECT_STACKS)
def test_project_stack_has_no_mandatory_finding(stack: str, stack_plans: dict[str, Plan], catalog: Catalog) -> None:
    """Zero unwaived mandatory findings, with the shipped waivers (which are scoped to the lab stack)."""
    result = check_plan(stack_plans[stack], catalog)
    assert not result.skipped
    apply_waivers(result.findings, load_waivers(default_waivers_file(), catalog), stack)
    if stack != "lab":
        assert not any(f.waived for f in result.findings), "no waiver may apply outside the lab"
    assert [f"{f.rule_id} {f.policy} {f.resource_name}: {f.message}" for f in result.blocking] == []


@pytest.mark.parametrize("stack", PROJECT_STACKS)
def test_policies_see_the_stack_resources(stack: str, stack_plans: dict[str, Plan]) -> None:
    types = {r.type for r in stack_plans[stack].resources}
    assert {t.SECGROUP_RULE, t.INSTANCE, t.SUBNET, t.ROUTER_INTERFACE} <= types


def test_a_weakened_prod_rule_is_caught(stack_plans: dict[str, Plan], catalog: Catalog) -> None:
    plan = copy.deepcopy(stack_plans["prod"])
    ssh = next(r for r in plan.resources if r.type == t.SECGROUP_RULE and r.inputs.get("portRangeMin") == 22
               and r.inputs.get("direction") == "ingress")
    ssh.inputs["remoteIpPrefix"] = "0.0.0.0/0"
    ssh.inputs.pop("remoteGroupId", None)
    rules = {(f.rule_id, f.resource_name) for f in check_plan(plan, catalog).blocking}
    assert {("NET-003", ssh.name), ("NET-004", ssh.name)} <= rules


def test_an_unencrypted_prod_boot_volume_is_caught(stack_plans: dict[str, Plan], catalog: Catalog) -> None:
    plan = copy.deepcopy(stack_plans["prod"])
    vm = next(r for r in plan.resources if r.type == t.INSTANCE and r.inputs["metadata"]["data_class"] == "hds")
    vm.inputs["blockDevices"][0]["volumeType"] = "classic"
    blocking = check_plan(plan, catalog).blocking
    assert [(f.rule_id, f.resource_name) for f in blocking] == [("STO-001", vm.name)]
