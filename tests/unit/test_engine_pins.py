"""The engine's versions agree everywhere: pyproject pins, installed SDKs, the Go wrapper module."""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import version

from ght_socle import paths
from ght_socle.engine.build import module_dir
from ght_socle.engine.versions import ENGINE_PARTS, OPENSTACK_VERSION, POLICY_SDK_VERSION, PULUMI_VERSION

PINS = {"pulumi": PULUMI_VERSION, "pulumi-openstack": OPENSTACK_VERSION, "pulumi-policy": POLICY_SDK_VERSION}


def test_pyproject_pins_the_engine_versions_exactly() -> None:
    project = tomllib.loads((paths.project_root() / "pyproject.toml").read_text())
    pinned = dict(re.fullmatch(r"([a-z-]+)==(\S+)", d).groups() for d in project["project"]["dependencies"]
                  if d.split("==")[0] in PINS)  # type: ignore[union-attr]
    assert pinned == PINS


def test_installed_sdks_are_the_pinned_ones() -> None:
    assert {name: version(name) for name in PINS} == PINS


def test_go_wrapper_module_requires_the_cli_and_sdk_at_the_pinned_version() -> None:
    go_mod = (module_dir() / "go.mod").read_text()
    for module in ("github.com/pulumi/pulumi/pkg/v3", "github.com/pulumi/pulumi/sdk/v3"):
        assert re.search(rf"^\s*{re.escape(module)} v{re.escape(PULUMI_VERSION)}\b", go_mod, re.MULTILINE), module
    assert "tool github.com/pulumi/pulumi/pkg/v3/cmd/pulumi" in go_mod
    assert (module_dir() / "go.sum").stat().st_size > 0


def test_every_engine_part_builds_on_the_pinned_sdk() -> None:
    # The language host speaks the CLI's protocol only when both are built from the same sdk/v3.
    for part in ENGINE_PARTS:
        go_mod = (module_dir(part) / "go.mod").read_text()
        pin = rf"^\s*github\.com/pulumi/pulumi/sdk/v3 v{re.escape(PULUMI_VERSION)}(\s|$)"
        assert re.search(pin, go_mod, re.MULTILINE), part.binary
        assert part.version.startswith(f"v{PULUMI_VERSION}"), part.binary
        assert (module_dir(part) / "go.sum").stat().st_size > 0, part.binary
