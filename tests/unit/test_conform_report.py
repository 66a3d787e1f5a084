"""Conformance results: aggregation, score, exit codes, JSON/JUnit/HTML renderings and run diffs."""

from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from ght_socle.catalog import default_catalog
from ght_socle.conform.report import diff_runs, load_previous, print_summary, to_html, to_json, to_junit
from ght_socle.conform.results import CheckResult, HostInfo, RunReport, WaiverInfo, next_step, score
from ght_socle.errors import ConfigError


def check(host: str, rule_id: str, status: str, message: str = "", evidence: list[str] | None = None,
          enforcement: str = "mandatory") -> CheckResult:
    catalog = default_catalog()
    rule = catalog.rules[rule_id]
    return CheckResult(host=host, rule_id=rule_id, status=status, severity=rule.severity, title=rule.title,
                       message=message or status, evidence=evidence or [], remediation=rule.remediation,
                       next_step=next_step(catalog, rule_id, host, "inventories/lab"), enforcement=enforcement)


def report_of(results: list[CheckResult], unreachable: tuple[str, ...] = ()) -> RunReport:
    hosts = {r.host for r in results}
    return RunReport(results=results, catalog_version="1.0", ght="GHT Test", inventory="inventories/lab",
                     hosts={h: HostInfo(h, ["linux"], reachable=h not in unreachable, remote_commands=1)
                            for h in sorted(hosts)})


def test_exit_code_ok_findings_error() -> None:
    assert report_of([check("a", "OSH-002", "pass"), check("a", "WKS-005", "waived")]).exit_code() == 0
    assert report_of([check("a", "OSH-002", "fail"), check("a", "OSH-009", "pass")]).exit_code() == 1
    assert report_of([check("a", "OSH-002", "fail"), check("b", "OSH-002", "error")]).exit_code() == 2
    # An advisory rule's failure is reported but is not a finding for the exit status.
    assert report_of([check("a", "OSH-002", "fail", enforcement="advisory")]).exit_code() == 0


def test_score_is_weighted_by_severity_and_counts_errors_as_not_passing() -> None:
    critical_pass = check("a", "IAM-001", "pass")  # critical: weight 10
    high_fail = check("a", "OSH-002", "fail")  # high: weight 5
    low_error = check("a", "WKS-006", "error")  # low: weight 1
    waived = check("a", "WKS-005", "waived")
    assert score([critical_pass, high_fail, low_error, waived]) == round(100 * 10 / 16, 1)
    assert score([waived, check("a", "OSH-001", "not-applicable")]) is None


def test_next_step_names_the_role_tag_to_rerun() -> None:
    step = next_step(default_catalog(), "OSH-002", "app-01", "inventories/lab")
    assert step.startswith("socle harden --inventory inventories/lab --limit app-01 --tags pssi_osh_002")
    assert "baseline" in step


def test_summary_says_what_to_do_next_per_host() -> None:
    report = report_of([check("app-01", "OSH-002", "fail", "sysctl net.ipv4.ip_forward = 1, expected 0"),
                        check("app-01", "ADM-003", "fail"), check("app-02", "OSH-002", "pass"),
                        check("wks-01", "OSH-002", "error", "unreachable")], unreachable=("wks-01",))
    out = io.StringIO()
    print_summary(report, default_catalog(), out)
    text = out.getvalue()
    assert "socle harden --inventory inventories/lab --limit app-01 --tags pssi_adm_003,pssi_osh_002" in text
    assert "wks-01: unreachable" in text
    assert "sysctl net.ipv4.ip_forward = 1, expected 0" in text


def test_json_has_required_keys_and_round_trips_for_diff(tmp_path: Path) -> None:
    report = report_of([check("a", "OSH-002", "fail", evidence=["sysctl x = 1"]), check("a", "OSH-009", "pass")])
    rows = to_json(report)
    assert {"host", "rule_id", "status", "severity", "message", "evidence"} <= set(rows[0])
    path = tmp_path / "previous.json"
    path.write_text(json.dumps(rows), encoding="utf-8")
    previous = load_previous(path)
    assert [(r.host, r.rule_id, r.status) for r in previous] == [("a", "OSH-002", "fail"), ("a", "OSH-009", "pass")]


def test_diff_lists_regressions_and_fixes() -> None:
    before = [check("a", "OSH-002", "fail"), check("a", "OSH-009", "pass"), check("a", "ADM-003", "fail")]
    after = [check("a", "OSH-002", "pass"), check("a", "OSH-009", "fail", "shadow world-readable"),
             check("a", "ADM-003", "fail")]
    diff = diff_runs(before, after)
    assert [(b.rule_id if b else None, a.rule_id) for b, a in diff.regressed] == [("OSH-009", "OSH-009")]
    assert [b.rule_id for b, _ in diff.fixed] == ["OSH-002"]
    assert diff.still_failing == 1
    lines = "\n".join(diff.lines())
    assert "REGRESSED" in lines and "pass -> fail: shadow world-readable" in lines and "FIXED" in lines


@pytest.mark.parametrize(("content", "message"), [
    ("{not json", "not a JSON conformance report"),
    ('{"host": "a"}', "expected a list of results"),
    ('[{"host": "a", "status": "pass"}]', "entry #1: missing key rule_id"),
])
def test_bad_previous_report_is_one_clear_line(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "previous.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        load_previous(path)


def test_junit_has_one_testcase_per_rule_and_host_with_failures_and_errors() -> None:
    report = report_of([check("a", "OSH-002", "fail", "bad", ["ev1"]), check("a", "OSH-009", "pass"),
                        check("b", "OSH-002", "error", "unreachable"), check("b", "OSH-001", "not-applicable")])
    root = ET.fromstring(to_junit(report).split("\n", 1)[1])
    suites = {s.get("name"): s for s in root.iter("testsuite")}
    assert set(suites) == {"a", "b"}
    assert suites["a"].get("failures") == "1" and suites["b"].get("errors") == "1"
    failure = suites["a"].find("testcase/failure")
    assert failure is not None and "ev1" in (failure.text or "") and "pssi_osh_002" in (failure.text or "")
    assert len(list(root.iter("testcase"))) == 4


def test_html_report_is_self_contained_with_matrix_evidence_waivers_and_score() -> None:
    waived = check("wks-01", "WKS-005", "waived", "waived until 2027-06-30")
    waived.waiver = WaiverInfo("W-LAB-001", "RSSI du GHT", "2027-06-30", "no LUKS in the lab VM")
    report = report_of([check("app-01", "OSH-002", "fail", "bad", ["sysctl net.ipv4.ip_forward = 1 <x>"]),
                        check("app-01", "OSH-009", "pass"), waived])
    html = to_html(report, default_catalog())
    assert "<style>" in html and "<script src" not in html and "<link " not in html
    assert "sysctl net.ipv4.ip_forward = 1 &lt;x&gt;" in html  # evidence escaped
    assert "W-LAB-001" in html and "RSSI du GHT" in html and "2027-06-30" in html
    assert "--tags pssi_osh_002" in html
    assert "GHT Test" in html and "1.0" in html and report.started in html
    assert html.count('class="matrix"') == 1
