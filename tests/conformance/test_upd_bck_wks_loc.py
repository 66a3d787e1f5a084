"""Updates (UPD-*), backups (BCK-*), workstations (WKS-002/003/005/006) and telemetry (LOC-003)."""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any
from urllib.parse import urlparse

import pytest

from ght_socle.conform.facts import FactMissing, HostFacts, config_lines, fail_on, mode_exceeds
from ght_socle.conform.parsers import apt_config_lines, apt_list, apt_value, parse_apt_sources
from ght_socle.conform.persisted import module_load_problem
from ght_socle.conform.plugin import RuleContext


# -- updates -----------------------------------------------------------------------------------
@pytest.mark.pssi("UPD-001")
def test_upd_001_official_signed_sources(facts: HostFacts, pssi_rule: RuleContext) -> None:
    allowed_hosts = set(pssi_rule.param("apt_source_hosts"))
    mirror = pssi_rule.host_vars.get("ght_apt_proxy") or ""
    if mirror:
        allowed_hosts.add(urlparse(str(mirror)).hostname or "")
    files = {"/etc/apt/sources.list": facts.text("/etc/apt/sources.list") or ""}
    files.update(facts.texts_under("/etc/apt/sources.list.d/"))
    problems = []
    sources = parse_apt_sources(files)
    if not sources:
        problems.append("no APT source configured")
    for source in sources:
        for uri in source.uris:
            host = urlparse(uri).hostname or uri
            if host not in allowed_hosts:
                problems.append(f"{source.file}: source {uri} is not an official repository "
                                f"({', '.join(sorted(allowed_hosts))})")
        for option in ("trusted", "allow-insecure", "allow-weak", "allow-downgrade-to-insecure"):
            if source.options.get(option, "no").lower() == "yes":
                problems.append(f"{source.file}: {option}=yes disables signature checking ({source.text})")
    conf = apt_config_lines(facts.texts_under("/etc/apt/apt.conf.d/"))
    for key in ("APT::Get::AllowUnauthenticated", "Acquire::AllowInsecureRepositories",
                "Acquire::AllowDowngradeToInsecureRepositories"):
        value = apt_value(conf, key)
        if value and value[1].lower() in ("true", "1", "yes"):
            problems.append(f"{value[0]}: {key} \"{value[1]}\" disables signature checking")
    fail_on(problems)


@pytest.mark.pssi("UPD-002")
def test_upd_002_unattended_security_upgrades(facts: HostFacts, pssi_rule: RuleContext) -> None:
    problems = []
    if not facts.package("unattended-upgrades"):
        fail_on(["package unattended-upgrades is not installed"])
    conf = apt_config_lines(facts.texts_under("/etc/apt/apt.conf.d/"))
    for key in ("APT::Periodic::Update-Package-Lists", "APT::Periodic::Unattended-Upgrade"):
        value = apt_value(conf, key)
        if value is None or value[1] in ("0", ""):
            problems.append(f"apt.conf.d: {key} is {value[1] if value else 'unset'} ({value[0] if value else '-'}), "
                            "expected daily (1)")
    expected = set(pssi_rule.param("unattended_upgrades_origins"))
    origins = set(apt_list(conf, "Unattended-Upgrade::Origins-Pattern"))
    if missing := sorted(expected - origins):
        problems.append(f"Unattended-Upgrade::Origins-Pattern lacks {'; '.join(missing)}")
    if extra := sorted(origins - expected):
        problems.append(f"Unattended-Upgrade::Origins-Pattern also installs from {'; '.join(extra)}")
    reboot = apt_value(conf, "Unattended-Upgrade::Automatic-Reboot")
    wanted = "true" if pssi_rule.param("automatic_reboot") else "false"
    if (reboot[1].lower() if reboot else "false") != wanted:
        problems.append(f"Unattended-Upgrade::Automatic-Reboot is {reboot[1] if reboot else 'unset'}, "
                        f"expected {wanted}")
    if not facts.unit_enabled("apt-daily-upgrade.timer"):
        problems.append(f"{facts.unit_summary('apt-daily-upgrade.timer')}: upgrades never start")
    fail_on(problems)


@pytest.mark.pssi("UPD-003")
def test_upd_003_upgrade_ran_recently(facts: HostFacts, pssi_rule: RuleContext) -> None:
    max_days = int(pssi_rule.param("max_days_since_upgrade_run"))
    now = int(facts.system["time"])
    stamp = facts.stat("/var/lib/apt/periodic/unattended-upgrades-stamp")
    if stamp is None:
        fail_on(["/var/lib/apt/periodic/unattended-upgrades-stamp missing: unattended-upgrade never ran"])
    assert stamp is not None
    age_days = (now - int(stamp["mtime"])) / 86400
    fail_on([f"unattended-upgrade last ran {age_days:.1f} days ago, expected within {max_days} days"]
            if age_days > max_days else [])


