"""Load and cross-check a stack configuration before a single resource is declared.

Input is what Pulumi hands a program: a flat map of namespaced keys to string values (structured
values as JSON) and the set of secret keys. Output is a :class:`StackConfig`: the typed settings
plus everything derived from them (zone networks, hosts and their fixed addresses, collectors).
Any problem raises one :class:`~ght_socle.errors.ConfigError` naming the file and the key, e.g.
``stacks/config/Pulumi.prod.yaml: key ght-socle:zones.hds-app: 10.40.2.0/33 is not a valid CIDR``.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ght_socle.catalog import default_catalog
from ght_socle.config.model import (
    ADMIN_ZONE,
    BACKUP_ZONE,
    FLOW_ID,
    KNOWN_GROUPS,
    LOG_ZONE,
    NAME,
    NAMESPACE,
    PUBLIC_ZONE,
    RENFORCE_GROUPS,
    ROLE_NAME,
    SPECIAL_ENDPOINTS,
    TRANSIT_ZONE,
    Host,
    Role,
    StackSettings,
    parse_cidr,
)
from ght_socle.errors import ConfigError

# Settings read from the provider's own namespace, so the stack and the provider agree on them.
# Fields whose value an error message must never show.
SECRET_FIELDS = frozenset({"psk"})
SECRET_CONTAINERS = frozenset({"sites"})
PROVIDER_KEYS = {"openstack:region": "region", "openstack:authUrl": "auth_url"}
STRING_FIELDS = {"ght_name", "environment", "region", "auth_url", "external_network", "dns_domain",
                 "admin_user", "admin_group", "automation_group", "apt_proxy", "apt_mirror"}
REQUIRED_ZONES = (ADMIN_ZONE, TRANSIT_ZONE, BACKUP_ZONE, LOG_ZONE)
FIRST_HOST_OFFSET = 10


def config_key(field_name: str) -> str:
    for key, name in PROVIDER_KEYS.items():
        if name == field_name:
            return key
    return f"{NAMESPACE}:{field_name}"


def _key_path(loc: Iterable[Any]) -> str:
    parts = list(loc)
    if not parts:
        return NAMESPACE
    text = config_key(str(parts[0]))
    for part in parts[1:]:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text


@dataclass
class StackConfig:
    """A validated stack configuration and what follows from it."""

    settings: StackSettings
    source: str
    zone_networks: dict[str, ipaddress.IPv4Network]
    hosts: list[Host]
    secret_keys: set[str] = field(default_factory=set)

    @property
    def env(self) -> str:
        return self.settings.environment

    def role(self, name: str) -> Role:
        return self.settings.roles[name]

    def hosts_of_role(self, role: str) -> list[Host]:
        return [h for h in self.hosts if h.role == role]

    def hosts_in_group(self, group: str) -> list[Host]:
        return [h for h in self.hosts if group in h.groups]

    @property
    def bastion(self) -> Host:
        return self.hosts_in_group("bastion")[0]

    def gateway_address(self, zone: str) -> str:
        return str(self.zone_networks[zone].network_address + 1)

    def _addresses_in(self, group: str, zone: str) -> list[str]:
        return [h.addresses.get(zone, h.address) for h in self.hosts_in_group(group)]

    @property
    def log_collectors(self) -> list[str]:
        return self._addresses_in("log_collector", LOG_ZONE)

    @property
    def ntp_servers(self) -> list[str]:
        # The log collectors also serve time: both are "infrastructure services" of the log zone.
        return self.log_collectors

    @property
    def backup_servers(self) -> list[str]:
        return self._addresses_in("backup_server", BACKUP_ZONE)

    @property
    def admin_cidrs(self) -> list[str]:
        cidrs = [str(self.zone_networks[ADMIN_ZONE])]
        return cidrs + [c for c in self.settings.admin_networks if c not in cidrs]


class _Checker:
    """Collects the context (file name) so every check raises the same one-line error."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, key: str, message: str) -> ConfigError:
        return ConfigError(message, file=self.source, where=f"key {key}")


def _decode(raw: Mapping[str, Any], checker: _Checker) -> dict[str, Any]:
    """Namespaced wire values -> a dict of StackSettings fields (JSON decoded where structured)."""
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key in PROVIDER_KEYS:
            field_name = PROVIDER_KEYS[key]
        elif key.startswith(f"{NAMESPACE}:"):
            field_name = key.split(":", 1)[1]
        else:
            continue  # another namespace (openstack:insecure, ...) is the provider's business
        if field_name not in StackSettings.model_fields:
            raise checker.fail(key, "unknown key")
        if field_name in STRING_FIELDS or not isinstance(value, str):
            values[field_name] = value
            continue
        try:
            values[field_name] = json.loads(value)
        except (json.JSONDecodeError, RecursionError):
            # The sites hold the PSKs: their text is never shown.
            shown = "text" if field_name in SECRET_CONTAINERS else repr(value[:60])
            raise checker.fail(key, f"expected a structured value (YAML mapping or list), got {shown}") from None
    return values


