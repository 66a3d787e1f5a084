"""The host re-verification agent (PSSI LOG-009): posture, drift, signed summaries and their verification.

Signing goes through the real ``openssl`` CLI, as on the hosts; keys and certificates are made here.
"""

from __future__ import annotations

import base64
import copy
import datetime
import json
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from ght_socle.reverify import agent_script
from ght_socle.reverify.scripts import host_script
from ght_socle.reverify.summary import (
    SummaryRefused,
    last_summary_problems,
    read_collector_dir,
    verify_line,
)

FACTS: dict[str, Any] = {
    "format": 1,
    "errors": {},
    "sysctl": {"fs.protected_fifos": "2", "kernel.kptr_restrict": "2", "fs.file-nr": "1024 0 9223372036854775807"},
    "sysctl_d": [["/etc/sysctl.d", "90-ght-hardening.conf", "fs.protected_fifos = 2\n-kernel/kptr_restrict=2\n"
                  "net.ipv4.conf.*.rp_filter = 1 # glob\n"],
                 ["/usr/lib/sysctl.d", "99-protect-links.conf", "fs.protected_fifos = 1\n"]],
    "files": {"/etc/shadow": {"exists": True, "type": "file", "mode": "0640", "owner": "root", "group": "shadow",
                              "size": 900, "mtime": 1},
              "/var/lib/ght-backup/repository-initialised": {"exists": True, "mode": "0600", "mtime": 5}},
    "texts": {"/etc/login.defs": "UMASK 027\n", "/var/lib/ght-backup/last-backup": "2026-12-01T00:00:00Z\n"},
    "dirs": {"/etc/sudoers.d": {"ght-admins": {"mode": "0440", "owner": "root", "group": "root"}},
             "/var/backups/ght": {"one": {"mode": "0600", "owner": "root", "group": "root"}}},
    "sshd": {"installed": True, "options": {"permitrootlogin": ["no"], "macs": ["hmac-sha2-512-etm@openssh.com"]}},
    "units": {"show": {"ssh.service": {"Id": "ssh.service", "ActiveState": "active", "UnitFileState": "enabled",
                                       "SubState": "running"}}},
    "mounts": {"live": [{"target": "/", "fstype": "ext4", "options": "rw,relatime"},
                        {"target": "/run/user/1000", "fstype": "tmpfs", "options": "rw,nosuid"}],
               "fstab": [{"target": "/", "fstype": "ext4", "options": "defaults"}]},
    "nft": {"installed": True, "ruleset": [{"rule": {"handle": 4, "expr": [{"counter": {"packets": 10, "bytes": 800}},
                                                                          {"accept": None}]}}]},
    "nft_file": {"exists": True, "loads": True, "ruleset": []},
    "audit": {"installed": True, "status": {"enabled": "2", "backlog": "0"}, "rules": ["-w /etc/shadow -p wa"]},
    "apparmor": {"kernel_enabled": "Y", "loaded": {"/usr/sbin/chronyd": "enforce"}},
    "accounts": {"users": [{"name": "admin", "uid": 1000, "home": "/home/admin", "shell": "/bin/bash"}],
                 "groups": [{"name": "ght-admins", "gid": 1001, "members": ["admin"]}],
                 "shadow": {"admin": {"scheme": "$y$", "locked": False, "max_days": "90"}}},
    "packages": {"openssh-server": "1:9.2p1-2+deb12u3"},
    "sockets": [{"proto": "tcp", "address": "0.0.0.0", "port": "22", "process": "sshd"}],
    "special_files": {"roots": ["/"], "files": {"/usr/bin/sudo": {"mode": "4755", "owner": "root", "group": "root"}}},
    "system": {"time": 1, "modprobe": {"usb_storage": {"rc": 0, "output": "install /bin/false"}}},
}


def drift_between(before: dict[str, Any], after: dict[str, Any]) -> tuple[list[str], list[str]]:
    return agent_script.compare(agent_script.posture(before), agent_script.posture(after))


def test_the_same_facts_show_no_drift() -> None:
    assert drift_between(FACTS, copy.deepcopy(FACTS)) == ([], [])


