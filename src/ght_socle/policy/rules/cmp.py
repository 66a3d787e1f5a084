"""CMP: compute — images, secrets in instance definitions, metadata, placement, key pairs."""

from __future__ import annotations

import re
from collections.abc import Iterator

from ght_socle.policy.helpers import (
    INSTANCE,
    KEYPAIR,
    SERVER_GROUP,
    VOLUME,
    decode_user_data,
    instance_networks,
    secrets_in_text,
    tagged,
    zone_of_network,
)
from ght_socle.policy.model import PolicyContext, Resource, Stack, Violation, as_list, item_known, item_present, records
from ght_socle.policy.registry import resource_policy, stack_policy

ROLE_KEY = "role"  # instance metadata naming the stack role (the inventory group)


def instance_role(instance: Resource) -> str:
    """The instance's stack role: metadata ``role``, else its name without the ``-NN`` host index."""
    role = instance.metadata.get(ROLE_KEY)
    return str(role) if role else re.sub(r"-\d+$", "", instance.name)


@resource_policy("cmp-image-allowlist", "CMP-001", "Instances boot only from an approved golden image", [INSTANCE],
                 fix="Use an allowed image (imageName) for the host in the stack configuration.")
def cmp_image_allowlist(instance: Resource, ctx: PolicyContext) -> Iterator[Violation]:
    allowed = [str(i) for i in ctx.param("allowed_images")]
    name = instance.get("imageName")
    if name:
        if str(name) not in allowed:
            yield Violation(f"image {name!r} is not in the allow-list ({', '.join(allowed)})")
        return
    image_devices = [d for d in records(instance.get("blockDevices")) if d.get("sourceType") == "image"]
    if instance.get("imageId") or image_devices:
        yield Violation("image given by id only: name it with imageName so the allow-list can be checked")
    elif not instance.get("blockDevices"):
        yield Violation("declares no image")


@resource_policy("cmp-no-admin-pass", "CMP-002", "No instance sets an administrator password", [INSTANCE],
                 fix="Remove adminPass; administrators log in with their SSH keys through the bastion.")
def cmp_no_admin_pass(instance: Resource, ctx: PolicyContext) -> Iterator[Violation]:
    if instance.get("adminPass"):
        yield Violation("sets adminPass: the password is stored in the state and in the cloud's metadata")


@resource_policy("cmp-no-secret-in-user-data", "CMP-002", "user-data holds no password, private key or token",
                 [INSTANCE], fix="Remove the secret from user-data; deliver it after boot with socle harden.")
def cmp_no_secret_in_user_data(instance: Resource, ctx: PolicyContext) -> Iterator[Violation]:
    user_data = instance.get("userData")
    if not isinstance(user_data, str) or not user_data:
        return
    kinds = secrets_in_text(decode_user_data(user_data))
    if kinds:
        yield Violation(f"user-data contains {', '.join(kinds)} (readable by anyone with metadata access)")


@resource_policy("cmp-mandatory-metadata", "CMP-003", "Instances and volumes carry the mandatory metadata",
                 [INSTANCE, VOLUME], fix="Complete the host's entry in the stack configuration.")
def cmp_mandatory_metadata(resource: Resource, ctx: PolicyContext) -> Iterator[Violation]:
    meta = resource.metadata
    missing = [k for k in ctx.param("mandatory_metadata") if meta.get(k) in (None, "")]
    if missing:
        yield Violation(f"metadata lacks {', '.join(missing)}")
    allowed = {
        "data_class": list(ctx.param("data_classes")),
        "tier": list(ctx.param("tiers")),
        "criticality": list(ctx.param("criticality_levels")),
        "zone": list(ctx.param("zones", rule="NET-001")),
    }
    for key, values in allowed.items():
        value = meta.get(key)
        if value not in (None, "") and str(value) not in values:
            yield Violation(f"metadata {key}={value!r} is not one of {', '.join(values)}")


@stack_policy("cmp-ports-in-own-zone", "CMP-004", "Instances attach only to networks of their own zone",
              [INSTANCE], fix="Attach the host to its zone's network only, or declare its role a gateway role.")
def cmp_ports_in_own_zone(stack: Stack, ctx: PolicyContext) -> Iterator[Violation]:
    gateway_roles = set(ctx.param("gateway_roles"))
    for instance in stack.of_type(INSTANCE):
        if instance_role(instance) in gateway_roles:
            continue
        zone = tagged(instance, "zone")
        for what, network in instance_networks(stack, instance):
            network_zone = zone_of_network(stack, network)
            if network_zone is None:
                yield Violation(f"{what} has no known zone (instance zone {zone or 'unknown'})", instance)
            elif network_zone != zone:
                yield Violation(f"{what} is in zone {network_zone}, the instance in zone {zone or 'unknown'}",
                                instance)


@stack_policy("cmp-ha-anti-affinity", "CMP-005",
              "Critical services run on enough instances spread by an anti-affinity server group",
              [INSTANCE, SERVER_GROUP],
              fix="Declare count >= 2 for the role; HdsVm places them in an anti-affinity group.")
def cmp_ha_anti_affinity(stack: Stack, ctx: PolicyContext) -> Iterator[Violation]:
    levels = set(ctx.param("ha_criticality_levels"))
    minimum = int(ctx.param("min_replicas"))
    services: dict[str, list[Resource]] = {}
    for instance in stack.of_type(INSTANCE):
        if str(instance.metadata.get("criticality", "")) in levels:
            services.setdefault(instance_role(instance), []).append(instance)
    for role, instances in sorted(services.items()):
        if len(instances) < minimum:
            yield Violation(f"critical role {role} runs {len(instances)} instance(s), at least {minimum} required",
                            instances[0])
        groups: set[str] = set()
        for instance in instances:
            hints = [h for h in records(instance.get("schedulerHints")) if item_present(h, "group")]
            if not hints:
                yield Violation(f"critical role {role}: no server group in schedulerHints", instance)
                continue
            group_id = item_known(hints[0], "group")  # None in a preview when the group is new
            group = stack.resolve(instance, "schedulerHints", group_id, [SERVER_GROUP])
            groups.add(group.urn if group is not None else str(group_id))
            policies = group.get("policies") if group is not None else None
            policy_list = as_list(policies) or [policies]
            if group is None:
                yield Violation(f"critical role {role}: server group {group_id} is not declared",
                                instance)
            elif "anti-affinity" not in policy_list:
                yield Violation(f"critical role {role}: server group {group.name} has policy {policies!r}, "
                                "not anti-affinity", instance)
        if len(groups) > 1:
            yield Violation(f"critical role {role}: instances spread over {len(groups)} server groups, "
                            "so anti-affinity does not hold between them", instances[0])


@resource_policy("cmp-keypair-public-only", "CMP-006", "Key pairs are imported from a public key", [KEYPAIR],
                 fix="Give the keypair a publicKey (admin_ssh_keys in the stack configuration).")
def cmp_keypair_public_only(keypair: Resource, ctx: PolicyContext) -> Iterator[Violation]:
    if not keypair.get("publicKey"):
        yield Violation("has no publicKey: the cloud generates the private key and the state keeps it")