def _parse_settings(values: dict[str, Any], checker: _Checker) -> StackSettings:
    try:
        return StackSettings.model_validate(values)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = _key_path(first["loc"])
        if first["type"] == "missing":
            message = "missing key"
        elif first["type"] == "extra_forbidden":
            message = "unknown key"
        else:
            message = str(first["msg"]).removeprefix("Value error, ")
            secret = any(str(part) in SECRET_FIELDS for part in first["loc"])
            if first["type"] not in ("value_error",) and "input" in first and not secret:
                message = f"{message} (got {str(first['input'])[:60]!r})"
        raise checker.fail(key, message) from None


def _check_networks(settings: StackSettings, checker: _Checker) -> dict[str, ipaddress.IPv4Network]:
    networks: dict[str, ipaddress.IPv4Network] = {}
    named: list[tuple[str, ipaddress.IPv4Network]] = []
    for zone, cidr in settings.zones.items():
        key = f"{config_key('zones')}.{zone}"
        if not NAME.match(zone):
            raise checker.fail(key, f"{zone!r} is not a zone name (lower-case letters, digits, '-')")
        try:
            networks[zone] = parse_cidr(cidr)
        except ValueError as exc:
            raise checker.fail(key, str(exc)) from None
        if networks[zone].num_addresses < 16:
            raise checker.fail(key, f"{cidr} is too small for a zone (at least a /28)")
        named.append((key, networks[zone]))
    for zone in REQUIRED_ZONES:
        if zone not in networks:
            raise checker.fail(config_key("zones"), f"the {zone!r} zone is required")
    for name, site in settings.sites.items():
        named.append((f"{config_key('sites')}.{name}.cidr", parse_cidr(site.cidr)))
    _check_disjoint(named, checker)
    # Admin networks usually sit inside a site (the DSI's administration VLAN, arriving through that
    # site's tunnel): they must not overlap a zone or each other, but may lie within a site.
    admin: list[tuple[str, ipaddress.IPv4Network]] = []
    for index, cidr in enumerate(settings.admin_networks):
        key = f"{config_key('admin_networks')}[{index}]"
        try:
            admin.append((key, parse_cidr(cidr)))
        except ValueError as exc:
            raise checker.fail(key, str(exc)) from None
    _check_disjoint([(f"{config_key('zones')}.{z}", n) for z, n in networks.items()] + admin, checker)
    return networks


def _check_disjoint(named: list[tuple[str, ipaddress.IPv4Network]], checker: _Checker) -> None:
    for position, (key, network) in enumerate(named):
        for other_key, other in named[:position]:
            if network.overlaps(other):
                raise checker.fail(key, f"{network} overlaps {other_key} ({other})")


def _param(rule_id: str, name: str) -> list[str]:
    value = default_catalog().param(rule_id, name)
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def _check_allow_lists(settings: StackSettings, checker: _Checker) -> None:
    regions = _param("LOC-001", "allowed_regions")
    volume_types = _param("STO-001", "encrypted_volume_types")
    images = _param("CMP-001", "allowed_images")

    def check_region(key: str, region: str) -> None:
        if region not in regions:
            raise checker.fail(key, f"region {region!r} is outside the allow-list {regions} (PSSI LOC-001)")

    check_region(config_key("region"), settings.region)
    tiers = settings.backup
    check_region(f"{config_key('backup')}.object_storage.region", tiers.object_storage.region)
    check_region(f"{config_key('backup')}.object_storage.offsite_region", tiers.object_storage.offsite_region)
    if tiers.object_storage.region == tiers.object_storage.offsite_region:
        raise checker.fail(f"{config_key('backup')}.object_storage.offsite_region",
                           "the off-site copy must be in another region than the first copy")
    if tiers.repository.volume_type not in volume_types:
        raise checker.fail(f"{config_key('backup')}.repository.volume_type",
                           f"{tiers.repository.volume_type!r} is not an encrypted volume type {volume_types} "
                           "(PSSI STO-001)")
    for name, role in settings.roles.items():
        key = f"{config_key('roles')}.{name}"
        if role.volume_type not in volume_types:
            raise checker.fail(f"{key}.volume_type", f"{role.volume_type!r} is not an encrypted volume type "
                               f"{volume_types} (PSSI STO-001)")
        if role.image not in images:
            raise checker.fail(f"{key}.image", f"image {role.image!r} is not in the allow-list {images} (PSSI CMP-001)")


