"""SSH, administration paths and host firewall (ADM-*, NET-*, WKS-001)."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from ght_socle.conform.facts import FactMissing, HostFacts, fail_on, mode_exceeds
from ght_socle.conform.parsers import (
    Network,
    defaults_set,
    input_chains,
    open_ports_from,
    parse_sudoers,
    port_spec,
    sudo_spec_problems,
)
from ght_socle.conform.plugin import RuleContext


def admin_networks(rule: RuleContext) -> list[Network]:
    """Admin networks: the PSSI's (ADM-001), the deployment's own (inventory ``ght_admin_cidrs``) and,
    on the other hosts, the bastions' addresses."""
    cidrs = [*rule.param("admin_cidrs", "ADM-001"), *rule.inventory_list("ght_admin_cidrs"), *rule.bastion_addresses]
    return [ipaddress.ip_network(c, strict=False) for c in dict.fromkeys(cidrs)]


def firewall_problems(facts: HostFacts, rule: RuleContext, ports: set[int]) -> list[str]:
    nft = facts.section("nft")
    if not nft.get("installed"):
        return ["nft is not installed: no host firewall"]
    chains = input_chains(nft["ruleset"])
    if not chains:
        return ["nft list ruleset: no base chain hooked on input (ruleset empty or flushed)"]
    return open_ports_from(chains, ports, admin_networks(rule))


def sshd_port(facts: HostFacts) -> set[int]:
    return {int(p) for p in facts.sshd_options().get("port", ["22"])}


@pytest.mark.pssi("NET-004")
def test_net_004_admin_ports_from_admin_networks_only(facts: HostFacts, pssi_rule: RuleContext) -> None:
    fail_on(firewall_problems(facts, pssi_rule, port_spec(pssi_rule.param("admin_ports")) | sshd_port(facts)))


def default_drop_problems(ruleset: list[dict[str, Any]], state: str) -> list[str]:
    chains = input_chains(ruleset)
    problems = [f"nft {c.family} {c.table} {c.name}: input policy is {c.policy}, not drop ({state})"
                for c in chains if c.policy != "drop"]
    if not chains:
        problems.append(f"nft list ruleset: no base chain hooked on input (ruleset empty or flushed) ({state})")
    return problems


@pytest.mark.pssi("NET-011")
def test_net_011_default_drop_firewall_loaded_at_boot(facts: HostFacts, pssi_rule: RuleContext) -> None:
    # Both states: the ruleset the kernel holds (live) and the one nftables.service loads at boot from
    # /etc/nftables.conf, loaded by the gather into a scratch network namespace (persisted).
    nft = facts.section("nft")
    if not nft.get("installed"):
        fail_on(["nft is not installed: no host firewall"])
    problems = default_drop_problems(nft["ruleset"], "live")
    if not facts.unit_enabled("nftables.service"):
        problems.append(f"{facts.unit_summary('nftables.service')}: the ruleset is not loaded at boot (persisted)")
    at_boot = facts.section("nft_file")
    if not at_boot["exists"]:
        problems.append("/etc/nftables.conf is missing: no ruleset at boot (persisted)")
    elif not at_boot["loads"]:
        problems.append(f"/etc/nftables.conf does not load: {at_boot['error']} (persisted)")
    else:
        problems += [problem.replace("nft list ruleset", "/etc/nftables.conf")
                     for problem in default_drop_problems(at_boot["ruleset"], "persisted")]
    fail_on(problems)


@pytest.mark.pssi("WKS-001")
def test_wks_001_workstation_firewall(facts: HostFacts, pssi_rule: RuleContext) -> None:
    ports = port_spec(pssi_rule.param("admin_ports", "NET-004")) | sshd_port(facts)
    problems = firewall_problems(facts, pssi_rule, ports)
    if not facts.unit_enabled("nftables.service"):
        problems.append(f"{facts.unit_summary('nftables.service')}: the ruleset is not loaded at boot")
    fail_on(problems)


@pytest.mark.pssi("ADM-001")
def test_adm_001_ssh_only_from_admin_networks(facts: HostFacts, pssi_rule: RuleContext) -> None:
    fail_on(firewall_problems(facts, pssi_rule, sshd_port(facts)))


