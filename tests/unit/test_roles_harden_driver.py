"""The `socle harden` driver, run for real: ansible-runner and ansible-playbook on the local connection.

No host is hardened here: the playbooks are small local ones written by the tests (a change, a
failure, a debug), so that stats, exit codes, artifacts and the scrubbed environment are checked
on real Ansible runs. The roles themselves are exercised on the lab VMs (tests/lab/test_30_harden.py).
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest

from ght_socle import paths
from ght_socle.catalog import default_catalog
from ght_socle.cli import main
from ght_socle.errors import ConfigError
from ght_socle.harden import check_tags, pssi_extravars, resolve_inventory, run_harden, scrubbed_environment

LOCAL_INVENTORY = f"""
all:
  hosts:
    node-a: {{ansible_connection: local, ansible_python_interpreter: {sys.executable}}}
    node-b: {{ansible_connection: local, ansible_python_interpreter: {sys.executable}}}
  children:
    linux: {{hosts: {{node-a: {{}}, node-b: {{}}}}}}
"""

PLAYBOOK = """
- name: Driver test play
  hosts: linux
  gather_facts: false
  tasks:
    - name: "OSH-002 | Report a change on every host"
      ansible.builtin.command: "true"
      changed_when: true
      tags: [pssi_osh_002]
    - name: "OSH-003 | Fail on node-b only"
      ansible.builtin.fail:
        msg: "node-b refuses ({{ ght_pssi_params['OSH-008']['session_timeout_seconds'] }})"
      when: inventory_hostname == 'node-b'
      tags: [pssi_osh_003]
"""


@pytest.fixture()
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SOCLE_STATE", str(tmp_path / "state"))
    (tmp_path / "inv").mkdir()
    (tmp_path / "inv" / "hosts.yml").write_text(LOCAL_INVENTORY, encoding="utf-8")
    (tmp_path / "site.yml").write_text(PLAYBOOK, encoding="utf-8")
    return tmp_path


def test_resolve_inventory_accepts_a_directory_and_rejects_bad_input(tmp_path: Path) -> None:
    (tmp_path / "hosts.yml").write_text("all:\n  hosts: {a: {}}\n", encoding="utf-8")
    assert resolve_inventory(tmp_path) == (tmp_path / "hosts.yml").resolve()
    with pytest.raises(ConfigError, match="inventory not found"):
        resolve_inventory(tmp_path / "missing")
    (tmp_path / "bad.yml").write_text("- just a list\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="top-level 'all'"):
        resolve_inventory(tmp_path / "bad.yml")


def test_tags_are_checked_against_the_roles() -> None:
    site = paths.project_root() / "playbooks" / "site.yml"
    check_tags(["pssi_adm_003", "anssi_bp028v2_r12", "always"], site)
    with pytest.raises(ConfigError, match="pssi_zzz_999"):
        check_tags(["pssi_adm_003", "pssi_zzz_999"], site)


def test_extravars_carry_the_catalog_parameters() -> None:
    catalog = default_catalog()
    extravars = pssi_extravars(catalog)
    assert extravars["ght_pssi_params"]["OSH-002"]["sysctl"] == catalog.param("OSH-002", "sysctl")
    assert extravars["ght_pssi_params"]["ADM-004"]["ciphers"] == catalog.param("ADM-004", "ciphers")
    assert set(extravars["ght_pssi_enforcement"]) == set(catalog.rules)


def test_secret_looking_variables_are_hidden_then_restored(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    monkeypatch.setenv("OS_PASSWORD", "hunter2")
    monkeypatch.setenv("GHT_API_TOKEN", "abc")
    with scrubbed_environment() as hidden:
        assert "OS_PASSWORD" not in os.environ and "GHT_API_TOKEN" not in os.environ
        assert {"GHT_API_TOKEN", "OS_PASSWORD"} <= set(hidden)
    assert os.environ["OS_PASSWORD"] == "hunter2"


def test_real_run_reports_per_host_stats_failures_and_keeps_no_secret(workspace: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OS_PASSWORD", "not-for-the-artifacts")
    progress = io.StringIO()
    result = run_harden(workspace / "inv", playbook=workspace / "site.yml", keep_artifacts=2, stream=progress)
    assert result.hosts["node-a"].changed == 1 and result.hosts["node-a"].failed == 0
    assert result.hosts["node-b"].failed == 1
    assert result.failed_hosts == ["node-b"] and not result.succeeded
    failure = next(f for f in result.failures if f.host == "node-b")
    # The catalog's value reached the play through the extra vars.
    assert f"({default_catalog().param('OSH-008', 'session_timeout_seconds')})" in failure.message
    assert "OSH-003 | Fail on node-b only" in progress.getvalue()
    artifacts = "".join(p.read_text(errors="replace") for p in result.artifact_dir.rglob("*") if p.is_file())
    assert "not-for-the-artifacts" not in artifacts
    assert result.artifact_dir.is_relative_to(workspace / "state" / "runner")


def test_artifacts_are_rotated(workspace: Path) -> None:
    for _ in range(3):
        run_harden(workspace / "inv", playbook=workspace / "site.yml", keep_artifacts=2, tags=["pssi_osh_002"],
                   stream=io.StringIO())
    kept = [p for p in (workspace / "state" / "runner" / "artifacts").iterdir() if p.is_dir()]
    assert len(kept) == 2


def test_tags_limit_the_run(workspace: Path) -> None:
    result = run_harden(workspace / "inv", playbook=workspace / "site.yml", tags=["pssi_osh_002"],
                        stream=io.StringIO())
    assert result.succeeded
    assert {h: s.changed for h, s in result.hosts.items() if h != "localhost"} == {"node-a": 1, "node-b": 1}


def test_cli_exit_codes(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["harden", "--inventory", str(workspace / "nowhere")]) == 2
    assert "inventory not found" in capsys.readouterr().err
    assert main(["harden", "--inventory", str(workspace / "inv"), "--tags", "pssi_nope_000"]) == 2
    assert "unknown tag" in capsys.readouterr().err
    assert main(["harden", "--inventory", str(workspace / "inv"), "-e", "novalue"]) == 2


def test_cli_json_output_on_a_real_run(workspace: Path, capsys: pytest.CaptureFixture[str],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import ght_socle.harden as harden

    # The CLI runs the project's site.yml; point it at the test playbook instead.
    monkeypatch.setattr(harden, "DEFAULT_PLAYBOOK", str(workspace / "site.yml"))
    code = main(["harden", "--inventory", str(workspace / "inv"), "--format", "json"])
    assert code == 1
    data = json.loads(capsys.readouterr().out)
    assert data["hosts"]["node-b"]["failed"] == 1 and data["succeeded"] is False