def _check_roles(settings: StackSettings, zones: Mapping[str, Any], checker: _Checker) -> None:
    for name, role in settings.roles.items():
        key = f"{config_key('roles')}.{name}"
        if not ROLE_NAME.match(name):
            raise checker.fail(key, f"{name!r} is not a role name (lower-case letters, digits, '_')")
        role_zones = [("zone", role.zone)] + [(f"extra_zones[{i}]", z) for i, z in enumerate(role.extra_zones)]
        for zone_key, zone in role_zones:
            if zone not in zones:
                raise checker.fail(f"{key}.{zone_key}", f"unknown zone {zone!r}")
        for index, group in enumerate(role.groups):
            if group not in KNOWN_GROUPS:
                raise checker.fail(f"{key}.groups[{index}]", f"unknown inventory group {group!r} "
                                   f"(known: {', '.join(sorted(KNOWN_GROUPS))})")
        if role.backup_policy not in settings.backup_policies:
            raise checker.fail(f"{key}.backup_policy", f"unknown backup policy {role.backup_policy!r}")
        if role.ha and role.count < 2:
            raise checker.fail(f"{key}.count", "an HA role needs at least 2 instances")
        if role.floating_ip and role.zone != PUBLIC_ZONE:
            raise checker.fail(f"{key}.floating_ip", f"floating IPs are for {PUBLIC_ZONE} hosts only (PSSI NET-005)")
        if "bastion" in _role_groups(name, role):
            if role.zone != ADMIN_ZONE:
                raise checker.fail(f"{key}.zone", "the bastion lives in the admin zone")
            if TRANSIT_ZONE not in role.extra_zones:
                raise checker.fail(f"{key}.extra_zones", "the bastion needs a port in transit, where the GHT "
                                   "admin networks arrive")
    if not any("bastion" in _role_groups(n, r) for n, r in settings.roles.items()):
        raise checker.fail(config_key("roles"), "no role in group 'bastion': administration needs one")


def _check_flows(settings: StackSettings, zones: Mapping[str, Any], checker: _Checker) -> None:
    for flow_id, flow in settings.flows.items():
        key = f"{config_key('flows')}.{flow_id}"
        if not FLOW_ID.match(flow_id):
            raise checker.fail(key, f"{flow_id!r} is not a flow id (FLOW-NNN)")
        for end, endpoints in (("source", flow.source), ("destination", flow.destination)):
            for index, value in enumerate(endpoints):
                where = f"{key}.{end}" if len(endpoints) == 1 else f"{key}.{end}[{index}]"
                if value.startswith("role:"):
                    if value[5:] not in settings.roles:
                        raise checker.fail(where, f"unknown role {value[5:]!r}")
                elif value.startswith("@"):
                    if value not in SPECIAL_ENDPOINTS or (end == "destination" and value != "@internet"):
                        allowed = sorted(SPECIAL_ENDPOINTS) if end == "source" else ["@internet"]
                        raise checker.fail(where, f"unknown endpoint {value!r} (allowed: {allowed})")
                elif value not in zones:
                    raise checker.fail(where, f"unknown zone {value!r}")
        if all(e.startswith("@") for e in flow.source) and all(e.startswith("@") for e in flow.destination):
            raise checker.fail(key, "a flow needs a zone or role of the stack at one end")


def _check_sites(settings: StackSettings, secret_keys: set[str], secret_paths: set[str] | None,
                 checker: _Checker, require_psks: bool) -> None:
    """Every site's PSK that is set must be a secret: checked per value when the secret paths are
    known (one clear-text PSK is not hidden by another site's secret), else per key as Pulumi
    reports it. An unset PSK is accepted unless ``require_psks`` (a deployment)."""
    sites_key = config_key("sites")
    for name in settings.sites:
        if not NAME.match(name):
            raise checker.fail(f"{sites_key}.{name[:60]!r}", "not a site name (lower-case letters, digits, '-')")
    for name, site in settings.sites.items():
        path = f"{sites_key}.{name}.psk"
        if site.psk is None:
            if require_psks:
                raise checker.fail(path, f"not set: a deployment needs each site's key (socle engine set-psk "
                                         f"--stack STACK {name})")
            continue
        is_secret = path in secret_paths if secret_paths is not None else sites_key in secret_keys
        if not is_secret:
            raise checker.fail(path, f"pre-shared keys must be Pulumi secrets (pulumi config set --secret --path "
                                     f"'sites.{name}.psk')")