# `sshd -T` prints what the files on disk give the next start of sshd (persisted); the running daemon
# is asked over its socket (live): what it offers in its key exchange and the authentication methods it
# accepts. A file changed but not reloaded, or reloaded and changed back, shows as one of the two.
def sshd_expect(facts: HostFacts, key: str, expected: str) -> str | None:
    value = facts.sshd(key)
    return None if value.lower() == expected.lower() else \
        f"sshd -T: {key} is {value!r}, expected {expected!r} (persisted)"


def sshd_at_most(facts: HostFacts, key: str, maximum: int, minimum: int = 0) -> str | None:
    raw = facts.sshd(key)
    value = int(raw.rstrip("s")) if raw.rstrip("s").isdigit() else -1
    if minimum <= value <= maximum:
        return None
    return f"sshd -T: {key} is {raw!r}, expected between {minimum} and {maximum} (persisted)"


def running_sshd(facts: HostFacts) -> dict[str, Any] | None:
    """What the running sshd offers, or None when no sshd process listens: with socket activation
    (ssh.socket) every connection starts sshd from the files, so the files are the live state too."""
    live: dict[str, Any] = facts.section("sshd_live")
    return live if live.get("listening") else None


def running_sshd_password_problems(facts: HostFacts) -> list[str]:
    live = running_sshd(facts)
    if live is None:
        return []
    if live.get("auth_methods") is None:
        raise FactMissing("the running sshd did not list its authentication methods")
    weak = [method for method in live["auth_methods"] if method in ("password", "keyboard-interactive")]
    return [f"the running sshd on {live['address']}:{live['port']} accepts {method} authentication (live)"
            for method in weak]


@pytest.mark.pssi("ADM-002")
def test_adm_002_bastion_hardened(facts: HostFacts, pssi_rule: RuleContext) -> None:
    problems = [sshd_expect(facts, key, "no") for key in
                ("x11forwarding", "allowagentforwarding", "permittunnel", "gatewayports", "allowstreamlocalforwarding")]
    if facts.sysctl("net.ipv4.ip_forward") != "0":
        problems.append(f"sysctl net.ipv4.ip_forward = {facts.sysctl('net.ipv4.ip_forward')}: the bastion routes")
    admins = facts.group_members(pssi_rule.param("sudo_group", "ADM-006"))
    allowed = set(pssi_rule.param("managed_login_users", "IAM-001")) | admins
    service_shells = set(pssi_rule.param("service_shells", "IAM-008"))
    for user in facts.users:
        if user["shell"] not in service_shells and user["name"] not in allowed:
            problems.append(f"/etc/passwd: {user['name']} has shell {user['shell']} but is not an administrator")
    fail_on(problems)


@pytest.mark.pssi("ADM-003")
def test_adm_003_sshd_policy(facts: HostFacts, pssi_rule: RuleContext) -> None:
    problems = [
        sshd_expect(facts, "permitrootlogin", "no"),
        sshd_expect(facts, "passwordauthentication", "no"),
        sshd_expect(facts, "kbdinteractiveauthentication", "no"),
        sshd_expect(facts, "permitemptypasswords", "no"),
        sshd_expect(facts, "x11forwarding", "no"),
        sshd_expect(facts, "allowagentforwarding", "no"),
        sshd_expect(facts, "loglevel", "VERBOSE"),
        sshd_at_most(facts, "maxauthtries", pssi_rule.param("max_auth_tries"), 1),
        sshd_at_most(facts, "logingracetime", pssi_rule.param("login_grace_time"), 1),
        sshd_at_most(facts, "clientaliveinterval", pssi_rule.param("client_alive_interval"), 1),
        sshd_at_most(facts, "clientalivecountmax", pssi_rule.param("client_alive_count_max"), 1),
    ]
    problems += running_sshd_password_problems(facts)
    groups = " ".join(facts.sshd_options().get("allowgroups", [])).split()
    expected = pssi_rule.param("allow_groups")
    if sorted(groups) != sorted(expected):
        problems.append(f"sshd -T: allowgroups is {' '.join(groups) or '(unset: every account)'}, "
                        f"expected {' '.join(expected)} (persisted)")
    fail_on(problems)


