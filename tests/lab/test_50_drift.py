"""Drift detection: misconfigurations injected on a hardened VM are each caught by the expected rule.

One batched remote command injects every drift (saving what it changes under /root), one
`socle conform` run must report each of them by the expected rule with evidence, then the host is
restored and a last run proves it conforms again, so the lab stays usable. The kernel parameters and
the firewall are restored by `socle harden --tags` alone, as the report advises ops: a re-run must
repair live drift even though the role's files never changed.
An unreachable host is reported as `error` for every applicable rule, never `pass`, with exit 2.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from conform_lab import ConformRun, conform, ensure_hardened
from lab_support import Lab, socle

BACKUP = "/root/.conform-drift"
LISTENER_UNIT = "conform-drift-listener"
LISTENER_PORT = 8099
# Sorts after the role's 99-zz-ght-hardening.conf: at the next boot its value wins (nothing loads it now).
LATER_SYSCTL_FILE = "/etc/sysctl.d/99-zzz-conform-drift.conf"
# The interface whose own sysctl keys drift (OSH-012): all/default stay hardened.
DRIFT_INTERFACE = "eth0"
# Loaded by the running sshd only: the file says otherwise by the time conformance runs.
WEAK_MAC = "hmac-sha1"

# (what drifts, rule expected to catch it, a piece of the evidence the report must show)
DRIFTS = [
    ("PermitRootLogin yes", "ADM-003", "permitrootlogin is 'yes'"),
    ("weak sshd cipher (CBC)", "ADM-004", "aes256-cbc"),
    ("sshd reloaded with a weak MAC, its file changed back since", "ADM-004",
     f"macs offers {WEAK_MAC} (not in the allowed list) (live)"),
    ("net.ipv4.ip_forward=1", "OSH-002", "net.ipv4.ip_forward = 1"),
    ("/etc/shadow world-readable", "OSH-009", "/etc/shadow: root:shadow mode 0644"),
    ("auditd stopped", "LOG-002", "kernel audit events are not recorded"),
    ("NOPASSWD: ALL for a non-allowed user", "ADM-006", "NOPASSWD for conform-drift-ops"),
    ("second UID-0 account", "IAM-001", "conform-drift-root has UID 0"),
    ("APT source with trusted=yes", "UPD-001", "trusted=yes disables signature checking"),
    ("unattended upgrades disabled", "UPD-002", "APT::Periodic::Unattended-Upgrade is 0"),
    ("chrony stopped", "LOG-001", "no time synchronisation"),
    ("log forwarding removed", "LOG-003", "no omfwd action over TLS"),
    ("nftables ruleset flushed", "NET-011", "no base chain hooked on input"),
    ("/tmp remounted exec", "OSH-003", "findmnt /tmp"),
    ("unexpected listening service", "OSH-004", f"tcp/{LISTENER_PORT} listening"),
    ("new setuid binary", "OSH-007", "/usr/local/bin/conform-drift-suid"),
    ("service account with a login shell", "IAM-008", "service account daemon"),
    ("weak password hashing method", "IAM-004", "ENCRYPT_METHOD MD5"),
    ("later sysctl.d file undoing a setting at boot", "OSH-002",
     f"fs.protected_fifos = 1 persisted by {LATER_SYSCTL_FILE}"),
    ("AppArmor profiles unloaded (aa-teardown)", "OSH-006", "no AppArmor profile loaded in enforce mode (live"),
    ("perf events sampled at full rate again", "OSH-011", "kernel.perf_event_max_sample_rate = 100000 (live)"),
    ("one interface accepting ICMP redirects (all/default untouched)", "OSH-012",
     f"net.ipv4.conf.{DRIFT_INTERFACE}.accept_redirects = 1 (live)"),
    ("later sysctl.d file re-enabling redirects on one interface at boot", "OSH-012",
     f"net.ipv4.conf.{DRIFT_INTERFACE}.send_redirects = 1 persisted by {LATER_SYSCTL_FILE}"),
    ("noexec lifted for a non-admin user", "ADM-010", "lifts noexec for conform-drift-ops"),
    ("/etc/sudoers.d opened to everyone", "ADM-010", "/etc/sudoers.d: root:root mode 0755"),
    ("delegation running a command as root", "ADM-011", "runs commands as root for conform-drift-ops"),
    ("negation in a sudo specification", "ADM-012", "negated command '!/usr/bin/su'"),
    ("delegated command without explicit arguments", "ADM-013", "/usr/bin/id without arguments"),
    ("editor allowed through sudo", "ADM-014", "editor /usr/bin/vim (use sudoedit)"),
]

# Each line saves what it changes first; `set -e` so a half-injected host is reported at once.
INJECT = f"""set -eu
rm -rf {BACKUP}; mkdir -m 700 {BACKUP}
cp -a /etc/ssh/sshd_config /etc/shadow /etc/passwd /etc/login.defs {BACKUP}/
sed -i '1i MACs {WEAK_MAC},hmac-sha2-256-etm@openssh.com,hmac-sha2-512-etm@openssh.com' /etc/ssh/sshd_config
sshd -t; systemctl reload ssh.service; sleep 2
cp -a {BACKUP}/sshd_config /etc/ssh/sshd_config
sed -i -e '1i PermitRootLogin yes' -e '1i Ciphers aes256-cbc,aes128-ctr' /etc/ssh/sshd_config
sshd -t
sysctl -qw net.ipv4.ip_forward=1
chmod 0644 /etc/shadow
systemctl kill --signal=TERM auditd.service; sleep 1
printf 'conform-drift-ops ALL=(ALL) NOPASSWD: ALL\\n' > /etc/sudoers.d/99-conform-drift
printf '%s\\n' 'Defaults:conform-drift-ops !noexec' 'conform-drift-ops ALL=(root) /usr/bin/vim /etc/hosts' \\
  'conform-drift-ops ALL=(nobody) /usr/bin/id, !/usr/bin/su' > /etc/sudoers.d/98-conform-drift-specs
