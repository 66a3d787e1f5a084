"""Operating system hardening (OSH-*): kernel, mounts, services, setuid, sessions, file modes, AIDE."""

from __future__ import annotations

import ipaddress
import re

import pytest

from ght_socle.conform.facts import FactMissing, HostFacts, config_lines, fail_on, mode_exceeds
from ght_socle.conform.plugin import RuleContext


@pytest.mark.pssi("OSH-001")
def test_osh_001_boot_root_only(facts: HostFacts, pssi_rule: RuleContext) -> None:
    problems = []
    for path, maximum in (("/boot", "0700"), ("/boot/grub", "0700"), ("/boot/grub/grub.cfg", "0600")):
        info = facts.stat(path)
        if info is None:
            continue  # direct kernel boot or no GRUB: nothing to protect at that path
        if info["owner"] != "root" or mode_exceeds(info["mode"], maximum):
            problems.append(f"{path}: {info['owner']}:{info['group']} mode {info['mode']}, expected root-only "
                            f"({maximum})")
    fail_on(problems)


def sysctl_problems(facts: HostFacts, expected_values: dict[str, object], at_least: set[str]) -> list[str]:
    """Each key checked in both states: the value the kernel has now (live) and the one the sysctl.d
    files give it at the next boot (persisted, merged in systemd-sysctl's order): a distribution file
    sorting after the hardened one would undo it at every boot while the live value still passes."""
    ipv6_off_at_boot = "ipv6.disable=1" in facts.system["cmdline"]
    at_boot = facts.sysctl_at_boot()
    problems = []

    def meets(key: str, value: str, expected: object) -> bool:
        if key in at_least and value.lstrip("-").isdigit():
            return int(value) >= int(str(expected))  # stricter than the PSSI asks (renforcé level)
        return value.split() == str(expected).split()

    for key, expected in sorted(expected_values.items()):
        if key.startswith("net.ipv6.") and ipv6_off_at_boot:
            continue  # IPv6 removed at boot: stronger than disable_ipv6
        wanted = f"at least {expected}" if key in at_least else str(expected)
        value = facts.sysctl(key)
        if value is None:
            problems.append(f"sysctl {key} is absent, expected {expected}")
        elif not meets(key, value, expected):
            problems.append(f"sysctl {key} = {value} (live), expected {wanted}")
        persisted = at_boot.get(key)
        if persisted is None:
            problems.append(f"sysctl {key} is set by no sysctl.d file (persisted): the kernel default applies "
                            f"at boot, expected {wanted}")
        elif not meets(key, persisted.value, expected):
            problems.append(f"sysctl {key} = {persisted.value} persisted by {persisted.source} (last in boot "
                            f"order), expected {wanted}")
    return problems


def multi_homed(pssi_rule: RuleContext) -> bool:
    addresses = pssi_rule.host_vars.get("ght_addresses")
    return isinstance(addresses, dict) and len(addresses) > 1


@pytest.mark.pssi("OSH-002")
def test_osh_002_kernel_parameters(facts: HostFacts, pssi_rule: RuleContext) -> None:
    expected_values = dict(pssi_rule.param("sysctl"))
    fail_on(sysctl_problems(facts, expected_values, set(pssi_rule.param("sysctl_at_least"))))


@pytest.mark.pssi("OSH-011")
def test_osh_011_kernel_options(facts: HostFacts, pssi_rule: RuleContext) -> None:
    expected_values = dict(pssi_rule.param("sysctl"))
    expected_values["kernel.pid_max"] = pssi_rule.param("pid_max")
    expected_values["net.ipv4.ip_local_port_range"] = " ".join(str(p) for p in pssi_rule.param("local_port_range"))
    fail_on(sysctl_problems(facts, expected_values, set(pssi_rule.param("sysctl_at_least"))))


def interfaces_of(facts: HostFacts, family: str) -> list[str]:
    """Interfaces the kernel has now, as ``sysctl -a`` lists them (``net.ipv4.conf.<name>.<key>``)."""
    prefix = f"net.{family}.conf."
    names = {key[len(prefix):].rsplit(".", 1)[0] for key in facts.section("sysctl") if key.startswith(prefix)}
    # A name with a dot (a VLAN) makes the key ambiguous; all/default are checked as keys of their own.
    return sorted(name for name in names if "." not in name and name not in ("all", "default"))


@pytest.mark.pssi("OSH-012")
def test_osh_012_interface_network_parameters(facts: HostFacts, pssi_rule: RuleContext) -> None:
    # all/default alone do not set an interface that already exists (for a non-forwarding interface,
    # accept_redirects is all OR interface): every interface is checked, live and at boot.
    ipv4 = dict(pssi_rule.param("ipv4_conf"))
    if multi_homed(pssi_rule):
        ipv4.update(pssi_rule.param("multi_homed_ipv4_conf"))
    expected_values: dict[str, object] = {}
    for family, keys in (("ipv4", ipv4), ("ipv6", dict(pssi_rule.param("ipv6_conf")))):
        for interface in ["all", "default", *interfaces_of(facts, family)]:
            expected_values.update({f"net.{family}.conf.{interface}.{key}": value for key, value in keys.items()})
    if not interfaces_of(facts, "ipv4"):
        raise FactMissing("sysctl -a lists no IPv4 interface (net.ipv4.conf.<interface>.*)")
    fail_on(sysctl_problems(facts, expected_values, set()))