@pytest.mark.pssi("ADM-004")
def test_adm_004_sshd_modern_crypto(facts: HostFacts, pssi_rule: RuleContext) -> None:
    problems = []
    live = running_sshd(facts)
    for key, param in (("kexalgorithms", "kex_algorithms"), ("ciphers", "ciphers"), ("macs", "macs")):
        allowed = pssi_rule.param(param)
        extra = [a for a in facts.sshd(key).split(",") if a not in allowed]
        if extra:
            problems.append(f"sshd -T: {key} offers {', '.join(extra)} (not in the allowed list) (persisted)")
        if live is not None:
            if not live["offered"].get(key):
                raise FactMissing(f"the running sshd's key exchange proposal has no {key}")
            extra_live = [a for a in live["offered"][key] if a not in allowed]
            if extra_live:
                problems.append(f"the running sshd on {live['address']}:{live['port']}: {key} offers "
                                f"{', '.join(extra_live)} (not in the allowed list) (live)")
    host_keys = facts.sshd_options().get("hostkey", [])
    problems += [f"sshd -T: DSA host key {key}" for key in host_keys if "dsa" in key.rsplit("/", 1)[-1]
                 and "ecdsa" not in key]
    if facts.stat("/etc/ssh/ssh_host_dsa_key") is not None:
        problems.append("/etc/ssh/ssh_host_dsa_key exists")
    fail_on(problems)


@pytest.mark.pssi("ADM-005")
def test_adm_005_ssh_files_root_only(facts: HostFacts, pssi_rule: RuleContext) -> None:
    problems = []
    checked = {"/etc/ssh/sshd_config": facts.stat("/etc/ssh/sshd_config")}
    checked.update({p: i for p, i in facts.stats_matching("/etc/ssh/ssh_host_").items() if p.endswith("_key")})
    for path, info in checked.items():
        if info is None:
            problems.append(f"{path} is missing")
        elif info["owner"] != "root" or mode_exceeds(info["mode"], "0600"):
            problems.append(f"{path}: {info['owner']}:{info['group']} mode {info['mode']}, expected root-only (0600)")
    private_keys = [p for p, i in facts.section("files").items()
                    if i.get("exists") and "/.ssh/id_" in p and not p.endswith(".pub")]
    problems += [f"user private key on a server: {p}" for p in private_keys]
    fail_on(problems)


@pytest.mark.pssi("ADM-006")
def test_adm_006_sudo_restricted(facts: HostFacts, pssi_rule: RuleContext) -> None:
    policy = parse_sudoers(facts.all_sudoers_lines())
    sudo_group = "%" + pssi_rule.param("sudo_group")
    nopasswd_allowed = set(pssi_rule.param("nopasswd_allowed"))
    problems = []
    for path, principals, line in policy.grants:
        for principal in principals:
            if "NOPASSWD" in line and principal not in nopasswd_allowed:
                problems.append(f"{path}: {line!r}: NOPASSWD for {principal}, allowed only for "
                                f"{', '.join(sorted(nopasswd_allowed))}")
            elif principal not in ("root", sudo_group) and principal not in nopasswd_allowed:
                problems.append(f"{path}: {line!r}: {principal} gets sudo rights (only {sudo_group} may)")
    fail_on(problems)


def admin_principals(rule: RuleContext) -> list[str]:
    """Principals ADM-006 lets run ALL as root: root, the admin group, the automation entry."""
    return ["root", "%" + rule.param("sudo_group", "ADM-006"), *rule.param("nopasswd_allowed", "ADM-006")]


def umask_covers(value: str, required: str) -> bool:
    """True when sudo's ``umask=value`` masks at least the bits of ``required`` (0077 covers 0027)."""
    try:
        return int(value, 8) & int(required, 8) == int(required, 8)
    except ValueError:
        return False