def test_what_moves_by_itself_is_not_drift() -> None:
    later = copy.deepcopy(FACTS)
    later["sysctl"]["fs.file-nr"] = "2048 0 9223372036854775807"  # not set by any sysctl.d file
    later["files"]["/etc/shadow"].update(size=950, mtime=2)
    later["files"]["/var/lib/ght-backup/repository-initialised"]["mtime"] = 6
    later["files"]["/var/lib/apt/periodic/update-success-stamp"] = {"exists": True, "mode": "0644"}  # apt-daily ran
    later["texts"]["/var/lib/ght-backup/last-backup"] = "2026-12-02T00:00:00Z\n"
    later["dirs"]["/var/backups/ght"]["two"] = {"mode": "0600", "owner": "root", "group": "root"}
    later["nft"]["ruleset"][0]["rule"]["expr"][0]["counter"] = {"packets": 99, "bytes": 9999}
    later["nft"]["ruleset"][0]["rule"]["handle"] = 7
    later["mounts"]["live"][1]["options"] = "rw,nosuid,nodev"  # a user's runtime dir, not in fstab
    later["packages"]["openssh-server"] = "1:9.2p1-2+deb12u4"  # upgraded: the rules it touches say more
    later["audit"]["status"]["backlog"] = "3"
    later["system"]["time"] = 99
    assert drift_between(FACTS, later) == ([], [])


def test_a_kernel_parameter_reset_at_runtime_is_drift() -> None:
    later = copy.deepcopy(FACTS)
    later["sysctl"]["fs.protected_fifos"] = "1"
    assert drift_between(FACTS, later) == (["sysctl: fs.protected_fifos (2 -> 1)"], [])


def test_keys_of_sysctl_files_are_read_as_systemd_reads_them() -> None:
    keys = agent_script.sysctl_keys(FACTS["sysctl_d"])
    assert keys == {"fs.protected_fifos", "kernel.kptr_restrict"}


@pytest.mark.parametrize(("change", "expected"), [
    (lambda f: f["accounts"]["groups"][0]["members"].append("intruder"),
     "accounts: group ght-admins (admin -> admin,intruder)"),
    (lambda f: f["sshd"]["options"].update(macs=["hmac-md5"]),
     "sshd: macs (hmac-sha2-512-etm@openssh.com -> hmac-md5)"),
    (lambda f: f["units"]["show"]["ssh.service"].update(UnitFileState="disabled"),
     "units: ssh.service (active/enabled -> active/disabled)"),
    (lambda f: f["apparmor"]["loaded"].clear(), "apparmor: profile /usr/sbin/chronyd (enforce -> absent)"),
    (lambda f: f["packages"].update(telnetd="0.17-44"), "packages: telnetd (absent -> installed)"),
    (lambda f: f["sockets"].append({"proto": "tcp", "address": "0.0.0.0", "port": "23", "process": "inetd"}),
     "sockets: tcp 0.0.0.0:23 (absent -> listening)"),
    (lambda f: f["dirs"]["/etc/sudoers.d"].update(local={"mode": "0440", "owner": "root", "group": "root"}),
     "dirs: /etc/sudoers.d/local (absent -> 0440:root:root)"),
])
def test_changes_to_enforced_state_are_named(change: Any, expected: str) -> None:
    later = copy.deepcopy(FACTS)
    change(later)
    drift, errors = drift_between(FACTS, later)
    assert drift == [expected] and errors == []


def test_rules_and_boot_files_drift_by_digest() -> None:
    later = copy.deepcopy(FACTS)
    later["audit"]["rules"] = []
    later["sysctl_d"][0][2] = "fs.protected_fifos = 2\n"
    drift, _ = drift_between(FACTS, later)
    assert [item.split(" (")[0] for item in drift] == [
        "sysctl: kernel.kptr_restrict", "sysctl_d: /etc/sysctl.d/90-ght-hardening.conf", "audit: rules"]


def test_a_section_that_could_not_be_gathered_is_an_error_not_a_pass() -> None:
    later = copy.deepcopy(FACTS)
    later["errors"] = {"nft": "RuntimeError: nft exited 1"}
    later["sysctl"] = None
    later["errors"]["sysctl"] = "RuntimeError: sysctl not found"
    _drift, errors = drift_between(FACTS, later)
    assert errors == ["sysctl", "nft"]
    assert agent_script.compare({}, agent_script.posture(FACTS))[1][0] == "sysctl (no reference)"


# -- signatures ---------------------------------------------------------------------------------------

