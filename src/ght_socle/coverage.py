"""Where each PSSI rule is checked (IaC policy), enforced (role tag) and verified (host test).

The catalog *declares* check points; this module *introspects* what exists: the policy registry,
the tags of the role tasks and the pytest markers collected from the conformance suites. A rule
that declares a check point which is not implemented is a gap, and ``--strict`` fails on gaps.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ght_socle.catalog import Catalog, Rule
from ght_socle.roles_index import role_tags


@dataclass
class Implementations:
    """What the project really implements, or why a kind could not be introspected."""

    policies: dict[str, str] = field(default_factory=dict)  # policy name -> rule id
    tags: dict[str, set[str]] = field(default_factory=dict)  # role -> tags
    host_rules: set[str] = field(default_factory=set)  # rule ids with a collected conformance test
    unavailable: dict[str, str] = field(default_factory=dict)  # kind -> reason


def _introspect(module: str, function: str, kind: str, impl: Implementations) -> Any:
    try:
        func: Callable[[], Any] = getattr(importlib.import_module(module), function)
    except (ImportError, AttributeError) as exc:
        impl.unavailable[kind] = f"{module}.{function} not available ({exc})"
        return None
    return func()


def introspect() -> Implementations:
    impl = Implementations()
    impl.tags = role_tags()
    policies = _introspect("ght_socle.policy.registry", "implemented_policies", "iac", impl)
    if policies is not None:
        impl.policies = dict(policies)
    host = _introspect("ght_socle.conform.collect", "host_rule_ids", "host", impl)
    if host is not None:
        impl.host_rules = set(host)
    return impl


@dataclass
class RuleCoverage:
    rule: Rule
    iac: list[str]
    enforce: list[str]
    host: bool
    gaps: list[str]

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule_id": self.rule.id,
            "domain": self.rule.domain,
            "severity": self.rule.severity,
            "title": self.rule.title,
            "statement_en": self.rule.statement_en,
            "sources": [str(s) for s in self.rule.sources],
            "iac": self.iac,
            "enforce": self.enforce,
            "host": self.host,
            "manual": self.rule.checks.manual,
            "gaps": self.gaps,
        }


def rule_coverage(rule: Rule, impl: Implementations) -> RuleCoverage:
    gaps: list[str] = []
    for name in rule.checks.iac:
        if "iac" in impl.unavailable:
            gaps.append(f"iac policy {name}: {impl.unavailable['iac']}")
        elif name not in impl.policies:
            gaps.append(f"iac policy {name} is not in the policy registry")
        elif impl.policies[name] != rule.id:
            gaps.append(f"iac policy {name} is registered for {impl.policies[name]}, not {rule.id}")
    enforce = []
    for role in rule.checks.enforce:
        enforce.append(f"{role}:{rule.tag}")
        if rule.tag not in impl.tags.get(role, set()):
            gaps.append(f"role {role} has no task tagged {rule.tag}")
    if rule.checks.host:
        if "host" in impl.unavailable:
            gaps.append(f"host test: {impl.unavailable['host']}")
        elif rule.id not in impl.host_rules:
            gaps.append(f"no conformance test marked pssi({rule.id!r}) was collected")
    return RuleCoverage(rule, list(rule.checks.iac), enforce, rule.checks.host, gaps)


def coverage(catalog: Catalog, impl: Implementations | None = None) -> list[RuleCoverage]:
    impl = impl or introspect()
    return [rule_coverage(rule, impl) for rule in catalog]