def secret_paths_of(config_block: Mapping[str, Any], project: str = NAMESPACE) -> set[str]:
    """Dotted paths (``ght-socle:sites.chu.psk``) of the ``{secure: ...}`` values of a stack file's
    ``config:`` block, so secrecy can be checked value by value."""
    found: set[str] = set()

    def walk(value: Any, path: str) -> None:
        if isinstance(value, Mapping):
            if set(value) == {"secure"}:
                found.add(path)
                return
            for key, item in value.items():
                walk(item, f"{path}.{key}")
        elif isinstance(value, list):
            for index, item in enumerate(value):
                walk(item, f"{path}[{index}]")

    for key, value in config_block.items():
        walk(value, str(key) if ":" in str(key) else f"{project}:{key}")
    return found


def _role_groups(name: str, role: Role) -> list[str]:
    return [name, *role.groups]


def host_groups(name: str, role: Role) -> list[str]:
    """Inventory groups of a role's hosts, in a stable order (docs/architecture.md)."""
    kind_group = "linux_servers" if role.kind == "server" else "linux_workstations"
    groups = [*_role_groups(name, role), "linux", kind_group, f"zone_{role.zone.replace('-', '_')}",
              f"tier_{role.tier}"]
    if RENFORCE_GROUPS.intersection(groups):
        groups.append("renforce")
    return list(dict.fromkeys(groups))


def _derive_hosts(settings: StackSettings, networks: Mapping[str, ipaddress.IPv4Network],
                  checker: _Checker) -> list[Host]:
    next_offset = dict.fromkeys(networks, FIRST_HOST_OFFSET)
    taken: dict[str, str] = {}  # address -> key of the role holding it
    seen_names: dict[str, str] = {}
    hosts: list[Host] = []
    zones_available = settings.availability_zones
    for role_name, role in settings.roles.items():
        key = f"{config_key('roles')}.{role_name}"
        prefix = role.hostname_prefix or role_name.replace("_", "-")
        for index in range(role.count):
            host_name = f"{prefix}-{index + 1:02d}"
            if host_name in seen_names:
                raise checker.fail(f"{key}.hostname_prefix", f"duplicate host name {host_name} "
                                   f"(also from {seen_names[host_name]})")
            seen_names[host_name] = key
            addresses: dict[str, str] = {}
            for zone in [role.zone, *role.extra_zones]:
                network = networks[zone]
                if zone == role.zone and role.address_offset is not None:
                    offset = role.address_offset + index
                else:
                    offset = next_offset[zone]
                next_offset[zone] = max(next_offset[zone], offset + 1)
                if offset >= network.num_addresses - 1:
                    raise checker.fail(f"{key}.count", f"zone {zone} ({network}) has no room for {host_name}")
                address = str(network.network_address + offset)
                if address in taken:
                    raise checker.fail(f"{key}.address_offset", f"{host_name} would take {address}, "
                                       f"already given by {taken[address]}")
                taken[address] = key
                addresses[zone] = address
            availability_zone = zones_available[index % len(zones_available)] if zones_available else None
            hosts.append(Host(name=host_name, role=role_name, index=index, zone=role.zone, addresses=addresses,
                              availability_zone=availability_zone, groups=host_groups(role_name, role)))
    return hosts


def load_stack_config(raw: Mapping[str, Any], secret_keys: Iterable[str] = (),
                      source: str | Path = "stack configuration", *,
                      secret_paths: Iterable[str] | None = None, require_psks: bool = False) -> StackConfig:
    """Validate a stack configuration given as Pulumi hands it (namespaced keys, string values).

    ``secret_paths`` (``ght-socle:sites.<name>.psk``...) are the values stored as secrets, read from
    the configuration file (:func:`secret_paths_of`); without them secrecy is checked per key.
    ``require_psks``: every site must have its pre-shared key (a deployment); the offline plan and
    checks accept an unset key, so they run on the committed configurations."""
    checker = _Checker(str(source))
    secrets = set(secret_keys)
    settings = _parse_settings(_decode(raw, checker), checker)
    networks = _check_networks(settings, checker)
    _check_roles(settings, networks, checker)
    _check_flows(settings, networks, checker)
    _check_sites(settings, secrets, set(secret_paths) if secret_paths is not None else None, checker,
                 require_psks)
    _check_allow_lists(settings, checker)
    hosts = _derive_hosts(settings, networks, checker)
    return StackConfig(settings=settings, source=str(source), zone_networks=networks, hosts=hosts,
                       secret_keys=secrets)