def mount_of(facts: HostFacts, target: str, table: str = "live") -> dict[str, str] | None:
    """The mount of ``target`` now (``live``, findmnt) or at boot (``fstab``, findmnt --fstab)."""
    for entry in facts.section("mounts")[table]:
        if entry.get("target") == target:
            return entry  # type: ignore[no-any-return]
    return None


@pytest.mark.pssi("OSH-003")
def test_osh_003_mount_options(facts: HostFacts, pssi_rule: RuleContext) -> None:
    # The partition layout is made when the image is built (manual part of the rule); the host check
    # verifies the options of every listed path that is a filesystem, and that /tmp always is one
    # (a tmpfs is always possible). Both states: as mounted now (live) and as /etc/fstab mounts it at
    # the next boot (persisted); a `mount -o remount` alone is lost at the reboot.
    problems = []
    for target, required in sorted(pssi_rule.param("mount_options").items()):
        entry = mount_of(facts, target)
        if entry is None:
            if target == "/tmp":
                problems.append("/tmp is not a separate filesystem (a tmpfs with nosuid,nodev,noexec is expected)")
            continue
        options = set(str(entry.get("options", "")).split(","))
        missing = [o for o in required if o not in options]
        if missing:
            problems.append(f"findmnt {target}: mounted {entry.get('options')}, missing {','.join(missing)} (live)")
        at_boot = mount_of(facts, target, "fstab")
        if at_boot is None:
            problems.append(f"/etc/fstab has no entry for {target}: its options are not set at boot (persisted)")
            continue
        missing = [o for o in required if o not in str(at_boot.get("options", "")).split(",")]
        if missing:
            problems.append(f"/etc/fstab {target}: {at_boot.get('options')}, missing {','.join(missing)} (persisted)")
    fail_on(problems)


def is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return address in ("localhost",)


@pytest.mark.pssi("OSH-004")
def test_osh_004_listening_services(facts: HostFacts, pssi_rule: RuleContext) -> None:
    allowed = set(pssi_rule.param_for_groups("allowed_listening"))
    problems = []
    for sock in facts.listening:
        spec = f"{sock['proto']}/{sock['port']}"
        if spec not in allowed and not is_loopback(sock["address"]):
            problems.append(f"ss: {spec} listening on {sock['address'] or '*'} {sock['process']}".strip()
                            + " (not declared for the host's groups)")
    fail_on(problems)


@pytest.mark.pssi("OSH-005")
def test_osh_005_minimal_server_packages(facts: HostFacts, pssi_rule: RuleContext) -> None:
    fail_on([f"package {p} {facts.package(p)} installed on a server"
             for p in pssi_rule.param("forbidden_server_packages") if facts.package(p)])


@pytest.mark.pssi("OSH-006")
def test_osh_006_apparmor_enforced(facts: HostFacts, pssi_rule: RuleContext) -> None:
    # Live: the profiles the kernel has loaded (aa-teardown empties that list while apparmor.service
    # stays active). Persisted: the service loads the profiles at boot and none is forced into complain.
    apparmor = facts.section("apparmor")
    problems = []
    if apparmor["kernel_enabled"] != "Y":
        problems.append(f"/sys/module/apparmor/parameters/enabled = {apparmor['kernel_enabled']}: AppArmor off")
    if not facts.unit_enabled("apparmor.service"):
        problems.append(f"{facts.unit_summary('apparmor.service')}: profiles are not loaded at boot (persisted)")
    elif not facts.unit_active("apparmor.service"):
        problems.append(f"{facts.unit_summary('apparmor.service')}: profiles were not loaded (live)")
    problems += [f"/etc/apparmor.d/force-complain/{name}: profile put in complain mode at boot (persisted)"
                 for name in apparmor.get("force_complain", [])]
    if "loaded" not in apparmor:
        raise FactMissing("the kernel's list of loaded AppArmor profiles was not gathered")
    loaded = apparmor["loaded"]
    if loaded is None:
        problems.append("/sys/kernel/security/apparmor/profiles is absent: the kernel enforces no AppArmor profile")
    elif not any(mode == "enforce" for mode in loaded.values()):
        problems.append("no AppArmor profile loaded in enforce mode (live, /sys/kernel/security/apparmor/profiles"
                        f" lists {len(loaded)})")
    profiles = {**(apparmor.get("profiles") or {}), **(loaded or {})}
    problems += [f"AppArmor profile {name} in {mode} mode (live)" for name, mode in sorted(profiles.items())
                 if mode != "enforce"]
    fail_on(problems)


