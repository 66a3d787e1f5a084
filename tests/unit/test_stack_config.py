"""Bad stack configurations end with exit 2 and one line naming the file and the key."""

from __future__ import annotations

import copy
import json
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from stack_plans import plan_of

from ght_socle import paths
from ght_socle.cli import main
from ght_socle.errors import ConfigError
from ght_socle.plan import run_plan

LAB_CONFIG = paths.project_root() / "stacks" / "config" / "Pulumi.lab.yaml"
Mutation = Callable[[dict[str, Any]], None]


def lab_config() -> dict[str, Any]:
    return yaml.safe_load(LAB_CONFIG.read_text())["config"]


def setitem(key: str, value: Any) -> Mutation:
    def mutate(config: dict[str, Any]) -> None:
        config[key] = value
    return mutate


def set_path(key: str, path: list[str], value: Any) -> Mutation:
    def mutate(config: dict[str, Any]) -> None:
        target = config[key]
        for part in path[:-1]:
            target = target[part]
        target[path[-1]] = value
    return mutate


def add_role_copy(name: str, source: str, **changes: Any) -> Mutation:
    def mutate(config: dict[str, Any]) -> None:
        role = copy.deepcopy(config["ght-socle:roles"][source])
        role.update(changes)
        config["ght-socle:roles"][name] = role
    return mutate


def add_site(psk: Any) -> Mutation:
    def mutate(config: dict[str, Any]) -> None:
        config["ght-socle:sites"] = {"ch-nord": {"cidr": "10.2.0.0/16", "peer_address": "203.0.113.20", "psk": psk}}
    return mutate


CASES: list[tuple[str, Mutation, str, str]] = [
    ("bad CIDR", set_path("ght-socle:zones", ["hds-app"], "10.40.2.0/33"),
     "key ght-socle:zones.hds-app", "10.40.2.0/33 is not a valid CIDR"),
    ("overlapping CIDRs", set_path("ght-socle:zones", ["hds-data"], "10.40.2.128/25"),
     "key ght-socle:zones.hds-data", "overlaps ght-socle:zones.hds-app"),
    ("admin network overlapping a zone", setitem("ght-socle:admin_networks", ["10.40.2.0/25"]),
     "key ght-socle:admin_networks[0]", "overlaps ght-socle:zones.hds-app"),
    ("unknown zone of a role", set_path("ght-socle:roles", ["dpi_app", "zone"], "hds-apps"),
     "key ght-socle:roles.dpi_app.zone", "unknown zone 'hds-apps'"),
    ("duplicate host name", add_role_copy("dpi_app_bis", "dpi_app"),
     "key ght-socle:roles.dpi_app_bis.hostname_prefix", "duplicate host name app-01"),
    ("flow naming an unknown zone", set_path("ght-socle:flows", ["FLOW-002", "destination"], ["hds-app", "moon"]),
     "key ght-socle:flows.FLOW-002.destination[1]", "unknown zone 'moon'"),
    ("flow naming an unknown role", set_path("ght-socle:flows", ["FLOW-006", "source"], "role:pacs"),
     "key ght-socle:flows.FLOW-006.source", "unknown role 'pacs'"),
    ("bad flow id", lambda c: c["ght-socle:flows"].update({"FLOW-7": c["ght-socle:flows"]["FLOW-001"]}),
     "key ght-socle:flows.FLOW-7", "is not a flow id"),
    ("region outside the allow-list", setitem("openstack:region", "us-east-1"),
     "key openstack:region", "region 'us-east-1' is outside the allow-list"),
    ("backup copy outside the allow-list",
     set_path("ght-socle:backup", ["object_storage", "offsite_region"], "us-west"),
     "key ght-socle:backup.object_storage.offsite_region", "outside the allow-list"),
    ("unencrypted volume type", set_path("ght-socle:roles", ["dpi_app", "volume_type"], "classic"),
     "key ght-socle:roles.dpi_app.volume_type", "'classic' is not an encrypted volume type"),
    ("image outside the allow-list", set_path("ght-socle:roles", ["bastion", "image"], "ubuntu-22.04"),
     "key ght-socle:roles.bastion.image", "image 'ubuntu-22.04' is not in the allow-list"),
    ("HA role with one instance", set_path("ght-socle:roles", ["dpi_app", "count"], 1),
     "key ght-socle:roles.dpi_app.count", "an HA role needs at least 2 instances"),
    ("unknown key", setitem("ght-socle:colour", "blue"), "key ght-socle:colour", "unknown key"),
    ("missing key", lambda c: c.pop("ght-socle:flows"), "key ght-socle:flows", "missing key"),
    ("wrong type", set_path("ght-socle:roles", ["dpi_app", "count"], "two"),
     "key ght-socle:roles.dpi_app.count", "valid integer"),
    ("floating IP outside dmz-in", set_path("ght-socle:roles", ["dpi_app", "floating_ip"], True),
     "key ght-socle:roles.dpi_app.floating_ip", "floating IPs are for dmz-in hosts only"),
    ("bastion without transit port", set_path("ght-socle:roles", ["bastion", "extra_zones"], []),
     "key ght-socle:roles.bastion.extra_zones", "needs a port in transit"),
    ("pre-shared key in clear", add_site("clear-text-key"),
     "key ght-socle:sites.ch-nord.psk", "must be Pulumi secrets"),
    ("site CIDR overlapping a zone", lambda c: (add_site({"secure": "v1:abc"})(c),
                                               c["ght-socle:sites"]["ch-nord"].update(cidr="10.40.0.0/16")),
     "key ght-socle:sites.ch-nord.cidr", "overlaps ght-socle:zones.admin"),
]


