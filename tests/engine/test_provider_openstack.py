"""The project's OpenStack provider plugin serves what the pulumi_openstack SDK sends.

The plugin is the real one `make engine` builds (no mock): it is installed into the test's own
PULUMI_HOME, listed by `pulumi plugin ls`, started by `pulumi package get-schema`, and its schema is
compared with the SDK's surface (every token, every property name, list or not) and with what the
project's stacks declare. Without the built plugin these tests fail: run `make engine`.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from engine_workspace import Workspace

from ght_socle import paths
from ght_socle.engine import Engine, EngineSettings, engine_environment
from ght_socle.engine.openstack_sdk import SdkSurface, Shape, read_surface
from ght_socle.engine.provider import ProviderPlugin, find_plugin, install_plugin, installed_version
from ght_socle.engine.versions import OPENSTACK_VERSION
from ght_socle.plan import run_plan

ROOT = paths.project_root()
Schema = dict[str, Any]


@pytest.fixture(scope="session")
def plugin() -> ProviderPlugin:
    found = find_plugin()
    assert found is not None, f"no pulumi-resource-openstack {OPENSTACK_VERSION}: run `make engine`"
    return found


@pytest.fixture(scope="session")
def surface() -> SdkSurface:
    return read_surface()


@pytest.fixture(scope="session")
def schema(engine: Engine, plugin: ProviderPlugin, tmp_path_factory: pytest.TempPathFactory) -> Schema:
    """The schema the plugin answers GetSchema with, asked by the real CLI (which starts the plugin)."""
    settings = EngineSettings.resolve(state=tmp_path_factory.mktemp("schema-state"))
    env = {**os.environ, **engine_environment(engine, settings)}
    result = subprocess.run([str(engine.pulumi), "package", "get-schema", str(plugin.binary)], env=env,
                            capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr
    loaded: Schema = json.loads(result.stdout)
    return loaded


def _shape(properties: dict[str, Any]) -> Shape:
    return Shape({name: spec.get("type") == "array" for name, spec in properties.items()})


def _differences(what: str, sdk: Shape, served: Shape) -> list[str]:
    found = []
    if sdk.names != served.names:
        found.append(f"{what}: SDK only {sorted(sdk.names - served.names)}, "
                     f"plugin only {sorted(served.names - sdk.names)}")
    found += [f"{what}.{name}: list in the SDK {sdk.lists[name]}, in the plugin {served.lists[name]}"
              for name in sorted(sdk.names & served.names) if sdk.lists[name] != served.lists[name]]
    return found


def test_plugin_ls_shows_the_installed_provider(engine: Engine, plugin: ProviderPlugin, workspace: Workspace) -> None:
    assert installed_version(engine, workspace.env) is None  # a fresh PULUMI_HOME
    install_plugin(engine, plugin, workspace.env, progress=lambda _line: None)
    listing = json.loads(workspace.run(str(engine.pulumi), "plugin", "ls", "--json").stdout)
    assert [(p["name"], p["kind"], p["version"]) for p in listing] == [("openstack", "resource", OPENSTACK_VERSION)]
    installed = Path(workspace.env["PULUMI_HOME"]) / "plugins" / f"resource-openstack-v{OPENSTACK_VERSION}"
    assert (installed / "pulumi-resource-openstack").is_file()


def test_plugin_reports_its_version(plugin: ProviderPlugin, schema: Schema) -> None:
    version = subprocess.run([str(plugin.binary), "-version"], capture_output=True, text=True, check=True)
    assert version.stdout.strip() == OPENSTACK_VERSION
    assert (schema["name"], schema["version"]) == ("openstack", OPENSTACK_VERSION)


def test_every_sdk_token_is_served(surface: SdkSurface, schema: Schema) -> None:
    assert sorted(set(surface.resources) - set(schema["resources"])) == []
    assert sorted(set(surface.functions) - set(schema["functions"])) == []
    # Nothing beyond the SDK either: a Terraform resource without an SDK token is left out.
    assert sorted(set(schema["resources"]) - set(surface.resources)) == []
    assert sorted(set(schema["functions"]) - set(surface.functions) - surface.methods) == []
    assert sorted(surface.methods - set(schema["functions"])) == []


def test_resource_properties_are_the_sdks(surface: SdkSurface, schema: Schema) -> None:
    differences = []
    for token, resource in sorted(surface.resources.items()):
        served = schema["resources"].get(token, {})
        differences += _differences(f"{token} inputs", resource.inputs, _shape(served.get("inputProperties", {})))
        differences += _differences(f"{token} outputs", resource.outputs, _shape(served.get("properties", {})))
    assert differences == []


def test_function_arguments_and_results_are_the_sdks(surface: SdkSurface, schema: Schema) -> None:
    differences = []
    for token, function in sorted(surface.functions.items()):
        served = schema["functions"].get(token, {})
        arguments = set(served.get("inputs", {}).get("properties", {}))
        if function.arguments != arguments:
            differences.append(f"{token} arguments: SDK only {sorted(function.arguments - arguments)}, "
                               f"plugin only {sorted(arguments - function.arguments)}")
        differences += _differences(f"{token} results", function.results,
                                    _shape(served.get("outputs", {}).get("properties", {})))
    assert differences == []


def test_object_types_are_the_sdks(surface: SdkSurface, schema: Schema) -> None:
    # The Python class of a type is its name capitalised, plus "Result" for a function's result types:
    # getVolumeV3Attachment is GetVolumeV3AttachmentResult.
    served_types = {(token.split(":")[1].split("/")[0], token.split(":")[2].lower()): spec
                    for token, spec in schema["types"].items()}
    differences = []
    for (module, name), shapes in sorted(surface.object_types.items()):
        served = served_types.get((module, name.lower())) or served_types.get(
            (module, name.removesuffix("Result").lower()))
        if served is None:
            differences.append(f"{module}.{name}: no such type in the plugin's schema")
            continue
        for shape in shapes:
            differences += _differences(f"{module}.{name}", shape, _shape(served.get("properties", {})))
    assert differences == []


def test_provider_settings_are_the_sdks(surface: SdkSurface, schema: Schema) -> None:
    assert _differences("provider", surface.provider_settings,
                        _shape(schema["provider"].get("inputProperties", {}))) == []


@pytest.mark.parametrize("stack", ["lab", "preprod", "prod"])
def test_what_the_stacks_declare_is_served(stack: str, schema: Schema) -> None:
    plan = run_plan(stack=stack)
    declared = [r for r in plan.resources if r.custom and r.type.startswith("openstack:")]
    assert declared, f"the {stack} stack declares no OpenStack resource"
    missing = []
    for resource in declared:
        served = schema["resources"].get(resource.type)
        if served is None:
            missing.append(resource.type)
            continue
        unknown = set(resource.inputs) - set(served.get("inputProperties", {}))
        missing += [f"{resource.type}.{key}" for key in sorted(unknown)]
    assert missing == []


def _openstack_references(path: Path) -> set[tuple[str, str]]:
    """(module, name) of every ``openstack.<module>.<name>`` a project file names."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute) \
                and isinstance(node.value.value, ast.Name) and node.value.value.id == "openstack":
            found.add((node.value.attr, node.attr))
    return found


def test_the_functions_the_project_calls_are_served(surface: SdkSurface, schema: Schema) -> None:
    sources = [*sorted((ROOT / "src" / "ght_socle").rglob("*.py")), *sorted((ROOT / "stacks").rglob("*.py"))]
    references = set().union(*(_openstack_references(path) for path in sources))
    calls = {(module, name) for module, name in references if name.startswith("get_")}
    assert calls, "the project calls no OpenStack lookup: the scan is broken"
    tokens = {}
    for module, name in sorted(calls):
        function = surface.function_of(module, name)
        assert function is not None, f"openstack.{module}.{name} is not a function of the SDK"
        tokens[function.token] = function.token in schema["functions"]
    assert all(tokens.values()), tokens
