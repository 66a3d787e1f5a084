"""Conformance report renderings: terminal summary, JSON, JUnit XML, self-contained HTML; run diffs."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import jinja2

from ght_socle.catalog import SEVERITY_ORDER, Catalog
from ght_socle.conform.results import CheckResult, RunReport, score
from ght_socle.errors import ConfigError
from ght_socle.trust.yamlio import read_text

FAILING = ("fail", "error")


# -- JSON --------------------------------------------------------------------------------------
def to_json(report: RunReport) -> list[dict[str, Any]]:
    """A list of objects, one per rule × host (the format ``--diff`` reads back)."""
    rows = []
    for result in report.sorted_results():
        row = result.as_dict()
        row.update(groups=report.hosts[result.host].groups if result.host in report.hosts else [],
                   catalog_version=report.catalog_version, checked_at=report.started)
        rows.append(row)
    return rows


def load_previous(path: Path) -> list[CheckResult]:
    """Results of an earlier run (``--diff``): one clear line when the file is not such a JSON."""
    if not path.exists():
        raise ConfigError("file not found", file=path)
    try:
        data = json.loads(read_text(path))
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ConfigError(f"not a JSON conformance report ({exc})", file=path) from None
    if not isinstance(data, list):
        raise ConfigError("expected a list of results (socle conform --format json)", file=path)
    results = []
    for index, row in enumerate(data, 1):
        missing = [k for k in ("host", "rule_id", "status") if not isinstance(row, dict) or k not in row]
        if missing:
            raise ConfigError(f"missing key {missing[0]}", file=path, where=f"entry #{index}")
        results.append(CheckResult.from_dict({"severity": "", "message": "", **row}))
    return results


# -- diff --------------------------------------------------------------------------------------
@dataclass
class RunDiff:
    regressed: list[tuple[CheckResult | None, CheckResult]] = field(default_factory=list)
    fixed: list[tuple[CheckResult, CheckResult | None]] = field(default_factory=list)
    still_failing: int = 0

    def lines(self) -> list[str]:
        out = []
        for before, now in self.regressed:
            was = before.status if before else "absent"
            out.append(f"  REGRESSED {now.host:<14} {now.rule_id:<8} {was} -> {now.status}: {now.message}")
        for was_failing, after in self.fixed:
            is_ = after.status if after else "absent"
            out.append(f"  FIXED     {was_failing.host:<14} {was_failing.rule_id:<8} {was_failing.status} -> {is_}")
        return out


def diff_runs(previous: list[CheckResult], current: list[CheckResult]) -> RunDiff:
    before = {(r.host, r.rule_id): r for r in previous}
    now = {(r.host, r.rule_id): r for r in current}
    diff = RunDiff()
    for key in sorted(set(before) | set(now)):
        old, new = before.get(key), now.get(key)
        old_bad = old is not None and old.status in FAILING
        new_bad = new is not None and new.status in FAILING
        if new is not None and new_bad and not old_bad:
            diff.regressed.append((old, new))
        elif old is not None and old_bad and new is not None and not new_bad:
            diff.fixed.append((old, new))
        elif old_bad and new_bad:
            diff.still_failing += 1
    return diff


# -- terminal ----------------------------------------------------------------------------------
def next_steps(report: RunReport, catalog: Catalog) -> list[str]:
    """One command per host re-running exactly the roles' tags of its failing rules, then the rest."""
    steps = []
    for host in sorted(report.hosts):
        failing = [r for r in report.results if r.host == host and r.status == "fail"]
        tags = sorted({catalog.rules[r.rule_id].tag for r in failing
                       if r.rule_id in catalog.rules and catalog.rules[r.rule_id].checks.enforce})
        if tags:
            steps.append(f"socle harden --inventory {report.inventory} --limit {host} --tags {','.join(tags)}")
        manual = sorted({r.rule_id for r in failing if r.rule_id in catalog.rules
                         and not catalog.rules[r.rule_id].checks.enforce})
        for rule_id in manual:
            steps.append(f"{host}: {rule_id} has no role: {catalog.rules[rule_id].remediation}")
        errors = [r for r in report.results if r.host == host and r.status == "error"]
        if errors and not report.hosts[host].reachable:
            steps.append(f"{host}: unreachable; check `ssh -F {report.inventory}/ssh_config {host} sudo -n true`")
        elif errors:
            steps.append(f"{host}: {len(errors)} rule(s) could not be verified "
                         f"({', '.join(sorted(r.rule_id for r in errors))}): see the messages above")
    return steps


