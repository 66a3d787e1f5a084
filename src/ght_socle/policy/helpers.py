"""Shared vocabulary of the policies: resource type tokens, ports, prefixes, zones, secrets.

Neutron semantics encoded here (and relied upon by several policies): a rule without ``protocol``
applies to every protocol; a TCP/UDP rule without a port range applies to every port; an ingress
rule with neither ``remoteIpPrefix`` nor a remote group accepts any source.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import functools
import gzip
import ipaddress
import re
from collections.abc import Iterable, Sequence
from typing import Any

from ght_socle.policy.model import Resource, Stack, item_known, item_present, records

# --- type tokens (pulumi-openstack) ----------------------------------------------------------------
NETWORK = "openstack:networking/network:Network"
SUBNET = "openstack:networking/subnet:Subnet"
PORT = "openstack:networking/port:Port"
ROUTER = "openstack:networking/router:Router"
ROUTER_INTERFACE = "openstack:networking/routerInterface:RouterInterface"
SECGROUP = "openstack:networking/secGroup:SecGroup"
SECGROUP_RULE = "openstack:networking/secGroupRule:SecGroupRule"
PORT_SECGROUP_ASSOCIATE = "openstack:networking/portSecGroupAssociate:PortSecGroupAssociate"
FLOATING_IP = "openstack:networking/floatingIp:FloatingIp"
FLOATING_IP_ASSOCIATE = "openstack:networking/floatingIpAssociate:FloatingIpAssociate"
FIREWALL_RULE = "openstack:firewall/ruleV2:RuleV2"
INSTANCE = "openstack:compute/instance:Instance"
SERVER_GROUP = "openstack:compute/serverGroup:ServerGroup"
KEYPAIR = "openstack:compute/keypair:Keypair"
COMPUTE_VOLUME_ATTACH = "openstack:compute/volumeAttach:VolumeAttach"
VOLUME = "openstack:blockstorage/volume:Volume"
CONTAINER = "openstack:objectstorage/container:Container"
IKE_POLICY = "openstack:vpnaas/ikePolicy:IkePolicy"
IPSEC_POLICY = "openstack:vpnaas/ipSecPolicy:IpSecPolicy"
SITE_CONNECTION = "openstack:vpnaas/siteConnection:SiteConnection"
USER = "openstack:identity/user:User"
APPLICATION_CREDENTIAL = "openstack:identity/applicationCredential:ApplicationCredential"
EC2_CREDENTIAL = "openstack:identity/ec2CredentialV3:Ec2CredentialV3"
SECRET_V1 = "openstack:keymanager/secretV1:SecretV1"
OPENSTACK_PROVIDER = "pulumi:providers:openstack"
STACK = "pulumi:pulumi:Stack"

ALL_PORTS = (1, 65535)
WORLD_PREFIXES = {ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0")}


def number(value: Any) -> int | None:
    """Ports and sizes arrive as floats from the engine (``22.0``): compare as integers."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return None


def parse_port_specs(specs: Iterable[Any]) -> list[tuple[int, int]]:
    """``["22", "5900-5999", 623]`` -> ``[(22, 22), (5900, 5999), (623, 623)]``."""
    ranges: list[tuple[int, int]] = []
    for spec in specs:
        text = str(spec).strip()
        low, _, high = text.partition("-")
        ranges.append((int(low), int(high or low)))
    return ranges


def format_range(port_range: tuple[int, int]) -> str:
    low, high = port_range
    return str(low) if low == high else f"{low}-{high}"


# --- security group rules ---------------------------------------------------------------------------

def rule_protocol(rule: Resource) -> str:
    """Normalised protocol: ``any`` when absent (Neutron applies the rule to every protocol)."""
    protocol = str(rule.get("protocol", "") or "").strip().lower()
    return protocol if protocol not in ("", "any", "0") else "any"


def rule_ports(rule: Resource) -> tuple[int, int] | None:
    """The port range a TCP/UDP-like rule opens (all ports when unset), None for ICMP-like protocols."""
    protocol = rule_protocol(rule)
    if protocol in ("icmp", "ipv6-icmp", "icmp6", "1", "58"):
        return None
    low = number(rule.get("portRangeMin"))
    high = number(rule.get("portRangeMax"))
    if protocol == "any" or (not low and not high):
        return ALL_PORTS
    low = low or high or 1
    high = high or low
    return (max(low, 1), min(high, 65535))


def opens_all_ports(rule: Resource) -> bool:
    return rule_ports(rule) == ALL_PORTS


def ranges_overlap(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] <= b[1] and b[0] <= a[1]


