"""The offline plan runner on small programs: recording, config, secrets, errors, isolation."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from ght_socle.errors import ConfigError
from ght_socle.plan import run_plan

PROGRAM = """
import pulumi
import pulumi_openstack as openstack
import helper

cfg = pulumi.Config()
net = openstack.networking.Network("net", tags=["zone=" + cfg.require("zone")])
openstack.networking.Subnet("sub", network_id=net.id, cidr=cfg.require_object("net")["cidr"])

class Box(pulumi.ComponentResource):
    def __init__(self, name, opts=None):
        super().__init__("ght:test:Box", name, None, opts)
        self.vm = openstack.compute.Instance(
            f"{name}-vm", flavor_name="b2-7", admin_pass=cfg.require_secret("password"),
            opts=pulumi.ResourceOptions(parent=self))
        self.register_outputs({})

Box("box")
ext = openstack.networking.get_network(name="Ext-Net")
pulumi.export("network", net.id)
pulumi.export("external", ext.id)
pulumi.export("marker", helper.MARKER)
pulumi.export("token", pulumi.Output.secret("s3cr3t-token"))
"""


def write_program(directory: Path, marker: str, config: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "Pulumi.yaml").write_text("name: tiny\nruntime:\n  name: python\n")
    (directory / "__main__.py").write_text(PROGRAM)
    (directory / "helper.py").write_text(f"MARKER = {marker!r}\n")
    (directory / "Pulumi.dev.yaml").write_text(textwrap.dedent(config))
    return directory


CONFIG = """
config:
  tiny:zone: admin
  net: {cidr: 10.40.1.0/24}
  password:
    secure: v1:AAAABBBBCCCC
"""


def test_records_resources_parents_inputs_and_outputs(tmp_path: Path) -> None:
    plan = run_plan(stack="dev", program_dir=write_program(tmp_path / "p", "one", CONFIG))
    by_name = {r.name: r for r in plan.resources}
    assert set(by_name) == {"net", "sub", "box", "box-vm"}
    assert by_name["net"].inputs["tags"] == ["zone=admin"]
    assert by_name["sub"].inputs == {"cidr": "10.40.1.0/24", "networkId": "net-id"}
    assert by_name["box"].custom is False and by_name["box"].type == "ght:test:Box"
    assert by_name["box-vm"].parent == by_name["box"].urn
    assert by_name["net"].parent is None
    vm = by_name["box-vm"]
    assert vm.secret_keys == {"adminPass"}
    assert isinstance(vm.inputs["adminPass"], str) and vm.inputs["adminPass"] != "v1:AAAABBBBCCCC"
    assert vm.as_json()["inputs"]["adminPass"] == "[secret]"
    assert plan.outputs == {"network": "net-id", "external": "Ext-Net-id", "marker": "one", "token": "[secret]"}
    assert plan.config["tiny:password"] == "[secret]"


def test_overrides_and_repeated_runs_are_isolated(tmp_path: Path) -> None:
    first = write_program(tmp_path / "a", "first", CONFIG)
    second = write_program(tmp_path / "b", "second", CONFIG)
    plan_a = run_plan(program_dir=first, config_overrides={"zone": "dmz-in"})
    plan_b = run_plan(program_dir=second)
    # Same-named helper modules of two programs do not leak into each other.
    assert plan_a.outputs["marker"] == "first" and plan_b.outputs["marker"] == "second"
    tags = {r.name: r.inputs.get("tags") for r in plan_a.resources}
    assert tags["net"] == ["zone=dmz-in"]
    assert len(plan_b.resources) == 4  # a fresh monitor: nothing left over from the first run


def test_explicit_config_file_names_the_stack(tmp_path: Path) -> None:
    program = write_program(tmp_path / "p", "x", CONFIG)
    other = tmp_path / "Pulumi.recette.yaml"
    other.write_text(CONFIG.replace("tiny:zone: admin", "tiny:zone: log"))
    plan = run_plan(program_dir=program, config_file=other)
    assert plan.stack == "recette"
    assert all(r.urn.startswith("urn:pulumi:recette::tiny::") for r in plan.resources)


def test_program_failure_is_one_line(tmp_path: Path) -> None:
    program = write_program(tmp_path / "p", "x", "config:\n  net: {cidr: 10.0.0.0/24}\n")
    with pytest.raises(ConfigError) as info:
        run_plan(program_dir=program)
    message = str(info.value)
    assert "\n" not in message
    assert str(program / "__main__.py") in message and "tiny:zone" in message


def test_failure_inside_apply_is_reported(tmp_path: Path) -> None:
    tmp_path.joinpath("Pulumi.yaml").write_text("name: bad\nruntime: python\n")
    tmp_path.joinpath("__main__.py").write_text(
        "import pulumi_openstack as o\nn = o.networking.Network('n')\nn.id.apply(lambda _: 1 / 0)\n")
    with pytest.raises(ConfigError, match=r"line 3: program failed: ZeroDivisionError"):
        run_plan(program_dir=tmp_path)


@pytest.mark.parametrize(
    ("project_yaml", "expected"),
    [
        (None, "no Pulumi.yaml"),
        ("name: x\nruntime: nodejs\n", "key runtime"),
        ("runtime: python\n", "key name"),
        ("name: x\nruntime: python\nmain: nowhere/\n", "key main"),
        ("name: [x\n", "broken YAML"),
    ],
)
def test_bad_project_file(tmp_path: Path, project_yaml: str | None, expected: str) -> None:
    if project_yaml is not None:
        tmp_path.joinpath("Pulumi.yaml").write_text(project_yaml)
    with pytest.raises(ConfigError, match=expected):
        run_plan(program_dir=tmp_path)


def test_bad_stack_config(tmp_path: Path) -> None:
    program = write_program(tmp_path / "p", "x", "config: [1, 2]\n")
    with pytest.raises(ConfigError, match=r"Pulumi.dev.yaml: key config"):
        run_plan(program_dir=program)
    with pytest.raises(ConfigError, match="not found"):
        run_plan(program_dir=program, config_file=tmp_path / "missing.yaml")
