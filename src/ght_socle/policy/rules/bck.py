"""BCK: backup — every HDS VM backed up by a declared policy, off-site and offline copies, isolated zone.

Backup policies and tiers are declared by the stack in its outputs (``ght.backup_policies``,
``ght.backup_tiers``), the data the backup agents are configured from.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from ght_socle.policy.helpers import (
    INSTANCE,
    SECGROUP_RULE,
    describe_rule,
    format_range,
    is_truthy,
    parse_port_specs,
    rule_ports,
    secgroup_of_rule,
    tagged,
    zone_of_secgroup,
)
from ght_socle.policy.model import PolicyContext, Stack, Violation
from ght_socle.policy.registry import stack_policy
from ght_socle.policy.rules.cmp import instance_role

BACKUP_ZONE = "backup"
BACKUP_SERVER_ROLE = "backup_server"


def _ght_outputs(stack: Stack) -> Mapping[str, Any]:
    ght = stack.outputs.get("ght") if isinstance(stack.outputs, Mapping) else None
    return ght if isinstance(ght, Mapping) else {}


def backup_policies(stack: Stack) -> dict[str, Mapping[str, Any]]:
    policies = _ght_outputs(stack).get("backup_policies")
    if not isinstance(policies, Mapping):
        return {}
    return {str(k): v for k, v in policies.items() if isinstance(v, Mapping)}


def backup_tiers(stack: Stack) -> Mapping[str, Any]:
    tiers = _ght_outputs(stack).get("backup_tiers")
    return tiers if isinstance(tiers, Mapping) else {}


def _backup_servers(stack: Stack) -> list[str]:
    return [i.name for i in stack.of_type(INSTANCE) if instance_role(i) == BACKUP_SERVER_ROLE]


@stack_policy("bck-hds-vm-has-backup-policy", "BCK-001",
              "Every hds instance names a declared backup policy served by a backup tier", [INSTANCE],
              fix="Set backup_policy for the host to a policy of backup_policies in the stack configuration.")
def bck_hds_vm_has_backup_policy(stack: Stack, ctx: PolicyContext) -> Iterator[Violation]:
    policies = backup_policies(stack)
    served = bool(_backup_servers(stack)) or bool(backup_tiers(stack))
    for instance in stack.of_type(INSTANCE):
        if str(instance.metadata.get("data_class", "")) != "hds":
            continue
        name = str(instance.metadata.get("backup_policy", "") or "")
        if not name:
            yield Violation("hds instance without backup_policy metadata", instance)
        elif name not in policies:
            declared = ", ".join(sorted(policies)) or "none"
            yield Violation(f"backup_policy {name!r} is not declared by the stack (declared: {declared})", instance)
        elif not served:
            yield Violation(f"backup_policy {name!r} is served by no backup tier (no backup server, no tiers)",
                            instance)
        elif not is_truthy(policies[name].get("offsite", False)):
            yield Violation(f"backup_policy {name!r} has no off-site copy", instance)


@stack_policy("bck-policy-has-offsite-copy", "BCK-002",
              "Every backup policy keeps the minimum retention and has an off-site copy",
              fix="Set keep_daily >= min_retention_days and offsite: true on the backup policy.")
def bck_policy_has_offsite_copy(stack: Stack, ctx: PolicyContext) -> Iterator[Violation]:
    minimum = int(ctx.param("min_retention_days"))
    offsite_required = bool(ctx.param("offsite_required"))
    for name, policy in sorted(backup_policies(stack).items()):
        keep = policy.get("keep_daily")
        if not isinstance(keep, (int, float)) or keep < minimum:
            yield Violation(f"backup policy {name} keeps daily backups {keep} days, at least {minimum} required")
        if offsite_required and not is_truthy(policy.get("offsite", False)):
            yield Violation(f"backup policy {name} has no off-site copy")
    tiers = backup_tiers(stack)
    object_tier = tiers.get("object_storage") if isinstance(tiers, Mapping) else None
    if offsite_required and isinstance(object_tier, Mapping) and (
            not object_tier.get("offsite_region") or object_tier.get("offsite_region") == object_tier.get("region")):
        yield Violation("the object-storage backup tier has no off-site region distinct from its region")


@stack_policy("bck-offline-copy-declared", "BCK-003", "An offline or immutable backup copy is declared",
              fix="Declare backup.offline (mode, min_days, rotation) in the stack configuration.")
def bck_offline_copy_declared(stack: Stack, ctx: PolicyContext) -> Iterator[Violation]:
    if not backup_policies(stack) and not _backup_servers(stack):
        return  # the stack declares no backup at all: BCK-001 speaks for the HDS instances
    minimum = int(ctx.param("offline_min_days"))
    offline = backup_tiers(stack).get("offline")
    if not isinstance(offline, Mapping):
        yield Violation("no offline or immutable copy is declared (backup tiers: offline)")
        return
    mode = str(offline.get("mode", ""))
    if mode not in ("offline", "immutable"):
        yield Violation(f"offline copy mode {mode!r} is neither offline nor immutable")
    days = offline.get("min_days")
    if not isinstance(days, (int, float)) or days < minimum:
        yield Violation(f"offline copy is protected {days} days, at least {minimum} required")


@stack_policy("bck-backup-zone-isolated", "BCK-004",
              "The backup zone accepts only agent traffic to the repository and administration", [SECGROUP_RULE],
              fix="Restrict the backup zone's ingress to the repository port and admin ports from the admin zone.")
def bck_backup_zone_isolated(stack: Stack, ctx: PolicyContext) -> Iterator[Violation]:
    repo_port = int(ctx.param("backup_repo_port"))
    allowed = [(repo_port, repo_port), *parse_port_specs(ctx.param("admin_ports", rule="NET-004"))]
    for rule in stack.of_type(SECGROUP_RULE):
        if str(rule.get("direction", "ingress")) != "ingress":
            continue
        if zone_of_secgroup(secgroup_of_rule(stack, rule)) != BACKUP_ZONE:
            continue
        ports = rule_ports(rule)
        if ports is None:
            continue  # ICMP: diagnostics, no service
        if not any(low <= ports[0] and ports[1] <= high for low, high in allowed):
            yield Violation(f"{describe_rule(rule)} opens port(s) {format_range(ports)} into the backup zone "
                            f"(allowed: {repo_port} and admin ports)", rule)
    for instance in stack.of_type(INSTANCE):
        if instance_role(instance) == BACKUP_SERVER_ROLE and tagged(instance, "zone") != BACKUP_ZONE:
            yield Violation(f"backup server in zone {tagged(instance, 'zone') or 'unknown'}, not {BACKUP_ZONE}",
                            instance)
