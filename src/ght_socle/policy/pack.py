"""The CrossGuard side: the same policies as ``socle check``, wrapped for ``pulumi preview --policy-pack``.

:func:`build_policies` returns pulumi-policy ``ResourceValidationPolicy`` / ``StackValidationPolicy``
objects; ``policies/__main__.py`` hands them to ``PolicyPack``. Building a ``PolicyPack`` starts a
gRPC server that never returns, so it happens only in that entry point under
``if __name__ == "__main__"``; everything here can be imported and tested without the CLI.

Differences with the offline path, by nature of CrossGuard: secrets reach policies unwrapped, so a
secret is recognised by its value being one of the stack's secret configuration values; references
between resources are followed through the engine's property dependencies.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import pulumi
from pulumi.runtime import config as pulumi_config
from pulumi_policy import (
    EnforcementLevel,
    PolicyComplianceFramework,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UnknownValueError

from ght_socle.catalog import Catalog, default_catalog
from ght_socle.engine.openstack_sdk import secret_inputs
from ght_socle.policy.engine import Waiver
from ght_socle.policy.helpers import STACK
from ght_socle.policy.model import (
    Policy,
    PolicyContext,
    Resource,
    Stack,
    Violation,
    register_unknown_value_error,
)
from ght_socle.policy.registry import all_policies
from ght_socle.policy.waivers import waiver_for

PACK_NAME = "ght-socle-pssi"
# Following a reference to a resource created in the same preview must not need its ID.
register_unknown_value_error(UnknownValueError)
ENFORCEMENT = {"mandatory": EnforcementLevel.MANDATORY, "advisory": EnforcementLevel.ADVISORY,
               "disabled": EnforcementLevel.DISABLED}
SEVERITY = {"critical": Severity.CRITICAL, "high": Severity.HIGH, "medium": Severity.MEDIUM, "low": Severity.LOW}


def _secret_config() -> tuple[dict[str, Any], set[str]]:
    """The stack configuration the engine handed to the pack (``PULUMI_CONFIG``) and its secret keys."""
    values: dict[str, Any] = dict(pulumi_config.get_config_env())
    values.update(pulumi_config.CONFIG.get() or {})
    secret_keys = set(pulumi_config.get_config_secret_keys_env()) | set(pulumi_config._SECRET_KEYS.get() or [])
    return values, secret_keys


def _leaf_strings(value: Any) -> Iterator[str]:
    """Every string of a configuration value; an object or list arrives as JSON text (``--path`` keys)."""
    if isinstance(value, str):
        yield value
        try:
            value = json.loads(value)
        except ValueError:
            return
        if isinstance(value, str):
            return
    if isinstance(value, Mapping):
        for item in value.values():
            yield from _leaf_strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _leaf_strings(item)
    elif value is not None and not isinstance(value, bool):
        yield str(value)


def secret_config_check() -> Callable[[Any], bool]:
    """Whether a value comes from the stack's secret configuration.

    The analyzer hands policies unwrapped values, so a secret input is recognised by its value: any
    string of a secret key, including inside a structured one (``ght-socle:sites`` holds each
    site's ``psk`` when set with ``pulumi config set --secret --path``).
    """
    values, secret_keys = _secret_config()
    secrets = {leaf for key in secret_keys if key in values for leaf in _leaf_strings(values[key]) if leaf}
    return lambda value: isinstance(value, str) and value in secrets


def stack_config() -> dict[str, Any]:
    values, secret_keys = _secret_config()
    return {k: ("[secret]" if k in secret_keys else v) for k, v in values.items()}


def _message(policy: Policy, violation: Violation) -> str:
    # The CLI's report shows a violation's policy name and message, not its display name nor its tags:
    # the message names the PSSI rule, which the catalog and the waivers are keyed by.
    text = f"{policy.rule_id}: {violation.message}"
    return f"{text}. Fix: {violation.fix}" if violation.fix else text


def _context(catalog: Catalog, policy: Policy) -> PolicyContext:
    return PolicyContext(catalog=catalog, rule_id=policy.rule_id, now=datetime.now(UTC),
                         is_secret_config_value=secret_config_check())


def _schema_secrets(resource_type: str) -> frozenset[str] | None:
    """The inputs the SDK always sends as secrets (the analyzer unwraps them); None: cannot tell the rest."""
    return secret_inputs().get(resource_type)


def resource_from_args(args: ResourceValidationArgs) -> Resource:
    parent = getattr(args.opts, "parent", None) if args.opts is not None else None
    return Resource(type=args.resource_type, name=args.name, urn=args.urn, props=args.props,
                    secret_keys=_schema_secrets(args.resource_type),
                    parent=parent or None)


def stack_from_args(args: StackValidationArgs) -> Stack:
    resources: list[Resource] = []
    dependencies: dict[tuple[str, str], list[Resource]] = {}
    outputs: Mapping[str, Any] = {}
    converted: dict[str, Resource] = {}
    for item in args.resources:
        parent = item.parent.urn if item.parent is not None else None
        resource = Resource(type=item.resource_type, name=item.name, urn=item.urn, props=item.props,
                            secret_keys=_schema_secrets(item.resource_type), parent=parent)
        converted[item.urn] = resource
        resources.append(resource)
        if item.resource_type == STACK:
            outputs = item.props
    for item in args.resources:
        for prop, deps in (item.property_dependencies or {}).items():
            dependencies[(item.urn, prop)] = [converted[d.urn] for d in deps if d.urn in converted]

    def resolve(source: Resource, prop: str, value: Any, types: Sequence[str]) -> Resource | None:
        candidates = [r for r in dependencies.get((source.urn, prop), []) if not types or r.type in types]
        by_id = [r for r in candidates if value is not None and r.props.get("id") == value]
        if len(by_id) == 1:
            return by_id[0]
        return candidates[0] if len(candidates) == 1 else None

    def references(source: Resource, prop: str, types: Sequence[str]) -> list[Resource]:
        return [r for r in dependencies.get((source.urn, prop), []) if not types or r.type in types]

    return Stack(resources=resources, outputs=outputs, config=stack_config(), resolver=resolve,
                 referencer=references)


def _waived(waivers: list[Waiver], policy: Policy, resource: Resource | None) -> bool:
    """Whether a waiver of the stack being checked covers this violation, as `socle check` decides it.

    CrossGuard has no notion of a waived finding: a covered violation is not reported (`socle check`
    lists it as waived, with its approver and expiry).
    """
    if not waivers:
        return False
    stack, project = pulumi.get_stack(), pulumi.get_project()
    name = resource.name if resource is not None else f"{project}-{stack}"
    urn = resource.urn if resource is not None else f"urn:pulumi:{stack}::{project}::{STACK}::{project}-{stack}"
    return waiver_for(waivers, stack, policy.rule_id, policy.name, name, urn) is not None


def _resource_validate(catalog: Catalog, policy: Policy,
                       waivers: list[Waiver]) -> Callable[[ResourceValidationArgs, ReportViolation], None]:
    types = set(policy.resource_types)

    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        if types and args.resource_type not in types:
            return
        if not types and args.resource_type.startswith(("ght:", "pulumi:")):
            return
        resource = resource_from_args(args)
        for violation in policy.run(resource, _context(catalog, policy)):
            if not _waived(waivers, policy, resource):
                report_violation(_message(policy, violation), None)
    return validate


def _stack_validate(catalog: Catalog, policy: Policy,
                    waivers: list[Waiver]) -> Callable[[StackValidationArgs, ReportViolation], None]:
    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        for violation in policy.run(stack_from_args(args), _context(catalog, policy)):
            if not _waived(waivers, policy, violation.resource):
                report_violation(_message(policy, violation), violation.resource.urn if violation.resource else None)
    return validate


def build_policies(catalog: Catalog | None = None,
                   waivers: list[Waiver] | None = None) -> list[ResourceValidationPolicy | StackValidationPolicy]:
    """Every registered policy whose rule is in the catalog, with the catalog's + GHT's enforcement level.

    ``waivers`` (policies/waivers.yaml, validated as `socle check` does) cover violations of the
    stacks they name, exactly as in `socle check`.
    """
    catalog = catalog or default_catalog()
    waivers = waivers or []
    built: list[ResourceValidationPolicy | StackValidationPolicy] = []
    for policy in all_policies():
        effective = catalog.effective.get(policy.rule_id)
        if effective is None:
            continue
        rule = effective.rule
        common: dict[str, Any] = {
            "enforcement_level": ENFORCEMENT[effective.enforcement],
            "display_name": f"{rule.id} {policy.name}",
            "severity": SEVERITY[rule.severity],
            "framework": PolicyComplianceFramework(name="PSSI GHT", version=catalog.meta.version, reference=rule.id,
                                                   specification=rule.statement_en),
            "tags": ["pssi", rule.id, rule.domain],
            "remediation_steps": rule.remediation or policy.fix,
        }
        if policy.kind == "resource":
            built.append(ResourceValidationPolicy(policy.name, policy.description,
                                                  validate=_resource_validate(catalog, policy, waivers), **common))
        else:
            built.append(StackValidationPolicy(policy.name, policy.description,
                                               validate=_stack_validate(catalog, policy, waivers), **common))
    return built
