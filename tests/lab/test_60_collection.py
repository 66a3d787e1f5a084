"""The roles as an installed collection, run by a playbook written outside this repository.

An AWX project or an ops team's own repository installs ght.socle from its tarball and calls the
roles by FQCN, with its own inventory and ansible.cfg; the PSSI parameters come from the vars plugin
ght.socle.pssi. The run goes to a hardened lab host, which must still pass conformance afterwards.
Last in the suite: whatever the outside run changes stays on that host.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conform_lab import conform, ensure_hardened
from lab_support import Lab

from ght_socle import paths
from ght_socle.harden import mitogen_strategy_dir
from ght_socle.trust.yamlio import load_yaml

ROOT = paths.project_root()
BIN = Path(sys.executable).parent
# What site.yml runs on a Linux server, by FQCN.
SERVER_ROLES = ["accounts", "baseline", "sshd", "timesync", "logging", "host_firewall", "updates"]


def run(argv: list[str], cwd: Path, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False, timeout=timeout,
                          env={**os.environ, **env, "ANSIBLE_NOCOLOR": "1"})


@pytest.fixture(scope="module")
def outside_project(tmp_path_factory: pytest.TempPathFactory, lab: Lab) -> Path:
    """A project of its own: the installed collection, its inventory and group_vars, its ansible.cfg."""
    project = tmp_path_factory.mktemp("outside-project")
    version = load_yaml(ROOT / "galaxy.yml")["version"]
    built = run([str(BIN / "ansible-galaxy"), "collection", "build", "--output-path", str(project), str(ROOT)],
                project, {})
    assert built.returncode == 0, built.stdout + built.stderr
    installed = run([str(BIN / "ansible-galaxy"), "collection", "install", "--no-deps", "-p",
                     str(project / "collections"), str(project / f"ght-socle-{version}.tar.gz")], project, {})
    assert installed.returncode == 0, installed.stdout + installed.stderr
    # The GHT's inventory (what `socle inventory` wrote) and its site policy (group_vars) copied over.
    shutil.copytree(lab.inventory, project / "inventory", ignore=shutil.ignore_patterns("*.json"))
    shutil.copytree(ROOT / "playbooks" / "group_vars", project / "inventory" / "group_vars", dirs_exist_ok=True)
    strategy = mitogen_strategy_dir()
    (project / "ansible.cfg").write_text(
        "[defaults]\n"
        f"collections_path = {project / 'collections'}\n"
        "roles_path = /nonexistent\n"
        "vars_plugins_enabled = host_group_vars, ght.socle.pssi\n"
        "force_handlers = True\ntimeout = 300\n"
        + (f"strategy_plugins = {strategy}\nstrategy = mitogen_linear\n" if strategy else "")
        + "[ssh_connection]\npipelining = True\n"
        f"[ght_socle]\ncatalog_dir = {ROOT / 'policies' / 'catalog'}\n"
        f"settings = {ROOT / 'policies' / 'ght-settings.yaml'}\n", encoding="utf-8")
    plays = [{"name": "Our servers, hardened with ght.socle", "hosts": "all", "become": True,
              "gather_facts": False, "roles": [{"role": f"ght.socle.{role}"} for role in SERVER_ROLES]}]
    (project / "site.yml").write_text(json.dumps(plays), encoding="utf-8")
    return project


def test_an_outside_playbook_hardens_a_lab_host_and_conformance_still_passes(
        lab: Lab, outside_project: Path, tmp_path: Path) -> None:
    lab = ensure_hardened(lab)
    host = (lab.group("dpi_app") or lab.group("linux_servers"))[0]
    pki = Path(lab.env.get("SOCLE_STATE") or paths.state_dir()) / "pki" / lab.inventory.name
    assert (pki / "ca.crt").is_file(), f"no lab PKI at {pki}: the hardening did not issue it"
    played = run([str(BIN / "ansible-playbook"), "-i", "inventory/hosts.yml", "--limit", host,
                  "-e", f"ght_pki_dir={pki}", "site.yml"], outside_project,
                 {**lab.env, "ANSIBLE_CONFIG": str(outside_project / "ansible.cfg")}, timeout=3600)
    assert played.returncode == 0, played.stdout[-4000:] + played.stderr[-2000:]
    recap = next(line for line in played.stdout.splitlines() if line.startswith(host) and "ok=" in line)
    counts = {key: int(value) for key, value in (item.split("=") for item in recap.split(":", 1)[1].split())}
    assert counts["failed"] == 0 and counts["unreachable"] == 0 and counts["ok"] > 50, recap
    checked = conform(lab, tmp_path, "--limit", host)
    assert checked.code == 0, checked.explain(host)
    assert checked.statuses(host), "conformance checked nothing on the host"