def rule_opens(rule: Resource, ports: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """The ranges among ``ports`` the rule opens (partly or fully)."""
    opened = rule_ports(rule)
    if opened is None:
        return []
    return [p for p in ports if ranges_overlap(opened, p)]


def remote_prefix(rule: Resource) -> str | None:
    value = rule.known("remoteIpPrefix")
    return str(value) if value else None


def prefix_known_later(rule: Resource) -> bool:
    """The rule's remote prefix is set to a value only deployment will tell (another resource's output)."""
    return rule.present("remoteIpPrefix") and remote_prefix(rule) is None


def has_remote_group(rule: Resource) -> bool:
    return rule.present("remoteGroupId") or rule.present("remoteAddressGroupId")


def remote_group_id(rule: Resource) -> Any:
    """The remote group's ID for messages (``(new)`` when only known after deployment)."""
    if not has_remote_group(rule):
        return None
    return rule.known("remoteGroupId") or rule.known("remoteAddressGroupId") or "(new)"


def is_world_prefix(prefix: str | None) -> bool:
    if prefix is None:
        return False
    try:
        return ipaddress.ip_network(prefix, strict=False) in WORLD_PREFIXES
    except ValueError:
        return False


def source_is_anywhere(rule: Resource) -> bool:
    """Any source (or destination, for egress): a world prefix, or neither prefix nor remote group."""
    prefix = remote_prefix(rule)
    if prefix is not None:
        return is_world_prefix(prefix)
    # A prefix computed from another resource is a declared source, not "anywhere".
    return not prefix_known_later(rule) and not has_remote_group(rule)


def prefix_within(prefix: str, cidrs: Iterable[str]) -> bool:
    try:
        network = ipaddress.ip_network(prefix, strict=False)
    except ValueError:
        return False
    for cidr in cidrs:
        try:
            outer = ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            continue
        if network.version == outer.version and network.subnet_of(outer):  # type: ignore[arg-type]
            return True
    return False


def describe_rule(rule: Resource) -> str:
    ports = rule_ports(rule)
    protocol = rule_protocol(rule)
    where = "any port" if ports == ALL_PORTS else (format_range(ports) if ports else "")
    source = remote_prefix(rule) or ("group " + str(remote_group_id(rule)) if remote_group_id(rule) else "anywhere")
    direction = str(rule.get("direction", "ingress"))
    arrow = "from" if direction == "ingress" else "to"
    return f"{direction} {protocol} {where} {arrow} {source}".replace("  ", " ")


# --- zones and roles ---------------------------------------------------------------------------------

def _single(values: list[str]) -> str | None:
    return values[0] if len(values) == 1 else None


def tagged(resource: Resource, key: str) -> str | None:
    """The value of a ``key=value`` tag, or the ``key`` metadata entry (instances, volumes)."""
    value = _single(resource.tag_values(key))
    if value is None:
        meta = resource.metadata.get(key)
        value = str(meta) if meta not in (None, "") else None
    return value


def secgroup_of_rule(stack: Stack, rule: Resource) -> Resource | None:
    return stack.follow(rule, "securityGroupId", [SECGROUP])


def remote_group_of_rule(stack: Stack, rule: Resource) -> Resource | None:
    return stack.follow(rule, "remoteGroupId", [SECGROUP])


def zone_of_secgroup(group: Resource | None) -> str | None:
    return tagged(group, "zone") if group is not None else None


def role_of_secgroup(group: Resource | None) -> str | None:
    return tagged(group, "role") if group is not None else None


def zone_of_network(stack: Stack, network: Resource | None) -> str | None:
    if network is None:
        return None
    return tagged(network, "zone")


def network_of_port(stack: Stack, port: Resource) -> Resource | None:
    return stack.follow(port, "networkId", [NETWORK])


def zone_of_port(stack: Stack, port: Resource | None) -> str | None:
    """A port's zone: its network's zone tag, else its own, else its first fixed IP subnet's."""
    if port is None:
        return None
    zone = zone_of_network(stack, network_of_port(stack, port)) or tagged(port, "zone")
    if zone is None:
        for fixed in records(port.get("fixedIps")):
            if fixed:
                subnet = stack.resolve(port, "fixedIps", fixed.get("subnetId"), [SUBNET])
                zone = tagged(subnet, "zone") if subnet is not None else None
                if zone:
                    break
    return zone


def subnet_cidrs_of_zone(stack: Stack, zone: str) -> list[str]:
    return [str(s.get("cidr")) for s in stack.of_type(SUBNET) if tagged(s, "zone") == zone and s.get("cidr")]


def instance_networks(stack: Stack, instance: Resource) -> list[tuple[str, Resource | None]]:
    """Each network attachment of an instance: a description and the Network (or None when unresolved)."""
    found: list[tuple[str, Resource | None]] = []
    attachments = records(instance.get("networks"))
    if any(item_present(a, "port") and item_known(a, "port") is None for a in attachments):
        # Ports created by the same update have no ID in a preview: the ports the attachments
        # depend on are the instance's ports, whichever attachment holds which.
        ports = stack.references(instance, "networks", [PORT])
        found.extend((f"port {port.name}", network_of_port(stack, port)) for port in ports)
        attachments = [a for a in attachments if not item_present(a, "port")]
    for attachment in attachments:
        if attachment.get("port"):
            port = stack.resolve(instance, "networks", attachment.get("port"), [PORT])
            network = network_of_port(stack, port) if port is not None else None
            found.append((f"port {port.name if port is not None else attachment.get('port')}", network))
        elif attachment.get("uuid"):
            found.append((f"network {attachment.get('uuid')}",
                          stack.resolve(instance, "networks", attachment.get("uuid"), [NETWORK])))
        elif attachment.get("name"):
            by_name = [n for n in stack.of_type(NETWORK) if n.get("name") == attachment.get("name")]
            found.append((f"network {attachment.get('name')}", by_name[0] if len(by_name) == 1 else None))
    return found


# --- secrets ------------------------------------------------------------------------------------------

# (pattern, kind, words one of which the lower-cased text must contain for the pattern to be tried):
# the cheap substring test skips most patterns on ordinary user-data.
_USER_DATA_SECRETS: list[tuple[re.Pattern[str], str, tuple[str, ...]]] = [
    (re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----"), "a private key", ("private key",)),
    (re.compile(r"(?m)^\s*-?\s*(?:plain_text_passwd|hashed_passwd|passwd)\s*:\s*\S"), "a user password",
     ("passwd",)),
    (re.compile(r"(?m)^\s*chpasswd\s*:"), "a chpasswd block (sets passwords)", ("chpasswd",)),
    (re.compile(r"(?i)(?:\|\s*chpasswd\b|chpasswd\s*<<)"), "a chpasswd command", ("chpasswd",)),
    # The sudoers tag NOPASSWD: names a behaviour, not a value. Keys are matched by their ending
    # (DB_PASSWORD=, api_token:) without a leading word scan, which keeps the scan linear.
    (re.compile(r"(?i)(?<!no)(?:password|passwd|pwd)\s*[:=]\s*['\"]?[^\s'\"#]{3,}"), "a password",
     ("passw", "pwd")),
    (re.compile(r"(?i)(?:token|api[_-]?key|secret|access[_-]?key)\s*[:=]\s*['\"]?[^\s'\"#]{8,}"),
     "a token or secret", ("token", "key", "secret")),
    (re.compile(r"(?i)authorization:\s*(?:bearer|basic)\s+\S+"), "an authorization header", ("authorization",)),
    (re.compile(r"AKIA[0-9A-Z]{16}"), "a cloud access key", ("akia",)),
    (re.compile(r"(?:ghp|gho|glpat)[-_][A-Za-z0-9_-]{20,}"), "a forge token", ("ghp", "gho", "glpat")),
    (re.compile(r"eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"), "a JSON web token", ("eyj",)),
]

# Values that name a secret without holding it (templating, vault lookups, empty assignments).
_NOT_A_VALUE = re.compile(r"(?i)[:=]\s*['\"]?(?:\$\{|\{\{|\$\(|<|vault:|!vault|none|null|false|true)")


def decode_user_data(user_data: str) -> str:
    """user-data as cloud-init reads it: plain text, or base64 (possibly of gzip)."""
    text = user_data.strip()
    if text and re.fullmatch(r"[A-Za-z0-9+/=\s]+", text) and len(text) % 4 == 0 and len(text) >= 16:
        try:
            raw = base64.b64decode(text, validate=False)
        except (binascii.Error, ValueError):
            return user_data
        with contextlib.suppress(OSError, EOFError):  # plain base64, not gzip
            raw = gzip.decompress(raw)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return user_data
    return user_data


@functools.lru_cache(maxsize=256)  # the hosts of a role often share one user-data text
def secrets_in_text(text: str) -> tuple[str, ...]:
    """What kinds of secret a text (user-data) holds, each kind once, in pattern order.

    Every pattern matches within one line, so each is tried only on the lines holding one of its
    trigger words: the scan stays fast on the kilobytes of user-data of hundreds of instances.
    """
    lines = [(line, line.lower()) for line in text.splitlines()]
    found: list[str] = []
    for pattern, kind, words in _USER_DATA_SECRETS:
        for line, lowered in lines:
            if not any(word in lowered for word in words):
                continue
            match = pattern.search(line)
            if match is None:
                continue
            if kind in ("a password", "a token or secret", "a user password") and _NOT_A_VALUE.search(
                    line[match.start():]):
                continue
            found.append(kind)
            break
    return tuple(found)


def is_truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "yes", "1", "on")
    return bool(value)
