"""Conformance waivers: validity up to the UTC expiry date, expired waivers back to failures, bad files."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from ght_socle.catalog import default_catalog
from ght_socle.conform.results import CheckResult
from ght_socle.conform.waivers import apply_waivers, load_waivers
from ght_socle.errors import ConfigError
from ght_socle.paths import project_root

VALID = """\
waivers:
  - id: W-1
    hosts: ["gw-bio-*", "app-02"]
    rule: OSH-004
    justification: "Biomedical gateway speaks HL7 on a fixed port the vendor cannot change."
    approver: "RSSI, J. Martin"
    expires: 2027-01-31
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "waivers.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def result(host: str, rule_id: str = "OSH-004", status: str = "fail") -> CheckResult:
    return CheckResult(host=host, rule_id=rule_id, status=status, severity="high",
                       message="ss: tcp/2575 listening on 0.0.0.0", evidence=["ss: tcp/2575 listening on 0.0.0.0"])


def test_valid_waiver_turns_matching_failures_into_waived(tmp_path: Path) -> None:
    waivers = load_waivers(write(tmp_path, VALID), default_catalog())
    results = [result("gw-bio-01"), result("app-02"), result("app-01"), result("gw-bio-01", "OSH-002")]
    unused = apply_waivers(results, waivers, today=dt.date(2027, 1, 31))  # the expiry day is still valid
    assert [r.status for r in results] == ["waived", "waived", "fail", "fail"]
    assert results[0].waiver is not None and results[0].waiver.approver == "RSSI, J. Martin"
    assert "waived until 2027-01-31" in results[0].message
    assert results[0].evidence == ["ss: tcp/2575 listening on 0.0.0.0"]  # the evidence stays in the report
    assert unused == []


def test_expired_waiver_is_a_failure_again_saying_when_it_expired(tmp_path: Path) -> None:
    waivers = load_waivers(write(tmp_path, VALID), default_catalog())
    results = [result("gw-bio-01")]
    apply_waivers(results, waivers, today=dt.date(2027, 2, 1))
    assert results[0].status == "fail"
    assert results[0].message.startswith("waiver W-1 expired on 2027-01-31")
    assert results[0].waiver is not None and results[0].waiver.expired


def test_waiver_scoped_to_evidence_does_not_hide_a_new_problem_of_the_same_rule(tmp_path: Path) -> None:
    waivers = load_waivers(write(tmp_path, VALID + '    evidence: ["tcp/2575"]\n'), default_catalog())
    accepted = result("gw-bio-01")
    drifted = result("gw-bio-01")
    drifted.evidence.append("ss: tcp/8099 listening on 0.0.0.0 python3")
    apply_waivers([accepted, drifted], waivers, today=dt.date(2026, 12, 1))
    assert accepted.status == "waived"
    assert drifted.status == "fail"
    assert drifted.message == "not covered by waiver W-1: ss: tcp/8099 listening on 0.0.0.0 python3"


def test_errors_and_passes_are_never_waived(tmp_path: Path) -> None:
    waivers = load_waivers(write(tmp_path, VALID), default_catalog())
    results = [result("app-02", status="error"), result("gw-bio-01", status="pass")]
    apply_waivers(results, waivers, today=dt.date(2026, 12, 1))
    assert [r.status for r in results] == ["error", "pass"]


def test_waiver_covering_no_failure_of_the_checked_hosts_is_reported_unused(tmp_path: Path) -> None:
    waivers = load_waivers(write(tmp_path, VALID), default_catalog())
    today = dt.date(2026, 12, 1)
    assert apply_waivers([result("app-02", status="pass")], waivers, today=today) == ["W-1"]  # gap closed
    assert apply_waivers([result("app-01")], waivers, today=today) == []  # its hosts were not checked (--limit)


@pytest.mark.parametrize(("change", "where"), [
    (("    approver: \"RSSI, J. Martin\"\n", ""), "waiver #1 (W-1), key approver"),
    (("2027-01-31", "31/01/2027"), "waiver #1 (W-1), key expires"),
    (("2027-01-31", "2027-01-31T10:00:00"), "waiver #1 (W-1), key expires"),
    (("rule: OSH-004", "rule: OSH-999"), "waiver #1 (W-1), key rule"),
    (("rule: OSH-004", "rule: GOV-001"), "waiver #1 (W-1), key rule"),
    (("    rule:", "    colour: red\n    rule:"), "waiver #1 (W-1), key colour"),
])
def test_malformed_waiver_names_file_entry_and_key(tmp_path: Path, change: tuple[str, str], where: str) -> None:
    path = write(tmp_path, VALID.replace(*change))
    with pytest.raises(ConfigError) as error:
        load_waivers(path, default_catalog())
    line = str(error.value)
    assert str(path) in line and where in line
    assert "\n" not in line


def test_duplicated_waiver_id_is_rejected(tmp_path: Path) -> None:
    body = VALID.split("waivers:\n", 1)[1]
    with pytest.raises(ConfigError, match=r"waiver #2 \(W-1\), key id: duplicated"):
        load_waivers(write(tmp_path, "waivers:\n" + body + body), default_catalog())


def test_lab_waivers_file_is_valid_and_documents_approver_and_expiry() -> None:
    waivers = load_waivers(project_root() / "inventories" / "lab" / "waivers.yaml", default_catalog())
    by_rule = {w.rule: w for w in waivers.entries}
    assert "WKS-005" in by_rule
    assert by_rule["WKS-005"].approver and by_rule["WKS-005"].expires > dt.date(2026, 1, 1)
