"""`socle harden` on the lab's real VMs: dry run, converge, idempotence, nobody locked out, pre-flights.

The order matters and is kept by module-scoped fixtures: a check-mode run on a host first (before
anything changed it when the lab is fresh), then the converge of the whole fleet, then a second run
that must change nothing, then the lock-out checks.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

SOCLE = [sys.executable, "-m", "ght_socle.cli"]
HARDEN_TIMEOUT = 3600


def harden(lab: Any, *args: str) -> tuple[int, dict[str, Any], str]:
    """Run `socle harden --format json` on the lab inventory: (exit status, JSON result, stderr)."""
    completed = subprocess.run([*SOCLE, "harden", "--inventory", str(lab.inventory), "--format", "json", *args],
                               capture_output=True, text=True, timeout=HARDEN_TIMEOUT, check=False,
                               env={**os.environ, **lab.env})
    try:
        data = json.loads(completed.stdout)
    except json.JSONDecodeError:
        raise AssertionError(f"socle harden printed no JSON (exit {completed.returncode}):\n"
                             f"{completed.stdout[-2000:]}\n{completed.stderr[-4000:]}") from None
    return completed.returncode, data, completed.stderr


def summary(data: dict[str, Any]) -> str:
    failures = "\n".join(f"  {f['host']} at {f['task']!r}: {f['message']}" for f in data.get("failures", []))
    return json.dumps(data.get("hosts"), indent=1) + "\n" + failures


def sha256_of(lab: Any, host: str, path: str) -> str:
    result = lab.run(host, f"sha256sum {path}", sudo=True)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()[0]


@pytest.fixture(scope="module")
def check_mode_run(lab: Any) -> tuple[int, dict[str, Any], str]:
    # One host keeps the cost of a whole extra run away from the suite; on a fresh lab it has never
    # been hardened, which is the case check mode must survive (files and units not there yet).
    return harden(lab, "--check", "--diff", "--limit", lab.group("dpi_app")[-1] if lab.group("dpi_app")
                  else lab.hosts[-1])


@pytest.fixture(scope="module")
def first_run(lab: Any, check_mode_run: tuple[int, dict[str, Any], str]) -> tuple[int, dict[str, Any], str]:
    return harden(lab)


@pytest.fixture(scope="module")
def second_run(lab: Any, first_run: tuple[int, dict[str, Any], str]) -> tuple[int, dict[str, Any], str]:
    assert first_run[0] == 0, "the first converge failed; idempotence cannot be judged:\n" + summary(first_run[1])
    return harden(lab)


def test_check_mode_runs_cleanly(check_mode_run: tuple[int, dict[str, Any], str]) -> None:
    code, data, stderr = check_mode_run
    assert code == 0, f"--check --diff failed:\n{summary(data)}\n{stderr[-3000:]}"
    assert data["check_mode"] is True


def test_fleet_converges_without_failed_or_unreachable_host(lab: Any,
                                                            first_run: tuple[int, dict[str, Any], str]) -> None:
    code, data, stderr = first_run
    assert code == 0, f"converge failed:\n{summary(data)}\n{stderr[-3000:]}"
    assert set(lab.hosts) <= set(data["hosts"]), f"hosts missing from the run: {set(lab.hosts) - set(data['hosts'])}"
    for host in lab.hosts:
        stats = data["hosts"][host]
        assert stats["failed"] == 0 and stats["unreachable"] == 0, f"{host}: {stats}"
        assert stats["ok"] > 20, f"{host}: only {stats['ok']} tasks ran: {stats}"


def test_the_converge_ends_with_a_first_backup_and_restore_test_on_record(
        lab: Any, first_run: tuple[int, dict[str, Any], str]) -> None:
    # Right after the first converge (before the second run gives the background any time): a
    # conformance run at this point must find a backup (BCK-007) and a restore test (BCK-006).
    assert first_run[0] == 0, "the first converge failed:\n" + summary(first_run[1])
    servers = lab.group("linux_servers")
    assert servers, "the lab has no Linux server"
    for host in servers:
        result = lab.run(host, "test -s /var/lib/ght-backup/last-backup && test -s /var/lib/ght-backup/"
                               "last-restore-test && systemctl is-active ght-restore-test.service", sudo=True)
        assert result.stdout.strip() == "inactive", f"{host}: {result.stdout}{result.stderr}"


def test_second_run_changes_nothing(lab: Any, second_run: tuple[int, dict[str, Any], str]) -> None:
    code, data, stderr = second_run
    assert code == 0, f"second run failed:\n{summary(data)}\n{stderr[-3000:]}"
    changed = {host: data["hosts"][host]["changed"] for host in lab.hosts if data["hosts"][host]["changed"]}
    changed_tasks = [line for line in stderr.splitlines() if line.strip().endswith(": changed")]
    assert not changed, f"not idempotent: {changed}\n" + "\n".join(changed_tasks[:40])


def test_admin_still_reaches_every_host_through_the_bastion(lab: Any,
                                                            second_run: tuple[int, dict[str, Any], str]) -> None:
    for host in lab.hosts:
        result = lab.run(host, "id -un && sudo -n true && echo sudo-ok")
        assert result.returncode == 0, f"{host}: ssh through the bastion failed after hardening: {result.stderr}"
        assert result.stdout.split() == ["ghtadmin", "sudo-ok"], f"{host}: {result.stdout!r}"


def test_hardening_is_in_place(lab: Any, second_run: tuple[int, dict[str, Any], str]) -> None:
    """A few end results read on the hosts themselves (the conformance suites check every rule)."""
    host = lab.group("dpi_app")[0] if lab.group("dpi_app") else lab.hosts[0]
    sshd = lab.run(host, "sshd -T | grep -E '^(permitrootlogin|passwordauthentication|allowgroups) '", sudo=True)
    assert "permitrootlogin no" in sshd.stdout and "passwordauthentication no" in sshd.stdout, sshd.stdout
    firewall = lab.run(host, "nft list chain inet ght_filter input", sudo=True)
    assert "policy drop" in firewall.stdout, firewall.stdout + firewall.stderr
    audit = lab.run(host, "auditctl -s", sudo=True)
    assert "enabled 2" in audit.stdout or "enabled 1" in audit.stdout, audit.stdout


def test_sshd_preflight_refuses_a_lockout_and_keeps_the_old_configuration(
        lab: Any, second_run: tuple[int, dict[str, Any], str]) -> None:
    host = lab.group("dpi_app")[0] if lab.group("dpi_app") else lab.hosts[0]
    before = sha256_of(lab, host, "/etc/ssh/sshd_config")
    code, data, _stderr = harden(lab, "--limit", host, "--tags", "pssi_adm_003",
                                 "-e", "sshd_allow_groups=[nobody-would-match]")
    assert code == 1, f"a configuration excluding the administrator was not refused:\n{summary(data)}"
    messages = [f["message"] for f in data["failures"] if f["host"] == host]
    assert any("PRE-FLIGHT REFUSED" in m and "AllowGroups" in m for m in messages), messages
    assert sha256_of(lab, host, "/etc/ssh/sshd_config") == before, "the refused configuration was written"
    assert lab.run(host, "true").returncode == 0, "the administrator lost SSH access"


def test_firewall_preflight_refuses_to_drop_the_admin_source(lab: Any,
                                                             second_run: tuple[int, dict[str, Any], str]) -> None:
    before = sha256_of(lab, lab.bastion, "/etc/nftables.conf")
    # Without its extra admin source the bastion's ruleset would refuse the next connection from the
    # lab's port forward: the pre-flight must stop it.
    code, data, _stderr = harden(lab, "--limit", lab.bastion, "--tags", "pssi_net_011",
                                 "-e", "host_firewall_extra_admin_sources=[]")
    assert code == 1, summary(data)
    assert any("PRE-FLIGHT REFUSED" in f["message"] for f in data["failures"]), summary(data)
    assert sha256_of(lab, lab.bastion, "/etc/nftables.conf") == before
    assert lab.run(lab.bastion, "true").returncode == 0

