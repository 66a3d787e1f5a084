"""Which PSSI rules the conformance suites really verify: pytest collection, no host contacted.

``socle pssi coverage --strict`` calls :func:`host_rule_ids`. It runs ``pytest --collect-only``
on ``tests/conformance`` in a child process (a fresh interpreter, so the caller's own pytest
session and imports are untouched); without ``--hosts`` testinfra parametrises with the local
backend and nothing is executed, so no inventory and no connection are needed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from ght_socle import paths
from ght_socle.errors import SocleError


def suites_dir() -> Path:
    return paths.project_root() / "tests" / "conformance"


def collected_tests(directory: Path | None = None) -> dict[str, str]:
    """Node id -> rule id of every collected test marked ``pssi``."""
    directory = directory or suites_dir()
    if not directory.is_dir():
        raise SocleError("conformance suites not found", file=directory)
    with tempfile.TemporaryDirectory(prefix="socle-collect-") as tmp:
        output = Path(tmp) / "collected.json"
        argv = [sys.executable, "-m", "pytest", str(directory), "--collect-only", "-q", "-p", "no:cacheprovider",
                "-p", "ght_socle.conform.plugin", f"--pssi-collected={output}", "--rootdir", str(paths.project_root())]
        env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
        completed = subprocess.run(argv, capture_output=True, text=True, check=False, env=env,
                                   cwd=paths.project_root())
        if completed.returncode != 0 or not output.exists():
            last = (completed.stdout + completed.stderr).strip().splitlines()
            raise SocleError(f"pytest could not collect the suites: {last[-1] if last else completed.returncode}",
                             file=directory)
        collected: dict[str, str] = json.loads(output.read_text(encoding="utf-8"))
        return collected


def host_rule_ids() -> set[str]:
    """Rule ids of the conformance tests pytest collects from ``tests/conformance``."""
    return set(collected_tests().values())
