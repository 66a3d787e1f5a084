"""The project's Python language host runs programs and the CrossGuard pack under the real CLI.

The program is the probe of engine/probe, which declares no provider resource (the OpenStack provider
plugin is not built here): a GHT-style component, stack outputs read from the stack configuration,
one of them a secret.
"""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest
from engine_workspace import Workspace, open_workspace

from ght_socle import paths
from ght_socle.engine import Engine
from ght_socle.engine.versions import LANGUAGE_PYTHON
from ght_socle.policy.pack import PACK_NAME

ROOT = paths.project_root()
PROJECT = "ght-probe"
STACK = "probe"

PROBE = ROOT / "engine" / "probe"
PROGRAM = (PROBE / "program" / "__main__.py").read_text()


@pytest.fixture
def probe(tmp_path: Path, engine: Engine) -> Workspace:
    """The probe stack (engine/probe) in a copy with the project's policies; its token not set yet."""
    root = tmp_path / "probe"
    shutil.copytree(PROBE, root)
    # The runtime options name a virtualenv beside Pulumi.yaml (as the project's own do): the project's.
    (root / ".venv").symlink_to(ROOT / ".venv", target_is_directory=True)
    shutil.copytree(ROOT / "policies", root / "policies")
    workspace = open_workspace(root, tmp_path / "state", engine)
    workspace.run(str(engine.pulumi), "stack", "init", STACK, "--secrets-provider", "passphrase", "--non-interactive")
    return workspace


def _secret_token(engine: Engine, workspace: Workspace) -> str:
    token = f"probe-{secrets.token_urlsafe(24)}"
    workspace.run(str(engine.pulumi), "config", "set", "--secret", "token", "--non-interactive", stdin=token)
    return token


def _output(result: subprocess.CompletedProcess[str]) -> str:
    return result.stdout + result.stderr


def test_the_engine_has_the_projects_language_host_beside_the_cli(engine: Engine) -> None:
    hosts = [plugin for plugin in engine.plugins if plugin.part == LANGUAGE_PYTHON]
    assert hosts, "no pulumi-language-python: run `make engine`"
    assert hosts[0].path.parent in engine.bin_dirs
    assert (hosts[0].path.resolve().parent / "pulumi-language-python-exec").is_file()


def test_preview_and_up_run_a_python_program(engine: Engine, probe: Workspace) -> None:
    pulumi = str(engine.pulumi)
    token = _secret_token(engine, probe)
    preview = probe.run(pulumi, "preview", "--non-interactive")
    assert "ght:probe:Probe" in preview.stdout and "ght-probe" in preview.stdout
    # The host found is the one beside the CLI: no "using pulumi-language-python from $PATH" warning.
    assert "from $PATH" not in _output(preview)
    probe.run(pulumi, "up", "--yes", "--non-interactive")
    outputs = json.loads(probe.run(pulumi, "stack", "output", "--json").stdout)
    assert outputs == {"greeting": "bonjour", "token": "[secret]"}
    shown = json.loads(probe.run(pulumi, "stack", "output", "--json", "--show-secrets").stdout)
    assert shown["token"] == token
    state_file = probe.root.parent / "state" / "backend" / ".pulumi" / "stacks" / PROJECT / f"{STACK}.json"
    state = state_file.read_text()
    assert "ght:probe:Probe" in state and "ciphertext" in state
    assert token not in state
    written = [p for p in probe.root.parent.rglob("*") if p.is_file() and p.name != "passphrase"
               and ".venv" not in p.parts]
    assert not [p for p in written if token in p.read_bytes().decode(errors="replace")]


def test_a_failing_program_fails_preview_with_its_python_error(engine: Engine, probe: Workspace) -> None:
    marker = f"probe refused {secrets.token_hex(4)}"
    (probe.root / "program" / "__main__.py").write_text(f"raise RuntimeError({marker!r})\n")
    preview = probe.run(str(engine.pulumi), "preview", "--non-interactive", check=False)
    assert preview.returncode != 0
    assert f"RuntimeError: {marker}" in _output(preview)


def test_a_program_outside_its_virtualenv_is_refused_clearly(engine: Engine, probe: Workspace) -> None:
    (probe.root / ".venv").unlink()
    preview = probe.run(str(engine.pulumi), "preview", "--non-interactive", check=False)
    assert preview.returncode != 0
    assert ".venv" in _output(preview)


def test_the_policy_pack_runs_through_the_host(engine: Engine, probe: Workspace) -> None:
    _secret_token(engine, probe)
    preview = probe.run(str(engine.pulumi), "preview", "--policy-pack", "policies", "--non-interactive")
    assert PACK_NAME in preview.stdout


def test_a_policy_violation_fails_the_preview_with_its_rule(engine: Engine, probe: Workspace) -> None:
    # BCK-002: a backup policy keeping daily backups one day, with no off-site copy.
    program = probe.root / "program" / "__main__.py"
    program.write_text(PROGRAM + textwrap.dedent("""\
        pulumi.export("ght", {"backup_policies": {"daily": {"keep_daily": 1, "offsite": False}}})
        """))
    _secret_token(engine, probe)
    preview = probe.run(str(engine.pulumi), "preview", "--policy-pack", "policies", "--non-interactive",
                        check=False)
    assert preview.returncode != 0
    assert "bck-policy-has-offsite-copy" in preview.stdout and "[mandatory]" in preview.stdout
    assert "BCK-002: backup policy daily keeps daily backups" in preview.stdout
    # The program, still running when the engine gave up, is ended quietly (no KeyboardInterrupt traceback).
    assert "KeyboardInterrupt" not in _output(preview)
