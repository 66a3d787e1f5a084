"""Benchmark of the local cloud's control plane: cold `up`, warm `up`, `down`, restart, memory.

Runs in a temporary state directory (``SOCLE_STATE``), so "cold" means an empty state: MariaDB
initialised, every schema synced, Keystone bootstrapped, the catalog and the stack content seeded.
The Debian packages must already be installed (their download and install are not measured). The
ports are the fixed OpenStack ones: a local cloud already running must be taken down first.

    .venv/bin/python bench/cloud.py

Figures: cold `up`; warm `up` (everything running, reused); `down`; `up` again from the kept state
(processes restarted, no schema sync); peak and settled sum of RSS of the control plane's processes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from ght_socle.cloud import packages
from ght_socle.cloud.processes import rss_bytes
from ght_socle.cloud.services import control_plane_packages

SOCLE = [sys.executable, "-m", "ght_socle.cli"]


class RssSampler(threading.Thread):
    """Sums the RSS of every process group the state file records, twice a second; keeps the peak."""

    def __init__(self, state_file: Path) -> None:
        super().__init__(daemon=True)
        self.state_file = state_file
        self.peak = 0
        self.last = 0
        self.stopping = threading.Event()

    def sample(self) -> int:
        try:
            daemons = json.loads(self.state_file.read_text())["daemons"]
        except (OSError, ValueError, KeyError):
            return 0
        return sum(rss_bytes(int(daemon["pid"])) for daemon in daemons.values())

    def run(self) -> None:
        while not self.stopping.is_set():
            self.last = self.sample()
            self.peak = max(self.peak, self.last)
            time.sleep(0.5)


def timed(env: dict[str, str], *args: str) -> float:
    started = time.monotonic()
    result = subprocess.run([*SOCLE, "cloud", *args], env=env, capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - started
    if result.returncode != 0:
        sys.exit(f"socle cloud {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
    return elapsed


def main() -> int:
    absent = packages.missing(control_plane_packages())
    if absent:
        sys.exit(f"install the packages first (`socle cloud up --control-plane` does): {' '.join(absent)}")
    with tempfile.TemporaryDirectory(prefix="socle-cloud-bench-") as state:
        env = {**os.environ, "SOCLE_STATE": state}
        sampler = RssSampler(Path(state) / "cloud" / "state.json")
        sampler.start()
        try:
            print("cold up (empty state) ...", file=sys.stderr)
            cold = timed(env, "up", "--control-plane")
            warm = timed(env, "up", "--control-plane")
            time.sleep(2)
            settled = sampler.sample()
            down = timed(env, "down")
            restart = timed(env, "up", "--control-plane")
        finally:
            sampler.stopping.set()
            subprocess.run([*SOCLE, "cloud", "down", "--purge"], env=env, capture_output=True, check=False)
    print(f"cold `cloud up --control-plane` (empty state): {cold:6.1f} s")
    print(f"warm `cloud up --control-plane` (all running): {warm:6.1f} s")
    print(f"`cloud down`:                                  {down:6.1f} s")
    print(f"`cloud up` again from the kept state:          {restart:6.1f} s")
    print(f"RSS of the control plane: peak {sampler.peak / 2**20:.0f} MiB, settled {settled / 2**20:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
