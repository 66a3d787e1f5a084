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
        names = tar.getnames()
    top = {name.split("/")[0] for name in names}
    assert top == {"MANIFEST.json", "FILES.json", "README.md", "meta", "plugins", "roles", "playbooks"}, top
    # The link that makes a checkout the collection stays out of the tarball.
    assert not [name for name in names if name.startswith("playbooks/collections")]


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


def _settings_with_timeout(tmp_path: Path, seconds: int) -> Path:
    settings = tmp_path / "ght-settings.yaml"
    text = (ROOT / "policies" / "ght-settings.yaml").read_text(encoding="utf-8")
    assert "session_timeout_seconds: 300" in text
    settings.write_text(text.replace("session_timeout_seconds: 300", f"session_timeout_seconds: {seconds}"),
                        encoding="utf-8")
    return settings


def _host_vars(cwd: Path, env: dict[str, str]) -> dict[str, Any]:
    (cwd / "hosts.yml").write_text("all:\n  hosts:\n    srv-01: {ansible_host: 127.0.0.1}\n", encoding="utf-8")
    listing = run("ansible-inventory", "-i", str(cwd / "hosts.yml"), "--host", "srv-01", cwd=cwd, env=env)
    data: dict[str, Any] = json.loads(listing.stdout)
    return data


def test_the_pssi_vars_plugin_of_the_installed_collection_reads_the_ghts_settings(installed: Path,
                                                                                  tmp_path: Path) -> None:
    settings = _settings_with_timeout(tmp_path, 420)
    (tmp_path / "ansible.cfg").write_text(
        "[defaults]\nvars_plugins_enabled = host_group_vars, ght.socle.pssi\n"
        f"[ght_socle]\ncatalog_dir = {ROOT / 'policies' / 'catalog'}\nsettings = {settings}\n", encoding="utf-8")
    env = {"ANSIBLE_COLLECTIONS_PATH": str(installed), "ANSIBLE_CONFIG": str(tmp_path / "ansible.cfg")}
    variables = _host_vars(tmp_path, env)
    assert variables["ght_pssi_params"]["OSH-008"]["session_timeout_seconds"] == 420
    assert variables["ght_pssi_enforcement"]["WKS-006"] == "advisory"  # from the settings file
    # Exactly what `socle harden` passes as extra vars for the same catalog and settings.
    from ght_socle.catalog import load_catalog
    from ght_socle.harden import pssi_extravars
    expected = pssi_extravars(load_catalog(ROOT / "policies" / "catalog", settings))
    assert {key: variables[key] for key in expected} == expected


def test_a_plain_run_from_the_checkout_gets_the_catalog_and_a_bad_setting_stops_it(tmp_path: Path) -> None:
    variables = _host_vars(tmp_path, {"ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
                                      "GHT_SOCLE_SETTINGS": str(_settings_with_timeout(tmp_path, 600))})
    assert variables["ght_pssi_params"]["OSH-008"]["session_timeout_seconds"] == 600
    bad = tmp_path / "bad-settings.yaml"
    bad.write_text("rules:\n  OSH-008:\n    params:\n      session_timeout_secs: 1\n", encoding="utf-8")
    refused = subprocess.run([str(BIN / "ansible-inventory"), "-i", str(tmp_path / "hosts.yml"), "--host", "srv-01"],
                             cwd=tmp_path, capture_output=True, text=True, check=False, timeout=300,
                             env=dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
                                      GHT_SOCLE_SETTINGS=str(bad)))
    assert refused.returncode != 0
    assert f"ght.socle.pssi: {bad}: rule OSH-008, key params.session_timeout_secs: unknown parameter" in refused.stderr


@pytest.mark.parametrize("plugin", [False, True], ids=["without-the-plugin", "with-the-plugin"])
def test_site_yml_stops_before_any_role_when_the_catalog_is_missing(tmp_path: Path, plugin: bool) -> None:
    # The host's SSH port is closed: a run that got past the guard fails at its next task, unreachable.
    (tmp_path / "hosts.yml").write_text(
        "all:\n  children:\n    linux:\n      hosts:\n"
        "        srv-01: {ansible_host: 127.0.0.1, ansible_port: 1, ansible_user: nobody}\n", encoding="utf-8")
    config = tmp_path / "ansible.cfg"
    config.write_text("[defaults]\nhost_key_checking = False\n" + (
        f"vars_plugins = {ROOT / 'plugins' / 'vars'}\nvars_plugins_enabled = host_group_vars, pssi\n" if plugin
        else ""), encoding="utf-8")
    result = subprocess.run([str(BIN / "ansible-playbook"), "-i", str(tmp_path / "hosts.yml"), "--limit", "srv-01",
                             "--check", str(ROOT / "playbooks" / "site.yml")],
                            cwd=tmp_path, capture_output=True, text=True, check=False, timeout=300,
                            env=dict(os.environ, ANSIBLE_CONFIG=str(config), ANSIBLE_NOCOLOR="1",
                                     ANSIBLE_ROLES_PATH=str(ROOT / "roles")))
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert ("catalog's parameters are missing" in output) is not plugin, output[-3000:]
    if plugin:
        assert "UNREACHABLE" in output, output[-3000:]