@pytest.mark.pssi("OSH-007")
def test_osh_007_setuid_allow_list(facts: HostFacts, pssi_rule: RuleContext) -> None:
    allowed = set(pssi_rule.param("setuid_allowlist"))
    problems = []
    for path, info in sorted(facts.section("special_files")["files"].items()):
        mode = int(info["mode"], 8)
        if info["type"] == "f" and mode & 0o6000 and path not in allowed:
            kind = "setuid" if mode & 0o4000 else "setgid"
            problems.append(f"{kind} {info['owner']}:{info['group']} {info['mode']} {path} (not in the allow-list)")
    if facts.package("pkexec") or facts.package("policykit-1"):
        problems.append("pkexec is installed")
    fail_on(problems)


def profile_texts(facts: HostFacts) -> dict[str, str]:
    texts = facts.texts_under("/etc/profile.d/")
    for path in ("/etc/profile", "/etc/bash.bashrc"):
        text = facts.text(path)
        if text:
            texts[path] = text
    return texts


def umask_ok(value: str, required: str) -> bool:
    return bool(re.fullmatch(r"0?[0-7]{3}", value)) and int(value, 8) & int(required, 8) == int(required, 8)


@pytest.mark.pssi("OSH-008")
def test_osh_008_session_timeout_and_umask(facts: HostFacts, pssi_rule: RuleContext) -> None:
    limit = int(pssi_rule.param("session_timeout_seconds"))
    required_umask = str(pssi_rule.param("umask"))
    problems = []
    timeouts, readonly, umasks = [], False, []
    for path, text in profile_texts(facts).items():
        for line in config_lines(text):
            for match in re.finditer(r"\bTMOUT=(\d+)", line):
                timeouts.append((path, int(match.group(1))))
            if re.search(r"\b(readonly|declare\s+-[a-z]*r[a-z]*|typeset\s+-r)\s+TMOUT\b", line):
                readonly = True
            match = re.match(r"^umask\s+(\d+)", line)
            if match:
                umasks.append((path, match.group(1)))
    if not timeouts:
        problems.append("no TMOUT set in /etc/profile, /etc/profile.d or /etc/bash.bashrc")
    problems += [f"{path}: TMOUT={value}, expected 1..{limit}" for path, value in timeouts
                 if not 0 < value <= limit]
    if timeouts and not readonly:
        problems.append("TMOUT is not read-only: users can unset it")
    login_umask = facts.key_values("/etc/login.defs").get("UMASK", "")
    if not umask_ok(login_umask, required_umask):
        problems.append(f"/etc/login.defs: UMASK {login_umask or '(unset)'}, expected {required_umask}")
    shell_ok = [u for u in umasks if umask_ok(u[1], required_umask)]
    problems += [f"{path}: umask {value}, expected {required_umask}" for path, value in umasks
                 if not umask_ok(value, required_umask)]
    if not shell_ok:
        problems.append(f"no 'umask {required_umask}' in the shells' profile files")
    fail_on(problems)


@pytest.mark.pssi("OSH-009")
def test_osh_009_sensitive_file_modes(facts: HostFacts, pssi_rule: RuleContext) -> None:
    problems = []
    for path, maximum in sorted(pssi_rule.param("sensitive_file_modes").items()):
        info = facts.stat(path)
        if info is None:
            problems.append(f"{path} is missing")
        elif info["owner"] != "root" or mode_exceeds(info["mode"], maximum):
            problems.append(f"{path}: {info['owner']}:{info['group']} mode {info['mode']}, expected root-owned, "
                            f"at most {maximum}")
    for path, info in sorted(facts.section("special_files")["files"].items()):
        if info["type"] == "d" and int(info["mode"], 8) & 0o0002 and not int(info["mode"], 8) & 0o1000:
            problems.append(f"world-writable directory without sticky bit: {path} ({info['mode']})")
        if info["owner"] == info["uid"] or info["group"] == info["gid"]:
            problems.append(f"file without a known owner or group: {path} ({info['uid']}:{info['gid']})")
    fail_on(problems)


@pytest.mark.pssi("OSH-010")
def test_osh_010_file_integrity(facts: HostFacts, pssi_rule: RuleContext) -> None:
    problems = []
    if not facts.package("aide"):
        problems.append("package aide is not installed")
    if facts.stat("/var/lib/aide/aide.db") is None and facts.stat("/var/lib/aide/aide.db.gz") is None:
        problems.append("no AIDE database in /var/lib/aide (aide --init never ran)")
    timer = facts.unit("dailyaidecheck.timer")
    cron_daily = facts.text("/etc/cron.daily/aide")
    if not (timer.get("UnitFileState") == "enabled" or cron_daily):
        problems.append(f"{facts.unit_summary('dailyaidecheck.timer')} and no /etc/cron.daily/aide: "
                        "no daily integrity check")
    fail_on(problems)
