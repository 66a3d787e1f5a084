"""STO: storage and encryption — HDS volumes, object containers, cleartext protocols, secret inputs."""

from __future__ import annotations

from collections.abc import Iterator

from ght_socle.policy.helpers import (
    CONTAINER,
    INSTANCE,
    SECGROUP_RULE,
    VOLUME,
    describe_rule,
    format_range,
    parse_port_specs,
    remote_group_of_rule,
    rule_opens,
    secgroup_of_rule,
    zone_of_secgroup,
)
from ght_socle.policy.model import PolicyContext, Resource, Stack, Violation, records
from ght_socle.policy.registry import resource_policy, stack_policy

HTTP_PORT = (80, 80)


@resource_policy("sto-hds-volume-encrypted", "STO-001", "Every volume of health data uses an encrypted volume type",
                 [VOLUME, INSTANCE], fix="Set volume_type to an encrypted type for the host's volumes.")
def sto_hds_volume_encrypted(resource: Resource, ctx: PolicyContext) -> Iterator[Violation]:
    if str(resource.metadata.get("data_class", "")) != "hds":
        return
    encrypted = [str(t) for t in ctx.param("encrypted_volume_types")]
    if resource.type == VOLUME:
        volume_type = resource.get("volumeType")
        if str(volume_type or "") not in encrypted:
            yield Violation(f"hds volume of type {volume_type or '(provider default)'}; "
                            f"encrypted types: {', '.join(encrypted)}")
        return
    devices = records(resource.get("blockDevices"))
    if not devices:
        yield Violation("hds instance boots on the hypervisor's local disk, which is not encrypted")
        return
    for index, device in enumerate(devices):
        if device.get("sourceType") == "volume":
            continue  # an existing Volume, judged on its own declaration
        if str(device.get("destinationType", "local")) != "volume":
            yield Violation(f"blockDevices[{index}] is a local disk, which is not encrypted")
        elif str(device.get("volumeType") or "") not in encrypted:
            yield Violation(f"blockDevices[{index}].volumeType {device.get('volumeType') or '(provider default)'} "
                            f"is not encrypted ({', '.join(encrypted)})")


@resource_policy("sto-container-private", "STO-002", "Object containers are never publicly readable or writable",
                 [CONTAINER], fix="Remove the .r: read ACL and any world write ACL from the container.")
def sto_container_private(container: Resource, ctx: PolicyContext) -> Iterator[Violation]:
    read = str(container.get("containerRead", "") or "")
    write = str(container.get("containerWrite", "") or "")
    entries = [e.strip() for e in read.split(",") if e.strip()]
    public = [e for e in entries if e.startswith(".r:") or e == ".rlistings" or e in ("*", "*:*")]
    if public:
        yield Violation(f"containerRead {read!r} makes the objects public")
    if any(e.strip() in ("*", "*:*", ".r:*") for e in write.split(",")):
        yield Violation(f"containerWrite {write!r} lets anyone write")


@resource_policy("sto-container-versioned", "STO-002", "Containers of health data or backups are versioned",
                 [CONTAINER], fix="Enable versioning on the container.")
def sto_container_versioned(container: Resource, ctx: PolicyContext) -> Iterator[Violation]:
    # Only a container declared non-health and not a backup container may skip versioning.
    name = str(container.get("name") or container.name)
    exempt = str(container.metadata.get("data_class", "")) == "nonhds" and "backup" not in name
    if exempt:
        return
    if not container.get("versioning") and not container.get("versioningLegacy"):
        yield Violation("is not versioned: a deletion or an overwrite cannot be undone")


@stack_policy("sto-no-cleartext-protocol-ports", "STO-003", "No rule opens a cleartext protocol between zones",
              [SECGROUP_RULE], fix="Use the TLS variant of the protocol (443, 636, 6514) in the flow.")
def sto_no_cleartext_protocol_ports(stack: Stack, ctx: PolicyContext) -> Iterator[Violation]:
    cleartext = parse_port_specs(ctx.param("cleartext_ports"))
    redirect_zones = set(ctx.param("http_redirect_zones"))
    for rule in stack.of_type(SECGROUP_RULE):
        if str(rule.get("direction", "ingress")) != "ingress":
            continue
        opened = rule_opens(rule, cleartext)
        if not opened:
            continue
        zone = zone_of_secgroup(secgroup_of_rule(stack, rule))
        remote = remote_group_of_rule(stack, rule)
        if remote is not None and zone is not None and zone_of_secgroup(remote) == zone:
            continue  # inside one zone: not an inter-zone flow
        if zone in redirect_zones:
            opened = [p for p in opened if p != HTTP_PORT]
        if opened:
            yield Violation(f"{describe_rule(rule)} opens cleartext port(s) "
                            f"{', '.join(format_range(p) for p in opened)} into zone {zone or 'unknown'}", rule)


@resource_policy("sto-secret-inputs-are-secret", "STO-004", "Every secret input is a stack secret", [],
                 fix="Store the value with `pulumi config set --secret` and pass it as a secret.")
def sto_secret_inputs_are_secret(resource: Resource, ctx: PolicyContext) -> Iterator[Violation]:
    names = [str(n).lower() for n in ctx.param("secret_input_names")]
    for key in list(resource.props):
        if not any(key.lower().endswith(n) for n in names):
            continue
        # A value known only after deployment (an ID, another resource's output) is no literal.
        value = resource.known(key)
        if not isinstance(value, str) or not value:
            continue
        marked = resource.secret_keys is not None and key in resource.secret_keys
        if not marked and not ctx.is_secret_config_value(value):
            yield Violation(f"input {key} holds a plaintext value: it is stored readable in the state")