@pytest.mark.pssi("UPD-004")
def test_upd_004_supported_release(facts: HostFacts, pssi_rule: RuleContext) -> None:
    release = facts.system["os_release"]
    supported = [str(r) for r in pssi_rule.param("supported_debian_releases")]
    problems = []
    if release.get("ID") != "debian":
        problems.append(f"/etc/os-release: ID={release.get('ID')}, expected debian")
    if release.get("VERSION_ID") not in supported:
        problems.append(f"/etc/os-release: {release.get('PRETTY_NAME')} is not a supported release "
                        f"({', '.join(supported)})")
    fail_on(problems)


# -- backups (evidence written by the backup agent in /var/lib/ght-backup) ---------------------
BACKUP_STATE = "/var/lib/ght-backup"


def evidence_age_hours(facts: HostFacts, name: str) -> float | None:
    text = facts.text(f"{BACKUP_STATE}/{name}")
    if not text or not text.strip():
        return None
    try:
        when = dt.datetime.strptime(text.strip(), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    except ValueError:
        raise FactMissing(f"{BACKUP_STATE}/{name}: unreadable timestamp {text.strip()[:40]!r}") from None
    return (int(facts.system["time"]) - when.timestamp()) / 3600


def timer_problem(facts: HostFacts, timer: str) -> str | None:
    if facts.unit_enabled(timer) and facts.unit_active(timer):
        return None
    return f"{facts.unit_summary(timer)}: not scheduled"


@pytest.mark.pssi("BCK-001")
def test_bck_001_host_backed_up(facts: HostFacts, pssi_rule: RuleContext) -> None:
    problems = [] if facts.package("restic") else ["package restic is not installed: no backup agent"]
    problems.append(timer_problem(facts, "ght-backup.timer"))
    if facts.stat(f"{BACKUP_STATE}/repository-initialised") is None:
        problems.append(f"{BACKUP_STATE}/repository-initialised missing: the repository was never initialised")
    fail_on(p for p in problems if p)


@pytest.mark.pssi("BCK-005")
def test_bck_005_client_side_encryption(facts: HostFacts, pssi_rule: RuleContext) -> None:
    problems = []
    env = facts.key_values("/etc/ght-backup/ght-backup.env", r"\s*=\s*")
    if not env:
        problems.append("/etc/ght-backup/ght-backup.env missing: the backup agent is not configured")
    password_file = env.get("RESTIC_PASSWORD_FILE", "").strip("'\"")
    if env and not password_file:
        problems.append("/etc/ght-backup/ght-backup.env: no RESTIC_PASSWORD_FILE: repository not encrypted by a key "
                        "kept on the host")
    for path, maximum in (("/etc/ght-backup", "0700"), ("/etc/ght-backup/repository.pass", "0600")):
        info = facts.stat(path)
        if info is None:
            problems.append(f"{path} is missing")
        elif info["owner"] != "root" or mode_exceeds(info["mode"], maximum):
            problems.append(f"{path}: {info['owner']}:{info['group']} mode {info['mode']}, expected root, "
                            f"at most {maximum}")
    fail_on(problems)


@pytest.mark.pssi("BCK-006")
def test_bck_006_restore_tests(facts: HostFacts, pssi_rule: RuleContext) -> None:
    max_days = int(pssi_rule.param("restore_test_max_age_days"))
    problems = [timer_problem(facts, "ght-restore-test.timer")]
    age = evidence_age_hours(facts, "last-restore-test")
    if age is None:
        problems.append(f"{BACKUP_STATE}/last-restore-test missing: no successful restore test yet")
    elif age > max_days * 24:
        problems.append(f"last successful restore test {age / 24:.1f} days ago, expected within {max_days} days")
    fail_on(p for p in problems if p)


@pytest.mark.pssi("BCK-007")
def test_bck_007_recent_backup(facts: HostFacts, pssi_rule: RuleContext) -> None:
    max_hours = int(pssi_rule.param("max_backup_age_hours"))
    problems = [timer_problem(facts, "ght-backup.timer")]
    age = evidence_age_hours(facts, "last-backup")
    if age is None:
        problems.append(f"{BACKUP_STATE}/last-backup missing: no successful backup yet")
    elif age > max_hours:
        problems.append(f"last successful backup {age:.1f} h ago, expected within {max_hours} h")
    fail_on(p for p in problems if p)


# -- workstations ------------------------------------------------------------------------------
def dconf_settings(facts: HostFacts) -> tuple[dict[str, str], set[str]]:
    settings: dict[str, str] = {}
    section = ""
    for path, text in facts.texts_under("/etc/dconf/db/local.d/").items():
        if "/locks/" in path:
            continue
        for line in config_lines(text):
            if line.startswith("["):
                section = line.strip("[]")
            elif "=" in line:
                key, _, value = line.partition("=")
                settings[f"/{section}/{key.strip()}"] = value.strip()
    locks = {line for path, text in facts.texts_under("/etc/dconf/db/local.d/locks/").items()
             for line in config_lines(text)}
    return settings, locks


@pytest.mark.pssi("WKS-002")
def test_wks_002_screen_lock(facts: HostFacts, pssi_rule: RuleContext) -> None:
    settings, locks = dconf_settings(facts)
    limit = int(pssi_rule.param("idle_lock_seconds"))
    problems = []
    delay = settings.get("/org/gnome/desktop/session/idle-delay", "")
    seconds = int(delay.split()[-1]) if delay and delay.split()[-1].isdigit() else None
    if seconds is None or not 0 < seconds <= limit:
        problems.append(f"dconf idle-delay is {delay or 'unset'}, expected 1..{limit} s")
    if settings.get("/org/gnome/desktop/screensaver/lock-enabled") != "true":
        problems.append("dconf screensaver lock-enabled is not true")
    problems += [f"dconf key {key} is not locked: users can change it" for key in
                 ("/org/gnome/desktop/session/idle-delay", "/org/gnome/desktop/screensaver/lock-enabled")
                 if key not in locks]
    fail_on(problems)


@pytest.mark.pssi("WKS-003")
def test_wks_003_usb_storage_blocked(facts: HostFacts, pssi_rule: RuleContext) -> None:
    # Both states: the module is not in the kernel now (live, /proc/modules) and the next load of it,
    # at boot or when a device is plugged in, runs the install command of modprobe.d instead
    # (persisted: `modprobe -n -v` merges every modprobe.d directory as the kernel's request would).
    loaded = {m.replace("-", "_") for m in facts.system["modules"] or []}  # None: no loadable modules
    dry_runs = facts.system.get("modprobe")
    if dry_runs is None:
        raise FactMissing("modprobe -n -v was not run for the blocked modules")
    problems = []
    for module in pssi_rule.param("blocked_kernel_modules"):
        if module not in dry_runs:
            raise FactMissing(f"modprobe -n -v {module} was not run")
        if module.replace("-", "_") in loaded:
            problems.append(f"/proc/modules: {module} is loaded (live)")
            continue  # modprobe does nothing for a module already loaded: its dry run tells nothing
        try:
            at_next_load = module_load_problem(dry_runs[module])
        except ValueError as exc:
            raise FactMissing(f"modprobe -n -v {module}: {exc}") from exc
        if at_next_load is not None:
            problems.append(f"modprobe -n -v {module}: {at_next_load} (persisted)")
    fail_on(problems)


def root_on_luks(devices: list[dict[str, Any]], chain: tuple[str, ...] = ()) -> tuple[bool, str] | None:
    for device in devices:
        path = (*chain, f"{device.get('name')} ({device.get('type')})")
        if device.get("mountpoint") == "/":
            return any("(crypt)" in p for p in path), " -> ".join(path)
        found = root_on_luks(device.get("children") or [], path)
        if found:
            return found
    return None


@pytest.mark.pssi("WKS-005")
def test_wks_005_disk_encryption(facts: HostFacts, pssi_rule: RuleContext) -> None:
    found = root_on_luks(facts.section("block_devices"))
    if found is None:
        raise FactMissing("lsblk shows no device mounted on /")
    encrypted, chain = found
    fail_on([] if encrypted else [f"lsblk: / is on {chain}, no LUKS (crypt) layer"])


@pytest.mark.pssi("WKS-006")
def test_wks_006_browser_policy(facts: HostFacts, pssi_rule: RuleContext) -> None:
    expected: dict[str, Any] = pssi_rule.param("browser_policies")
    problems = []
    path = "/etc/firefox-esr/policies/policies.json"
    text = facts.text(path)
    if text is None:
        fail_on([f"{path} missing: no enterprise policy for the browser"])
    try:
        policies = json.loads(text or "{}").get("policies", {})
    except json.JSONDecodeError as exc:
        fail_on([f"{path}: invalid JSON ({exc.msg})"])
        return
    problems += [f"{path}: {key} is {policies.get(key)!r}, expected {value!r}"
                 for key, value in sorted(expected.items()) if policies.get(key) != value]
    fail_on(problems)


# -- data localisation -------------------------------------------------------------------------
@pytest.mark.pssi("LOC-003")
def test_loc_003_no_telemetry(facts: HostFacts, pssi_rule: RuleContext) -> None:
    problems = [f"package {p} {facts.package(p)} installed (sends data to its vendor)"
                for p in pssi_rule.param("telemetry_packages") if facts.package(p)]
    problems += [f"{path}: popularity-contest participation enabled" for path, text in
                 {"/etc/popularity-contest.conf": facts.text("/etc/popularity-contest.conf") or ""}.items()
                 if re.search(r'^PARTICIPATE="?yes', text, re.MULTILINE)]
    fail_on(problems)
