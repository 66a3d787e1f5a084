"""Evaluate every policy over a stack and turn violations into findings.

A finding carries what a reviewer needs: the PSSI rule, its severity and enforcement level (catalog
plus GHT settings), the resource, the message, the fix, and whether a waiver covers it. Policies
whose rule is ``disabled`` by the GHT settings are not evaluated.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ght_socle.catalog import Catalog
from ght_socle.errors import SocleError
from ght_socle.plan_model import Plan
from ght_socle.policy.helpers import STACK
from ght_socle.policy.model import Policy, PolicyContext, Resource, SecretConfigCheck, Stack, Violation
from ght_socle.policy.registry import all_policies

# The mock engine of ``ght_socle.plan`` gives every resource the ID ``<name>-id`` and replaces each
# ``secure:`` configuration value with ``offline-placeholder-<digest>``; references between
# resources and secret configuration values are recognised offline by these two conventions.
MOCK_ID_SUFFIX = "-id"
OFFLINE_SECRET_PREFIX = "offline-placeholder-"


def mock_resource_id(name: str) -> str:
    return f"{name}{MOCK_ID_SUFFIX}"


def is_offline_secret(value: Any) -> bool:
    """True for the stand-in of a ``secure:`` configuration value in an offline plan."""
    return isinstance(value, str) and value.startswith(OFFLINE_SECRET_PREFIX)


@dataclass
class Waiver:
    """An accepted exception (``policies/waivers.yaml``), reported with the finding it covers."""

    rule: str
    resource: str
    justification: str
    approver: str
    expires: str  # ISO date, UTC
    index: int = 0
    policy: str | None = None
    stacks: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {"rule": self.rule, "stacks": list(self.stacks), "resource": self.resource, "policy": self.policy,
                "justification": self.justification, "approver": self.approver, "expires": self.expires}


@dataclass
class Finding:
    rule_id: str
    policy: str
    severity: str
    enforcement: str
    resource_type: str
    resource_name: str
    urn: str
    message: str
    fix: str
    title: str = ""
    waiver: Waiver | None = None
    # Words that may name the resource's declaration in the sources (role, flow id, name input),
    # so that a code-scanning annotation lands on the line to change.
    anchors: tuple[str, ...] = ()

    @property
    def waived(self) -> bool:
        return self.waiver is not None

    @property
    def blocking(self) -> bool:
        return self.enforcement == "mandatory" and not self.waived

    def as_json(self) -> dict[str, Any]:
        return {"rule_id": self.rule_id, "policy": self.policy, "severity": self.severity,
                "enforcement": self.enforcement, "resource_type": self.resource_type,
                "resource_name": self.resource_name, "urn": self.urn, "message": self.message, "fix": self.fix,
                "waived": self.waived, "waiver": self.waiver.as_json() if self.waiver else None}


@dataclass
class CheckResult:
    """Findings of one evaluation, with what was evaluated (for the summary and the reports)."""

    findings: list[Finding]
    policies: list[Policy]
    resource_count: int
    skipped: dict[str, str] = field(default_factory=dict)  # policy -> why it was not evaluated
    seconds: float = 0.0
    stack_name: str = ""

    @property
    def blocking(self) -> list[Finding]:
        return [f for f in self.findings if f.blocking]

    @property
    def exit_code(self) -> int:
        return 1 if self.blocking else 0


def stack_from_plan(plan: Plan) -> Stack:
    """The policies' view of an offline plan, with references followed through the mock IDs."""
    resources = [Resource(type=r.type, name=r.name, urn=r.urn, props=r.inputs, secret_keys=frozenset(r.secret_keys),
                          parent=r.parent) for r in plan.resources]
    by_id: dict[str, list[Resource]] = {}
    for resource in resources:
        by_id.setdefault(mock_resource_id(resource.name), []).append(resource)

    def resolve(_source: Resource, _prop: str, value: Any, types: Sequence[str]) -> Resource | None:
        if not isinstance(value, str):
            return None
        candidates = [r for r in by_id.get(value, []) if not types or r.type in types]
        return candidates[0] if len(candidates) == 1 else None

    return Stack(resources=resources, outputs=plan.outputs, config=plan.config, resolver=resolve)


