"""A plain `ansible-playbook` run, without `socle`, enforces the GHT's catalog on a real lab host.

Ops who run the playbooks from AWX or their own shell get the PSSI parameters from the vars plugin
ght.socle.pssi (ansible.cfg of the checkout). A value changed in the settings file reaches the host;
the run then puts the project's own value back, so the fleet leaves this module as it entered it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from ght_socle import paths
from ght_socle.trust.yamlio import load_yaml

ROOT = paths.project_root()
BIN = Path(sys.executable).parent
SESSION_FILE = "/etc/profile.d/ght-session.sh"


def plain_playbook(lab: Any, host: str, settings: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "ansible-playbook"), "-i", str(lab.inventory / "hosts.yml"), "--limit", host,
                           "--tags", "pssi_osh_008", "playbooks/site.yml"],
                          cwd=ROOT, capture_output=True, text=True, check=False, timeout=1800,
                          env={**os.environ, **lab.env, "ANSIBLE_NOCOLOR": "1",
                               "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "GHT_SOCLE_SETTINGS": str(settings)})


def session_timeout_on(lab: Any, host: str) -> str:
    result = lab.run(host, f"grep '^TMOUT=' {SESSION_FILE}", sudo=True)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_a_setting_changed_for_the_ght_reaches_the_host_through_a_plain_run(lab: Any, tmp_path: Path) -> None:
    host = lab.hosts[-1]
    project_settings = ROOT / "policies" / "ght-settings.yaml"
    project_value = load_yaml(project_settings)["rules"]["OSH-008"]["params"]["session_timeout_seconds"]
    changed = tmp_path / "ght-settings.yaml"
    changed.write_text(project_settings.read_text(encoding="utf-8").replace(
        f"session_timeout_seconds: {project_value}", "session_timeout_seconds: 420"), encoding="utf-8")
    try:
        run = plain_playbook(lab, host, changed)
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
        assert session_timeout_on(lab, host) == "TMOUT=420"
    finally:
        restored = plain_playbook(lab, host, project_settings)
    assert restored.returncode == 0, restored.stdout[-3000:] + restored.stderr[-2000:]
    assert session_timeout_on(lab, host) == f"TMOUT={project_value}"
