"""Hand-built plans for policy tests: resources as the offline plan records them (wire keys, mock IDs)."""

from __future__ import annotations

from typing import Any

from ght_socle.plan_model import Plan, PlannedResource
from ght_socle.policy import helpers as t
from ght_socle.policy.engine import mock_resource_id

PROJECT_STACKS = ("lab", "preprod", "prod")
FULL_METADATA = {"zone": "hds-app", "data_class": "hds", "tier": "t1", "owner": "dsi", "backup_policy": "daily-30d",
                 "criticality": "standard"}


def res(type_: str, resource_name: str, /, *, secret: set[str] | None = None, **inputs: Any) -> PlannedResource:
    return PlannedResource(urn=f"urn:pulumi:test::fixture::{type_}::{resource_name}", type=type_, name=resource_name,
                           parent=None,
                           custom=True, inputs=inputs, secret_keys=set(secret or ()))


def ref(name: str) -> str:
    """The ID the mock engine gives resource ``name``."""
    return mock_resource_id(name)


def plan(*resources: PlannedResource, outputs: dict[str, Any] | None = None,
         config: dict[str, Any] | None = None) -> Plan:
    return Plan(project="fixture", stack="test", resources=list(resources), outputs=outputs or {},
                config=config or {})


def secgroup(name: str, zone: str, role: str | None = None, /, **inputs: Any) -> PlannedResource:
    tags = [f"zone={zone}"] + ([f"role={role}"] if role else [])
    return res(t.SECGROUP, name, name=name, deleteDefaultRules=True, tags=tags, **inputs)


def rule(name: str, group: str, *, direction: str = "ingress", protocol: str | None = "tcp",
         ports: tuple[int, int] | None = (443, 443), prefix: str | None = None, remote: str | None = None,
         description: str = "FLOW-001 test flow") -> PlannedResource:
    inputs: dict[str, Any] = {"direction": direction, "ethertype": "IPv4", "securityGroupId": ref(group),
                              "description": description}
    if protocol is not None:
        inputs["protocol"] = protocol
    if ports is not None:
        inputs["portRangeMin"], inputs["portRangeMax"] = float(ports[0]), float(ports[1])
    if prefix is not None:
        inputs["remoteIpPrefix"] = prefix
    if remote is not None:
        inputs["remoteGroupId"] = ref(remote)
    return res(t.SECGROUP_RULE, name, **inputs)


def network(name: str, zone: str) -> PlannedResource:
    return res(t.NETWORK, name, name=name, tags=[f"zone={zone}"])


def subnet(name: str, zone: str, cidr: str, net: str | None = None) -> PlannedResource:
    return res(t.SUBNET, name, cidr=cidr, networkId=ref(net or name), tags=[f"zone={zone}"])


def port(name: str, net: str, groups: list[str] | None = None) -> PlannedResource:
    return res(t.PORT, name, networkId=ref(net), securityGroupIds=[ref(g) for g in (groups or ["sg"])])


def instance(name: str, *, zone: str = "hds-app", role: str = "dpi_app", criticality: str = "standard",
             data_class: str = "hds", networks: list[dict[str, Any]] | None = None, **inputs: Any) -> PlannedResource:
    metadata = {**FULL_METADATA, "zone": zone, "role": role, "criticality": criticality, "data_class": data_class}
    defaults: dict[str, Any] = {
        "imageName": "debian-12-ght-golden", "flavorName": "b3-8", "securityGroups": ["app"],
        "metadata": metadata, "networks": networks if networks is not None else [{"uuid": ref(f"{zone}-net")}],
        "blockDevices": [{"sourceType": "image", "destinationType": "volume", "volumeType": "encrypted-luks",
                          "volumeSize": 20.0, "bootIndex": 0.0}],
    }
    defaults.update(inputs)
    return res(t.INSTANCE, name, **defaults)
