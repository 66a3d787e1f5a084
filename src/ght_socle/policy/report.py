"""Render a check result: text for people, JSON for scripts, JUnit for CI, SARIF for code scanning."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from ght_socle import __version__
from ght_socle.policy.engine import CheckResult, Finding
from ght_socle.policy.model import Policy

TOOL_NAME = "ght-socle"
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


@dataclass
class SourceFiles:
    """Files a finding can point at: the stack configuration first (where hosts and flows are declared),
    then the program. ``base`` makes SARIF paths relative to the repository checkout."""

    files: list[Path] = field(default_factory=list)
    base: Path = field(default_factory=Path.cwd)
    _lines: dict[Path, list[str]] = field(default_factory=dict, init=False, repr=False)

    def _read(self, path: Path) -> list[str]:
        if path not in self._lines:
            try:
                self._lines[path] = path.read_text(encoding="utf-8").splitlines()
            except (OSError, UnicodeDecodeError):
                self._lines[path] = []
        return self._lines[path]

    def uri(self, path: Path) -> str:
        resolved = path.resolve()
        try:
            return resolved.relative_to(self.base.resolve()).as_posix()
        except ValueError:
            return resolved.as_uri()

    def locate(self, finding: Finding) -> tuple[Path, int] | None:
        """The first line naming the resource, or what declares it (its role, its flow id), else line 1."""
        candidates = [finding.resource_name, *finding.anchors]
        for name in dict.fromkeys(candidates):
            if len(name) < 3:
                continue
            pattern = re.compile(rf"(?<![\w-]){re.escape(name)}(?![\w-])")
            for path in self.files:
                for number, line in enumerate(self._read(path), start=1):
                    if pattern.search(line):
                        return path, number
        existing = [p for p in self.files if p.exists()]
        return (existing[-1], 1) if existing else None


# --- text --------------------------------------------------------------------------------------------

def _marker(finding: Finding) -> str:
    if finding.waived:
        return "waived"
    return "FAIL" if finding.enforcement == "mandatory" else "warn"


def summary_line(result: CheckResult) -> str:
    blocking = len(result.blocking)
    advisory = sum(1 for f in result.findings if not f.waived and f.enforcement != "mandatory")
    waived = sum(1 for f in result.findings if f.waived)
    rules = len({f.rule_id for f in result.findings if not f.waived})
    return (f"{blocking} mandatory violation(s), {advisory} advisory, {waived} waived, over {rules} rule(s); "
            f"{len(result.policies)} policies on {result.resource_count} resources of stack {result.stack_name}")


def render_text(result: CheckResult) -> str:
    out: list[str] = []
    by_rule: dict[str, list[Finding]] = {}
    for finding in result.findings:
        by_rule.setdefault(finding.rule_id, []).append(finding)
    for rule_id, findings in by_rule.items():
        first = findings[0]
        out.append(f"{rule_id} [{first.severity}, {first.enforcement}] {first.title}")
        for finding in findings:
            out.append(f"  {_marker(finding):6} {finding.policy}: {finding.resource_type.rsplit(':', 1)[-1]} "
                       f"{finding.resource_name}: {finding.message}")
            if finding.waiver is not None:
                w = finding.waiver
                out.append(f"         waived until {w.expires} by {w.approver}: {w.justification}")
            else:
                out.append(f"         fix: {finding.fix}")
        out.append("")
    for name, reason in sorted(result.skipped.items()):
        out.append(f"not evaluated: {name} ({reason})")
    out.append(summary_line(result))
    if result.blocking:
        out.append("Next: fix each FAIL above (the fix line says how), re-run socle check; an accepted exception "
                   "goes to policies/waivers.yaml with its stack, a justification, an approver and an expiry date.")
    else:
        out.append("Next: the declared infrastructure meets the PSSI policies; deploy, then socle harden and "
                   "socle conform.")
    return "\n".join(out) + "\n"


# --- JSON --------------------------------------------------------------------------------------------

def render_json(result: CheckResult) -> str:
    return json.dumps([f.as_json() for f in result.findings], indent=2, ensure_ascii=False) + "\n"


# --- JUnit -------------------------------------------------------------------------------------------

def render_junit(result: CheckResult) -> str:
    """One test case per policy and resource with findings, plus one passing case per clean policy."""
    suite = ET.Element("testsuite", name=f"pssi-check.{result.stack_name}")
    cases = failures = skipped = 0
    grouped: dict[tuple[str, str], list[Finding]] = {}
    for finding in result.findings:
        grouped.setdefault((finding.policy, finding.urn), []).append(finding)
    policies_with_findings = {name for name, _ in grouped}
    for (policy_name, _urn), findings in grouped.items():
        first = findings[0]
        case = ET.SubElement(suite, "testcase", classname=f"{first.rule_id}.{policy_name}",
                             name=f"{first.resource_type} {first.resource_name}")
        cases += 1
        messages = "\n".join(f"{f.message} (fix: {f.fix})" for f in findings)
        if any(f.blocking for f in findings):
            failure = ET.SubElement(case, "failure", message=findings[0].message, type=first.severity)
            failure.text = messages
            failures += 1
        elif all(f.waived for f in findings):
            w = findings[0].waiver
            assert w is not None
            ET.SubElement(case, "skipped", message=f"waived until {w.expires} by {w.approver}: {w.justification}")
            skipped += 1
        else:
            ET.SubElement(case, "system-out").text = "advisory: " + messages
    for policy in result.policies:
        if policy.name not in policies_with_findings:
            ET.SubElement(suite, "testcase", classname=f"{policy.rule_id}.{policy.name}", name="all resources")
            cases += 1
    suite.set("tests", str(cases))
    suite.set("failures", str(failures))
    suite.set("skipped", str(skipped))
    suite.set("errors", "0")
    suite.set("time", f"{result.seconds:.3f}")
    ET.indent(suite)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"


# --- SARIF -------------------------------------------------------------------------------------------

def sarif_rule_id(rule_id: str, policy: str) -> str:
    return f"{rule_id}/{policy}"


def _fingerprint(finding: Finding) -> str:
    # Numbers in messages (counts, ports) may change without the finding changing identity.
    stable = "|".join((finding.rule_id, finding.policy, finding.urn, re.sub(r"\d+", "#", finding.message)))
    return hashlib.sha256(stable.encode()).hexdigest()


def render_sarif(result: CheckResult, sources: SourceFiles, policies: Sequence[Policy] | None = None) -> str:
    known = {p.name: p for p in (policies if policies is not None else result.policies)}
    rules: list[dict[str, Any]] = []
    index: dict[str, int] = {}
    for policy in known.values():
        finding = next((f for f in result.findings if f.policy == policy.name), None)
        rule_key = sarif_rule_id(policy.rule_id, policy.name)
        index[rule_key] = len(rules)
        remediation = finding.fix if finding else policy.fix
        rules.append({
            "id": rule_key,
            "name": policy.name,
            "shortDescription": {"text": policy.description},
            "fullDescription": {"text": f"PSSI rule {policy.rule_id}: {policy.description}"},
            "help": {"text": f"{policy.description}. Fix: {remediation}",
                     "markdown": f"**{policy.rule_id}** {policy.description}\n\nFix: {remediation}"},
            "properties": {"tags": ["pssi", policy.rule_id, policy.rule_id.split('-')[0]]},
        })
    results: list[dict[str, Any]] = []
    for finding in result.findings:
        rule_key = sarif_rule_id(finding.rule_id, finding.policy)
        entry: dict[str, Any] = {
            "ruleId": rule_key,
            "level": "note" if finding.waived else ("error" if finding.enforcement == "mandatory" else "warning"),
            "message": {"text": f"{finding.resource_type} {finding.resource_name}: {finding.message}. "
                                f"Fix: {finding.fix}"},
            "partialFingerprints": {"pssiFinding/v1": _fingerprint(finding)},
            "properties": {"severity": finding.severity, "enforcement": finding.enforcement, "urn": finding.urn},
        }
        if rule_key in index:
            entry["ruleIndex"] = index[rule_key]
        where = sources.locate(finding)
        if where is not None:
            path, line = where
            entry["locations"] = [{"physicalLocation": {"artifactLocation": {"uri": sources.uri(path)},
                                                        "region": {"startLine": line}},
                                   "logicalLocations": [{"name": finding.resource_name,
                                                         "fullyQualifiedName": finding.urn, "kind": "resource"}]}]
        if finding.waiver is not None:
            w = finding.waiver
            entry["suppressions"] = [{"kind": "external", "status": "accepted",
                                      "justification": f"{w.justification} (approved by {w.approver}, "
                                                       f"expires {w.expires})"}]
        results.append(entry)
    document = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": TOOL_NAME, "version": __version__, "rules": rules}},
            "automationDetails": {"id": f"pssi-check/{result.stack_name}/"},
            "results": results,
        }],
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
