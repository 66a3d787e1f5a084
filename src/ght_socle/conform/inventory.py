"""Read an inventory directory (``hosts.yml`` + ``ssh_config``) the way conformance needs it.

Conformance never runs ``ansible-inventory`` (about 2 s per call, per xdist worker): the YAML
inventory written by ``socle inventory`` / ``socle lab inventory`` is plain YAML, so hosts and
their groups (nested ``children`` included) are read directly.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ght_socle.catalog import load_yaml
from ght_socle.errors import ConfigError
from ght_socle.trust.grammar import check_inventory_group, check_inventory_host


@dataclass(frozen=True)
class InventoryHost:
    name: str
    groups: frozenset[str]
    vars: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)


@dataclass
class Inventory:
    directory: Path
    hosts_file: Path
    hosts: dict[str, InventoryHost]
    global_vars: dict[str, Any] = field(default_factory=dict)

    def host_vars(self, name: str) -> dict[str, Any]:
        """``all.vars`` overlaid with the host's own variables (enough for the ``ght_*`` facts)."""
        host = self.hosts.get(name)
        return {**self.global_vars, **(host.vars if host else {})}

    def bastion_addresses(self) -> list[str]:
        """Every address of the bastions (each zone they sit in): where administration comes from."""
        addresses: list[str] = []
        for host in self.hosts.values():
            if "bastion" in host.groups:
                by_zone = host.vars.get("ght_addresses")
                found = by_zone.values() if isinstance(by_zone, dict) else [host.vars.get("ght_address")]
                addresses.extend(str(a) for a in found if a and str(a) not in addresses)
        return addresses

    @property
    def ssh_config(self) -> Path:
        return self.directory / "ssh_config"

    @property
    def env(self) -> str:
        return self.directory.name

    def select(self, limit: str | None) -> list[str]:
        """Hosts matching ``limit``: comma-separated host names, group names or shell patterns."""
        if not limit:
            return sorted(self.hosts)
        chosen: set[str] = set()
        for token in (t.strip() for t in limit.split(",")):
            if not token:
                continue
            matched = {name for name, host in self.hosts.items()
                       if fnmatch.fnmatchcase(name, token) or any(fnmatch.fnmatchcase(g, token) for g in host.groups)}
            if not matched:
                raise ConfigError(f"--limit {token!r} matches no host or group of the inventory",
                                  file=self.hosts_file)
            chosen |= matched
        return sorted(chosen)


def _walk_group(name: str, body: Any, path: list[str], hosts: dict[str, dict[str, Any]],
                memberships: dict[str, set[str]], file: Path) -> None:
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise ConfigError("a group must be a mapping", file=file, where=f"group {'.'.join(path)}")
    lineage = [p for p in path if p not in ("all", "children")]
    try:
        check_inventory_group(name)
        declared = body.get("hosts")
        for host_name in declared if isinstance(declared, dict) else {}:
            check_inventory_host(host_name)
    except ValueError as exc:
        raise ConfigError(str(exc), file=file, where=f"group {'.'.join(path)}") from None
    for key in ("hosts", "children", "vars"):
        if not isinstance(body.get(key) or {}, dict):
            raise ConfigError("expected a mapping", file=file, where=f"group {'.'.join(path)}, key {key}")
    for host_name, host_vars in (body.get("hosts") or {}).items():
        entry = hosts.setdefault(str(host_name), {})
        if isinstance(host_vars, dict):
            entry.update(host_vars)
        memberships.setdefault(str(host_name), set()).update({"all", *lineage, name})
    for child, child_body in (body.get("children") or {}).items():
        _walk_group(str(child), child_body, [*path, str(child)], hosts, memberships, file)


def load_inventory(location: str | Path) -> Inventory:
    """``location`` is an inventory directory or its ``hosts.yml``."""
    path = Path(location)
    hosts_file = path / "hosts.yml" if path.is_dir() else path
    if not hosts_file.exists():
        raise ConfigError("inventory not found (expected a directory holding hosts.yml)", file=hosts_file)
    raw = load_yaml(hosts_file)
    if not isinstance(raw, dict) or not isinstance(raw.get("all"), dict):
        raise ConfigError("expected a YAML inventory with a top-level 'all' group", file=hosts_file)
    hosts: dict[str, dict[str, Any]] = {}
    memberships: dict[str, set[str]] = {}
    _walk_group("all", raw["all"], ["all"], hosts, memberships, hosts_file)
    # Groups defined at top level beside 'all' are children of 'all' too (Ansible's rule).
    for name, body in raw.items():
        if name != "all":
            _walk_group(str(name), body, [str(name)], hosts, memberships, hosts_file)
    if not hosts:
        raise ConfigError("the inventory has no host", file=hosts_file)
    return Inventory(
        directory=hosts_file.parent.resolve(),
        hosts_file=hosts_file.resolve(),
        hosts={name: InventoryHost(name, frozenset(memberships[name]), hosts[name]) for name in sorted(hosts)},
        global_vars=dict(raw["all"].get("vars") or {}),
    )
