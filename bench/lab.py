"""Benchmark of the local lab: golden image build (cold, warm), boot-to-SSH per VM, total `lab up`.

Runs everything in temporary state and cache directories (``SOCLE_STATE``/``SOCLE_CACHE``), so it
never touches a lab that is already running; the temporary lab is taken down at the end.
Target on a 2-core machine under TCG: warm ``socle lab up`` of the default fleet under 3 minutes.

    .venv/bin/python bench/lab.py            # warm figures, reusing the user's image cache
    .venv/bin/python bench/lab.py --cold     # also a cold image build into an empty cache
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ght_socle import paths
from ght_socle.lab.image import ensure_image

SOCLE = [sys.executable, "-m", "ght_socle.cli"]


def timed_image_build(cache: Path) -> float:
    started = time.monotonic()
    ensure_image(cache=cache, progress=lambda message: print(f"    {message}", file=sys.stderr))
    return time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cold", action="store_true", help="also build the image from scratch in a temporary cache")
    args = parser.parse_args()
    figures: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="ghtlab-bench-") as tmp:
        if args.cold:
            print("cold image build (empty cache)...", file=sys.stderr)
            figures["image_build_cold_s"] = round(timed_image_build(Path(tmp) / "cache"), 1)
        figures["image_build_warm_s"] = round(timed_image_build(paths.cache_dir()), 2)

        env = {**os.environ, "SOCLE_STATE": str(Path(tmp) / "state")}
        print("socle lab up (default fleet, temporary state)...", file=sys.stderr)
        started = time.monotonic()
        up = subprocess.run([*SOCLE, "lab", "up"], env=env, check=False, stdout=subprocess.DEVNULL)
        figures["lab_up_total_s"] = round(time.monotonic() - started, 1)
        try:
            if up.returncode != 0:
                figures["lab_up"] = f"failed (exit status {up.returncode})"
                print(json.dumps(figures, indent=2))
                return 1
            status = json.loads(subprocess.run([*SOCLE, "lab", "status", "--format", "json"], env=env, check=False,
                                               capture_output=True, text=True).stdout)
            figures["accelerator"] = status["accelerator"]
            figures["boot_to_ssh_s"] = {vm["name"]: vm["ready_seconds"] for vm in status["vms"]}
            started = time.monotonic()
            again = subprocess.run([*SOCLE, "lab", "up"], env=env, check=False, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
            figures["lab_up_again_s"] = round(time.monotonic() - started, 1) if again.returncode == 0 else "failed"
        finally:
            started = time.monotonic()
            subprocess.run([*SOCLE, "lab", "down"], env=env, check=False, stdout=subprocess.DEVNULL)
            figures["lab_down_s"] = round(time.monotonic() - started, 1)
    print(json.dumps(figures, indent=2))
    total = figures["lab_up_total_s"]
    verdict = "met" if isinstance(total, float) and total < 180 else "NOT met"
    load = os.getloadavg()[0]
    print(f"target warm lab up < 180 s: {verdict} (host load average at the end: {load:.1f}; other work on the "
          "host's cores slows every TCG guest)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
