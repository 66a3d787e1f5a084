"""What the lab boots, read from the ``lab`` stack's offline plan.

The plan is the single source: the lab boots one VM per ``openstack:compute/instance:Instance``
(same name, same cloud-init user-data), takes names, zones, groups and addresses from the stack
outputs, zone CIDRs from the subnets (tag ``zone=<zone>``), and the flows allowed between zones from
the security group rules (ingress rules, ``remoteGroupId`` or ``remoteIpPrefix``). So the lab's
router forwards exactly what the stack's security groups allow between zones, and nothing else.

Mock-engine ids are ``<resource name>-id`` (see :mod:`ght_socle.plan`): that is how a rule's
``securityGroupId`` or a port's ``securityGroupIds`` are resolved back to resources.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

from ght_socle.errors import SocleError
from ght_socle.plan_model import Plan, PlannedResource

INSTANCE = "openstack:compute/instance:Instance"
SUBNET = "openstack:networking/subnet:Subnet"
PORT = "openstack:networking/port:Port"
SECGROUP = "openstack:networking/secGroup:SecGroup"
SECGROUP_RULE = "openstack:networking/secGroupRule:SecGroupRule"

# The config key through which the lab hands its admin public key to the stack's user-data.
ADMIN_KEYS_CONFIG = "admin_ssh_keys"


@dataclass(frozen=True)
class Zone:
    name: str
    cidr: ipaddress.IPv4Network

    @property
    def gateway(self) -> ipaddress.IPv4Address:
        """The lab router's address on the zone: the first host of the CIDR (.1)."""
        return next(self.cidr.hosts())


@dataclass(frozen=True)
class Host:
    name: str
    zone: str
    groups: tuple[str, ...]
    addresses: dict[str, str]  # zone -> address, primary zone first
    ssh_user: str
    jump: str | None
    user_data: str

    @property
    def is_bastion(self) -> bool:
        return self.jump is None


@dataclass(frozen=True)
class Flow:
    """An allowed connection between lab addresses (a security group ingress rule)."""

    description: str
    sources: tuple[str, ...]  # CIDRs or single addresses
    destinations: tuple[str, ...]  # single addresses
    protocol: str  # tcp | udp | icmp | any
    port_min: int | None
    port_max: int | None


@dataclass
class Fleet:
    hosts: list[Host]
    zones: dict[str, Zone]
    flows: list[Flow]
    outputs: dict[str, Any]
    bastion: str = ""
    notes: list[str] = field(default_factory=list)

    def subset(self, names: list[str]) -> Fleet:
        """Only the hosts ``names`` (plus the bastion, the only way in); outputs trimmed alike."""
        for name in names:
            self.host(name)
        keep = {*names, self.bastion}
        outputs = dict(self.outputs)
        outputs["hosts"] = {n: h for n, h in (self.outputs.get("hosts") or {}).items() if n in keep}
        return Fleet(hosts=[h for h in self.hosts if h.name in keep], zones=self.zones, flows=self.flows,
                     outputs=outputs, bastion=self.bastion, notes=self.notes)

    def host(self, name: str) -> Host:
        for host in self.hosts:
            if host.name == name:
                return host
        raise SocleError(f"no lab VM named {name!r} (lab VMs: {', '.join(h.name for h in self.hosts)})",
                         where="lab")


def _resource_id(resource: PlannedResource) -> str:
    return f"{resource.name}-id"


def _zone_of(resource: PlannedResource) -> str | None:
    tags = resource.inputs.get("tags") or []
    for tag in tags if isinstance(tags, list) else []:
        if isinstance(tag, str) and tag.startswith("zone="):
            return tag.split("=", 1)[1]
    metadata = resource.inputs.get("metadata") or {}
    zone = metadata.get("zone") if isinstance(metadata, dict) else None
    return str(zone) if zone else None


def _int_or_none(value: Any) -> int | None:
    return None if value is None or value == "" else int(float(value))