@pytest.mark.pssi("ADM-010")
def test_adm_010_sudo_defaults_and_files(facts: HostFacts, pssi_rule: RuleContext) -> None:
    policy = parse_sudoers(facts.all_sudoers_lines())
    problems = []
    flags = defaults_set(policy)
    missing = [d for d in pssi_rule.param("required_defaults") if d not in flags]
    if missing:
        problems.append(f"sudoers: Defaults {', '.join(missing)} not set")
    required_umask = pssi_rule.param("umask")
    umasks = [item.split("=", 1)[1].strip() for _path, line in policy.defaults if line.split(None, 1)[0] == "Defaults"
              for item in line.split(None, 1)[-1].split(",") if item.strip().startswith("umask=")]
    if not umasks or not umask_covers(umasks[-1], required_umask):
        problems.append(f"sudoers: Defaults umask={umasks[-1] if umasks else '(unset, sudo uses 0022)'}, "
                        f"expected {required_umask} or stricter")
    # A negation lifts a required flag: everywhere for `Defaults !flag`, for one principal otherwise.
    required = set(pssi_rule.param("required_defaults"))
    exempt = set(pssi_rule.param("exempt_flags"))
    admins = set(admin_principals(pssi_rule))
    for path, line in policy.defaults:
        head, _, rest = line.partition(" ")
        lifted = [item.strip()[1:] for item in rest.split(",") if item.strip().startswith("!")
                  and item.strip()[1:] in required]
        if not lifted:
            continue
        scope = head.split(":", 1)[1] if head.startswith("Defaults:") else ""
        principals = [p.strip() for p in scope.split(",") if p.strip()]
        if head != "Defaults:" + scope or not principals:
            problems.append(f"{path}: {line!r} lifts {', '.join(lifted)} beyond a user list")
        elif not (set(principals) <= admins and set(lifted) <= exempt):
            problems.append(f"{path}: {line!r} lifts {', '.join(lifted)} for {', '.join(principals)} "
                            f"(only {', '.join(sorted(exempt))} for {', '.join(sorted(admins - {'root'}))})")
    for path, maximum in (("/etc/sudoers", "0440"), ("/etc/sudoers.d", "0750")):
        info = facts.stat(path)
        if info is None:
            if path == "/etc/sudoers":
                problems.append("/etc/sudoers is missing")
            continue
        if info["owner"] != "root" or mode_exceeds(info["mode"], maximum):
            problems.append(f"{path}: {info['owner']}:{info['group']} mode {info['mode']}, expected root, "
                            f"at most {maximum}")
    for path in sorted(facts.texts_under("/etc/sudoers.d/")):
        info = facts.stat(path)
        if info is None:
            raise FactMissing(f"{path} was read but not stat'ed (gather STAT_PATHS lacks /etc/sudoers.d/*)")
        if info["owner"] != "root" or mode_exceeds(info["mode"], "0440"):
            problems.append(f"{path}: {info['owner']}:{info['group']} mode {info['mode']}, expected root, at most 0440")
    fail_on(problems)


def sudo_problems(facts: HostFacts, rule: RuleContext, rule_id: str) -> list[str]:
    editors = rule.param("editors", "ADM-014")
    lines = [f"{line}" for _path, line in facts.all_sudoers_lines()]
    found = sudo_spec_problems(lines, admin_principals(rule), editors)[rule_id]
    return [f"sudoers: {problem}" for problem in found]


@pytest.mark.pssi("ADM-011")
def test_adm_011_sudo_non_privileged_targets(facts: HostFacts, pssi_rule: RuleContext) -> None:
    fail_on(sudo_problems(facts, pssi_rule, "ADM-011"))


@pytest.mark.pssi("ADM-012")
def test_adm_012_sudo_no_negation(facts: HostFacts, pssi_rule: RuleContext) -> None:
    fail_on(sudo_problems(facts, pssi_rule, "ADM-012"))


@pytest.mark.pssi("ADM-013")
def test_adm_013_sudo_explicit_arguments(facts: HostFacts, pssi_rule: RuleContext) -> None:
    fail_on(sudo_problems(facts, pssi_rule, "ADM-013"))


@pytest.mark.pssi("ADM-014")
def test_adm_014_sudoedit_not_editors(facts: HostFacts, pssi_rule: RuleContext) -> None:
    fail_on(sudo_problems(facts, pssi_rule, "ADM-014"))


@pytest.mark.pssi("ADM-007")
def test_adm_007_no_legacy_admin_protocols(facts: HostFacts, pssi_rule: RuleContext) -> None:
    installed = [p for p in pssi_rule.param("forbidden_packages") if facts.package(p)]
    problems = [f"package {p} {facts.package(p)} installed" for p in installed]
    legacy_ports = {"tcp": {21, 23, 512, 513, 514}, "udp": {69, 517, 518}}
    for sock in facts.listening:
        if sock["port"].isdigit() and int(sock["port"]) in legacy_ports.get(sock["proto"], set()):
            problems.append(f"ss: {sock['proto']}/{sock['port']} listening on {sock['address']} {sock['process']}")
    fail_on(problems)