@pytest.mark.parametrize("role", ["sshd", "host_firewall", "bastion"])
def test_a_role_name_selects_that_roles_tasks_only(tmp_path: Path, role: str) -> None:
    (tmp_path / "hosts.yml").write_text(
        "all:\n  children:\n    linux:\n      hosts:\n        srv-01: {ansible_host: 127.0.0.1}\n"
        "    bastion:\n      hosts:\n        srv-01: {}\n", encoding="utf-8")
    listing = run("ansible-playbook", "-i", str(tmp_path / "hosts.yml"), "--list-tasks", "--tags", role,
                  str(ROOT / "playbooks" / "site.yml"), cwd=ROOT)
    # Ansible validates every imported role's arguments whatever the tags (its own `always` task).
    tasks = [line.strip() for line in listing.stdout.splitlines()
             if "TAGS:" in line and not line.strip().startswith("play #")
             and "Validating arguments against arg spec" not in line]
    assert {task.split(" : ")[0] for task in tasks if " : " in task} == {role}, tasks
    assert all(task.startswith(f"{role} : ") or "PSSI catalog reached this run" in task for task in tasks), tasks
    assert len(tasks) > 2, tasks


# The roles' filters, by FQCN, on values whose answers are known.
FILTER_PROBE = [{"hosts": "localhost", "gather_facts": False, "tasks": [{"ansible.builtin.debug": {"msg": (
    "{{ ['10.40.1.0/24', '10.40.1.10', 'fd00::/64'] | ght.socle.ip_family(4) }}"
    " {{ '10.40.1.7' | ght.socle.ip_in_any(['10.40.1.0/24']) }}"
    " {{ 'udp UNCONN 0 0 0.0.0.0:514 0.0.0.0:*' | split | ght.socle.ght_listening_spec }}"
    " {{ 'tcp LISTEN 0 128 127.0.0.1:25 0.0.0.0:*' | split | ght.socle.ght_listening_spec or 'loopback' }}")}}]}]
FILTER_ANSWER = "['10.40.1.0/24'] True udp/514 loopback"


def _probe_filters(playbook: Path, cwd: Path, env: dict[str, str]) -> str:
    playbook.write_text(json.dumps(FILTER_PROBE), encoding="utf-8")
    result = run("ansible-playbook", "-i", "localhost,", "--connection", "local", str(playbook), cwd=cwd, env=env)
    message: str = re.search(r'"msg": "(.*)"', result.stdout).group(1)  # type: ignore[union-attr]
    return message


def test_the_roles_filters_come_from_the_installed_collection(installed: Path, tmp_path: Path) -> None:
    (tmp_path / "ansible.cfg").write_text("[defaults]\n", encoding="utf-8")
    env = {"ANSIBLE_COLLECTIONS_PATH": str(installed), "ANSIBLE_CONFIG": str(tmp_path / "ansible.cfg")}
    assert _probe_filters(tmp_path / "probe.yml", tmp_path, env) == FILTER_ANSWER


def test_a_checkout_is_the_collection_for_its_own_roles(tmp_path: Path) -> None:
    # Through the repository's ansible.cfg, for a playbook anywhere.
    env = {"ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")}
    assert _probe_filters(tmp_path / "probe.yml", tmp_path, env) == FILTER_ANSWER
    link = ROOT / "playbooks" / "collections" / "ansible_collections" / "ght" / "socle"
    assert link.is_symlink() and link.resolve() == ROOT.resolve()
    # Without that configuration, a playbook outside playbooks/ does not find the filters: the
    # answer above really came from the checkout.
    (tmp_path / "ansible.cfg").write_text("[defaults]\n", encoding="utf-8")
    refused = subprocess.run([str(BIN / "ansible-playbook"), "-i", "localhost,", "--connection", "local",
                              str(tmp_path / "probe.yml")], cwd=tmp_path, capture_output=True, text=True,
                             check=False, timeout=300,
                             env=dict(os.environ, ANSIBLE_CONFIG=str(tmp_path / "ansible.cfg"), ANSIBLE_NOCOLOR="1"))
    assert refused.returncode != 0 and "No filter named 'ght.socle.ip_family'" in refused.stdout + refused.stderr
