"""The pull-request check runs on the base install: no Ansible, no SSH stack, no OpenStack SDK.

`pip install ght-socle` (without the `ops` and `cloud` extras) must be enough for what CI runs on every
pull request. The commands run in a child Python whose import system refuses the extras' packages, so
a module-level import of any of them, anywhere on the path of these commands, fails the test.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from ght_socle import paths

ROOT = paths.project_root()
EXTRAS_ONLY = ("ansible", "ansible_runner", "ansible_mitogen", "mitogen", "paramiko", "testinfra", "xdist",
               "openstack", "pytest", "_pytest")
BLOCKER = f"""
import importlib.abc, sys
class RefuseExtras(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {EXTRAS_ONLY!r}:
            raise ImportError(f"{{name}} belongs to an extra, not to the base install")
        return None
sys.meta_path.insert(0, RefuseExtras())
from ght_socle.cli import main
sys.exit(main(sys.argv[1:]))
"""


def socle_base(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", BLOCKER, *args], cwd=cwd, capture_output=True, text=True,
                          check=False, timeout=600)


def test_the_base_dependencies_leave_out_what_runs_against_hosts() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    base = {requirement.split("=")[0].split(">")[0].split("<")[0].strip() for requirement in project["dependencies"]}
    assert not base & {"ansible", "ansible-runner", "mitogen", "paramiko", "pytest-testinfra", "openstacksdk"}, base
    assert set(project["optional-dependencies"]) >= {"ops", "cloud", "dev"}


@pytest.mark.parametrize("command", [
    ("pssi", "validate"),
    ("pssi", "coverage"),
    ("check", "--stack", "lab"),  # plans the stack under the mock engine, then runs the policies
], ids=" ".join)
def test_the_pull_request_commands_run_without_the_extras(command: tuple[str, ...], tmp_path: Path) -> None:
    completed = socle_base(*command, cwd=ROOT)
    assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-2000:]


def test_the_blocker_really_refuses_an_extra(tmp_path: Path) -> None:
    # A command that needs Ansible fails under the same blocker: the test above can fail.
    completed = socle_base("harden", "--inventory", str(ROOT / "inventories" / "lab"), "--check", cwd=ROOT)
    assert completed.returncode != 0
    assert "belongs to an extra" in completed.stderr + completed.stdout
