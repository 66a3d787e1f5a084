"""Policy waivers: accepted, justified, approved and dated exceptions (``policies/waivers.yaml``).

A waiver never hides a finding: the finding is reported as waived, with who approved it and until
when. A malformed or expired waiver stops the check (exit 2) with one line naming the file, the
entry and the key, so an exception cannot silently outlive its approval.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from ght_socle import paths
from ght_socle.catalog import RULE_ID, Catalog, load_yaml
from ght_socle.errors import ConfigError
from ght_socle.policy.engine import Finding, Waiver
from ght_socle.trust.approval import check_approver, check_expiry_bound, check_justification
from ght_socle.trust.grammar import check_stack_name, check_text

REQUIRED_KEYS = ("rule", "stack", "resource", "justification", "approver", "expires")
OPTIONAL_KEYS = ("policy",)


def default_waivers_file() -> Path:
    return paths.policies_dir() / "waivers.yaml"


def _as_date(value: Any) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            return None
    return None


def load_waivers(path: Path, catalog: Catalog, *, today: date | None = None,
                 policy_names: Iterable[str] = ()) -> list[Waiver]:
    """Read and validate the waivers file; raise :class:`ConfigError` on the first bad entry."""
    raw = load_yaml(path)
    if raw is None:
        return []
    if not isinstance(raw, dict) or set(raw) - {"waivers"}:
        raise ConfigError("expected a mapping with one key 'waivers' (a list)", file=path)
    entries = raw.get("waivers") or []
    if not isinstance(entries, list):
        raise ConfigError("expected a list", file=path, where="key waivers")
    current = today or datetime.now(UTC).date()
    known_policies = set(policy_names)
    waivers: list[Waiver] = []
    for index, entry in enumerate(entries, start=1):
        label = f"waiver #{index}"
        if not isinstance(entry, dict):
            raise ConfigError("expected a mapping", file=path, where=label)
        if isinstance(entry.get("rule"), str):
            label = f"waiver #{index} ({entry['rule']})"
        for key in entry:
            if key not in REQUIRED_KEYS + OPTIONAL_KEYS:
                raise ConfigError(f"unknown key (allowed: {', '.join(REQUIRED_KEYS + OPTIONAL_KEYS)})", file=path,
                                  where=f"{label}, key {key}")
        for key in REQUIRED_KEYS:
            value = entry.get(key)
            if value is None or (isinstance(value, str) and not value.strip()):
                raise ConfigError("missing or empty", file=path, where=f"{label}, key {key}")
        rule = entry["rule"]
        if not isinstance(rule, str) or not RULE_ID.match(rule):
            raise ConfigError(f"{rule!r} is not a rule id such as NET-003", file=path, where=f"{label}, key rule")
        if rule not in catalog.rules:
            raise ConfigError(f"rule {rule} is not in the catalog", file=path, where=f"{label}, key rule")
        checks = {"resource": check_text, "justification": check_justification, "approver": check_approver}
        for key, check in checks.items():
            try:
                check(entry[key])
            except ValueError as exc:
                raise ConfigError(str(exc), file=path, where=f"{label}, key {key}") from None
        stacks = entry["stack"] if isinstance(entry["stack"], list) else [entry["stack"]]
        try:
            for stack in stacks:
                check_stack_name(stack)
        except ValueError as exc:
            raise ConfigError(f"{exc} (the stack, or list of stacks, the waiver applies to)", file=path,
                              where=f"{label}, key stack") from None
        policy = entry.get("policy")
        if policy is not None and (not isinstance(policy, str) or (known_policies and policy not in known_policies)):
            raise ConfigError(f"{policy!r} is not a policy name", file=path, where=f"{label}, key policy")
        expires = _as_date(entry["expires"])
        if expires is None:
            raise ConfigError(f"{entry['expires']!r} is not a date (YYYY-MM-DD, UTC)", file=path,
                              where=f"{label}, key expires")
        if expires < current:
            raise ConfigError(f"expired on {expires.isoformat()}: renew the approval or fix the finding", file=path,
                              where=f"{label}, key expires")
        try:
            check_expiry_bound(expires, current)
        except ValueError as exc:
            raise ConfigError(str(exc), file=path, where=f"{label}, key expires") from None
        waivers.append(Waiver(rule=rule, resource=entry["resource"], justification=entry["justification"].strip(),
                              approver=entry["approver"].strip(), expires=expires.isoformat(), index=index,
                              policy=policy, stacks=tuple(stacks)))
    return waivers


def waiver_matches(waiver: Waiver, finding: Finding) -> bool:
    return _covers(waiver, finding.rule_id, finding.policy, finding.resource_name, finding.urn)


def _covers(waiver: Waiver, rule_id: str, policy: str, resource_name: str, urn: str) -> bool:
    if waiver.rule != rule_id or (waiver.policy and waiver.policy != policy):
        return False
    return fnmatch.fnmatchcase(resource_name, waiver.resource) or fnmatch.fnmatchcase(urn, waiver.resource)


def waiver_for(waivers: list[Waiver], stack: str | None, rule_id: str, policy: str, resource_name: str,
               urn: str) -> Waiver | None:
    """The first waiver of ``stack`` covering this finding (the CrossGuard pack asks it per violation)."""
    if stack is None:
        return None
    return next((w for w in waivers if stack in w.stacks and _covers(w, rule_id, policy, resource_name, urn)), None)


def apply_waivers(findings: Iterable[Finding], waivers: list[Waiver], stack: str | None) -> None:
    """Mark each finding covered by a waiver of ``stack`` (the first matching entry wins). A plan of
    no named stack (``--program``) is covered by no waiver scoped to a stack."""
    for finding in findings:
        finding.waiver = waiver_for(waivers, stack, finding.rule_id, finding.policy, finding.resource_name,
                                    finding.urn)
