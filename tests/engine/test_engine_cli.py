"""The built CLI tells its version and runs offline against the project's own state and plugins."""

from __future__ import annotations

import json

from engine_workspace import Workspace

from ght_socle.engine import Engine
from ght_socle.engine.versions import LANGUAGE_PYTHON, PULUMI_VERSION


def test_pulumi_version_is_the_pinned_one(engine: Engine, workspace: Workspace) -> None:
    assert workspace.run(str(engine.pulumi), "version").stdout.strip() == f"v{PULUMI_VERSION}"


def test_plugins_live_under_the_projects_pulumi_home(engine: Engine, workspace: Workspace) -> None:
    listing = workspace.run(str(engine.pulumi), "plugin", "ls", "--json").stdout
    assert listing.strip() in ("[]", "null", "")  # nothing was ever downloaded into this home
    assert workspace.env["PULUMI_HOME"].startswith(str(workspace.root.parent))


def test_engine_env_prints_export_lines(workspace: Workspace) -> None:
    result = workspace.run(workspace.env["PULUMI_PYTHON_CMD"], "-m", "ght_socle.cli", "engine", "env")
    names = {line.split("=", 1)[0].removeprefix("export ") for line in result.stdout.splitlines()}
    assert {"PATH", "PULUMI_HOME", "PULUMI_BACKEND_URL", "PULUMI_CONFIG_PASSPHRASE_FILE",
            "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION", "PULUMI_SKIP_UPDATE_CHECK"} <= names


def test_engine_status_shows_the_language_host_beside_the_cli(engine: Engine, workspace: Workspace) -> None:
    result = workspace.run(workspace.env["PULUMI_PYTHON_CMD"], "-m", "ght_socle.cli", "engine", "status",
                           "--format", "json")
    parts = {part["name"]: part for part in json.loads(result.stdout)["parts"]}
    host = parts[LANGUAGE_PYTHON.binary]
    assert host["version"] == f"v{PULUMI_VERSION}+ght-socle"
    assert host["path"] == str(engine.bin_dir / LANGUAGE_PYTHON.binary)
    assert LANGUAGE_PYTHON.binary not in {p["name"] for p in json.loads(result.stdout)["not_buildable"]}
