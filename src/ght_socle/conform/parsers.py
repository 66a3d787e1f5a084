"""Pure parsers of gathered configuration: nftables JSON, sudoers, APT sources, rsyslog, PAM.

Kept apart from the rule tests so they can be unit-tested on facts recorded from real hosts.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ght_socle.conform.facts import config_lines

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


# -- nftables ----------------------------------------------------------------------------------
@dataclass
class AcceptRule:
    """What an ``accept`` rule of an input chain lets in (None = no restriction on that field)."""

    chain: str
    text: str
    ports: set[int] | None = None
    sources: list[Network] | None = None
    loopback_only: bool = False
    established_only: bool = False
    protocols: set[str] | None = None


@dataclass
class InputChain:
    family: str
    table: str
    name: str
    policy: str
    rules: list[AcceptRule] = field(default_factory=list)


def _named_sets(ruleset: list[dict[str, Any]]) -> dict[tuple[str, str, str], list[Any]]:
    sets: dict[tuple[str, str, str], list[Any]] = {}
    for entry in ruleset:
        if "set" in entry:
            body = entry["set"]
            sets[(body["family"], body["table"], body["name"])] = list(body.get("elem", []))
    return sets


def _flatten(value: Any, sets: dict[tuple[str, str, str], list[Any]], family: str, table: str) -> list[Any]:
    if isinstance(value, str) and value.startswith("@"):
        return [item for elem in sets.get((family, table, value[1:]), []) for item in _flatten(elem, sets, family,
                                                                                                 table)]
    if isinstance(value, dict) and "set" in value:
        return [item for elem in value["set"] for item in _flatten(elem, sets, family, table)]
    if isinstance(value, dict) and "elem" in value:
        return _flatten(value["elem"].get("val"), sets, family, table)
    return [value]


def _ports(values: Iterable[Any]) -> set[int]:
    ports: set[int] = set()
    for value in values:
        if isinstance(value, int):
            ports.add(value)
        elif isinstance(value, dict) and "range" in value:
            low, high = value["range"]
            ports.update(range(int(low), int(high) + 1))
        elif isinstance(value, str) and value.isdigit():
            ports.add(int(value))
        elif isinstance(value, str):  # a service name such as "ssh"
            ports.add({"ssh": 22, "http": 80, "https": 443, "telnet": 23, "ftp": 21}.get(value, -1))
    return ports


def _networks(values: Iterable[Any]) -> list[Network]:
    networks: list[Network] = []
    for value in values:
        try:
            if isinstance(value, dict) and "prefix" in value:
                networks.append(ipaddress.ip_network(f"{value['prefix']['addr']}/{value['prefix']['len']}",
                                                     strict=False))
            elif isinstance(value, dict) and "range" in value:
                low, high = (ipaddress.ip_address(v) for v in value["range"])
                networks.extend(ipaddress.summarize_address_range(low, high))
            elif isinstance(value, str):
                networks.append(ipaddress.ip_network(value, strict=False))
        except ValueError:
            networks.append(ipaddress.ip_network("0.0.0.0/0"))  # unknown form: assume the widest
    return networks


def input_chains(ruleset: list[dict[str, Any]]) -> list[InputChain]:
    """Base chains hooked on input (inet/ip/ip6 families), with what their accept rules let in."""
    sets = _named_sets(ruleset)
    chains: dict[tuple[str, str, str], InputChain] = {}
    for entry in ruleset:
        body = entry.get("chain")
        if body and body.get("hook") == "input" and body.get("family") in ("inet", "ip", "ip6"):
            chains[(body["family"], body["table"], body["name"])] = InputChain(
                body["family"], body["table"], body["name"], str(body.get("policy", "accept")))
    for entry in ruleset:
        body = entry.get("rule")
        if not body:
            continue
        chain = chains.get((body["family"], body["table"], body["chain"]))
        if chain is None:
            continue
        expressions = body.get("expr", [])
        if not any("accept" in e for e in expressions):
            continue
        rule = AcceptRule(chain=chain.name, text=_rule_text(expressions))
        for expression in expressions:
            match = expression.get("match")
            if not match or match.get("op") not in ("==", "in"):
                continue
            left, right = match.get("left", {}), match.get("right")
            values = _flatten(right, sets, body["family"], body["table"])
            payload = left.get("payload", {}) if isinstance(left, dict) else {}
            meta = left.get("meta", {}) if isinstance(left, dict) else {}
            if payload.get("field") == "dport":
                rule.ports = _ports(values)
                rule.protocols = {payload.get("protocol", "?")}
            elif payload.get("field") == "saddr":
                rule.sources = _networks(values)
            elif meta.get("key") in ("iifname", "iif") and all(v in ("lo", 1) for v in values):
                rule.loopback_only = True
            elif isinstance(left, dict) and "ct" in left and left["ct"].get("key") == "state":
                states = {str(s) for v in values for s in (v if isinstance(v, list) else [v])}
                rule.established_only = states <= {"established", "related"}
            elif meta.get("key") == "l4proto":
                rule.protocols = {str(v) for v in values}
            elif payload.get("protocol") in ("icmp", "icmpv6") and rule.protocols is None:
                rule.protocols = {str(payload["protocol"])}  # ICMP types: no port is opened
        chain.rules.append(rule)
    return list(chains.values())


def _rule_text(expressions: list[dict[str, Any]]) -> str:
    parts = []
    for expression in expressions:
        key = next(iter(expression))
        parts.append(f"{key} {expression[key]}" if expression[key] is not None else key)
    text = "; ".join(parts)
    return text if len(text) < 240 else text[:237] + "..."


def open_ports_from(chains: list[InputChain], ports: set[int], allowed: list[Network]) -> list[str]:
    """Problems: accept rules letting ``ports`` in from sources outside ``allowed`` networks."""
    problems = []
    for chain in chains:
        for rule in chain.rules:
            if rule.loopback_only or rule.established_only:
                continue
            if rule.ports is not None and not rule.ports & ports:
                continue
            if rule.protocols is not None and not rule.protocols & {"tcp", "udp", "?"}:
                continue
            hit = sorted(ports if rule.ports is None else rule.ports & ports)
            if rule.sources is None:
                problems.append(f"nft {chain.family} {chain.table} {chain.name}: accepts port(s) "
                                f"{_port_list(hit)} from any source ({rule.text})")
                continue
            outside = [str(n) for n in rule.sources
                       if not any(n.version == a.version and n.subnet_of(a) for a in allowed)]  # type: ignore[arg-type]
            if outside:
                problems.append(f"nft {chain.family} {chain.table} {chain.name}: accepts port(s) {_port_list(hit)} "
                                f"from {', '.join(outside)}, outside {', '.join(str(a) for a in allowed)}")
    for chain in chains:
        if chain.policy != "drop":
            problems.append(f"nft {chain.family} {chain.table} {chain.name}: policy {chain.policy} lets every port in")
    return problems


def _port_list(ports: list[int]) -> str:
    if len(ports) > 6:
        return f"{ports[0]}-{ports[-1]} ({len(ports)} ports)"
    return ",".join(str(p) for p in ports)


def port_spec(specs: Iterable[str | int]) -> set[int]:
    """``["22", "5985-5986"]`` -> {22, 5985, 5986}."""
    ports: set[int] = set()
    for spec in specs:
        text = str(spec)
        if "-" in text:
            low, high = text.split("-", 1)
            ports.update(range(int(low), int(high) + 1))
        else:
            ports.add(int(text))
    return ports


# -- sudoers -----------------------------------------------------------------------------------
@dataclass
class SudoersPolicy:
    defaults: list[tuple[str, str]]  # (file, Defaults line)
    grants: list[tuple[str, list[str], str]]  # (file, principals, line)


def parse_sudoers(lines: list[tuple[str, str]]) -> SudoersPolicy:
    defaults: list[tuple[str, str]] = []
    grants: list[tuple[str, list[str], str]] = []
    for path, line in lines:
        if line.startswith(("#include", "@include")):
            continue
        first = line.split(None, 1)[0]
        if first.startswith("Defaults"):
            defaults.append((path, line))
        elif first.endswith("_Alias"):
            continue
        else:
            principals = [p.strip() for p in re.split(r"\s+", line, maxsplit=1)[0].split(",") if p.strip()]
            grants.append((path, principals, line))
    return SudoersPolicy(defaults, grants)


def defaults_set(policy: SudoersPolicy) -> set[str]:
    """Flags set by plain ``Defaults`` lines (``Defaults use_pty, env_reset``); negations excluded."""
    flags: set[str] = set()
    for _path, line in policy.defaults:
        head, _, rest = line.partition(" ")
        if head != "Defaults":
            continue  # Defaults:user or Defaults>runas only scope one principal
        for item in rest.split(","):
            name = item.strip().split("=", 1)[0].split("+", 1)[0].split("-", 1)[0].strip()
            if name and not name.startswith("!"):
                flags.add(name)
    return flags


# Also the accounts role's pre-flight (collection filter ght.socle.ght_sudoers_problems): the role refuses
# exactly what conformance reports.
# Tags and options that may precede a command (sudoers(5) Tag_Spec, Option_Spec).
_SUDO_PREFIX = re.compile(r"^(?:(?:NO)?(?:PASSWD|EXEC|SETENV|LOG_INPUT|LOG_OUTPUT|MAIL|FOLLOW|INTERCEPT)\s*:\s*"
                     r"|(?:CWD|CHROOT|ROLE|TYPE|TIMEOUT|NOTBEFORE|NOTAFTER)=\S+\s+)+")
SUDO_ROOT_TARGETS = {"ALL", "root", "#0"}


def _sudo_split_commas(text: str) -> list[str]:
    return [part.strip() for part in re.split(r"(?<!\\),", text) if part.strip()]


def sudo_spec_problems(lines: list[str], admin_principals: list[str], editors: list[str]) -> dict[str, list[str]]:
    """Problems of sudoers user specifications, by PSSI rule.

    ``lines``: sudoers lines (comments, Defaults, aliases and includes are skipped). A principal of
    ``admin_principals`` (root, the admin group, the automation entry) may run ALL as root (ADM-006);
    every other principal gets non-root targets (R40) and explicit arguments (R43). Nobody gets a
    negation (R42) or an editor instead of sudoedit (R44).
    """
    problems: dict[str, list[str]] = {"ADM-011": [], "ADM-012": [], "ADM-013": [], "ADM-014": []}
    admins = set(admin_principals)
    editor_names = set(editors)
    for raw in lines:
        line = raw.split("#", 1)[0].strip() if not raw.lstrip().startswith(("#include", "@include")) else ""
        if not line or line.startswith("Defaults") or line.split(None, 1)[0].endswith("_Alias") or "=" not in line:
            continue
        head, _, spec = line.partition("=")
        principals = _sudo_split_commas(head.split(None, 1)[0])
        privileged = all(p in admins for p in principals)
        spec = spec.strip()
        runas = "root"
        match = re.match(r"^\(([^)]*)\)\s*", spec)
        if match:
            runas, spec = match.group(1), spec[match.end():]
        users = _sudo_split_commas(runas.split(":", 1)[0]) or (["root"] if ":" not in runas else [])
        if any(u.startswith("!") for u in users):
            problems["ADM-012"].append(f"{line!r}: negation in the target users")
        if not privileged and (any(u.lstrip("!") in SUDO_ROOT_TARGETS for u in users) or not users):
            problems["ADM-011"].append(f"{line!r}: runs commands as root for {', '.join(principals)} "
                                       "(only the admin groups may; give a non-privileged target user)")
        for command in _sudo_split_commas(spec):
            command = _SUDO_PREFIX.sub("", command).strip()
            if command.startswith("!"):
                problems["ADM-012"].append(f"{line!r}: negated command {command!r} (a blacklist is bypassed by a copy)")
                continue
            words = command.split()
            if not words:
                continue
            name = words[0].rsplit("/", 1)[-1]
            if name in editor_names:
                problems["ADM-014"].append(f"{line!r}: editor {words[0]} (use sudoedit)")
            if privileged:
                continue
            if words[0] == "ALL":
                problems["ADM-013"].append(f"{line!r}: ALL commands for {', '.join(principals)}")
            elif name != "sudoedit" and len(words) == 1:
                problems["ADM-013"].append(f"{line!r}: {words[0]} without arguments allows any argument "
                                           "(list them, or \"\" for none)")
            elif any("*" in word for word in words[1:]):
                problems["ADM-013"].append(f"{line!r}: wildcard in the arguments of {words[0]}")
    return problems


# -- APT ---------------------------------------------------------------------------------------
@dataclass
class AptSource:
    file: str
    uris: list[str]
    options: dict[str, str]
    text: str


def parse_apt_sources(files: dict[str, str]) -> list[AptSource]:
    sources: list[AptSource] = []
    for path, text in sorted(files.items()):
        if path.endswith(".sources"):
            for stanza in re.split(r"\n\s*\n", text):
                fields: dict[str, str] = {}
                for line in stanza.splitlines():
                    if line.strip().startswith("#") or ":" not in line:
                        continue
                    key, _, value = line.partition(":")
                    fields[key.strip().lower()] = value.strip()
                if fields.get("enabled", "yes").lower() == "no" or "uris" not in fields:
                    continue
                options = {k: v for k, v in fields.items() if k not in ("types", "uris", "suites", "components")}
                sources.append(AptSource(path, fields["uris"].split(), options, " ".join(stanza.split())))
        elif path.endswith(".list"):
            for line in config_lines(text):
                match = re.match(r"^(deb|deb-src)\s+(\[(?P<opts>[^\]]*)\]\s+)?(?P<uri>\S+)", line)
                if not match:
                    continue
                options = dict(o.split("=", 1) for o in (match["opts"] or "").split() if "=" in o)
                sources.append(AptSource(path, [match["uri"]], {k.lower(): v for k, v in options.items()}, line))
    return sources


def apt_config_lines(files: dict[str, str]) -> list[tuple[str, str]]:
    """Statements of apt.conf.d files with ``//`` and ``#`` comments removed."""
    out: list[tuple[str, str]] = []
    for path, text in sorted(files.items()):
        text = re.sub(r"/\*.*?\*/", "", text, flags=re.DOTALL)
        for raw in text.splitlines():
            stripped = raw.strip()
            if stripped.startswith("#clear"):
                out.append((path, stripped))  # "#clear Key;" is a directive, not a comment
                continue
            line = stripped.split("//", 1)[0].strip() if not stripped.startswith("#") else ""
            if line:
                out.append((path, line))
    return out


