"""Stack outputs -> Ansible inventory directory (``inventories/<env>/``).

The stack exports, per host, its role, groups, zone, addresses, tier, the bastion to jump through
and the SSH user (docs/architecture.md "Stack outputs"). This module turns that document (from
``pulumi stack output --json`` in production, from the offline plan here, or from the lab with its
own addresses) into:

* ``hosts.yml``: YAML inventory, host vars ``ght_*``, ``all.vars`` with the GHT facts and the SSH
  options pointing at the generated ``ssh_config``, one child group per inventory group;
* ``ssh_config``: one ``Host`` block per host, ``ProxyJump`` through the bastion, host keys checked
  against the directory's own ``known_hosts`` under the host's name (``HostKeyAlias``), so the
  check never depends on an address and is never turned off;
* ``known_hosts``: written when host keys are known; otherwise an existing file is kept (the
  operator filled it) or a commented file says how to fill it.

Everything is validated before a file is written, and each file is replaced atomically.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from ght_socle.errors import ConfigError

HOST_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")
GROUP_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
REQUIRED_HOST_KEYS = ("role", "groups", "zone", "address", "tier", "ssh_user")
HOST_VARS = {"zone": "ght_zone", "tier": "ght_tier", "address": "ght_address", "role": "ght_role",
             "data_class": "ght_data_class", "criticality": "ght_criticality", "addresses": "ght_addresses"}
# ssh_config keywords an override may set (the lab maps hosts to 127.0.0.1:PORT for the bastion).
OVERRIDABLE = {"HostName", "Port", "User", "IdentityFile", "ProxyJump", "ConnectTimeout", "ServerAliveInterval"}

KNOWN_HOSTS_NOTE = """\
# known_hosts of this inventory: one line per host, "<host name> <key type> <public key>".
# ssh_config checks every host key against this file (StrictHostKeyChecking yes, HostKeyAlias
# <host name>), so no connection is possible until the keys are here.
# To fill it, for each host, take the host key from a trusted channel, never from the network:
#   - the instance's console log (cloud-init prints "BEGIN SSH HOST KEY KEYS"):
#       openstack console log show <host> | sed -n '/BEGIN SSH HOST KEY KEYS/,/END SSH HOST KEY KEYS/p'
#   - then add "<host> ssh-ed25519 AAAA..." here (the host name, not its address).
# Re-running socle inventory keeps this file once it holds keys.
"""


class _Checker:
    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, message: str) -> ConfigError:
        return ConfigError(message, file=self.source, where=f"key {where}")


def _validate(outputs: Mapping[str, Any], checker: _Checker) -> tuple[dict[str, dict[str, Any]], str]:
    hosts = outputs.get("hosts")
    if not isinstance(hosts, Mapping) or not hosts:
        raise checker.fail("hosts", "missing or empty: the stack exports no host")
    bastion = outputs.get("bastion")
    if not isinstance(bastion, str) or bastion not in hosts:
        raise checker.fail("bastion", f"{bastion!r} is not one of the stack's hosts")
    checked: dict[str, dict[str, Any]] = {}
    for name, host in hosts.items():
        where = f"hosts.{name}"
        if not isinstance(name, str) or not HOST_NAME.match(name):
            raise checker.fail(where, f"{name!r} is not a host name")
        if not isinstance(host, Mapping):
            raise checker.fail(where, "expected a mapping")
        for key in REQUIRED_HOST_KEYS:
            if host.get(key) in (None, "", []):
                raise checker.fail(f"{where}.{key}", "missing")
        groups = host["groups"]
        if not isinstance(groups, list) or not all(isinstance(g, str) and GROUP_NAME.match(g) for g in groups):
            raise checker.fail(f"{where}.groups", f"expected a list of group names, got {groups!r}")
        jump = host.get("jump")
        if jump is not None and jump not in hosts:
            raise checker.fail(f"{where}.jump", f"{jump!r} is not one of the stack's hosts")
        checked[name] = dict(host)
    return checked, bastion


def _ght_vars(outputs: Mapping[str, Any]) -> dict[str, Any]:
    ght = outputs.get("ght")
    facts = dict(ght) if isinstance(ght, Mapping) else {}
    return {f"ght_{key}": value for key, value in facts.items()}


def build_hosts_yml(outputs: Mapping[str, Any], directory: Path, *, source: str = "stack outputs") -> dict[str, Any]:
    """The YAML inventory as data (docs/architecture.md "Inventory directory")."""
    hosts, bastion = _validate(outputs, _Checker(source))
    groups: dict[str, dict[str, dict[str, Any]]] = {}
    host_entries: dict[str, dict[str, Any]] = {}
    for name, host in hosts.items():
        entry: dict[str, Any] = {"ansible_host": name}
        entry.update({var: host[key] for key, var in HOST_VARS.items() if key in host})
        host_entries[name] = entry
        for group in host["groups"]:
            groups.setdefault(group, {})[name] = {}
    all_vars = _ght_vars(outputs)
    all_vars["ght_bastion"] = bastion
    # Ansible reaches hosts with this directory's ssh_config: jump, user, host keys all live there.
    all_vars["ansible_ssh_common_args"] = f"-F {directory.resolve() / 'ssh_config'}"
    return {"all": {"vars": all_vars, "hosts": host_entries,
                    "children": {group: {"hosts": members} for group, members in sorted(groups.items())}}}


def build_ssh_config(outputs: Mapping[str, Any], directory: Path, *,
                     ssh_overrides: Mapping[str, Mapping[str, str]] | None = None,
                     identity_file: Path | None = None, source: str = "stack outputs") -> str:
    checker = _Checker(source)
    hosts, _bastion = _validate(outputs, checker)
    known_hosts = directory.resolve() / "known_hosts"
    blocks = [f"# Generated by socle inventory from {source}; do not edit, re-run it.\n"]
    for name, host in hosts.items():
        options: dict[str, str] = {"HostName": str(host["address"]), "Port": "22", "User": str(host["ssh_user"])}
        if identity_file is not None:
            options["IdentityFile"] = str(identity_file.resolve())
            options["IdentitiesOnly"] = "yes"
        options["HostKeyAlias"] = name
        options["UserKnownHostsFile"] = str(known_hosts)
        options["StrictHostKeyChecking"] = "yes"
        options["CheckHostIP"] = "no"  # the key is pinned to the name; addresses may differ (lab ports)
        if host.get("jump"):
            options["ProxyJump"] = str(host["jump"])
        for key, value in (ssh_overrides or {}).get(name, {}).items():
            if key not in OVERRIDABLE:
                raise checker.fail(f"ssh_overrides.{name}.{key}",
                                   f"cannot be overridden (allowed: {', '.join(sorted(OVERRIDABLE))})")
            options[key] = str(value)
        lines = [f"Host {name}"] + [f"    {key} {value}" for key, value in options.items()]
        blocks.append("\n".join(lines) + "\n")
    return "\n".join(blocks)


def _write_atomic(path: Path, text: str, mode: int = 0o644) -> None:
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.chmod(temp, mode)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def write_inventory(outputs: dict[str, Any], directory: Path, *,
                    ssh_overrides: dict[str, dict[str, str]] | None = None, identity_file: Path | None = None,
                    known_hosts_lines: list[str] | None = None, source: str = "stack outputs") -> Path:
    """Write ``hosts.yml``, ``ssh_config`` and ``known_hosts`` into ``directory``; return the ``hosts.yml`` path.

    ``ssh_overrides`` replaces ssh_config options per host (e.g. ``{"bastion-01": {"HostName":
    "127.0.0.1", "Port": "2222"}}``); ``identity_file`` adds ``IdentityFile``; ``known_hosts_lines``
    (``"<host> <type> <key>"``) replaces ``known_hosts``.
    """
    # Build everything first: a bad document must not leave a half-written inventory behind.
    inventory = build_hosts_yml(outputs, directory, source=source)
    ssh_config = build_ssh_config(outputs, directory, ssh_overrides=ssh_overrides, identity_file=identity_file,
                                  source=source)
    hosts = set(inventory["all"]["hosts"])
    if known_hosts_lines is not None:
        for index, line in enumerate(known_hosts_lines):
            fields = line.split()
            if len(fields) < 3 or fields[0] not in hosts:
                raise ConfigError(f"known_hosts line {index + 1} is not '<host> <type> <key>' for a stack host: "
                                  f"{line[:60]!r}", file=source)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        header = f"# Generated by socle inventory from {source}; do not edit, re-run it.\n"
        hosts_yml = directory / "hosts.yml"
        _write_atomic(hosts_yml, header + yaml.safe_dump(inventory, sort_keys=False, default_flow_style=False))
        _write_atomic(directory / "ssh_config", ssh_config, 0o600)
        known_hosts = directory / "known_hosts"
        if known_hosts_lines is not None:
            _write_atomic(known_hosts, "".join(line.rstrip("\n") + "\n" for line in known_hosts_lines))
        elif not known_hosts.exists():
            _write_atomic(known_hosts, KNOWN_HOSTS_NOTE)
    except OSError as exc:
        raise ConfigError(f"cannot write the inventory: {exc.strerror or exc}", file=directory) from None
    return hosts_yml


def known_hosts_filled(directory: Path) -> bool:
    """Whether ``known_hosts`` holds at least one key (not only the explanatory comments)."""
    path = directory / "known_hosts"
    if not path.is_file():
        return False
    return any(line.strip() and not line.lstrip().startswith("#") for line in path.read_text().splitlines())


def load_outputs_file(path: Path) -> dict[str, Any]:
    """Outputs saved with ``pulumi stack output --json > FILE``."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError("outputs file not found (pulumi stack output --json > FILE)", file=path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read: {exc}", file=path) from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"not JSON (line {exc.lineno}): {exc.msg}", file=path) from None
    if not isinstance(data, dict):
        raise ConfigError("expected a JSON object of stack outputs", file=path)
    return data
