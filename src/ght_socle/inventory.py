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

Stack outputs are untrusted input (a compromised state backend or a hand-edited outputs file must
not reach the operator's machine): every value is checked against its grammar
(:mod:`ght_socle.trust.grammar`) before a file is written; ssh_config lines are built by
:mod:`ght_socle.trust.sshconfig`, ``hosts.yml`` by a YAML emitter that marks every string
``!unsafe`` so Ansible never evaluates one as a template, and each file is replaced atomically
(:mod:`ght_socle.trust.files`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ght_socle.errors import ConfigError
from ght_socle.trust import files, sshconfig
from ght_socle.trust.grammar import (
    Address,
    DnsDomain,
    GroupName,
    HostName,
    HttpUrl,
    IPv4,
    IPv4Cidr,
    PlainToken,
    StackName,
    UserName,
    check_group_name,
    check_host_name,
    check_text,
)
from ght_socle.trust.yamlio import dump_ansible_yaml, read_text

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


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OutputHost(_Strict):
    """One host of the stack outputs (docs/architecture.md "Stack outputs")."""

    role: GroupName
    groups: list[GroupName] = Field(min_length=1)
    zone: HostName
    addresses: dict[HostName, IPv4] = Field(default_factory=dict)
    address: Address
    tier: Literal["t0", "t1", "t2"]
    data_class: Literal["hds", "nonhds"] | None = None
    criticality: Literal["standard", "important", "critical"] | None = None
    jump: HostName | None = None
    ssh_user: UserName


class GhtFacts(BaseModel):
    """The ``ght`` facts of the stack outputs; they become ``ght_*`` variables the roles template."""

    model_config = ConfigDict(extra="allow", frozen=True)

    name: PlainToken | None = None
    env: StackName | None = None
    dns_domain: DnsDomain | None = None
    admin_cidrs: list[IPv4Cidr] = Field(default_factory=list)
    ntp_servers: list[IPv4] = Field(default_factory=list)
    log_collectors: list[IPv4] = Field(default_factory=list)
    backup_servers: list[IPv4] = Field(default_factory=list)
    apt_proxy: HttpUrl = ""
    apt_mirror: HttpUrl = ""

    @model_validator(mode="before")
    @classmethod
    def _plain_data(cls, value: Any) -> Any:
        # Facts without a field of their own (backup tiers, retention) may only hold plain text,
        # numbers and booleans: a role may template any of them into a configuration file.
        if isinstance(value, Mapping):
            for key, item in value.items():
                try:
                    check_group_name(key)  # it becomes the variable ght_<key>
                except ValueError:
                    problem = f"{str(key)[:40]!r} is not a fact name (lower-case letters, digits, '_')"
                    raise ValueError(problem) from None
                _check_plain_tree(item, str(key))
        return value


def _check_plain_tree(value: Any, where: str) -> None:
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str) or not key.replace("_", "").replace("-", "").isalnum():
                raise ValueError(f"{where}: {str(key)[:40]!r} is not a plain key")
            _check_plain_tree(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_plain_tree(item, f"{where}[{index}]")
    elif isinstance(value, str):
        try:
            check_text(value)
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None
    elif value is not None and not isinstance(value, (bool, int, float)):
        raise ValueError(f"{where}: expected plain data, got {type(value).__name__}")


def _first_error(exc: ValidationError) -> tuple[str, str]:
    first = exc.errors()[0]
    key = ".".join(str(part) for part in first["loc"])
    if first["type"] == "missing":
        return key, "missing"
    if first["type"] == "extra_forbidden":
        return key, "unknown key"
    return key, str(first["msg"]).removeprefix("Value error, ")


def _validate(outputs: Mapping[str, Any], checker: _Checker) -> tuple[dict[str, OutputHost], str]:
    if not isinstance(outputs, Mapping):
        raise checker.fail("(top)", "expected a mapping of stack outputs")
    hosts = outputs.get("hosts")
    if not isinstance(hosts, Mapping) or not hosts:
        raise checker.fail("hosts", "missing or empty: the stack exports no host")
    bastion = outputs.get("bastion")
    if not isinstance(bastion, str) or bastion not in hosts:
        raise checker.fail("bastion", f"{str(bastion)[:60]!r} is not one of the stack's hosts")
    checked: dict[str, OutputHost] = {}
    for name, host in hosts.items():
        where = f"hosts.{str(name)[:60]!r}" if not isinstance(name, str) else f"hosts.{name}"
        try:
            check_host_name(name)
        except ValueError as exc:
            raise checker.fail(where, str(exc)) from None
        if not isinstance(host, Mapping):
            raise checker.fail(where, "expected a mapping")
        try:
            parsed = OutputHost.model_validate(dict(host))
        except ValidationError as exc:
            key, message = _first_error(exc)
            raise checker.fail(f"{where}.{key}", message) from None
        if parsed.jump is not None and parsed.jump not in hosts:
            raise checker.fail(f"{where}.jump", f"{parsed.jump!r} is not one of the stack's hosts")
        checked[name] = parsed
    try:
        GhtFacts.model_validate(outputs.get("ght") or {})
    except ValidationError as exc:
        key, message = _first_error(exc)
        raise checker.fail(f"ght.{key}" if key else "ght", message) from None
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
        values = host.model_dump(exclude_none=True)
        entry.update({var: values[key] for key, var in HOST_VARS.items() if key in values})
        host_entries[name] = entry
        for group in host.groups:
            groups.setdefault(group, {})[name] = {}
    all_vars = _ght_vars(outputs)
    all_vars["ght_bastion"] = bastion
    # Ansible reaches hosts with this directory's ssh_config: jump, user, host keys all live there.
    ssh_config = sshconfig.check_ssh_path(str(directory.resolve() / "ssh_config"))
    all_vars["ansible_ssh_common_args"] = f"-F {ssh_config}" if " " not in ssh_config else f'-F "{ssh_config}"'
    return {"all": {"vars": all_vars, "hosts": host_entries,
                    "children": {group: {"hosts": members} for group, members in sorted(groups.items())}}}


def build_ssh_config(outputs: Mapping[str, Any], directory: Path, *,
                     ssh_overrides: Mapping[str, Mapping[str, str]] | None = None,
                     identity_file: Path | None = None, source: str = "stack outputs") -> str:
    checker = _Checker(source)
    hosts, _bastion = _validate(outputs, checker)
    known_hosts = directory.resolve() / "known_hosts"
    blocks = [f"# Generated by socle inventory from {_comment(source)}; do not edit, re-run it.\n"]
    for name, host in hosts.items():
        options: dict[str, str] = {"HostName": host.address, "Port": "22", "User": host.ssh_user}
        if identity_file is not None:
            options["IdentityFile"] = str(identity_file.resolve())
            options["IdentitiesOnly"] = "yes"
        options["HostKeyAlias"] = name
        options["UserKnownHostsFile"] = str(known_hosts)
        options["StrictHostKeyChecking"] = "yes"
        options["CheckHostIP"] = "no"  # the key is pinned to the name; addresses may differ (lab ports)
        if host.jump:
            options["ProxyJump"] = host.jump
        for key, value in (ssh_overrides or {}).get(name, {}).items():
            if key not in OVERRIDABLE:
                raise checker.fail(f"ssh_overrides.{name}.{key}",
                                   f"cannot be overridden (allowed: {', '.join(sorted(OVERRIDABLE))})")
            options[key] = str(value)
        try:
            blocks.append(sshconfig.host_block(name, options))
        except ValueError as exc:
            raise checker.fail(f"hosts.{name}", f"cannot be written in ssh_config: {exc}") from None
    return "\n".join(blocks)


def _comment(text: str) -> str:
    """Text made safe for a one-line comment of a generated file."""
    return " ".join(text.split())[:200]


def write_inventory(outputs: dict[str, Any], directory: Path, *,
                    ssh_overrides: dict[str, dict[str, str]] | None = None, identity_file: Path | None = None,
                    known_hosts_lines: list[str] | None = None, source: str = "stack outputs",
                    within: Path | None = None) -> Path:
    """Write ``hosts.yml``, ``ssh_config`` and ``known_hosts`` into ``directory``; return the ``hosts.yml`` path.

    ``ssh_overrides`` replaces ssh_config options per host (e.g. ``{"bastion-01": {"HostName":
    "127.0.0.1", "Port": "2222"}}``); ``identity_file`` adds ``IdentityFile``; ``known_hosts_lines``
    (``"<host> <type> <key>"``) replaces ``known_hosts``. Nothing is written outside ``within``
    (default: ``directory`` itself, which must not be a symlink) nor through a symlink.
    """
    within = within if within is not None else files.explicit_dir(directory)
    # Build everything first: a bad document must not leave a half-written inventory behind.
    inventory = build_hosts_yml(outputs, directory, source=source)
    ssh_config = build_ssh_config(outputs, directory, ssh_overrides=ssh_overrides, identity_file=identity_file,
                                  source=source)
    hosts = set(inventory["all"]["hosts"])
    if known_hosts_lines is not None:
        for index, line in enumerate(known_hosts_lines):
            fields = line.split(" ")
            if (len(fields) < 3 or fields[0] not in hosts or "\n" in line.rstrip("\n") or "\r" in line
                    or not sshconfig.KEY_TYPE_RE.match(fields[1]) or not sshconfig.KEY_DATA_RE.match(fields[2])):
                raise ConfigError(f"known_hosts line {index + 1} is not '<host> <type> <key>' for a stack host: "
                                  f"{line[:60]!r}", file=source)
    root = files.ensure_dir(directory, within)
    header = f"# Generated by socle inventory from {_comment(source)}; do not edit, re-run it.\n"
    hosts_yml = files.write_text(root / "hosts.yml", header + dump_ansible_yaml(inventory), within=within)
    files.write_text(root / "ssh_config", ssh_config, within=within, mode=0o600)
    known_hosts = root / "known_hosts"
    if known_hosts_lines is not None:
        files.write_text(known_hosts, "".join(line.rstrip("\n") + "\n" for line in known_hosts_lines),
                         within=within)
    elif not known_hosts.exists():
        files.write_text(known_hosts, KNOWN_HOSTS_NOTE, within=within)
    return hosts_yml


def known_hosts_filled(directory: Path) -> bool:
    """Whether ``known_hosts`` holds at least one key (not only the explanatory comments)."""
    path = directory / "known_hosts"
    if not path.is_file():
        return False
    return any(line.strip() and not line.lstrip().startswith("#") for line in path.read_text().splitlines())


def load_outputs_file(path: Path) -> dict[str, Any]:
    """Outputs saved with ``pulumi stack output --json > FILE``."""
    if not path.exists():
        raise ConfigError("outputs file not found (pulumi stack output --json > FILE)", file=path)
    try:
        data = json.loads(read_text(path, what="outputs file"))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"not JSON (line {exc.lineno}): {exc.msg}", file=path) from None
    except RecursionError:
        raise ConfigError("not JSON this program accepts: nested too deep", file=path) from None
    if not isinstance(data, dict):
        raise ConfigError("expected a JSON object of stack outputs", file=path)
    return data
