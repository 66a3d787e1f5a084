"""Offline plans of the project's stacks, computed once per test session (the mock engine is fast,
but prod is planned by several test modules)."""

from __future__ import annotations

import functools
from typing import Any

from ght_socle.plan import run_plan
from ght_socle.plan_model import Plan, PlannedResource

STACKS = ("lab", "preprod", "prod")
INSTANCE = "openstack:compute/instance:Instance"
VOLUME = "openstack:blockstorage/volume:Volume"
NETWORK = "openstack:networking/network:Network"
SUBNET = "openstack:networking/subnet:Subnet"
ROUTER = "openstack:networking/router:Router"
ROUTER_INTERFACE = "openstack:networking/routerInterface:RouterInterface"
PORT = "openstack:networking/port:Port"
SECGROUP = "openstack:networking/secGroup:SecGroup"
SECGROUP_RULE = "openstack:networking/secGroupRule:SecGroupRule"
SERVER_GROUP = "openstack:compute/serverGroup:ServerGroup"
FLOATING_IP = "openstack:networking/floatingIp:FloatingIp"
SITE_CONNECTION = "openstack:vpnaas/siteConnection:SiteConnection"


@functools.cache
def plan_of(stack: str) -> Plan:
    return run_plan(stack=stack)


def mock_id(resource: PlannedResource) -> str:
    """The id the mock engine gives a resource (what other resources' inputs refer to)."""
    return f"{resource.name}-id"


def zone_tag(resource: PlannedResource) -> str | None:
    tags: Any = resource.inputs.get("tags") or []
    zones = [t[5:] for t in tags if isinstance(t, str) and t.startswith("zone=")]
    return zones[0] if len(zones) == 1 else None


def by_id(plan: Plan, type_token: str) -> dict[str, PlannedResource]:
    return {mock_id(r): r for r in plan.of_type(type_token)}
