"""Children of the GHT components are named after their component: two of a kind never share a URN."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
import yaml

from ght_socle import paths
from ght_socle.config import load_stack_config
from ght_socle.errors import ConfigError
from ght_socle.plan import run_plan

TWO_OF_EACH = Path(__file__).parent / "data" / "two_of_each"
CONFIG_DIR = paths.project_root() / "stacks" / "config"
SITE = {"ch-nord": {"cidr": "10.2.0.0/16", "peer_address": "203.0.113.20", "psk": {"secure": "v1:c2FsdA==:a2V5"}}}
COMPONENT_TYPES = ("ght:network:ZonedNetwork", "ght:compute:RoleServers", "ght:admin:Bastion",
                   "ght:backup:BackupTier")


def test_two_components_of_each_kind_declare_no_urn_twice(tmp_path: Path) -> None:
    # The lab configuration plus a site (its key a secret in the file, as secrecy is read per value there).
    config = yaml.safe_load((CONFIG_DIR / "Pulumi.lab.yaml").read_text())
    config["config"]["ght-socle:sites"] = SITE
    config_file = tmp_path / "Pulumi.lab.yaml"
    config_file.write_text(yaml.safe_dump(config, sort_keys=False))
    plan = run_plan(stack="lab", program_dir=TWO_OF_EACH, config_file=config_file)
    urns = Counter(r.urn for r in plan.resources)
    assert [urn for urn, count in urns.items() if count > 1] == []
    components = Counter(r.type for r in plan.resources if not r.custom)
    for type_token in COMPONENT_TYPES:
        assert components[type_token] >= 2, type_token
    # The program declares the VPN too (a site is configured): its children are covered.
    assert len(plan.of_type("openstack:vpnaas/siteConnection:SiteConnection")) == 2


def test_children_of_the_stacks_components_start_with_the_component_name() -> None:
    plan = run_plan(stack="prod")
    names = {r.urn: r.name for r in plan.resources}
    for resource in plan.resources:
        if resource.parent is None or resource.parent not in names:
            continue
        parent_name = names[resource.parent]
        parent_type = resource.parent.split("::")[2].split("$")[-1]
        if parent_type == "openstack:networking/secGroup:SecGroup":
            continue  # a rule's parent is its group; the rule is named after the network component
        if resource.type == "ght:compute:HdsVm":
            continue  # a VM is its host name, unique in a stack (its own children start with it)
        assert resource.name.startswith(f"{parent_name}-"), (resource.name, parent_name)


@pytest.mark.parametrize("stack", ["preprod", "prod"])
def test_committed_configs_leave_psks_unset_and_a_deployment_requires_them(stack: str) -> None:
    config = yaml.safe_load((CONFIG_DIR / f"Pulumi.{stack}.yaml").read_text())["config"]
    assert all("psk" not in site for site in config["ght-socle:sites"].values())
    raw = {key: value if isinstance(value, str) else json.dumps(value) for key, value in config.items()}
    assert load_stack_config(raw, source=f"Pulumi.{stack}.yaml").settings.sites  # offline: accepted
    first = next(iter(config["ght-socle:sites"]))
    with pytest.raises(ConfigError, match=rf"ght-socle:sites\.{first}\.psk: not set"):
        load_stack_config(raw, source=f"Pulumi.{stack}.yaml", require_psks=True)


def test_a_urn_carries_its_parents_whole_type_chain_as_the_engine_builds_it() -> None:
    # Pulumi's MockMonitor keeps only the parent's last type; the engine (and so the plan) keeps the chain.
    plan = run_plan(stack="lab")
    by_urn = {r.urn: r for r in plan.resources}
    rules = plan.of_type("openstack:networking/secGroupRule:SecGroupRule")
    assert rules
    for rule in rules:
        group = by_urn[rule.parent] if rule.parent else None
        assert group is not None and group.type == "openstack:networking/secGroup:SecGroup"
        chain = rule.urn.split("::")[2]
        assert chain == f"{group.urn.split('::')[2]}${rule.type}"
        assert chain.startswith("ght:network:ZonedNetwork$openstack:networking/secGroup:SecGroup$")
    for resource in plan.resources:
        if resource.parent is None:
            assert resource.urn.split("::")[2] == resource.type  # children of the stack: no prefix