def fleet_from_plan(plan: Plan) -> Fleet:
    """Turn the ``lab`` stack's plan into the fleet to boot; one clear error when the plan lacks a part."""
    where = f"plan of stack {plan.stack}"
    outputs_hosts = plan.outputs.get("hosts")
    if not isinstance(outputs_hosts, dict) or not outputs_hosts:
        raise SocleError("the stack declares no 'hosts' output: nothing to boot", where=where)

    zones: dict[str, Zone] = {}
    for subnet in plan.of_type(SUBNET):
        zone = _zone_of(subnet)
        cidr = subnet.inputs.get("cidr")
        if zone and cidr and int(float(subnet.inputs.get("ipVersion", 4))) == 4:
            zones.setdefault(zone, Zone(zone, ipaddress.IPv4Network(str(cidr))))

    instances = {str(r.inputs.get("name") or r.name): r for r in plan.of_type(INSTANCE)}
    hosts: list[Host] = []
    for name, data in outputs_hosts.items():
        instance = instances.get(name)
        if instance is None:
            raise SocleError(f"output host {name!r} has no openstack instance named {name!r}", where=where)
        user_data = instance.inputs.get("userData")
        if not isinstance(user_data, str) or not user_data.strip():
            raise SocleError(f"instance {name!r} has no userData: the lab boots the stack's own cloud-init",
                             where=where)
        zone = str(data.get("zone"))
        addresses = {str(z): str(a) for z, a in (data.get("addresses") or {}).items()}
        if not addresses and data.get("address"):
            addresses = {zone: str(data["address"])}
        ordered = dict(sorted(addresses.items(), key=lambda item: item[0] != zone))
        for address_zone, address in ordered.items():
            if address_zone not in zones:
                raise SocleError(f"host {name!r} has an address in zone {address_zone!r}, which has no subnet",
                                 where=where)
            if ipaddress.IPv4Address(address) not in zones[address_zone].cidr:
                raise SocleError(f"host {name!r}: {address} is outside zone {address_zone} "
                                 f"({zones[address_zone].cidr})", where=where)
        hosts.append(Host(name=name, zone=zone, groups=tuple(data.get("groups") or ()), addresses=ordered,
                          ssh_user=str(data.get("ssh_user") or "ghtadmin"), jump=data.get("jump") or None,
                          user_data=user_data))
    bastions = [h.name for h in hosts if h.is_bastion]
    bastion = str(plan.outputs.get("bastion") or (bastions[0] if bastions else ""))
    if not bastion or bastion not in outputs_hosts:
        raise SocleError("the stack declares no bastion (output 'bastion' or a host without 'jump')", where=where)
    return Fleet(hosts=hosts, zones=zones, flows=_flows_from_plan(plan, hosts), outputs=dict(plan.outputs),
                 bastion=bastion)


def _flows_from_plan(plan: Plan, hosts: list[Host]) -> list[Flow]:
    """Security group ingress rules -> flows between lab addresses.

    A security group's members are the addresses of the ports (``securityGroupIds``) and of the
    instances (``securityGroups`` by name) that carry it.
    """
    groups_by_id = {_resource_id(g): g for g in plan.of_type(SECGROUP)}
    groups_by_name = {str(g.inputs.get("name") or g.name): _resource_id(g) for g in groups_by_id.values()}
    members: dict[str, set[str]] = {group_id: set() for group_id in groups_by_id}
    for port in plan.of_type(PORT):
        port_addresses = {str(ip.get("ipAddress")) for ip in port.inputs.get("fixedIps") or []
                          if isinstance(ip, dict) and ip.get("ipAddress")}
        for group_id in port.inputs.get("securityGroupIds") or []:
            members.setdefault(str(group_id), set()).update(port_addresses)
    addresses_by_host = {h.name: set(h.addresses.values()) for h in hosts}
    for instance in plan.of_type(INSTANCE):
        host_addresses = addresses_by_host.get(str(instance.inputs.get("name") or instance.name), set())
        for group_name in instance.inputs.get("securityGroups") or []:
            group_id = groups_by_name.get(str(group_name))
            if group_id:
                members.setdefault(group_id, set()).update(host_addresses)

    flows: list[Flow] = []
    for rule in plan.of_type(SECGROUP_RULE):
        inputs = rule.inputs
        if str(inputs.get("direction", "ingress")) != "ingress" or str(inputs.get("ethertype", "IPv4")) != "IPv4":
            continue
        destinations = tuple(sorted(members.get(str(inputs.get("securityGroupId")), set())))
        if inputs.get("remoteGroupId"):
            sources = tuple(sorted(members.get(str(inputs["remoteGroupId"]), set())))
        else:
            sources = (str(inputs.get("remoteIpPrefix") or "0.0.0.0/0"),)
        if not destinations or not sources:
            continue
        protocol = str(inputs.get("protocol") or "any").lower()
        flows.append(Flow(description=str(inputs.get("description") or rule.name), sources=sources,
                          destinations=destinations, protocol=protocol,
                          port_min=_int_or_none(inputs.get("portRangeMin")),
                          port_max=_int_or_none(inputs.get("portRangeMax"))))
    return flows