FLOW_ID = re.compile(r"FLOW-\d+")


def anchors_of(resource: Resource) -> tuple[str, ...]:
    """Names under which a resource's declaration may appear in the program or its configuration."""
    found: list[str] = []
    for key in ("role", "hostname"):
        value = resource.metadata.get(key)
        if isinstance(value, str):
            found.append(value)
    description = resource.props.get("description")
    if isinstance(description, str):
        found.extend(FLOW_ID.findall(description))
    name = resource.props.get("name")
    if isinstance(name, str):
        found.append(name)
    found.append(re.sub(r"-(vm|port-[\w-]+|vol-\w+|attach-\w+|fip)$", "", resource.name))
    return tuple(found)


def stack_urn(project: str, stack: str) -> str:
    return f"urn:pulumi:{stack}::{project}::{STACK}::{project}-{stack}"


def _targets(policy: Policy, stack: Stack) -> Iterable[Resource]:
    if policy.resource_types:
        return stack.of_type(*policy.resource_types)
    # A policy over every type looks at real cloud resources, not components or the stack itself.
    return [r for r in stack.resources if not r.type.startswith(("ght:", "pulumi:pulumi:"))]


def evaluate(stack: Stack, catalog: Catalog, *, project: str = "project", stack_name: str = "stack",
             policies: Sequence[Policy] | None = None, now: datetime | None = None,
             secret_check: SecretConfigCheck = is_offline_secret) -> CheckResult:
    """Run every policy whose rule is enabled over ``stack``; return the findings (not yet waived)."""
    started = time.perf_counter()
    selected = list(policies) if policies is not None else all_policies()
    moment = now or datetime.now(UTC)
    root_urn = stack_urn(project, stack_name)
    findings: list[Finding] = []
    evaluated: list[Policy] = []
    skipped: dict[str, str] = {}
    for policy in selected:
        effective = catalog.effective.get(policy.rule_id)
        if effective is None:
            skipped[policy.name] = f"rule {policy.rule_id} is not in the catalog"
            continue
        if effective.enforcement == "disabled":
            skipped[policy.name] = f"rule {policy.rule_id} is disabled by the GHT settings"
            continue
        ctx = PolicyContext(catalog=catalog, rule_id=policy.rule_id, now=moment, is_secret_config_value=secret_check)
        violations: list[Violation] = []
        try:
            if policy.kind == "resource":
                for resource in _targets(policy, stack):
                    violations.extend(policy.run(resource, ctx))
            else:
                violations.extend(policy.run(stack, ctx))
        except SocleError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            # A policy that cannot read what it expects must not pass silently.
            raise SocleError(f"policy {policy.name} could not run: {type(exc).__name__}: {exc}") from exc
        evaluated.append(policy)
        for violation in violations:
            target = violation.resource
            findings.append(Finding(
                rule_id=policy.rule_id, policy=policy.name, severity=effective.severity,
                enforcement=effective.enforcement,
                resource_type=target.type if target else STACK,
                resource_name=target.name if target else f"{project}-{stack_name}",
                urn=target.urn if target else root_urn,
                message=violation.message, fix=violation.fix or effective.rule.remediation,
                title=effective.rule.title, anchors=anchors_of(target) if target else (),
            ))
    findings.sort(key=lambda f: (f.rule_id, f.policy, f.resource_name, f.message))
    return CheckResult(findings=findings, policies=evaluated, resource_count=len(stack.resources), skipped=skipped,
                       seconds=time.perf_counter() - started, stack_name=stack_name)


def check_plan(plan: Plan, catalog: Catalog, **kwargs: Any) -> CheckResult:
    return evaluate(stack_from_plan(plan), catalog, project=plan.project, stack_name=plan.stack, **kwargs)
