"""`pulumi preview` of the three stacks with the real engine and the project's provider, against the local cloud.

The offline plan (`socle plan`, Pulumi's mock engine) is what CI checks on every pull request; these
tests keep it honest. Each stack is previewed by the real CLI, through the project's language host and
OpenStack plugin, whose lookups (image, flavors, external network) are answered by Glance, Nova and
Neutron over the local cloud's TLS front. The preview must declare exactly the resources the offline
plan predicts (same URNs: types, names, parents and counts); with `--policy-pack policies` the real
analyzer finds what `socle check` finds (nothing unwaived); and a config value the cloud does not
know must fail the preview with one readable line.

Each stack runs in a copy of the project (its own state backend and generated passphrase); the
committed stack files are never touched. preprod and prod point at the local cloud's identity URL
(a `pulumi config set`, as an operator would for another cloud) and get random IPsec keys through
`socle engine set-psk`. Without the built CLI and plugin these tests fail (never skip): `make engine`.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest
from cloud_support import Cloud
from preview_support import policy_violations

from ght_socle.cloud import connect_as_stacks_user
from ght_socle.engine import Engine
from ght_socle.engine.scratch import ScratchProject, scratch_project
from ght_socle.policy.pack import PACK_NAME

STACKS = ("lab", "preprod", "prod")
INSTANCE = "openstack:compute/instance:Instance"


@pytest.fixture(scope="module")
def project(cloud: Cloud, engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> ScratchProject:
    """A project copy whose three stacks exist, point at the local cloud and have their IPsec keys."""
    scratch = scratch_project(tmp_path_factory.mktemp("previews"), engine)
    for stack in STACKS:
        scratch.prepare_stack(stack)
    return scratch


def _plan(project: ScratchProject, stack: str) -> dict[str, Any]:
    plan: dict[str, Any] = json.loads(project.socle("plan", "--stack", stack, "--format", "json").stdout)
    return plan


@pytest.mark.parametrize("stack", STACKS)
def test_the_real_preview_declares_exactly_what_the_offline_plan_predicts(engine: Engine, project: ScratchProject,
                                                                          stack: str) -> None:
    preview = json.loads(project.preview(stack, "--json").stdout)
    planned = _plan(project, stack)
    steps = preview["steps"]
    assert steps and {step["op"] for step in steps} == {"create"}, preview.get("diagnostics")
    real_urns = Counter(step["urn"] for step in steps if step["newState"]["type"] != "pulumi:pulumi:Stack")
    planned_urns = Counter(resource["urn"] for resource in planned["resources"])
    assert real_urns == planned_urns, {"only in the real preview": sorted(real_urns - planned_urns),
                                       "only in the offline plan": sorted(planned_urns - real_urns)}
    # The lookups were answered by the cloud: each instance boots the image Glance holds, with the
    # flavor Nova has under the name of the stack config.
    conn = connect_as_stacks_user()
    image = conn.image.find_image("debian-12-ght-golden", ignore_missing=False)
    flavors = {flavor.id: flavor.name for flavor in conn.compute.flavors()}
    instances = [step["newState"]["inputs"] for step in steps if step["newState"]["type"] == INSTANCE]
    assert instances
    for inputs in instances:
        assert inputs["blockDevices"][0]["uuid"] == image.id
        assert inputs["flavorId"] in flavors


@pytest.mark.parametrize("stack", STACKS)
def test_the_crossguard_pack_passes_the_stacks_as_socle_check_does(engine: Engine, project: ScratchProject,
                                                                    stack: str) -> None:
    result = project.preview(stack, "--policy-pack", "policies", check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert policy_violations(output) == set(), output[-4000:]
    assert f"\u2705 {PACK_NAME}@" in output  # the pack ran, and found nothing
    check = project.socle("check", "--stack", stack, "--format", "json")
    findings = json.loads(check.stdout)
    assert [f for f in findings if not f["waived"]] == []
    if stack == "lab":  # its waiver (CMP-004, logbak-01) covers the same violation in both paths
        assert {(f["rule_id"], f["resource_name"]) for f in findings} == {("CMP-004", "logbak-01-vm")}


@pytest.mark.parametrize(("key", "value", "why"), [
    ("ght-socle:roles.bastion.flavor", "b3-999", "no results"),  # Nova's answer to the lookup
    ("ght-socle:external_network", "No-Such-Net", "no results"),  # Neutron's
    ("ght-socle:roles.bastion.image", "debian-11-unknown", "allow-list"),  # the stack config's own check
], ids=["flavor", "external-network", "image"])
def test_a_value_the_cloud_does_not_know_fails_the_preview_readably(engine: Engine, project: ScratchProject, key: str,
                                                                     value: str, why: str) -> None:
    config_file = project.root / "stacks" / "config" / "Pulumi.lab.yaml"
    committed = config_file.read_text()
    try:
        project.pulumi("config", "set", "--stack", "lab", "--path", key, value)
        result = project.preview("lab", check=False)
    finally:
        config_file.write_text(committed)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    # One line naming the config key, the value and why (the cloud's answer, or the config check); no trace.
    lines = [line.strip() for line in output.splitlines() if key in line]
    assert lines and f"{value!r}" in lines[0] and why in lines[0].lower(), output[-3000:]
    assert "Traceback" not in output, output[-3000:]