def make_ca(tmp: Path, name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP384R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    (tmp / "ca.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key, cert


def make_host(tls_dir: Path, host: str, ca: tuple[Any, x509.Certificate], use_rsa: bool = False) -> None:
    ca_key, ca_cert = ca
    key: Any = rsa.generate_private_key(65537, 2048) if use_rsa else ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
            .issuer_name(ca_cert.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=30))
            .sign(ca_key, hashes.SHA256()))
    tls_dir.mkdir(parents=True, exist_ok=True)
    (tls_dir / "host.key").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                         serialization.PrivateFormat.PKCS8,
                                                         serialization.NoEncryption()))
    (tls_dir / "host.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))


SUMMARY = {"host": "app-01", "time": "2026-12-02T10:00:00+00:00", "catalog": "1.1.0", "status": "drift",
           "baseline": "2026-12-01T10:00:00+00:00", "errors": [], "drift_count": 1,
           "drift": ["sysctl: fs.protected_fifos (2 -> 1)"]}


@pytest.mark.parametrize("use_rsa", [False, True], ids=["ecdsa", "rsa"])
def test_a_signed_summary_verifies_against_the_ca(tmp_path: Path, use_rsa: bool) -> None:
    ca = make_ca(tmp_path, "GHT lab CA")
    make_host(tmp_path / "app-01", "app-01", ca, use_rsa)
    line = agent_script.summary_line(SUMMARY, str(tmp_path / "app-01"))
    summary = verify_line(f"2026-12-02T10:00:01+00:00 app-01 ght-reverify: {line}", ca[1])
    assert (summary.host, summary.status, summary.drift) == ("app-01", "drift", SUMMARY["drift"])


def test_a_tampered_foreign_or_misattributed_summary_is_refused(tmp_path: Path) -> None:
    ca = make_ca(tmp_path, "GHT lab CA")
    make_host(tmp_path / "app-01", "app-01", ca)
    line = agent_script.summary_line(SUMMARY, str(tmp_path / "app-01"))
    payload = line.split(" payload=")[1].split(" ")[0]
    edited = json.dumps(dict(SUMMARY, status="ok", drift=[], drift_count=0), sort_keys=True, separators=(",", ":"))
    with pytest.raises(SummaryRefused, match="bad signature"):
        verify_line(line.replace(payload, base64.b64encode(edited.encode()).decode()), ca[1])
    (tmp_path / "other").mkdir()
    other_ca = make_ca(tmp_path / "other", "Another CA")
    with pytest.raises(SummaryRefused, match="not issued by the GHT's CA"):
        verify_line(line, other_ca[1])
    make_host(tmp_path / "db-01", "db-01", ca)
    stolen = agent_script.summary_line(SUMMARY, str(tmp_path / "db-01"))
    with pytest.raises(SummaryRefused, match="summary for 'app-01' signed by 'db-01'"):
        verify_line(stolen, ca[1])
    with pytest.raises(SummaryRefused, match="not a GHT-REVERIFY"):
        verify_line("sshd[42]: Accepted publickey for admin", ca[1])


def test_the_collector_reading_keeps_the_newest_trusted_summary(tmp_path: Path) -> None:
    ca = make_ca(tmp_path, "GHT lab CA")
    make_host(tmp_path / "tls", "app-01", ca)
    storage = tmp_path / "remote" / "app-01"
    storage.mkdir(parents=True)
    older = agent_script.summary_line(dict(SUMMARY, time="2026-12-02T04:00:00+00:00", status="ok", drift=[],
                                           drift_count=0), str(tmp_path / "tls"))
    newer = agent_script.summary_line(SUMMARY, str(tmp_path / "tls"))
    (storage / "2026-12-02.log").write_text(f"x ght-reverify: {newer}\nx sshd: hello\nx ght-reverify: {older}\n"
                                            f"x ght-reverify: {newer.replace('sig=', 'sig=AAAA')}\n")
    reading = read_collector_dir(tmp_path / "remote", ca[1])
    assert reading.latest["app-01"].status == "drift"
    assert len(reading.refused) == 1 and reading.refused[0][0].endswith("2026-12-02.log:4")


def test_the_last_summary_rule_evidence(tmp_path: Path) -> None:
    _key, ca_cert = make_ca(tmp_path, "GHT lab CA")
    make_host(tmp_path / "tls", "app-01", (_key, ca_cert))
    ca_pem = (tmp_path / "ca.crt").read_text()
    shipped = datetime.datetime.fromisoformat(SUMMARY["time"]).timestamp()
    recorded = json.dumps(dict(SUMMARY, line=agent_script.summary_line(SUMMARY, str(tmp_path / "tls"))))
    day = datetime.timedelta(hours=12, minutes=30)
    assert last_summary_problems(recorded, ca_pem, shipped + 3600, day) == []
    assert "older than" in last_summary_problems(recorded, ca_pem, shipped + 86400, day)[0]
    assert "absent" in last_summary_problems(None, ca_pem, shipped, day)[0]
    assert "CA certificate" in last_summary_problems(recorded, None, shipped, day)[0]
    failed = dict(SUMMARY, status="error", errors=["nft"])
    recorded = json.dumps(dict(failed, line=agent_script.summary_line(failed, str(tmp_path / "tls"))))
    assert last_summary_problems(recorded, ca_pem, shipped, day) == ["last re-verification could not run: nft"]


def test_the_installed_scripts_come_from_the_library() -> None:
    gather = host_script("gather", {"LOG-006": {"collector_storage_dir": "/srv/logs"}})
    assert gather.startswith("REQUEST = ") and '"/srv/logs"' in gather.splitlines()[0]
    compile(gather, "gather.py", "exec")
    assert host_script("agent").startswith('"""Re-verification agent')
    with pytest.raises(ValueError, match="unknown host script"):
        host_script("other")


def test_baseline_then_runs_ship_ok_drift_and_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The agent's commands end to end on this machine, with a recorded fact document standing for the host."""
    ca = make_ca(tmp_path, "GHT lab CA")
    make_host(tmp_path / "tls", socket.gethostname(), ca)
    facts_file, shipped = tmp_path / "facts.json", tmp_path / "shipped.log"
    facts_file.write_text(json.dumps(FACTS))
    gatherer = tmp_path / "gather.py"
    gatherer.write_text(f"import sys; sys.stdout.write(open({str(facts_file)!r}).read())\n")
    monkeypatch.setattr(agent_script, "GATHER", str(gatherer))
    # The real shipping is syslog to the log zone (tests/lab); here the message lands in a file.
    monkeypatch.setattr(agent_script, "SHIP", ["sh", "-c", f'printf "%s\\n" "$1" >> {shipped}', "ship"])
    common = ["--state-dir", str(tmp_path / "state"), "--tls-dir", str(tmp_path / "tls"), "--catalog", "1.1.0"]

    assert agent_script.main([*common, "baseline"]) == 0
    assert oct((tmp_path / "state" / "baseline.json").stat().st_mode & 0o777) == "0o600"
    assert agent_script.main([*common, "run"]) == 0
    facts_file.write_text(json.dumps(dict(FACTS, sysctl=dict(FACTS["sysctl"], **{"fs.protected_fifos": "1"}))))
    assert agent_script.main([*common, "run"]) == 0
    facts_file.write_text("not json")
    assert agent_script.main([*common, "run"]) == 1

    summaries = [verify_line(line, ca[1]) for line in shipped.read_text().splitlines()]
    assert [s.status for s in summaries] == ["ok", "drift", "error"]
    assert summaries[1].drift == ["sysctl: fs.protected_fifos (2 -> 1)"] and summaries[1].catalog == "1.1.0"
    assert summaries[2].errors[0].startswith("JSONDecodeError")
    recorded = json.loads((tmp_path / "state" / "last-summary.json").read_text())
    assert recorded["status"] == "error" and recorded["line"] == shipped.read_text().splitlines()[-1]


def socle(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ght_socle.cli", *args], capture_output=True, text=True, check=False)


def test_socle_reverify_reports_drift_staleness_and_refusals(tmp_path: Path) -> None:
    ca = make_ca(tmp_path, "GHT lab CA")
    now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    for host, status, age in (("app-01", "ok", 1), ("db-01", "drift", 1), ("wks-01", "ok", 30)):
        make_host(tmp_path / host, host, ca)
        summary = dict(SUMMARY, host=host, status=status, time=(now - datetime.timedelta(hours=age)).isoformat(),
                       drift=SUMMARY["drift"] if status == "drift" else [], drift_count=int(status == "drift"))
        (tmp_path / "remote" / host).mkdir(parents=True)
        (tmp_path / "remote" / host / "today.log").write_text(
            f"x ght-reverify: {agent_script.summary_line(summary, str(tmp_path / host))}\n")
    completed = socle("reverify", "--logs", str(tmp_path / "remote"), "--ca", str(tmp_path / "ca.crt"),
                      "--format", "json")
    assert completed.returncode == 1, completed.stderr
    verdicts = {row["host"]: row["verdict"] for row in json.loads(completed.stdout)["hosts"]}
    assert verdicts == {"app-01": "ok", "db-01": "drift", "wks-01": "stale"}
    for host in ("db-01", "wks-01"):
        (tmp_path / "remote" / host / "today.log").unlink()
    completed = socle("reverify", "--logs", str(tmp_path / "remote"), "--ca", str(tmp_path / "ca.crt"))
    assert completed.returncode == 0, completed.stdout
    rows = [line.split() for line in completed.stdout.splitlines()[2:]]
    assert [(row[0], row[2]) for row in rows] == [("app-01", "ok")], completed.stdout


@pytest.mark.parametrize(("args", "message"), [
    (["--logs", "/nonexistent/remote", "--ca", "ca.crt"], "--logs: not a directory"),
    (["--logs", ".", "--ca", "/nonexistent/ca.crt"], "--ca: No such file or directory"),
    (["--logs", ".", "--ca", "pyproject.toml"], "--ca: not a PEM certificate"),
])
def test_socle_reverify_bad_input_is_one_line_exit_2(args: list[str], message: str) -> None:
    completed = socle("reverify", *args)
    assert completed.returncode == 2 and completed.stdout == ""
    assert len(completed.stderr.splitlines()) == 1 and message in completed.stderr, completed.stderr