chmod 0440 /etc/sudoers.d/99-conform-drift /etc/sudoers.d/98-conform-drift-specs; visudo -cq
chmod 0755 /etc/sudoers.d
sysctl -qw kernel.perf_event_max_sample_rate=100000
sysctl -qw net.ipv4.conf.{DRIFT_INTERFACE}.accept_redirects=1
useradd -o -u 0 -g 0 -N -M -d /root -s /bin/bash conform-drift-root
echo 'deb [trusted=yes] http://deb.debian.org/debian bookworm main' > /etc/apt/sources.list.d/conform-drift.list
printf 'APT::Periodic::Unattended-Upgrade "0";\\n' > /etc/apt/apt.conf.d/99zz-conform-drift
systemctl stop chrony.service
mkdir {BACKUP}/rsyslog.d
for f in $(grep -ls omfwd /etc/rsyslog.d/*.conf); do mv "$f" {BACKUP}/rsyslog.d/; done
systemctl restart rsyslog.service
nft flush ruleset
findmnt -no OPTIONS /tmp > {BACKUP}/tmp.options; mount -o remount,exec /tmp
systemctl stop {LISTENER_UNIT}.service 2>/dev/null || true
systemd-run --quiet --unit={LISTENER_UNIT} python3 -m http.server {LISTENER_PORT} --bind 0.0.0.0
install -m 4755 /bin/true /usr/local/bin/conform-drift-suid
usermod -s /bin/bash daemon
sed -i 's/^ENCRYPT_METHOD.*/ENCRYPT_METHOD MD5/' /etc/login.defs
printf 'fs.protected_fifos = 1\\nnet.ipv4.conf.{DRIFT_INTERFACE}.send_redirects = 1\\n' > {LATER_SYSCTL_FILE}
aa-teardown >/dev/null
for i in $(seq 60); do ss -Hltn "sport = :{LISTENER_PORT}" | grep -q . && break; sleep 1; done
echo injected
"""

# Undo in reverse, from what INJECT saved; every step runs even if one fails, the status is the worst.
# The sysctl values, the nftables ruleset and the AppArmor profiles are left to the roles (REPAIR_TAGS).
RESTORE = f"""rc=0
step() {{ "$@" || {{ echo "restore step failed: $*" >&2; rc=1; }}; }}
step rm -f /usr/local/bin/conform-drift-suid {LATER_SYSCTL_FILE}
step systemctl stop {LISTENER_UNIT}
case ",$(cat {BACKUP}/tmp.options)," in *,noexec,*) step mount -o remount,noexec /tmp ;; esac
for f in {BACKUP}/rsyslog.d/*; do [ -e "$f" ] && step mv "$f" /etc/rsyslog.d/; done
step systemctl restart rsyslog.service
step systemctl start chrony.service
step rm -f /etc/apt/apt.conf.d/99zz-conform-drift /etc/apt/sources.list.d/conform-drift.list
step rm -f /etc/sudoers.d/99-conform-drift /etc/sudoers.d/98-conform-drift-specs
step chmod 0750 /etc/sudoers.d
step cp -a {BACKUP}/passwd {BACKUP}/shadow {BACKUP}/login.defs /etc/
step cp -a {BACKUP}/sshd_config /etc/ssh/sshd_config
step systemctl reload ssh.service
step systemctl start auditd.service
sleep 2
[ $rc = 0 ] && rm -rf {BACKUP}
exit $rc
"""


# Drift that only the live state shows (the role's files are untouched): a re-run of these tags repairs it.
REPAIR_TAGS = "pssi_osh_002,pssi_osh_011,pssi_osh_012,pssi_net_011,pssi_osh_006"


def drift_host(lab: Lab) -> str:
    servers = lab.group("dpi_app") or [h for h in lab.hosts if h != lab.bastion]
    return servers[-1]


@pytest.fixture(scope="module")
def hardened_lab(lab: Lab) -> Lab:
    return ensure_hardened(lab)


@dataclass
class DriftRuns:
    host: str
    reload: subprocess.CompletedProcess[str]  # `sysctl --system` on the hardened host, as every boot does
    before: ConformRun  # hardened host, after that reload
    after: ConformRun  # with every drift injected, compared (--diff) with `before`
    repair: subprocess.CompletedProcess[str]  # socle harden --tags REPAIR_TAGS after the scripted restore
    restored: ConformRun  # after the restore


@pytest.fixture(scope="module")
def drift(hardened_lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> DriftRuns:
    """Conform, inject, conform with --diff, restore (whatever happened), conform again."""
    lab = hardened_lab
    host = drift_host(lab)
    out = tmp_path_factory.mktemp("drift")
    reload = lab.run(host, "sysctl --system", sudo=True)
    before = conform(lab, out, "--limit", host)
    previous = out / "before.json"
    previous.write_text(json.dumps(list(before.rows.values())), encoding="utf-8")
    try:
        injected = lab.run(host, INJECT, sudo=True)
        assert injected.returncode == 0 and "injected" in injected.stdout, \
            f"injection failed on {host}: {injected.stderr[-2000:]}"
        after = conform(lab, out, "--limit", host, "--diff", str(previous))
    finally:
        restored = lab.run(host, RESTORE, sudo=True)
        assert restored.returncode == 0, f"restore failed on {host}: {restored.stderr[-2000:]}"
        repair = socle("harden", "--inventory", str(lab.inventory), "--limit", host, "--tags", REPAIR_TAGS,
                       "--format", "json", env=lab.env)
    return DriftRuns(host, reload, before, after, repair, conform(lab, out, "--limit", host))


def test_at_least_fifteen_distinct_drifts() -> None:
    assert len({what for what, _, _ in DRIFTS}) >= 15


def test_sysctl_system_keeps_the_hardened_kernel_parameters(drift: DriftRuns) -> None:
    # Every sysctl.d file applied in boot order: a distribution file sorting after the hardened one
    # (Debian's 99-protect-links.conf) used to set fs.protected_fifos back to 1.
    assert drift.reload.returncode == 0, drift.reload.stderr[-2000:]
    assert "99-zz-ght-hardening.conf" in drift.reload.stdout, drift.reload.stdout[-2000:]
    row = drift.before.row(drift.host, "OSH-002")
    assert row["status"] == "pass", f"OSH-002 after sysctl --system: {row['message']} {row['evidence']}"


def test_expected_rules_pass_before_the_drift(drift: DriftRuns) -> None:
    not_passing = {rule: drift.before.row(drift.host, rule)["status"] for _, rule, _ in DRIFTS
                   if drift.before.row(drift.host, rule)["status"] not in ("pass", "waived")}
    assert not not_passing, f"{drift.host} does not conform before the drift: {not_passing}\n{drift.before.explain()}"


@pytest.mark.parametrize(("what", "rule_id", "evidence"), DRIFTS, ids=[d[0] for d in DRIFTS])
def test_drift_is_detected_by_the_expected_rule(drift: DriftRuns, what: str, rule_id: str, evidence: str) -> None:
    row = drift.after.row(drift.host, rule_id)
    assert row["status"] == "fail", f"{what}: {rule_id} is {row['status']}: {row['message']}"
    assert any(evidence in line for line in row["evidence"]), f"{what}: {rule_id} evidence {row['evidence']}"


def test_drift_run_exits_with_findings_and_says_what_to_rerun(drift: DriftRuns) -> None:
    assert drift.after.code == 1, drift.after.stderr[-2000:]
    assert f"--limit {drift.host} --tags " in drift.after.stdout and "pssi_adm_003" in drift.after.stdout


def test_diff_reports_each_regression(drift: DriftRuns) -> None:
    regressed = [line for line in drift.after.stdout.splitlines() if line.strip().startswith("REGRESSED")]
    for _, rule_id, _ in DRIFTS:
        assert any(f" {drift.host} " in line and f" {rule_id} " in line for line in regressed), \
            f"{rule_id} not in the regressions:\n" + "\n".join(regressed)


def test_harden_rerun_repairs_live_sysctl_firewall_and_apparmor_drift(drift: DriftRuns) -> None:
    assert drift.repair.returncode == 0, drift.repair.stderr[-3000:]
    changed = json.loads(drift.repair.stdout)["hosts"][drift.host]["changed"]
    # Per rule: the live comparison reports the drift and its handler loads the file again.
    assert changed >= 4, f"changed={changed}: the re-run did not see the live drift\n{drift.repair.stderr[-3000:]}"
    for rule_id in ("OSH-002", "OSH-011", "OSH-012", "NET-011", "OSH-006"):
        row = drift.restored.row(drift.host, rule_id)
        assert row["status"] == "pass", f"{rule_id} after the re-run: {row['message']} {row['evidence']}"


def test_host_conforms_again_after_restore(drift: DriftRuns) -> None:
    back = {rule: drift.restored.row(drift.host, rule)["status"] for _, rule, _ in DRIFTS}
    assert set(back.values()) <= {"pass", "waived"}, f"{back}\n{drift.restored.explain(drift.host)}"
    assert drift.restored.statuses(drift.host) == drift.before.statuses(drift.host)


@pytest.fixture
def unreachable_inventory(hardened_lab: Lab, tmp_path: Path) -> tuple[Path, str]:
    """A copy of the lab inventory where one host's address leads nowhere (host keys still checked)."""
    lab = hardened_lab
    host = drift_host(lab)
    copy = tmp_path / "inventory"
    copy.mkdir()
    for name in ("hosts.yml", "known_hosts"):
        shutil.copy(lab.inventory / name, copy / name)
    # An unused address on a segment of the bastion itself: its ARP requests get no answer and the jump
    # fails within seconds ("no route to host"). Behind a router the SYN could wait for TCP's timeout.
    bastion_address = next(iter(lab.addresses[lab.bastion].values()))
    nowhere = bastion_address.rsplit(".", 1)[0] + ".250"
    blocks = (lab.inventory / "ssh_config").read_text(encoding="utf-8").split("\nHost ")
    patched = []
    for block in blocks:
        if block.split("\n", 1)[0].strip() == host or block.startswith(f"Host {host}\n"):
            lines = [(f"    HostName {nowhere}" if line.strip().startswith("HostName") else line)
                     for line in block.splitlines()]
            block = "\n".join(lines) + ("\n" if block.endswith("\n") else "")
        patched.append(block)
    (copy / "ssh_config").write_text("\nHost ".join(patched), encoding="utf-8")
    return copy, host


def test_unreachable_host_is_an_error_never_a_pass(hardened_lab: Lab, unreachable_inventory: tuple[Path, str],
                                                   tmp_path: Path) -> None:
    inventory, host = unreachable_inventory
    run = conform(hardened_lab, tmp_path, "--limit", host, inventory=inventory)
    statuses = set(run.statuses(host).values())
    assert run.code == 2, run.stdout[-2000:]
    assert "pass" not in statuses and "error" in statuses, statuses
    assert statuses <= {"error", "not-applicable"}, statuses
    assert "unreachable" in run.row(host, "OSH-002")["message"]
