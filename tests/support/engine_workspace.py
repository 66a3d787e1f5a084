"""The project, state directory and environment a real-engine test works in."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ght_socle.engine import Engine, EngineSettings, engine_environment


@dataclass
class Workspace:
    root: Path  # the project pulumi runs in (a copy of this one's Pulumi.yaml, program, policies; or a probe)
    env: dict[str, str]  # the process environment for `pulumi` and `socle`
    run: Callable[..., subprocess.CompletedProcess[str]]


def open_workspace(root: Path, state: Path, engine: Engine) -> Workspace:
    """A workspace on the project at ``root``, its state, plugins and passphrase under ``state``."""
    settings = EngineSettings.resolve(state=state)
    env = {**os.environ, **engine_environment(engine, settings), "SOCLE_ROOT": str(root),
           "SOCLE_PULUMI_STATE": str(settings.state), "PULUMI_CONFIG_PASSPHRASE_FILE": str(settings.passphrase_file)}

    def run(*command: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(list(command), cwd=root, env=env, input=stdin, capture_output=True, text=True,
                                check=False, timeout=300)
        if check:
            assert result.returncode == 0, result.stdout + result.stderr
        return result

    return Workspace(root=root, env=env, run=run)
