"""CrossGuard under the real engine judges the insecure-program corpus exactly as `socle check` does.

Each program of tests/policy/corpus (fifteen insecure ones across the policy domains, one compliant)
is previewed by the real CLI with `--policy-pack` against the local cloud, and checked offline by
`socle check --program`, both with the same catalog and GHT settings (the copy's settings allow-list the
local cloud's endpoint). For each program, the two report the same policies at the same enforcement
levels; a mandatory violation fails the preview (non-zero exit), the compliant program passes.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from cloud_support import Cloud
from engine_workspace import Workspace, open_workspace
from preview_support import policy_violations

from ght_socle import paths
from ght_socle.cloud import client_env
from ght_socle.cloud.services import KEYSTONE
from ght_socle.engine import Engine
from ght_socle.engine.provider import find_plugin, install_plugin
from ght_socle.engine.scratch import allow_local_cloud

ROOT = paths.project_root()
CORPUS = ROOT / "tests" / "policy" / "corpus"
PROGRAMS = sorted(p.name for p in CORPUS.iterdir() if (p / "Pulumi.yaml").is_file())
# Previews at once: each is a CLI, a Python program, the provider and the pack's Python process.
PARALLEL_PREVIEWS = 3


@dataclass
class Judged:
    preview: subprocess.CompletedProcess[str]
    crossguard: set[tuple[str, str]]
    socle_check: set[tuple[str, str]]
    check_exit: int


@pytest.fixture(scope="module")
def judged(cloud: Cloud, engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Judged]:
    base = tmp_path_factory.mktemp("crossguard")
    shutil.copytree(CORPUS, base / "corpus")
    shutil.copytree(ROOT / "policies", base / "policies")
    allow_local_cloud(base / "policies")
    # The pack's runtime options name ../.venv: the project's virtualenv.
    (base / ".venv").symlink_to(ROOT / ".venv", target_is_directory=True)
    workspace = open_workspace(base, base / "state", engine)  # SOCLE_ROOT: socle check reads the same settings
    workspace.env.update(client_env())
    plugin = find_plugin()
    assert plugin is not None
    install_plugin(engine, plugin, workspace.env, progress=lambda _line: None)
    with ThreadPoolExecutor(max_workers=PARALLEL_PREVIEWS) as pool:
        results = dict(zip(PROGRAMS, pool.map(lambda name: _judge(engine, workspace, base / "corpus" / name),
                                              PROGRAMS), strict=True))
    return results


def _judge(engine: Engine, workspace: Workspace, program: Path) -> Judged:
    def run(*command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(list(command), cwd=program, env=workspace.env, capture_output=True, text=True,
                                timeout=600, check=False)
        assert not check or result.returncode == 0, result.stdout + result.stderr
        return result

    pulumi = str(engine.pulumi)
    run(pulumi, "stack", "init", "dev", "--secrets-provider", "passphrase", "--non-interactive")
    run(pulumi, "config", "set", "openstack:authUrl", KEYSTONE.url("/v3"))
    preview = run(pulumi, "preview", "--non-interactive", "--policy-pack", str(workspace.root / "policies"),
                  check=False)
    check = run(workspace.env["PULUMI_PYTHON_CMD"], "-m", "ght_socle.cli", "check", "--program", str(program),
                "--format", "json", check=False)
    findings = json.loads(check.stdout)
    return Judged(preview=preview, crossguard=policy_violations(preview.stdout + preview.stderr),
                  socle_check={(f["policy"], f["enforcement"]) for f in findings if not f["waived"]},
                  check_exit=check.returncode)


@pytest.mark.parametrize("program", PROGRAMS)
def test_crossguard_reports_what_socle_check_reports(judged: dict[str, Judged], program: str) -> None:
    result = judged[program]
    output = result.preview.stdout + result.preview.stderr
    assert "can't run policy" not in output, output[-4000:]
    assert result.crossguard == result.socle_check, output[-4000:]
    mandatory = any(level == "mandatory" for _, level in result.crossguard)
    assert (result.preview.returncode != 0) == mandatory, output[-4000:]
    assert result.check_exit == (1 if mandatory else 0)


def test_the_corpus_has_fifteen_insecure_programs_and_a_compliant_one(judged: dict[str, Judged]) -> None:
    insecure = [name for name, result in judged.items() if result.socle_check]
    assert len(insecure) >= 15
    assert judged["compliant-dmz"].socle_check == set() and judged["compliant-dmz"].preview.returncode == 0