@pytest.mark.parametrize(("mutation", "key", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_config_exits_2_with_one_line_naming_the_key(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], mutation: Mutation, key: str, message: str) -> None:
    config = lab_config()
    mutation(config)
    config_file = tmp_path / "Pulumi.lab.yaml"
    config_file.write_text(yaml.safe_dump({"config": config}, sort_keys=False))
    assert main(["plan", "--stack", "lab", "--config", str(config_file)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    errors = [line for line in captured.err.splitlines() if line.startswith("socle: error:")]
    assert len(errors) == 1, captured.err
    assert "Traceback" not in captured.err
    assert f"{config_file}: {key}: " in errors[0] or f"Pulumi.lab.yaml: {key}: " in errors[0], errors[0]
    assert message in errors[0]


def test_project_config_error_names_the_project_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "--stack", "no-such-stack"]) == 2
    err = capsys.readouterr().err
    assert "Pulumi.no-such-stack.yaml" in err and "known stacks: lab, preprod, prod" in err


def test_secret_pre_shared_key_is_accepted_and_stays_secret(tmp_path: Path) -> None:
    config = lab_config()
    add_site({"secure": "v1:abc:def"})(config)
    config_file = tmp_path / "Pulumi.lab.yaml"
    config_file.write_text(yaml.safe_dump({"config": config}, sort_keys=False))
    plan = run_plan(config_file=config_file)
    (connection,) = plan.of_type("openstack:vpnaas/siteConnection:SiteConnection")
    assert connection.secret_keys == {"psk"}
    assert "v1:abc:def" not in json.dumps(plan.as_json())


def test_lab_admin_key_is_overridden_by_the_lab(tmp_path: Path) -> None:
    lab_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBbJ8ffakeLabKeyForTestsOnly0000000000000 ghtadmin@socle-lab"
    plan = run_plan(stack="lab", config_overrides={"ght-socle:admin_ssh_keys": [lab_key]})
    (keypair,) = plan.of_type("openstack:compute/keypair:Keypair")
    assert keypair.inputs["publicKey"] == lab_key
    for instance in plan.of_type("openstack:compute/instance:Instance"):
        assert lab_key in instance.inputs["userData"]
        assert "lab-placeholder" not in instance.inputs["userData"]
    # The committed placeholder is what a plain plan uses.
    assert "lab-placeholder" in plan_of("lab").of_type("openstack:compute/keypair:Keypair")[0].inputs["publicKey"]


def test_plan_json_of_prod(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "--stack", "prod", "--format", "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["stack"] == "prod" and document["project"] == "ght-socle"
    resources = document["resources"]
    assert len(resources) > 500
    assert {"urn", "type", "name", "parent", "inputs", "custom"} <= set(resources[0])
    types = {r["type"] for r in resources}
    assert {"ght:network:ZonedNetwork", "ght:compute:HdsVm", "ght:admin:Bastion", "ght:backup:BackupTier"} <= types
    psks = [r["inputs"]["psk"] for r in resources if r["type"] == "openstack:vpnaas/siteConnection:SiteConnection"]
    assert psks and set(psks) == {"[secret]"}
    assert set(document["outputs"]) >= {"hosts", "bastion", "ght"}


def test_plan_text_of_lab(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "--stack", "lab"]) == 0
    out = capsys.readouterr().out
    assert "By type:" in out and "By zone:" in out
    assert "  app-01  [ght:compute:HdsVm]" in out
    assert "openstack:compute/instance:Instance" in out


WRAPPER = """
import runpy

import socle_registration_probe as probe
from pulumi.runtime import settings

# Keep the engine (mock monitor) of this run, to count what the program asked it to create.
probe.monitor = settings.get_monitor()
runpy.run_path({program!r}, run_name="__main__")
"""


@pytest.mark.parametrize("mutation", [set_path("ght-socle:zones", ["hds-data"], "10.40.2.128/25"),
                                      add_role_copy("dpi_app_bis", "dpi_app"),
                                      set_path("ght-socle:roles", ["bastion", "image"], "ubuntu-22.04")],
                         ids=["overlap", "duplicate-host", "image"])
def test_nothing_is_declared_before_the_configuration_is_valid(tmp_path: Path, mutation: Mutation,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    probe = types.ModuleType("socle_registration_probe")
    monkeypatch.setitem(sys.modules, probe.__name__, probe)
    config = lab_config()
    mutation(config)
    (tmp_path / "Pulumi.yaml").write_text("name: ght-socle\nruntime: python\n")
    (tmp_path / "Pulumi.lab.yaml").write_text(yaml.safe_dump({"config": config}))
    program = paths.project_root() / "stacks" / "__main__.py"
    (tmp_path / "__main__.py").write_text(WRAPPER.format(program=str(program)))
    with pytest.raises(ConfigError, match="key ght-socle:"):
        run_plan(stack="lab", program_dir=tmp_path)
    # run_plan waits for every registration the program started before reporting its failure.
    assert probe.monitor.resources == {}
    # The same wrapper with the valid configuration does declare the stack.
    (tmp_path / "Pulumi.lab.yaml").write_text(yaml.safe_dump({"config": lab_config()}))
    run_plan(stack="lab", program_dir=tmp_path)
    assert len(probe.monitor.resources) == len(plan_of("lab").resources)


def test_plan_any_program_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "Pulumi.yaml").write_text("name: other\nruntime: python\n")
    (tmp_path / "Pulumi.dev.yaml").write_text("config: {}\n")
    (tmp_path / "__main__.py").write_text(
        "import pulumi_openstack as o\no.networking.Network('n', tags=['zone=admin'])\n")
    assert main(["plan", "--stack", "dev", "--program", str(tmp_path), "--format", "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in document["resources"]] == ["n"] and document["project"] == "other"
