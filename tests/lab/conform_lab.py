"""Shared by the conformance lab tests (test_20, test_40, test_45, test_50): run `socle conform` on the lab."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab_support import Lab, socle

from ght_socle.paths import state_dir

CONFORM_TIMEOUT = 900


@dataclass
class ConformRun:
    code: int
    rows: dict[tuple[str, str], dict[str, Any]]
    stdout: str
    stderr: str

    def row(self, host: str, rule_id: str) -> dict[str, Any]:
        assert (host, rule_id) in self.rows, f"no result for {rule_id} on {host}\n{self.stdout[-3000:]}"
        return self.rows[(host, rule_id)]

    def statuses(self, host: str) -> dict[str, str]:
        return {rule: row["status"] for (h, rule), row in self.rows.items() if h == host}

    def explain(self, host: str | None = None) -> str:
        """Failing/erroring rows, for assertion messages."""
        return "\n".join(f"  {r['host']} {r['rule_id']} {r['status']}: {r['message']} {r['evidence'][:3]}"
                         for r in self.rows.values()
                         if r["status"] in ("fail", "error") and (host is None or r["host"] == host))


def conform(lab: Lab, output_dir: Path, *args: str, inventory: Path | None = None) -> ConformRun:
    """`socle conform --format json` on the lab (or on ``inventory``); the report is read back from its file."""
    output = output_dir / f"conform-{time.monotonic_ns()}.json"
    completed = socle("conform", "--inventory", str(inventory or lab.inventory), "--format", "json",
                      "--output", str(output), *args, env=lab.env, timeout=CONFORM_TIMEOUT)
    assert output.exists(), f"socle conform wrote no report (exit {completed.returncode}):\n{completed.stderr[-3000:]}"
    rows = json.loads(output.read_text(encoding="utf-8"))
    assert isinstance(rows, list)
    return ConformRun(completed.returncode, {(r["host"], r["rule_id"]): r for r in rows}, completed.stdout,
                      completed.stderr)


def hardened_since_boot(lab: Lab) -> bool:
    """Whether a full `socle harden` converge (not --check, no --limit) succeeded since the lab was created.

    Read from ansible-runner's artifacts (``<state>/runner/artifacts/<run>/{status,command}``).
    """
    lab_file = lab.state_dir / "lab.json"
    created = float(json.loads(lab_file.read_text(encoding="utf-8")).get("created_at", 0))
    root = Path(lab.env["SOCLE_STATE"]) if "SOCLE_STATE" in lab.env else state_dir()
    artifacts = root / "runner" / "artifacts"
    if not artifacts.is_dir():
        return False
    for run in artifacts.iterdir():
        status, command = run / "status", run / "command"
        if run.stat().st_mtime <= created or not status.exists() or not command.exists():
            continue
        argv = json.loads(command.read_text(encoding="utf-8")).get("command", [])
        if status.read_text(encoding="utf-8").strip() == "successful" and not {"--check", "--limit"} & set(argv):
            return True
    return False


def ensure_hardened(lab: Lab) -> Lab:
    """The lab, converged: test_30 did it in a full run; a module run alone converges it here."""
    if not hardened_since_boot(lab):
        converge = socle("harden", "--inventory", str(lab.inventory), env=lab.env)
        assert converge.returncode == 0, f"socle harden failed:\n{converge.stderr[-4000:]}"
    return lab