def print_summary(report: RunReport, catalog: Catalog, out: TextIO) -> None:
    counts = report.counts()
    overall = score(report.results)
    out.write(f"PSSI conformance — {report.ght} — catalog {report.catalog_version} — {report.started}\n")
    out.write(f"Inventory {report.inventory}: {len(report.hosts)} host(s), {len(report.rules())} rule(s), "
              f"{report.duration_seconds:.1f} s\n\n")
    out.write(f"{'HOST':<16}{'SCORE':>7}{'PASS':>6}{'FAIL':>6}{'WAIVED':>8}{'ERROR':>7}{'N/A':>6}\n")
    matrix = report.by_host()
    for host, row in matrix.items():
        host_counts = report.counts(row.values())
        host_score = score(row.values())
        out.write(f"{host:<16}{_pct(host_score):>7}{host_counts['pass']:>6}{host_counts['fail']:>6}"
                  f"{host_counts['waived']:>8}{host_counts['error']:>7}{host_counts['not-applicable']:>6}\n")
    out.write(f"{'all':<16}{_pct(overall):>7}{counts['pass']:>6}{counts['fail']:>6}{counts['waived']:>8}"
              f"{counts['error']:>7}{counts['not-applicable']:>6}\n")
    _rule_table(report, out)

    by_rule: dict[str, list[CheckResult]] = {}
    for result in report.failures():
        by_rule.setdefault(result.rule_id, []).append(result)
    if by_rule:
        out.write("\nRules not met (fail) or not verified (error):\n")
        for rule_id in sorted(by_rule, key=lambda r: (SEVERITY_ORDER.get(by_rule[r][0].severity, 9), r)):
            results = by_rule[rule_id]
            first = results[0]
            advisory = " (advisory)" if first.enforcement == "advisory" else ""
            out.write(f"  {rule_id} [{first.severity}{advisory}] {first.title}\n")
            for result in results:
                out.write(f"      {result.status:<5} {result.host:<14} {result.message}\n")
    waived = [r for r in report.sorted_results() if r.status == "waived"]
    if waived:
        out.write("\nWaived:\n")
        for result in waived:
            assert result.waiver is not None
            out.write(f"  {result.host:<14} {result.rule_id}  {result.waiver.id}, "
                      f"approved by {result.waiver.approver}, expires {result.waiver.expires}\n")
    if report.unused_waivers:
        out.write(f"\nWaivers matching no failure: {', '.join(report.unused_waivers)}\n")
    steps = next_steps(report, catalog)
    out.write("\nNext:\n" if steps else "\nEvery applicable rule passes or is waived.\n")
    for step in steps:
        out.write(f"  {step}\n")


def _rule_table(report: RunReport, out: TextIO) -> None:
    """One line per rule: how many hosts pass, fail, are waived, could not be checked."""
    per_rule: dict[str, list[CheckResult]] = {}
    for result in report.results:
        per_rule.setdefault(result.rule_id, []).append(result)
    out.write(f"\n{'RULE':<9}{'SEVERITY':<10}{'PASS':>5}{'FAIL':>6}{'WAIVED':>8}{'ERROR':>7}{'N/A':>6}  TITLE\n")
    for rule_id, results in sorted(per_rule.items()):
        c = report.counts(results)
        title = results[0].title if len(results[0].title) <= 60 else results[0].title[:57] + "..."
        out.write(f"{rule_id:<9}{results[0].severity:<10}{c['pass']:>5}{c['fail']:>6}{c['waived']:>8}"
                  f"{c['error']:>7}{c['not-applicable']:>6}  {title}\n")


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}%"


# -- JUnit -------------------------------------------------------------------------------------
def to_junit(report: RunReport) -> str:
    root = ET.Element("testsuites", name="PSSI conformance", timestamp=report.started)
    for host, row in report.by_host().items():
        counts = report.counts(row.values())
        suite = ET.SubElement(root, "testsuite", name=host, tests=str(len(row)), failures=str(counts["fail"]),
                              errors=str(counts["error"]),
                              skipped=str(counts["waived"] + counts["not-applicable"]))
        for rule_id, result in sorted(row.items()):
            case = ET.SubElement(suite, "testcase", classname=f"pssi.{host}", name=f"{rule_id} {result.title}",
                                 time=f"{result.duration:.3f}")
            props = ET.SubElement(case, "properties")
            ET.SubElement(props, "property", name="severity", value=result.severity)
            ET.SubElement(props, "property", name="status", value=result.status)
            body = "\n".join(result.evidence)
            if result.status == "fail":
                ET.SubElement(case, "failure", message=result.message).text = f"{body}\n\nNext: {result.next_step}"
            elif result.status == "error":
                ET.SubElement(case, "error", message=result.message).text = body
            elif result.status in ("waived", "not-applicable"):
                ET.SubElement(case, "skipped", message=f"{result.status}: {result.message}")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


# -- HTML --------------------------------------------------------------------------------------
def to_html(report: RunReport, catalog: Catalog) -> str:
    env = jinja2.Environment(loader=jinja2.PackageLoader("ght_socle", "templates"),
                             autoescape=jinja2.select_autoescape(["html", "j2"]), undefined=jinja2.StrictUndefined)
    matrix = report.by_host()
    rules = sorted(report.rules(), key=lambda r: (list(catalog.by_domain()).index(r.split("-")[0])
                                                 if r.split("-")[0] in catalog.by_domain() else 99, r))
    rule_info = {r: catalog.rules[r] for r in rules if r in catalog.rules}
    host_scores = {h: score(row.values()) for h, row in matrix.items()}
    return env.get_template("report.html.j2").render(
        report=report, matrix=matrix, rules=rules, rule_info=rule_info, counts=report.counts(),
        overall=score(report.results), host_scores=host_scores, host_counts={h: report.counts(row.values())
                                                                            for h, row in matrix.items()},
        failures=report.failures(), waived=[r for r in report.sorted_results() if r.status == "waived"],
        steps=next_steps(report, catalog), pct=_pct, catalog_title=catalog.meta.title,
    )
