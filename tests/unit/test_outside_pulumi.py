"""``pulumi install`` on a fresh clone: the pip toolchain's own commands install the project.

With ``toolchain: pip`` and ``virtualenv: .venv`` (Pulumi.yaml), Pulumi creates ``<root>/.venv``, then
runs ``python -m pip install -r requirements.txt`` in the program directory (``main: stacks/``). The
test runs that pip command, resolving only (``--dry-run``, no dependency download), from that directory.
"""

from __future__ import annotations

import json
import subprocess
import sys

from ght_socle import paths
from ght_socle.trust.yamlio import load_yaml

ROOT = paths.project_root()


def test_pulumi_yaml_uses_the_pip_toolchain_in_the_project_virtualenv() -> None:
    project = load_yaml(ROOT / "Pulumi.yaml")
    assert project["runtime"]["options"] == {"toolchain": "pip", "virtualenv": ".venv"}
    assert (ROOT / project["main"] / "requirements.txt").is_file()


def test_the_requirements_pulumi_installs_are_this_project() -> None:
    program_dir = ROOT / load_yaml(ROOT / "Pulumi.yaml")["main"]
    result = subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--no-deps", "--ignore-installed",
                             "--quiet", "--report", "-", "-r", "requirements.txt"],
                            cwd=program_dir, capture_output=True, text=True, check=False, timeout=300)
    assert result.returncode == 0, result.stderr
    installs = json.loads(result.stdout)["install"]
    assert [(item["metadata"]["name"], item["is_direct"]) for item in installs] == [("ght-socle", True)]
    assert installs[0]["download_info"]["url"] == ROOT.resolve().as_uri()
    assert installs[0]["download_info"]["dir_info"].get("editable") is True
