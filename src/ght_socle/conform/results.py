"""Conformance results per rule × host, their aggregation, score and exit code.

Statuses: ``pass``, ``fail``, ``waived`` (a failure covered by a valid waiver), ``error`` (the
rule could not be verified: host unreachable, command failed, fact missing — never a pass) and
``not-applicable`` (the host is not in the rule's ``applies_to`` groups, or the GHT disabled it).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from ght_socle.catalog import SEVERITY_ORDER, Catalog

Status = Literal["pass", "fail", "waived", "error", "not-applicable"]
STATUSES: tuple[str, ...] = ("pass", "fail", "waived", "error", "not-applicable")
# Weights of the score: a critical rule counts as much as ten low ones.
SEVERITY_WEIGHT: dict[str, int] = {"critical": 10, "high": 5, "medium": 2, "low": 1}

EXIT_OK, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2


@dataclass
class WaiverInfo:
    id: str
    approver: str
    expires: str
    justification: str
    expired: bool = False


@dataclass
class CheckResult:
    host: str
    rule_id: str
    status: str
    severity: str
    message: str
    evidence: list[str] = field(default_factory=list)
    title: str = ""
    remediation: str = ""
    next_step: str = ""
    enforcement: str = "mandatory"
    waiver: WaiverInfo | None = None
    duration: float = 0.0
    test: str = ""

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["waiver"] = asdict(self.waiver) if self.waiver else None
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CheckResult:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        waiver = known.get("waiver")
        if isinstance(waiver, dict):
            known["waiver"] = WaiverInfo(**{k: v for k, v in waiver.items() if k in WaiverInfo.__dataclass_fields__})
        return cls(**known)

    @property
    def counts_as_finding(self) -> bool:
        """Failures of advisory rules are reported but do not change the exit code."""
        return self.status == "fail" and self.enforcement == "mandatory"


@dataclass
class HostInfo:
    name: str
    groups: list[str]
    reachable: bool = True
    gather_seconds: float | None = None
    round_trip_seconds: float | None = None
    remote_commands: int = 0
    os: str = ""


@dataclass
class RunReport:
    results: list[CheckResult]
    hosts: dict[str, HostInfo]
    catalog_version: str
    ght: str
    inventory: str
    started: str = field(default_factory=lambda: dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC"))
    duration_seconds: float = 0.0
    waivers_file: str | None = None
    unused_waivers: list[str] = field(default_factory=list)

    def sorted_results(self) -> list[CheckResult]:
        return sorted(self.results, key=lambda r: (r.host, r.rule_id))

    def rules(self) -> list[str]:
        return sorted({r.rule_id for r in self.results})

    def by_host(self) -> dict[str, dict[str, CheckResult]]:
        matrix: dict[str, dict[str, CheckResult]] = {h: {} for h in sorted(self.hosts)}
        for result in self.results:
            matrix.setdefault(result.host, {})[result.rule_id] = result
        return matrix

    def counts(self, results: Iterable[CheckResult] | None = None) -> dict[str, int]:
        counter = Counter(r.status for r in (self.results if results is None else results))
        return {status: counter.get(status, 0) for status in STATUSES}

    def exit_code(self) -> int:
        if any(r.status == "error" for r in self.results):
            return EXIT_ERROR
        if any(r.counts_as_finding for r in self.results):
            return EXIT_FINDINGS
        return EXIT_OK

    def failures(self) -> list[CheckResult]:
        return sorted((r for r in self.results if r.status in ("fail", "error")),
                      key=lambda r: (r.host, SEVERITY_ORDER.get(r.severity, 9), r.rule_id))


def score(results: Iterable[CheckResult]) -> float | None:
    """Percentage of verified checks passing, weighted by severity.

    Waived and not-applicable checks are left out (a waiver is an accepted, documented gap, shown
    apart); errors count as not passing, since nothing proves the rule holds.
    """
    total = passed = 0
    for result in results:
        if result.status in ("pass", "fail", "error"):
            weight = SEVERITY_WEIGHT.get(result.severity, 1)
            total += weight
            if result.status == "pass":
                passed += weight
    return round(100.0 * passed / total, 1) if total else None


def next_step(catalog: Catalog, rule_id: str, host: str, inventory: str) -> str:
    """What an operator runs to fix one failing rule on one host."""
    rule = catalog.rules.get(rule_id)
    if rule is None:
        return ""
    if rule.checks.enforce:
        return (f"socle harden --inventory {inventory} --limit {host} --tags {rule.tag} "
                f"(role{'s' if len(rule.checks.enforce) > 1 else ''} {', '.join(rule.checks.enforce)})")
    return rule.remediation or "no role enforces this rule: see the rule's remediation"
