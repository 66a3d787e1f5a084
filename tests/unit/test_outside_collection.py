"""The roles as the Ansible collection ``ght.socle``, built and installed with the real ansible-galaxy.

The collection is built from the repository root into a temporary directory, installed into a
temporary collections path (``--no-deps``: Galaxy is unreachable, and the collections the roles call
are the ones the ``ansible`` package bundles), then used the way an outside playbook uses it: roles by
their FQCN, its own inventory, ``ansible-playbook --syntax-check``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tarfile
import tomllib
from pathlib import Path
from typing import Any

import pytest
from packaging.specifiers import SpecifierSet

from ght_socle import paths
from ght_socle.trust.yamlio import load_yaml

ROOT = paths.project_root()
BIN = Path(sys.executable).parent  # the virtualenv's ansible, whatever PATH says
ROLES = sorted(p.name for p in (ROOT / "roles").iterdir() if (p / "tasks" / "main.yml").is_file())


def run(*argv: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(BIN / argv[0]), *argv[1:]], cwd=cwd, capture_output=True, text=True, check=False,
                            timeout=300, env=dict(os.environ, ANSIBLE_NOCOLOR="1", **(env or {})))
    assert result.returncode == 0, f"{' '.join(argv)}: {result.stdout[-2000:]} {result.stderr[-2000:]}"
    return result


def galaxy() -> dict[str, Any]:
    data: dict[str, Any] = load_yaml(ROOT / "galaxy.yml")
    return data


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A collections path holding ght.socle, built from this checkout and installed from its tarball."""
    build_dir = tmp_path_factory.mktemp("build")
    collections = tmp_path_factory.mktemp("collections")
    run("ansible-galaxy", "collection", "build", "--output-path", str(build_dir), str(ROOT), cwd=build_dir)
    tarball = build_dir / f"ght-socle-{galaxy()['version']}.tar.gz"
    assert tarball.is_file()
    run("ansible-galaxy", "collection", "install", "--no-deps", "-p", str(collections), str(tarball), cwd=build_dir)
    return collections


def test_galaxy_metadata_agrees_with_the_project() -> None:
    meta = galaxy()
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert (meta["namespace"], meta["name"], meta["version"]) == ("ght", "socle", pyproject["version"])
    assert meta["license"] == [pyproject["license"]]
    # Every collection whose modules the roles call by FQCN is a declared dependency.
    used: set[str] = set()
    for path in (ROOT / "roles").glob("*/tasks/**/*.yml"):
        used.update(m.group(1) for m in re.finditer(r"^\s*-?\s*([a-z_]+\.[a-z_]+)\.[a-z_0-9]+:\s*$",
                                                    path.read_text(encoding="utf-8"), re.MULTILINE))
    used.discard("ansible.builtin")
    assert used, "no FQCN module found in the roles"
    assert used <= set(meta["dependencies"]), used - set(meta["dependencies"])


def test_the_dependencies_are_bundled_by_the_ansible_package(tmp_path: Path) -> None:
    listing = run("ansible-galaxy", "collection", "list", "--format", "json", cwd=tmp_path)
    available = {name: info["version"] for path in json.loads(listing.stdout).values() for name, info in path.items()}
    for name, spec in galaxy()["dependencies"].items():
        assert name in available, name
        assert SpecifierSet(spec).contains(available[name]), (name, spec, available[name])


def test_the_tarball_holds_ansible_content_only(tmp_path: Path) -> None:
    run("ansible-galaxy", "collection", "build", "--output-path", str(tmp_path), str(ROOT), cwd=tmp_path)
    with tarfile.open(tmp_path / f"ght-socle-{galaxy()['version']}.tar.gz") as tar:
        top = {name.split("/")[0] for name in tar.getnames()}
    assert top == {"MANIFEST.json", "FILES.json", "README.md", "meta", "roles", "playbooks"}, top


def test_every_role_is_installed_under_its_own_name(installed: Path) -> None:
    collection = installed / "ansible_collections" / "ght" / "socle"
    assert sorted(p.name for p in (collection / "roles").iterdir()) == ROLES
    for role in ROLES:
        assert (collection / "roles" / role / "tasks" / "main.yml").read_bytes() == \
            (ROOT / "roles" / role / "tasks" / "main.yml").read_bytes()
    assert load_yaml(collection / "meta" / "runtime.yml")["requires_ansible"]


def test_an_outside_playbook_uses_the_roles_by_fqcn(installed: Path, tmp_path: Path) -> None:
    (tmp_path / "hosts.yml").write_text(
        "all:\n  children:\n    linux:\n      hosts:\n        srv-01: {ansible_host: 192.0.2.10}\n"
        "    windows_workstations:\n      hosts:\n        win-01: {ansible_host: 192.0.2.20}\n", encoding="utf-8")
    linux = [role for role in ROLES if role != "windows_workstation"]
    plays = [
        {"name": "Linux hosts", "hosts": "linux", "become": True,
         "roles": [{"role": f"ght.socle.{role}"} for role in linux]},
        {"name": "Windows workstations", "hosts": "windows_workstations",
         "roles": [{"role": "ght.socle.windows_workstation"}]},
    ]
    (tmp_path / "site.yml").write_text(json.dumps(plays), encoding="utf-8")
    env = {"ANSIBLE_COLLECTIONS_PATH": str(installed), "ANSIBLE_ROLES_PATH": str(tmp_path / "no-roles"),
           "ANSIBLE_CONFIG": str(tmp_path / "ansible.cfg")}
    (tmp_path / "ansible.cfg").write_text("[defaults]\n", encoding="utf-8")
    result = run("ansible-playbook", "--syntax-check", "-i", "hosts.yml", "site.yml", cwd=tmp_path, env=env)
    assert "playbook: site.yml" in result.stdout
    # The same playbook with a role the collection lacks is refused: the check above really resolved them.
    plays[0]["roles"].append({"role": "ght.socle.no_such_role"})
    (tmp_path / "site.yml").write_text(json.dumps(plays), encoding="utf-8")
    refused = subprocess.run([str(BIN / "ansible-playbook"), "--syntax-check", "-i", "hosts.yml", "site.yml"],
                             cwd=tmp_path, capture_output=True, text=True, check=False, timeout=300,
                             env=dict(os.environ, **env))
    assert refused.returncode != 0 and "no_such_role" in refused.stdout + refused.stderr
