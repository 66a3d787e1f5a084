"""`socle conform` on unhardened VMs: many PSSI rules fail, each with the evidence observed on the host.

Runs before the hardening (test_30). When the session lab may already have been hardened (it was
up before this session and `socle harden` ran since it was created), a throwaway lab holding the
bastion alone is booted instead, so the check always sees a VM exactly as the golden image made it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from conform_lab import ConformRun, conform, hardened_since_boot
from lab_support import Lab, lab_from_status, leftover_qemu, socle

# Rules an unhardened Debian 12 VM of the golden image cannot meet, with a piece of the evidence
# the report must carry: what the host really shows.
FRESH_FAILURES = {
    "ADM-003": "sshd -T: ",            # default sshd: no AllowGroups, root key login, no VERBOSE
    "OSH-002": "sysctl ",              # kernel defaults (kptr_restrict, redirects, ...)
    "OSH-008": "TMOUT",                # no idle session timeout
    "NET-011": "nft",                  # no default-drop host firewall
    "IAM-002": "pwquality",            # no password quality module
    "LOG-003": "rsyslog",              # logs not forwarded over TLS
    "LOG-009": "ght-reverify.timer",   # no re-verification between two conformance runs
}
# Groups whose hosts meet a rule of FRESH_FAILURES by design: a collector keeps its own logs locally
# (LOG-003 asks it for no forwarding, and the golden image already has rsyslog with its TLS module).
MET_BY_DESIGN = {"LOG-003": "log_collector"}


@pytest.fixture(scope="module")
def fresh_lab(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    if lab.booted_here or not hardened_since_boot(lab):
        yield lab
        return
    state = tmp_path_factory.mktemp("fresh-lab") / "state"
    env = {"SOCLE_STATE": str(state)}
    try:
        up = socle("lab", "up", "--hosts", lab.bastion, env=env)
        assert up.returncode == 0, up.stderr[-3000:]
        yield lab_from_status(state / "lab", booted_here=True, env=env)
    finally:
        down = socle("lab", "down", env=env)
        assert down.returncode == 0, down.stderr
        assert leftover_qemu(state / "lab") == []


@pytest.fixture(scope="module")
def fresh_run(fresh_lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> ConformRun:
    return conform(fresh_lab, tmp_path_factory.mktemp("conform-fresh"))


def test_fresh_fleet_fails_with_findings_exit_status(fresh_run: ConformRun) -> None:
    # 1: findings. 2 would mean a check could not run, which a reachable fresh VM must not cause.
    assert fresh_run.code == 1, f"exit {fresh_run.code}\n{fresh_run.explain()}\n{fresh_run.stderr[-2000:]}"


def test_every_host_is_reached_and_no_check_errors(fresh_lab: Lab, fresh_run: ConformRun) -> None:
    errors = [row for row in fresh_run.rows.values() if row["status"] == "error"]
    assert not errors, "checks that could not run:\n" + "\n".join(f"{r['host']} {r['rule_id']}: {r['message']}"
                                                                    for r in errors)
    assert {host for host, _ in fresh_run.rows} == set(fresh_lab.hosts)


@pytest.mark.parametrize(("rule_id", "evidence"), sorted(FRESH_FAILURES.items()))
def test_fresh_vm_fails_rule_with_evidence(fresh_lab: Lab, fresh_run: ConformRun, rule_id: str,
                                           evidence: str) -> None:
    exempt = set(fresh_lab.group(MET_BY_DESIGN[rule_id])) if rule_id in MET_BY_DESIGN else set()
    checked = [host for host in fresh_lab.hosts if host not in exempt]
    assert checked, f"no host of the fresh lab is expected to fail {rule_id}"
    for host in checked:
        row = fresh_run.row(host, rule_id)
        if row["status"] == "not-applicable":
            continue
        assert row["status"] == "fail", f"{host} {rule_id}: {row['status']} {row['message']}"
        assert row["evidence"], f"{host} {rule_id}: a failure without evidence"
        assert any(evidence in line for line in row["evidence"]), f"{host} {rule_id}: {row['evidence']}"
        assert row["severity"] and row["message"]


def test_many_rules_fail_on_each_fresh_host(fresh_lab: Lab, fresh_run: ConformRun) -> None:
    for host in fresh_lab.hosts:
        failing = sorted(rule for rule, status in fresh_run.statuses(host).items() if status == "fail")
        assert len(failing) >= 15, f"{host}: only {failing} fail on an unhardened VM"


def test_rules_outside_a_hosts_groups_are_not_applicable(fresh_lab: Lab, fresh_run: ConformRun) -> None:
    bastion = fresh_lab.bastion
    assert fresh_run.row(bastion, "LOG-006")["status"] == "not-applicable"  # log collectors only
    assert fresh_run.row(bastion, "WKS-003")["status"] == "not-applicable"  # workstations only
    assert fresh_run.row(bastion, "ADM-002")["status"] == "fail"  # bastions only, and it is not hardened


def test_summary_names_the_role_and_tag_to_rerun(fresh_lab: Lab, fresh_run: ConformRun) -> None:
    # With --output FILE the summary goes to stdout.
    assert f"socle harden --inventory {fresh_lab.inventory} --limit {fresh_lab.bastion} --tags " in fresh_run.stdout
    assert "pssi_adm_003" in fresh_run.stdout
    assert "Report: " in fresh_run.stdout


def test_html_report_of_the_fresh_fleet(fresh_lab: Lab, tmp_path: Path) -> None:
    report = tmp_path / "fresh.html"
    completed = socle("conform", "--inventory", str(fresh_lab.inventory), "--limit", fresh_lab.bastion,
                      "--format", "html", "--output", str(report), env=fresh_lab.env)
    assert completed.returncode == 1, completed.stderr[-2000:]
    html = report.read_text(encoding="utf-8")
    assert "ADM-003" in html and "sshd -T" in html and "pssi_adm_003" in html
    assert f"Report: {report}" in completed.stdout
