"""Conformance waivers: documented, approved, time-limited exceptions (``inventories/<env>/waivers.yaml``).

A waiver never stops a check from running, so drift stays visible: it only turns a ``fail`` into
``waived`` while it is valid. A waiver is valid up to and including its expiry date, in UTC (no
dependence on the auditing machine's time zone); after that the failure is a failure again and
says "waiver ... expired on ...". Errors are never waived: a check that could not run proves nothing.

File format::

    waivers:
      - id: W-LAB-001
        hosts: "wks-*"            # shell pattern on inventory host names (or a list of patterns)
        rule: WKS-005
        justification: "..."
        approver: "RSSI, Jeanne Martin"
        expires: 2027-06-30       # UTC date
        ticket: "CHG-1234"        # optional
        compensating_measures: "..."  # optional
        evidence: ["tcp/2575"]    # optional: waive only failures whose evidence lines all contain one of these
"""

from __future__ import annotations

import datetime as dt
import fnmatch
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator

from ght_socle.catalog import Catalog, load_yaml
from ght_socle.conform.results import CheckResult, WaiverInfo
from ght_socle.errors import ConfigError
from ght_socle.trust.approval import check_approver, check_expiry_bound, check_justification
from ght_socle.trust.grammar import PlainToken, Text


class WaiverEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: PlainToken
    hosts: list[Text] = Field(min_length=1)
    rule: str
    justification: Annotated[str, AfterValidator(check_justification)]
    approver: Annotated[str, AfterValidator(check_approver)]
    expires: dt.date
    ticket: Text | None = None
    compensating_measures: Text | None = None
    # Pieces of evidence the waiver accepts. When given, a failure is waived only if each of its
    # evidence lines contains one of them: a new, different problem of the same rule stays a failure.
    evidence: list[str] | None = Field(default=None, min_length=1)

    @field_validator("hosts", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("expires", mode="before")
    @classmethod
    def _strict_date(cls, value: Any) -> Any:
        # YAML gives a date for 2027-01-31; a string must be ISO too (no "31/01/2027" ambiguity).
        if isinstance(value, dt.datetime):
            raise ValueError("expected a date YYYY-MM-DD (UTC), not a date and time")
        if isinstance(value, str):
            try:
                return dt.date.fromisoformat(value)
            except ValueError:
                raise ValueError(f"expected a date YYYY-MM-DD (UTC), got {value!r}") from None
        if not isinstance(value, dt.date):
            raise ValueError(f"expected a date YYYY-MM-DD (UTC), got {value!r}")
        return value

    @field_validator("expires")
    @classmethod
    def _bounded(cls, value: dt.date) -> dt.date:
        return check_expiry_bound(value, utc_today())

    def matches(self, host: str, rule_id: str) -> bool:
        return rule_id == self.rule and any(fnmatch.fnmatchcase(host, pattern) for pattern in self.hosts)

    def expired(self, today: dt.date) -> bool:
        return today > self.expires


@dataclass
class Waivers:
    entries: list[WaiverEntry]
    file: Path | None = None

    def find(self, host: str, rule_id: str) -> WaiverEntry | None:
        matching = [w for w in self.entries if w.matches(host, rule_id)]
        # A later-expiring waiver wins when several match (the renewal of an old one).
        return max(matching, key=lambda w: w.expires) if matching else None


def utc_today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def load_waivers(path: Path, catalog: Catalog) -> Waivers:
    raw = load_yaml(path)  # dates stay text: the model parses them (entry and key in the error)
    if raw is None:
        return Waivers([], path)
    if not isinstance(raw, dict) or set(raw) - {"waivers"}:
        raise ConfigError("expected a mapping with one key 'waivers' (a list)", file=path)
    items = raw.get("waivers") or []
    if not isinstance(items, list):
        raise ConfigError("expected a list", file=path, where="key waivers")
    entries: list[WaiverEntry] = []
    seen: set[str] = set()
    for index, item in enumerate(items, 1):
        label = f"waiver #{index}" + (f" ({item['id']})" if isinstance(item, dict) and item.get("id") else "")
        if not isinstance(item, dict):
            raise ConfigError("expected a mapping", file=path, where=label)
        try:
            entry = WaiverEntry.model_validate(item)
        except ValidationError as exc:
            first = exc.errors()[0]
            key = ".".join(str(p) for p in first["loc"]) or "?"
            message = {"missing": "missing key", "extra_forbidden": "unknown key"}.get(
                first["type"], first["msg"].removeprefix("Value error, "))
            raise ConfigError(message, file=path, where=f"{label}, key {key}") from None
        if entry.rule not in catalog.rules:
            raise ConfigError(f"unknown rule {entry.rule!r}", file=path, where=f"{label}, key rule")
        if not catalog.rules[entry.rule].checks.host:
            raise ConfigError(f"rule {entry.rule} has no host check to waive", file=path, where=f"{label}, key rule")
        if entry.id in seen:
            raise ConfigError("duplicated waiver id", file=path, where=f"{label}, key id")
        seen.add(entry.id)
        entries.append(entry)
    return Waivers(entries, path)


def apply_waivers(results: list[CheckResult], waivers: Waivers, today: dt.date | None = None) -> list[str]:
    """Turn covered failures into ``waived`` (in place).

    Returns the ids of the waivers that cover no failure of the hosts checked: the gap they accepted
    is closed (or the waiver is wrong), so the RSSI can withdraw them. Waivers of hosts outside the
    run (``--limit``) are not reported.
    """
    today = today or utc_today()
    used: set[str] = set()
    for result in results:
        waiver = waivers.find(result.host, result.rule_id)
        if waiver is None:
            continue
        if result.status == "fail":
            used.add(waiver.id)
        info = WaiverInfo(waiver.id, waiver.approver, waiver.expires.isoformat(), waiver.justification,
                          expired=waiver.expired(today))
        result.waiver = info
        if result.status != "fail":
            continue
        uncovered = [line for line in result.evidence
                     if waiver.evidence and not any(piece in line for piece in waiver.evidence)]
        if uncovered:
            result.message = f"not covered by waiver {waiver.id}: {uncovered[0]}"
        elif info.expired:
            result.message = f"waiver {waiver.id} expired on {info.expires}: {result.message}"
        else:
            result.status = "waived"
            result.message = (f"waived until {info.expires} by {waiver.approver} ({waiver.id}): "
                              f"{result.message}")
    checked_hosts = {result.host for result in results}
    return sorted(w.id for w in waivers.entries if w.id not in used
                  and any(fnmatch.fnmatchcase(host, pattern) for host in checked_hosts for pattern in w.hosts))
