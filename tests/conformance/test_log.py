"""Logging and time (LOG-*)."""

from __future__ import annotations

import datetime
import ipaddress
import re

import pytest

from ght_socle.conform.facts import HostFacts, config_lines, fail_on, mode_exceeds
from ght_socle.conform.parsers import rsyslog_params, rsyslog_statements
from ght_socle.conform.plugin import RuleContext
from ght_socle.reverify.summary import last_summary_problems


def chrony_sources(facts: HostFacts) -> list[tuple[str, str, str]]:
    """(file, directive, address) of every server/pool/peer line of chrony's configuration."""
    files = {"/etc/chrony/chrony.conf": facts.text("/etc/chrony/chrony.conf") or ""}
    files.update(facts.texts_under("/etc/chrony/conf.d/"))
    files.update(facts.texts_under("/etc/chrony/sources.d/"))
    sources = []
    for path, text in files.items():
        for line in config_lines(text):
            fields = line.split()
            if fields[0] in ("server", "pool", "peer") and len(fields) > 1:
                sources.append((path, fields[0], fields[1]))
    return sources


def is_public(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_global
    except ValueError:
        return address.endswith(("pool.ntp.org", "ntp.ubuntu.com", "time.google.com", "time.cloudflare.com"))


@pytest.mark.pssi("LOG-001")
def test_log_001_internal_time_sources(facts: HostFacts, pssi_rule: RuleContext) -> None:
    problems = []
    chrony = facts.section("chrony")
    if not chrony.get("installed") or not facts.package("chrony"):
        problems.append("chrony is not installed")
    else:
        problems += facts.service_problems("chrony.service", "no time synchronisation")
    sources = chrony_sources(facts)
    minimum = int(pssi_rule.param("min_ntp_sources"))
    if len(sources) < minimum:
        problems.append(f"chrony: {len(sources)} time source(s) configured "
                        f"({', '.join(s[2] for s in sources) or 'none'}), expected at least {minimum}")
    problems += [f"{path}: {kind} {address} is a public time source" for path, kind, address in sources
                 if is_public(address)]
    fail_on(problems)


def audit_rule_lines(facts: HostFacts) -> list[str]:
    audit = facts.section("audit")
    return list(audit.get("rules", [])) if audit.get("installed") else []


def watched(rules: list[str], path: str) -> bool:
    for rule in rules:
        names_path = re.search(rf"(-w\s+|-F\s+(path|dir)=){re.escape(path)}(\s|$)", rule)
        if names_path and re.search(r"(-p\s+|perm=)\S*w", rule):
            return True
    return False


def persisted_audit_rules(facts: HostFacts) -> list[str]:
    """The rules auditd loads at its next start: augenrules compiles /etc/audit/rules.d/*.rules."""
    return [line for path, text in facts.texts_under("/etc/audit/rules.d/").items() if path.endswith(".rules")
            for line in config_lines(text)]


def missing_audit_rules(rules: list[str], watch_paths: list[str]) -> list[str]:
    missing = [f"no write watch on {path}" for path in watch_paths if not watched(rules, path)]
    syscalls = " ".join(rules)
    for needed, names in (("module loading", ("init_module", "finit_module")), ("mounts", ("mount",)),
                          ("time changes", ("adjtimex", "settimeofday", "clock_settime")),
                          ("privileged commands", ("execve", "/usr/bin/sudo"))):
        if not any(re.search(rf"(?<![\w/]){re.escape(n)}(?![\w/])", syscalls) for n in names):
            missing.append(f"no rule for {needed} ({'/'.join(names)})")
    return missing


@pytest.mark.pssi("LOG-002")
def test_log_002_audit_rules(facts: HostFacts, pssi_rule: RuleContext) -> None:
    # Both states: the rules the kernel applies now (auditctl, live) and the ones loaded at the next
    # start of auditd (rules.d, persisted), including the lock (-e 2) where the PSSI asks for it.
    audit = facts.section("audit")
    if not audit.get("installed"):
        fail_on(["auditd is not installed (auditctl missing)"])
    problems = facts.service_problems("auditd.service", "kernel audit events are not recorded")
    status = audit.get("status", {})
    pid = status.get("pid", "0")
    if pid in ("0", ""):
        problems.append(f"auditctl -s: pid {pid or '?'}: no audit daemon receives the events")
    watch_paths = list(pssi_rule.param("audit_watch_paths"))
    problems += [f"auditctl -l: {gap} (live)" for gap in missing_audit_rules(audit_rule_lines(facts), watch_paths)]
    persisted = persisted_audit_rules(facts)
    problems += [f"/etc/audit/rules.d: {gap} (persisted)" for gap in missing_audit_rules(persisted, watch_paths)]
    if pssi_rule.param("audit_rules_immutable"):
        if status.get("enabled") != "2":
            problems.append(f"auditctl -s: enabled {status.get('enabled', '?')}, expected 2 (rules locked until "
                            "reboot) (live)")
        # augenrules moves the last -e line to the end of the compiled rules, wherever it was.
        enable = [line.split() for line in persisted if line.split()[0] == "-e"]
        if not enable or enable[-1][1:] != ["2"]:
            problems.append("/etc/audit/rules.d: no -e 2: the rules are not locked at boot (persisted)")
    fail_on(problems)


def rsyslog_files(facts: HostFacts) -> dict[str, str]:
    files = {"/etc/rsyslog.conf": facts.text("/etc/rsyslog.conf") or ""}
    files.update({p: t for p, t in facts.texts_under("/etc/rsyslog.d/").items() if p.endswith(".conf")})
    return files


def tls_forwarders(statements: list[tuple[str, str]], port: int) -> tuple[list[str], list[str]]:
    """(TLS forwarding actions to ``port``, plain-text forwarding found) in the rsyslog configuration."""
    global_tls = any(s.startswith("global(") and rsyslog_params(s).get("defaultnetstreamdriver") in ("gtls", "ossl")
                     for _p, s in statements)
    secure, plain = [], []
    for path, statement in statements:
        if statement.startswith("action(") and rsyslog_params(statement).get("type") == "omfwd":
            params = rsyslog_params(statement)
            driver = params.get("streamdriver", params.get("streamdriver.name", "gtls" if global_tls else ""))
            tls = (driver in ("gtls", "ossl") and params.get("streamdrivermode") == "1"
                   and params.get("streamdriverauthmode", "anon") != "anon")
            target = f"{params.get('target', '?')}:{params.get('port', '514')}/{params.get('protocol', 'udp')}"
            if tls and params.get("port") == str(port) and params.get("protocol", "udp") == "tcp":
                secure.append(f"{path}: omfwd {target} TLS ({params.get('streamdriverauthmode')})")
            else:
                plain.append(f"{path}: omfwd {target} without verified TLS")
        elif re.match(r"^\S+\s+@{1,2}[\w.\[\]:-]+", statement):
            plain.append(f"{path}: legacy forwarding '{statement}' (plain syslog)")
    return secure, plain


@pytest.mark.pssi("LOG-003")
def test_log_003_tls_log_forwarding(facts: HostFacts, pssi_rule: RuleContext) -> None:
    problems = []
    if not facts.package("rsyslog"):
        fail_on(["rsyslog is not installed: nothing forwards the logs"])
    problems += facts.service_problems("rsyslog.service", "logs are not forwarded")
    if not facts.package("rsyslog-gnutls") and not facts.package("rsyslog-openssl"):
        problems.append("neither rsyslog-gnutls nor rsyslog-openssl is installed: no TLS transport")
    secure, plain = tls_forwarders(rsyslog_statements(rsyslog_files(facts)), int(pssi_rule.param("collector_port")))
    problems += plain
    # A collector stores its own logs locally; every other host must forward.
    if not secure and "log_collector" not in facts.groups:
        problems.append(f"rsyslog: no omfwd action over TLS to a collector on port "
                        f"{pssi_rule.param('collector_port')}/tcp")
    fail_on(problems)


def journald_setting(facts: HostFacts, key: str) -> str | None:
    value = None
    for path in ["/etc/systemd/journald.conf", *facts.texts_under("/etc/systemd/journald.conf.d/")]:
        value = facts.key_values(path, r"\s*=\s*").get(key, value)
    return value


# Login accounting databases are not logs of the syslog kind: systemd-tmpfiles creates them with the
# utmp group, which `last` and `lastlog` read through; they are held to Debian's modes (CIS does the same).
LOGIN_ACCOUNTING_MAX_MODE = {"wtmp": "0664", "lastlog": "0664", "btmp": "0660"}


def login_accounting_name(path: str) -> str:
    """``wtmp``, ``btmp`` or ``lastlog`` for those files and their rotations (``wtmp.1``), else ''."""
    name = path.rsplit("/", 1)[-1].split(".", 1)[0]
    return name if path.startswith("/var/log/") and name in LOGIN_ACCOUNTING_MAX_MODE else ""


@pytest.mark.pssi("LOG-004")
def test_log_004_local_logs(facts: HostFacts, pssi_rule: RuleContext) -> None:
    problems = []
    storage = journald_setting(facts, "Storage") or "auto"
    wanted = str(pssi_rule.param("journald_storage"))
    journal_dir = facts.stat("/var/log/journal")
    persistent = storage == wanted or (wanted == "persistent" and storage == "auto" and journal_dir is not None)
    if not persistent:
        problems.append(f"journald Storage={storage}" + ("" if journal_dir else " and no /var/log/journal")
                        + f", expected {wanted}")
    maximum = str(pssi_rule.param("log_file_max_mode"))
    too_open = sorted((p, m) for p, m in facts.section("log_files").items()
                      if mode_exceeds(m, LOGIN_ACCOUNTING_MAX_MODE.get(login_accounting_name(p), maximum)))
    problems += [f"{path}: mode {mode}, expected at most {maximum}" for path, mode in too_open[:20]]
    if len(too_open) > 20:
        problems.append(f"... and {len(too_open) - 20} more log files above {maximum}")
    rotations = dict(facts.texts_under("/etc/logrotate.d/"))
    rotations["/etc/logrotate.conf"] = facts.text("/etc/logrotate.conf") or ""
    for path, text in sorted(rotations.items()):
        modes = {line.split()[1] for line in config_lines(text)
                 if line.startswith("create ") and len(line.split()) > 1 and line.split()[1].isdigit()}
        # /etc/logrotate.d/wtmp and btmp recreate the login accounting files: Debian's utmp modes.
        limit = LOGIN_ACCOUNTING_MAX_MODE.get(path.rsplit("/", 1)[-1], maximum)
        problems += [f"{path}: logrotate recreates its logs with mode {mode}, expected at most {limit}"
                     for mode in sorted(modes) if mode_exceeds(mode, limit)]
    if not facts.package("logrotate"):
        problems.append("logrotate is not installed: no rotation")
    elif not facts.unit_enabled("logrotate.timer"):
        problems.append(f"{facts.unit_summary('logrotate.timer')}: rotation is not scheduled")
    fail_on(problems)


def logrotate_days(text: str) -> int | None:
    lines = config_lines(text)
    rotate = next((int(line.split()[1]) for line in lines if line.startswith("rotate ")
                   and line.split()[1].isdigit()), None)
    if rotate is None:
        return None
    if any(line == "weekly" for line in lines):
        return rotate * 7
    if any(line == "monthly" for line in lines):
        return rotate * 31
    return rotate  # daily (the collector's policy) or maxage-style daily rotation


def tmpfiles_days(text: str, storage: str) -> int | None:
    """Age of a systemd-tmpfiles cleanup line on ``storage`` (``e /var/log/remote 0750 root adm 365d``)."""
    for line in config_lines(text):
        fields = line.split()
        # Type Path Mode User Group Age [Argument]: the age is the sixth field.
        if len(fields) >= 6 and fields[1] == storage and fields[0] in ("d", "D", "e", "v", "q", "Q"):
            match = re.fullmatch(r"(\d+)d", fields[5])
            return int(match.group(1)) if match else None
    return None


@pytest.mark.pssi("LOG-005")
def test_log_005_collector_retention(facts: HostFacts, pssi_rule: RuleContext) -> None:
    storage = str(pssi_rule.param("collector_storage_dir", "LOG-006"))
    low, high = int(pssi_rule.param("retention_days_min")), int(pssi_rule.param("retention_days_max"))
    # Retention is enforced either by systemd-tmpfiles (age-based deletion) or by logrotate.
    policies = {p: (t, tmpfiles_days) for p, t in facts.texts_under("/etc/tmpfiles.d/").items()
                if tmpfiles_days(t, storage) is not None}
    policies.update({p: (t, lambda text, _s: logrotate_days(text)) for p, t in
                     facts.texts_under("/etc/logrotate.d/").items() if storage in t})
    if not policies:
        fail_on([f"no tmpfiles.d or logrotate policy covers {storage}: retention is unbounded"])
    problems = []
    for path, (text, reader) in policies.items():
        days = reader(text, storage)
        if days is None or not low <= days <= high:
            problems.append(f"{path}: keeps {days if days is not None else 'an unknown number of'} days of "
                            f"{storage}, expected between {low} and {high}")
    fail_on(problems)


@pytest.mark.pssi("LOG-006")
def test_log_006_collector_hardened(facts: HostFacts, pssi_rule: RuleContext) -> None:
    statements = rsyslog_statements(rsyslog_files(facts))
    storage = str(pssi_rule.param("collector_storage_dir"))
    problems = []
    inputs = [(p, rsyslog_params(s)) for p, s in statements if s.startswith("input(")]
    modules = [rsyslog_params(s) for _p, s in statements if s.startswith("module(")]
    tls_module = any(m.get("load") == "imtcp" and m.get("streamdriver.mode") == "1"
                     and m.get("streamdriver.authmode", "anon") != "anon" for m in modules)
    tls_inputs = [i for _p, i in inputs if i.get("type") == "imtcp" and (
        tls_module or (i.get("streamdriver.mode") == "1" and i.get("streamdriver.authmode", "anon") != "anon"))]
    if not tls_inputs:
        problems.append("rsyslog: no imtcp input with TLS and client authentication (StreamDriver.AuthMode x509)")
    problems += [f"{path}: plain {i.get('type')} input on port {i.get('port', '?')}" for path, i in inputs
                 if i.get("type") == "imudp" or (i.get("type") == "imtcp" and i not in tls_inputs)]
    per_host = any((storage in s and re.search(r"%(hostname|fromhost|fromhost-ip)%", s, re.IGNORECASE))
                   or (storage in s and re.search(r"\$(hostname|fromhost|fromhost-ip)\b", s, re.IGNORECASE))
                   for _p, s in statements)
    if not per_host:
        problems.append(f"rsyslog: received logs are not written per sender under {storage}")
    info = facts.stat(storage)
    if info is None:
        problems.append(f"{storage} does not exist")
    elif info["owner"] != "root" or mode_exceeds(info["mode"], "0750"):
        problems.append(f"{storage}: {info['owner']}:{info['group']} mode {info['mode']}, expected root, at most 0750")
    fail_on(problems)


@pytest.mark.pssi("LOG-007")
def test_log_007_bastion_session_records(facts: HostFacts, pssi_rule: RuleContext) -> None:
    problems = []
    if facts.sshd("loglevel").upper() not in ("VERBOSE", "DEBUG", "DEBUG1"):
        problems.append(f"sshd -T: loglevel {facts.sshd('loglevel')}: key fingerprints of sessions are not logged")
    rules = audit_rule_lines(facts)
    if not facts.unit_active("auditd.service"):
        problems.append(f"{facts.unit_summary('auditd.service')}: commands are not recorded")
    if not any("execve" in r for r in rules):
        problems.append("auditctl -l: no execve rule: the commands of administration sessions are not recorded")
    secure, plain = tls_forwarders(rsyslog_statements(rsyslog_files(facts)),
                                   int(pssi_rule.param("collector_port", "LOG-003")))
    if not secure:
        problems.append("rsyslog: session records are not shipped to the collector over TLS")
    fail_on(problems + plain)


REVERIFY_TIMER = "ght-reverify.timer"
REVERIFY_FILES = {"/usr/local/lib/ght-socle/ght-reverify": "0700", "/usr/local/lib/ght-socle/gather.py": "0700",
                  "/var/lib/ght-reverify": "0700", "/var/lib/ght-reverify/baseline.json": "0600"}


@pytest.mark.pssi("LOG-009")
def test_log_009_scheduled_reverification(facts: HostFacts, pssi_rule: RuleContext) -> None:
    interval = int(pssi_rule.param("interval_hours"))
    problems = []
    if not facts.unit_enabled(REVERIFY_TIMER):
        problems.append(f"{REVERIFY_TIMER} is not enabled (persisted): it will not run after the next boot")
    if not facts.unit_active(REVERIFY_TIMER):
        problems.append(f"{REVERIFY_TIMER} is not active (live)")
    timer = config_lines(facts.text(f"/etc/systemd/system/{REVERIFY_TIMER}"))
    if f"OnUnitActiveSec={interval}h" not in timer:
        problems.append(f"{REVERIFY_TIMER} does not run every {interval} h (OnUnitActiveSec)")
    for path, mode in REVERIFY_FILES.items():
        info = facts.stat(path)
        if info is None:
            problems.append(f"{path} is absent")
        elif info["owner"] != "root" or mode_exceeds(info["mode"], mode):
            problems.append(f"{path}: {info['owner']} {info['mode']}, expected root and at most {mode}")
    # Two intervals plus the timer's random delay: one missed run is tolerated, two are not.
    max_age = datetime.timedelta(hours=2 * interval, minutes=30)
    problems += last_summary_problems(facts.text("/var/lib/ght-reverify/last-summary.json"),
                                      facts.text("/etc/ght-pki/ca.crt"), facts.system["time"], max_age)
    fail_on(problems)
