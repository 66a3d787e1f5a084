"""Shared by the benches that measure the lab as it runs (conform, reboot, reverify)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SOCLE = [sys.executable, "-m", "ght_socle.cli"]


def lab_inventory() -> Path:
    """The running lab's inventory directory; exits with what to do when no lab runs."""
    status = subprocess.run([*SOCLE, "lab", "status", "--format", "json"], capture_output=True, text=True,
                            check=False)
    if status.returncode != 0:
        raise SystemExit(f"the lab is not running (socle lab status exit {status.returncode}): socle lab up first")
    return Path(json.loads(status.stdout)["inventory"])
