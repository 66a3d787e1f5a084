"""The README's path on the local cloud runs as written, up to `pulumi preview --policy-pack policies`.

The shell block of README.md that follows "The same path runs on this machine" is extracted and run by
bash, line by line as a user would paste it, in a copy of the checkout (its files as git tracks them,
the project's virtualenv): the engine from its cache, the local cloud (the one the `cloud` fixture
runs, reused), a file backend and a passphrase of the test's own, the lab stack created, checked
offline, then previewed by the real engine with the CrossGuard pack and the shipped waivers.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from cloud_support import Cloud
from preview_support import policy_violations

from ght_socle import paths
from ght_socle.engine import Engine
from ght_socle.policy.pack import PACK_NAME

ROOT = paths.project_root()
MARKER = "The same path runs on this machine"


def readme_block() -> str:
    text = (ROOT / "README.md").read_text()
    found = re.search(re.escape(MARKER) + r".*?```sh\n(.*?)```", text, re.DOTALL)
    assert found, f"README.md has no shell block after {MARKER!r}"
    return found.group(1)


def _checkout_copy(target: Path) -> None:
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in tracked.decode().split("\0"):
        if not name or not (ROOT / name).is_file():
            continue
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target / name)  # mtimes kept: make sees the virtualenv as up to date
    (target / ".venv").symlink_to(ROOT / ".venv", target_is_directory=True)
    # The shared virtualenv is this checkout's, installed already: the copy's `make` must not reinstall
    # it (pip install -e from the copy would point it at the copy). Its prerequisites predate the stamp.
    stamp = (ROOT / ".venv" / ".installed").stat().st_mtime
    for prerequisite in ("pyproject.toml", "constraints.txt"):
        os.utime(target / prerequisite, (stamp - 1, stamp - 1))


def test_the_readme_path_runs_as_written_against_the_local_cloud(cloud: Cloud, engine: Engine,
                                                                   tmp_path: Path) -> None:
    block = readme_block()
    assert block.rstrip().endswith("pulumi preview --policy-pack policies")
    checkout = tmp_path / "checkout"
    _checkout_copy(checkout)
    # The copy's .socle/cloud is the running local cloud's state (its openrc, its CA).
    (checkout / ".socle").symlink_to(cloud.layout.root.parent, target_is_directory=True)
    env = {**os.environ, "SOCLE_ROOT": str(checkout), "SOCLE_STATE": str(cloud.layout.root.parent),
           "SOCLE_PULUMI_STATE": str(tmp_path / "pulumi-state")}
    for variable in ("PULUMI_BACKEND_URL", "PULUMI_HOME", "PULUMI_CONFIG_PASSPHRASE_FILE", "VIRTUAL_ENV"):
        env.pop(variable, None)
    script = "set -euo pipefail\n" + block
    result = subprocess.run(["bash", "-c", script], cwd=checkout, env=env, capture_output=True, text=True,
                            timeout=1800, check=False)
    output = result.stdout + result.stderr
    assert "installing Python packages" not in output, "the copy's make reinstalled the shared virtualenv"
    assert result.returncode == 0, output[-5000:]
    assert f"\u2705 {PACK_NAME}@" in output and policy_violations(output) == set(), output[-5000:]
    # socle check reported the lab's two waivers; CrossGuard applied the same ones.
    assert "0 mandatory violation(s), 0 advisory, 2 waived" in output, output[-5000:]
    assert (tmp_path / "pulumi-state" / "backend").is_dir()  # the state went to the test's own backend
