"""NET: network segmentation and exposure (security groups, networks, routers, floating IPs, VPNaaS)."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator, Mapping

from ght_socle.policy.helpers import (
    FIREWALL_RULE,
    FLOATING_IP,
    FLOATING_IP_ASSOCIATE,
    IKE_POLICY,
    INSTANCE,
    IPSEC_POLICY,
    NETWORK,
    PORT,
    ROUTER,
    ROUTER_INTERFACE,
    SECGROUP,
    SECGROUP_RULE,
    SITE_CONNECTION,
    SUBNET,
    describe_rule,
    format_range,
    is_truthy,
    opens_all_ports,
    parse_port_specs,
    prefix_known_later,
    prefix_within,
    remote_group_of_rule,
    remote_prefix,
    role_of_secgroup,
    rule_opens,
    rule_ports,
    rule_protocol,
    secgroup_of_rule,
    source_is_anywhere,
    subnet_cidrs_of_zone,
    tagged,
    zone_of_port,
    zone_of_secgroup,
)
from ght_socle.policy.model import PolicyContext, Resource, Stack, Violation, as_list, item_present, records
from ght_socle.policy.registry import resource_policy, stack_policy

ADMIN_ZONE = "admin"  # the zone of the bastion and admin tools (zone model of the catalog, NET-001)
BASTION_ROLE = "bastion"


def _direction(rule: Resource) -> str:
    return str(rule.get("direction", "ingress")).lower()


def _rules(stack: Stack, direction: str) -> Iterator[Resource]:
    for rule in stack.of_type(SECGROUP_RULE):
        if _direction(rule) == direction:
            yield rule


# --- NET-001 -------------------------------------------------------------------------------------------

@resource_policy("net-zone-tag", "NET-001",
                 "Every network and subnet carries exactly one zone tag from the closed list",
                 [NETWORK, SUBNET], fix="Set the network's zone in the stack configuration (tag zone=<zone>).")
def net_zone_tag(resource: Resource, ctx: PolicyContext) -> Iterator[Violation]:
    zones = list(ctx.param("zones"))
    values = resource.tag_values("zone")
    if not values:
        yield Violation("has no zone=<zone> tag")
    elif len(values) > 1:
        yield Violation(f"has {len(values)} zone tags ({', '.join(values)}); exactly one is allowed")
    elif values[0] not in zones:
        yield Violation(f"zone {values[0]!r} is not in the zone list ({', '.join(zones)})")


@stack_policy("net-cidr-no-overlap", "NET-001", "Subnet address ranges are unique and never overlap", [SUBNET],
              fix="Give each subnet a free CIDR in the stack configuration.")
def net_cidr_no_overlap(stack: Stack, ctx: PolicyContext) -> Iterator[Violation]:
    spans: list[tuple[int, int, int, Resource, str]] = []
    for subnet in stack.of_type(SUBNET):
        cidr = subnet.get("cidr")
        if not cidr:
            continue
        try:
            network = ipaddress.ip_network(str(cidr), strict=False)
        except ValueError:
            yield Violation(f"cidr {cidr!r} is not a valid network", subnet)
            continue
        spans.append((network.version, int(network.network_address), int(network.broadcast_address), subnet,
                      str(network)))
    spans.sort(key=lambda s: (s[0], s[1]))
    # Sweep: a subnet overlaps the one before it whose range reaches furthest.
    widest: tuple[int, int, int, Resource, str] | None = None
    for span in spans:
        if widest is not None and widest[0] == span[0] and span[1] <= widest[2]:
            yield Violation(f"cidr {span[4]} overlaps {widest[4]} of subnet {widest[3].name}", span[3])
        if widest is None or widest[0] != span[0] or span[2] > widest[2]:
            widest = span


# --- NET-002 -------------------------------------------------------------------------------------------

@resource_policy("net-no-default-secgroup", "NET-002",
                 "Security groups drop their default rules and nothing uses the project's default group",
                 [SECGROUP, INSTANCE, PORT],
                 fix="Use the zone security groups (deleteDefaultRules true) and never the 'default' group.")
def net_no_default_secgroup(resource: Resource, ctx: PolicyContext) -> Iterator[Violation]:
    if resource.type == SECGROUP:
        if str(resource.get("name", "")) == "default":
            yield Violation("manages the project's 'default' security group")
        if not is_truthy(resource.get("deleteDefaultRules", False)):
            yield Violation("keeps the default egress-to-anywhere rules (deleteDefaultRules is not true)")
    elif resource.type == INSTANCE:
        groups = [str(g) for g in resource.get("securityGroups", []) or []]
        if "default" in groups:
            yield Violation("uses the 'default' security group")
        networks = records(resource.get("networks"))
        direct = [n for n in networks if not item_present(n, "port")]
        if direct and not groups:
            yield Violation("attaches to a network without security groups: OpenStack applies the 'default' group")
    elif resource.type == PORT:
        if is_truthy(resource.get("noSecurityGroups", False)):
            return
        if resource.get("portSecurityEnabled") is False:
            yield Violation("disables port security: no security group filters this port")
            return
        groups = [str(g) for g in resource.known_items("securityGroupIds")]
        if "default" in groups:
            yield Violation("uses the 'default' security group")
        elif not resource.present("securityGroupIds"):
            yield Violation("has no securityGroupIds: OpenStack applies the 'default' group")


# --- NET-003 -------------------------------------------------------------------------------------------

@stack_policy("net-no-world-ingress", "NET-003",
              "No ingress from 0.0.0.0/0 or ::/0 except the published ports of public zones", [SECGROUP_RULE],
              fix="Restrict remoteIpPrefix to a declared source or publish the service through the dmz-in proxy.")
def net_no_world_ingress(stack: Stack, ctx: PolicyContext) -> Iterator[Violation]:
    public_zones = set(ctx.param("public_ingress_zones"))
    public_ports = parse_port_specs(ctx.param("public_ingress_ports"))
    for rule in _rules(stack, "ingress"):
        if not source_is_anywhere(rule):
            continue
        zone = zone_of_secgroup(secgroup_of_rule(stack, rule))
        ports = rule_ports(rule)
        published = (
            zone in public_zones and rule_protocol(rule) == "tcp" and ports is not None
            and any(low <= ports[0] and ports[1] <= high for low, high in public_ports)
        )
        if not published:
            where = f"zone {zone}" if zone else "a security group of unknown zone"
            yield Violation(f"{describe_rule(rule)} opens {where} to the Internet", rule)


@resource_policy("net-no-all-ports-rule", "NET-003", "No ingress rule opens every port or every protocol",
                 [SECGROUP_RULE], fix="Set protocol and portRangeMin/portRangeMax to the flow's ports.")
def net_no_all_ports_rule(rule: Resource, ctx: PolicyContext) -> Iterator[Violation]:
    if _direction(rule) != "ingress" or not opens_all_ports(rule):
        return
    # A group opening all ports to its own members is lateral traffic, judged by NET-007.
    if rule.get("remoteGroupId") and rule.get("remoteGroupId") == rule.get("securityGroupId"):
        return
    yield Violation(f"{describe_rule(rule)}: every port is open")


# --- NET-004 -------------------------------------------------------------------------------------------

def _admin_cidrs(stack: Stack, ctx: PolicyContext) -> list[str]:
    cidrs: list[str] = []
    if ctx.has_param("admin_cidrs", "ADM-001"):
        cidrs.extend(str(c) for c in ctx.param("admin_cidrs", rule="ADM-001"))
    ght = stack.outputs.get("ght") if isinstance(stack.outputs, Mapping) else None
    if isinstance(ght, Mapping):
        cidrs.extend(str(c) for c in as_list(ght.get("admin_cidrs")))
    cidrs.extend(subnet_cidrs_of_zone(stack, ADMIN_ZONE))
    return cidrs


@stack_policy("net-admin-ports-from-admin-only", "NET-004",
              "Administration ports are reachable only from the bastion group or the admin networks",
              [SECGROUP_RULE], fix="Set remoteGroupId to the bastion group or remoteIpPrefix to an admin CIDR.")
def net_admin_ports_from_admin_only(stack: Stack, ctx: PolicyContext) -> Iterator[Violation]:
    admin_ports = parse_port_specs(ctx.param("admin_ports"))
    admin_cidrs = _admin_cidrs(stack, ctx)
    for rule in _rules(stack, "ingress"):
        opened = rule_opens(rule, admin_ports)
        if not opened:
            continue
        ports = ", ".join(format_range(p) for p in opened)
        if prefix_known_later(rule):
            continue  # computed from another resource: judged when the engine knows it (`pulumi up`)
        prefix = remote_prefix(rule)
        if prefix is not None:
            if not prefix_within(prefix, admin_cidrs):
                yield Violation(f"admin port(s) {ports} open from {prefix}, outside the admin networks "
                                f"({', '.join(admin_cidrs) or 'none declared'})", rule)
            continue
        if not rule.present("remoteGroupId"):
            yield Violation(f"admin port(s) {ports} open to any source", rule)
            continue
        remote = remote_group_of_rule(stack, rule)
        if remote is None:
            yield Violation(f"admin port(s) {ports} open from group {rule.known('remoteGroupId') or '(new)'}, "
                            "which is not a declared admin-zone group", rule)
        elif zone_of_secgroup(remote) != ADMIN_ZONE and role_of_secgroup(remote) != BASTION_ROLE:
            yield Violation(f"admin port(s) {ports} open from group {remote.name} "
                            f"(zone {zone_of_secgroup(remote) or 'unknown'}), not the bastion or admin zone", rule)


# --- NET-005 -------------------------------------------------------------------------------------------

@stack_policy("net-floating-ip-dmz-only", "NET-005", "Floating IPs attach only to ports of the public zones",
              [FLOATING_IP, FLOATING_IP_ASSOCIATE],
              fix="Remove the floating IP, or publish the service through the dmz-in reverse proxy.")
def net_floating_ip_dmz_only(stack: Stack, ctx: PolicyContext) -> Iterator[Violation]:
    public_zones = set(ctx.param("public_ingress_zones", rule="NET-003"))
    for fip in stack.of_type(FLOATING_IP, FLOATING_IP_ASSOCIATE):
        if not fip.present("portId"):
            continue
        port_id = fip.known("portId")
        port = stack.follow(fip, "portId", [PORT])
        zone = zone_of_port(stack, port)
        if zone not in public_zones:
            target = f"port {port.name}" if port is not None else f"port {port_id or '(unknown)'}"
            yield Violation(f"public address on {target} in zone {zone or 'unknown'}; "
                            f"allowed only in {', '.join(sorted(public_zones))}", fip)


@stack_policy("net-hds-subnet-no-external-router", "NET-005",
              "No health-data subnet is attached to a router with an external gateway", [ROUTER_INTERFACE],
              fix="Attach the HDS subnet to the internal router (no externalNetworkId).")
def net_hds_subnet_no_external_router(stack: Stack, ctx: PolicyContext) -> Iterator[Violation]:
    prefix = str(ctx.param("hds_zone_prefix"))
    for interface in stack.of_type(ROUTER_INTERFACE):
        router = stack.follow(interface, "routerId", [ROUTER])
        if router is None or not router.known("externalNetworkId"):  # unknown: computed, not set
            continue
        zone = None
        subnet = stack.follow(interface, "subnetId", [SUBNET])
        if subnet is not None:
            zone = tagged(subnet, "zone")
        elif interface.present("portId"):
            zone = zone_of_port(stack, stack.follow(interface, "portId", [PORT]))
        if zone is not None and zone.startswith(prefix):
            yield Violation(f"subnet of zone {zone} attached to router {router.name}, which has an external gateway",
                            interface)


# --- NET-006 -------------------------------------------------------------------------------------------

@stack_policy("net-no-open-egress", "NET-006", "No egress to anywhere outside the Internet egress zones",
              [SECGROUP_RULE], fix="Send traffic to the dmz-out relay or to declared zones instead of 0.0.0.0/0.")
def net_no_open_egress(stack: Stack, ctx: PolicyContext) -> Iterator[Violation]:
    allowed = set(ctx.param("internet_egress_zones"))
    for rule in _rules(stack, "egress"):
        if not source_is_anywhere(rule):
            continue
        zone = zone_of_secgroup(secgroup_of_rule(stack, rule))
        if zone not in allowed:
            yield Violation(f"{describe_rule(rule)} from zone {zone or 'unknown'}; only "
                            f"{', '.join(sorted(allowed))} may reach any destination", rule)


# --- NET-007 -------------------------------------------------------------------------------------------

@stack_policy("net-no-lateral-any", "NET-007", "No all-ports rule between members of one group outside cluster roles",
              [SECGROUP_RULE], fix="Open only the ports the cluster needs, or declare the role in cluster_roles.")
def net_no_lateral_any(stack: Stack, ctx: PolicyContext) -> Iterator[Violation]:
    cluster_roles = set(ctx.param("cluster_roles"))
    for rule in _rules(stack, "ingress"):
        if not rule.present("remoteGroupId") or not opens_all_ports(rule):
            continue
        remote = rule.known("remoteGroupId")
        group = secgroup_of_rule(stack, rule)
        same = (remote is not None and remote == rule.known("securityGroupId")) or (
            group is not None and remote_group_of_rule(stack, rule) is group)
        if same and role_of_secgroup(group) not in cluster_roles:
            name = group.name if group is not None else str(remote)
            yield Violation(f"group {name} opens every port to its own members", rule)


# --- NET-008 -------------------------------------------------------------------------------------------

# OpenStack VPNaaS defaults when a property is omitted (the API fills them in): weak on purpose of
# compatibility, so an omitted property is judged by its default.
_VPN_DEFAULTS = {"ikeVersion": "v1", "encryptionAlgorithm": "aes-128", "authAlgorithm": "sha1", "pfs": "group5",
                 "transformProtocol": "esp"}


def _vpn_crypto(resource: Resource, ctx: PolicyContext, keys: dict[str, str]) -> Iterator[Violation]:
    for key, param in keys.items():
        value = str(resource.get(key, _VPN_DEFAULTS[key])).lower()
        allowed = [str(v).lower() for v in ctx.param(param)]
        if value not in allowed:
            shown = value if resource.get(key) is not None else f"{value} (default)"
            yield Violation(f"{key} {shown} is below the crypto floor ({', '.join(allowed)})")


@resource_policy("net-vpn-ike-crypto", "NET-008", "IKE policies use IKEv2, AES-256, SHA-2 and PFS >= group 14",
                 [IKE_POLICY],
                 fix="Set ikeVersion v2, encryptionAlgorithm aes-256, authAlgorithm sha256+, pfs group14+.")
def net_vpn_ike_crypto(resource: Resource, ctx: PolicyContext) -> Iterator[Violation]:
    yield from _vpn_crypto(resource, ctx, {"ikeVersion": "ike_versions", "encryptionAlgorithm": "encryption_algorithms",
                                           "authAlgorithm": "auth_algorithms", "pfs": "pfs_groups"})


@resource_policy("net-vpn-ipsec-crypto", "NET-008", "IPsec policies use ESP with AES-256, SHA-2 and PFS >= group 14",
                 [IPSEC_POLICY], fix="Set transformProtocol esp, encryptionAlgorithm aes-256, authAlgorithm sha256+, "
                                     "pfs group14+.")
def net_vpn_ipsec_crypto(resource: Resource, ctx: PolicyContext) -> Iterator[Violation]:
    yield from _vpn_crypto(resource, ctx, {"encryptionAlgorithm": "encryption_algorithms",
                                           "authAlgorithm": "auth_algorithms", "pfs": "pfs_groups"})
    protocol = str(resource.get("transformProtocol", _VPN_DEFAULTS["transformProtocol"])).lower()
    if protocol != "esp":
        yield Violation(f"transformProtocol {protocol} does not encrypt (use esp)")


@resource_policy("net-vpn-psk-secret", "NET-008", "A VPN pre-shared key is a stack secret",
                 [SITE_CONNECTION], fix="Store the PSK with `pulumi config set --secret` and pass it as a secret.")
def net_vpn_psk_secret(resource: Resource, ctx: PolicyContext) -> Iterator[Violation]:
    psk = resource.get("psk")
    if not psk:
        return
    marked = resource.secret_keys is not None and "psk" in resource.secret_keys
    if not marked and not ctx.is_secret_config_value(psk):
        yield Violation("psk is a plaintext value (not a stack secret): it is stored readable in the state")


# --- NET-010 -------------------------------------------------------------------------------------------

@resource_policy("net-rule-has-flow-id", "NET-010", "Every filtering rule names its flow-matrix entry",
                 [SECGROUP_RULE, FIREWALL_RULE], fix="Give the flow a flow_id (FLOW-nnn) in the stack configuration.")
def net_rule_has_flow_id(rule: Resource, ctx: PolicyContext) -> Iterator[Violation]:
    pattern = re.compile(str(ctx.param("flow_id_pattern")))
    description = str(rule.get("description", "") or "")
    if not pattern.search(description):
        shown = f"description {description!r}" if description else "no description"
        yield Violation(f"{shown} carries no flow id ({pattern.pattern})")

