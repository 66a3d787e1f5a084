"""Typed stack configuration: what one environment of the GHT base declares.

A stack configuration is the ``config:`` block of ``stacks/config/Pulumi.<env>.yaml``: one
``ght-socle:<key>`` entry per section below, plus the provider's own ``openstack:region`` and
``openstack:authUrl``. The models check the shape of each section (types, CIDRs, names); the
cross-checks between sections (zones named by roles and flows, overlapping CIDRs, duplicate host
names, PSSI allow-lists) live in :mod:`ght_socle.config.validate`, which runs before any resource
is declared.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ght_socle.trust.grammar import DnsDomain, HttpUrl, PlainToken, SshPublicKey, Text, UserName

NAMESPACE = "ght-socle"

DEFAULT_ZONES: dict[str, str] = {
    "dmz-in": "10.40.10.0/24",
    "dmz-out": "10.40.11.0/24",
    "admin": "10.40.1.0/24",
    "identity": "10.40.3.0/24",
    "hds-app": "10.40.2.0/24",
    "hds-data": "10.40.4.0/24",
    "interop": "10.40.5.0/24",
    "nonhds": "10.40.6.0/24",
    "backup": "10.40.8.0/24",
    "log": "10.40.9.0/24",
    "transit": "10.40.12.0/24",
}
# Zones an edge router (with an external gateway) may serve; every other zone hangs off the
# internal router, which never has one.
EDGE_ZONES = ("dmz-in", "dmz-out", "transit")
DMZ_ZONES = ("dmz-in", "dmz-out")
PUBLIC_ZONE = "dmz-in"
TRANSIT_ZONE = "transit"
ADMIN_ZONE = "admin"
BACKUP_ZONE = "backup"
LOG_ZONE = "log"

# Flow endpoints that are not zones or roles of the stack.
SPECIAL_ENDPOINTS = {
    "@internet": "anywhere (0.0.0.0/0)",
    "@sites": "the hospital sites' networks, through the VPN and transit",
    "@admin-networks": "the GHT admin networks (admin zone and declared admin networks)",
}

FLOW_ID = re.compile(r"^FLOW-\d{3,}$")
# Bounded like DNS labels: names become host names, inventory groups and file names.
NAME = re.compile(r"^[a-z][a-z0-9-]{0,61}[a-z0-9]$")
ROLE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,58}$")  # also a host name prefix: room for "-NNN"
HOST_SUFFIX_ROOM = 4  # "-NNN": a host name (prefix and index) stays within 63 characters
PORT_SPEC = re.compile(r"^(\d{1,5})(?:-(\d{1,5}))?$")

DataClass = Literal["hds", "nonhds"]
Tier = Literal["t0", "t1", "t2"]
Criticality = Literal["standard", "important", "critical"]
HostKind = Literal["server", "workstation"]

# Inventory groups a role may add (docs/architecture.md "Inventory groups"); zone_* and tier_*
# are derived, ``linux``/``linux_servers``/``linux_workstations`` come from the host kind.
KNOWN_GROUPS = frozenset({
    "bastion", "dpi_app", "dpi_db", "pacs", "interop", "identity", "log_collector", "backup_server",
    "reverse_proxy", "linux_workstation", "egress_proxy", "windows_workstations",
})
# BP-028 "renforcé" hosts: the ones whose compromise gives the keys to the others.
RENFORCE_GROUPS = frozenset({"bastion", "identity", "backup_server", "log_collector"})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def parse_cidr(value: str) -> ipaddress.IPv4Network:
    """An IPv4 network in canonical form; host bits set is an error (a typo more often than not)."""
    try:
        network = ipaddress.ip_network(value, strict=True)
    except ValueError:
        raise ValueError(f"{value} is not a valid CIDR") from None
    if not isinstance(network, ipaddress.IPv4Network):
        raise ValueError(f"{value} is not an IPv4 CIDR")
    return network


class Site(_Strict):
    """A hospital site connected by an IPsec site-to-site tunnel."""

    cidr: str = Field(description="The site's networks reachable from the base")
    peer_address: str = Field(description="Public address of the site's VPN gateway")
    # Unset in the committed configurations: each deployment sets its keys as stack secrets
    # (`socle engine set-psk`, docs/engine.md). Only the offline plan accepts an unset key.
    psk: str | None = Field(default=None, min_length=1, max_length=1024,
                            description="IPsec pre-shared key: a Pulumi secret")
    description: Text = ""

    @field_validator("cidr")
    @classmethod
    def _cidr(cls, value: str) -> str:
        parse_cidr(value)
        return value

    @field_validator("peer_address")
    @classmethod
    def _peer(cls, value: str) -> str:
        try:
            ipaddress.IPv4Address(value)
        except ValueError:
            raise ValueError(f"{value} is not an IPv4 address") from None
        return value


class Flow(_Strict):
    """One line of the flow matrix: who may talk to whom, on what."""

    source: list[str] = Field(min_length=1, description="zones, role:<name>, @internet, @sites, @admin-networks")
    destination: list[str] = Field(min_length=1, description="zones, role:<name>, or @internet")
    protocol: Literal["tcp", "udp"]
    ports: list[int | str] = Field(min_length=1)
    description: Text = Field(min_length=3)

    @field_validator("source", "destination", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        # One endpoint or a list of them: "every server zone sends its logs to the collectors" is one flow.
        return [value] if isinstance(value, str) else value

    @field_validator("ports")
    @classmethod
    def _ports(cls, value: list[int | str]) -> list[int | str]:
        for port in value:
            low, high = port_range(port)
            if not (1 <= low <= high <= 65535):
                raise ValueError(f"{port!r} is not a port or a low-high range within 1-65535")
        return value


def port_range(port: int | str) -> tuple[int, int]:
    """``22`` -> (22, 22); ``"5900-5999"`` -> (5900, 5999); anything else -> (0, 0)."""
    if isinstance(port, bool):
        return 0, 0
    if isinstance(port, int):
        return port, port
    match = PORT_SPEC.match(str(port))
    if not match:
        return 0, 0
    low = int(match.group(1))
    return low, int(match.group(2) or low)


class Role(_Strict):
    """A kind of machine; its hosts (``<prefix>-01``, ``-02``...) are derived from ``count``."""

    zone: str
    extra_zones: list[str] = Field(default_factory=list, description="Further zones (gateway roles)")
    groups: list[str] = Field(default_factory=list, description="Inventory groups besides the role name")
    kind: HostKind = "server"
    hostname_prefix: str | None = None
    count: int = Field(default=1, ge=1, le=999)
    ha: bool = False
    flavor: PlainToken
    image: PlainToken
    volume_size: int = Field(ge=10, le=65536, description="Boot volume size (GB)")
    volume_type: PlainToken
    data_volume_size: int = Field(default=0, ge=0, le=65536, description="Extra data volume (GB), 0 for none")
    data_class: DataClass
    tier: Tier
    owner: PlainToken = Field(min_length=2)
    backup_policy: PlainToken
    criticality: Criticality
    address_offset: int | None = Field(default=None, ge=4, description="First host's offset in the zone subnet")
    floating_ip: bool = Field(default=False, description="Public address (dmz-in hosts only)")

    @field_validator("hostname_prefix")
    @classmethod
    def _prefix(cls, value: str | None) -> str | None:
        if value is not None and (not NAME.match(value) or len(value) > 63 - HOST_SUFFIX_ROOM):
            raise ValueError(f"{value[:60]!r} is not a host name prefix (lower-case letters, digits, '-', "
                             f"at most {63 - HOST_SUFFIX_ROOM})")
        return value


class BackupPolicy(_Strict):
    keep_daily: int = Field(ge=1, le=3660)
    keep_weekly: int = Field(default=0, ge=0, le=520)
    keep_monthly: int = Field(default=0, ge=0, le=1200)
    offsite: bool = True
    description: Text = ""


class RepositoryTier(_Strict):
    """Disk repository on the backup servers (first copy, in the backup zone)."""

    volume_size: int = Field(ge=10, le=1048576)
    volume_type: PlainToken


class ObjectTier(_Strict):
    """Object-storage copy (second copy) and its replica in another allowed region (third copy)."""

    region: PlainToken
    offsite_region: PlainToken
    container_prefix: PlainToken = "ght-backup"


class OfflineTier(_Strict):
    """The offline or immutable copy OpenStack cannot express: declared as data for the policies."""

    mode: Literal["offline", "immutable"]
    min_days: int = Field(ge=1, le=3660, description="Days the copy cannot be deleted or altered")
    rotation: Text = Field(min_length=3, description="How often the copy is refreshed")
    operator_provides: Text = Field(min_length=10, description="What the operator must provide and check")


class BackupTiers(_Strict):
    repository: RepositoryTier
    object_storage: ObjectTier
    offline: OfflineTier


class StackSettings(_Strict):
    """Every ``ght-socle:*`` key of a stack configuration, typed."""

    ght_name: PlainToken = Field(min_length=2)
    environment: Literal["lab", "preprod", "prod", "dev", "test"]
    region: PlainToken = Field(description="openstack:region, the cloud region of the stack")
    auth_url: HttpUrl = Field(description="openstack:authUrl")
    external_network: PlainToken = Field(min_length=1, description="Name of the provider's external network")
    availability_zones: list[PlainToken] = Field(default_factory=list)
    dns_domain: DnsDomain = "ght.local"
    zones: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_ZONES))
    admin_networks: list[str] = Field(default_factory=list, description="GHT admin networks reaching the bastion")
    sites: dict[str, Site] = Field(default_factory=dict)
    flows: dict[str, Flow]
    roles: dict[str, Role]
    backup_policies: dict[str, BackupPolicy]
    backup: BackupTiers
    admin_user: UserName = "ghtadmin"
    admin_group: UserName = "ght-admins"
    automation_group: UserName = "ght-automation"
    admin_ssh_keys: list[SshPublicKey] = Field(min_length=1, max_length=64)
    apt_proxy: HttpUrl = ""
    apt_mirror: HttpUrl = ""

    @field_validator("auth_url")
    @classmethod
    def _https(cls, value: str) -> str:
        if not value.startswith("https://"):
            raise ValueError(f"{value} is not an https:// URL (credentials travel to it)")
        return value


@dataclass(frozen=True)
class Host:
    """One machine derived from a role."""

    name: str
    role: str
    index: int  # 0-based position among the role's hosts
    zone: str
    addresses: dict[str, str]  # zone -> fixed IPv4 address
    availability_zone: str | None
    groups: list[str] = field(default_factory=list)

    @property
    def address(self) -> str:
        return self.addresses[self.zone]