def apt_value(lines: list[tuple[str, str]], key: str) -> tuple[str, str] | None:
    """Last value of a scalar APT option (``APT::Periodic::Unattended-Upgrade "1";``), with its file."""
    found = None
    pattern = re.compile(rf'^{re.escape(key)}\s+"([^"]*)"\s*;', re.IGNORECASE)
    for path, line in lines:
        match = pattern.match(line)
        if match:
            found = (path, match.group(1))
    return found


def apt_list(lines: list[tuple[str, str]], key: str) -> list[str]:
    """Items of a list option (``Unattended-Upgrade::Origins-Pattern { "..."; };``), all files merged."""
    items: list[str] = []
    inside = False
    for _path, line in lines:
        if re.match(rf"^#clear\s+{re.escape(key)}\s*;", line, re.IGNORECASE):
            items = []
            continue
        if not inside and re.match(rf"^{re.escape(key)}\s*\{{", line, re.IGNORECASE):
            inside = True
            line = line.split("{", 1)[1]
        if inside:
            # A brace inside a quoted item (``${distro_codename}``) does not close the list.
            for token in re.finditer(r'"([^"]*)"|\}', line):
                if token.group(0) == "}":
                    inside = False
                    break
                items.append(token.group(1))
    return items


# -- rsyslog -----------------------------------------------------------------------------------
def rsyslog_statements(files: dict[str, str]) -> list[tuple[str, str]]:
    """Statements of the rsyslog configuration, comments removed, ``action(...)`` blocks on one line."""
    out: list[tuple[str, str]] = []
    for path, text in sorted(files.items()):
        cleaned = "\n".join(line.split("#", 1)[0] if not line.lstrip().startswith("#") else ""
                            for line in text.splitlines())
        blocks = r"\b(action|input|module|global|template)\s*\((.*?)\)"
        for match in re.finditer(blocks, cleaned, re.DOTALL | re.IGNORECASE):
            out.append((path, f"{match.group(1).lower()}({' '.join(match.group(2).split())})"))
        without_blocks = re.sub(blocks, "", cleaned, flags=re.DOTALL | re.IGNORECASE)
        for line in without_blocks.splitlines():
            if line.strip():
                out.append((path, line.strip()))
    return out


def rsyslog_params(statement: str) -> dict[str, str]:
    return {k.lower(): v for k, v in re.findall(r'([\w.]+)\s*=\s*"([^"]*)"', statement)}


# -- PAM ---------------------------------------------------------------------------------------
def pam_module_args(text: str | None, module: str) -> list[dict[str, str]]:
    """Arguments of each line of a PAM file using ``module`` (``minlen=12`` -> {"minlen": "12"})."""
    found = []
    for line in config_lines(text):
        fields = line.split()
        names = [f for f in fields if f.endswith(".so")]
        if names and names[0].rsplit("/", 1)[-1] == module:
            args = {}
            for arg in fields[fields.index(names[0]) + 1:]:
                key, _, value = arg.partition("=")
                args[key] = value
            found.append(args)
    return found
