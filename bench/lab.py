"""Benchmark of the local lab: golden image build (cold, warm), boot-to-SSH per VM, total `lab up`.

Runs everything in temporary state and cache directories (``SOCLE_STATE``/``SOCLE_CACHE``; the golden
images are shared with the user's cache), so it never touches a lab that is already running and always
measures both kinds of `lab up`: the first boot of the fleet (which then saves each VM's state) and, after
`lab down`, the warm `lab up` that resumes those states. The temporary lab is taken down at the end.
Target on a 2-core machine under TCG: warm ``socle lab up`` of the default fleet under 3 minutes.

    .venv/bin/python bench/lab.py            # warm image, reusing the user's image cache
    .venv/bin/python bench/lab.py --cold     # also a cold image build into an empty cache
    .venv/bin/python bench/lab.py --hosts app-01,logbak-01   # a subset of the lab stack
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


def lab(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SOCLE, "lab", *args], env=env, check=False, capture_output=True, text=True)


def timed_up(env: dict[str, str], hosts: list[str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.monotonic()
    up = lab(env, "up", *(["--hosts", ",".join(hosts)] if hosts else []))
    return round(time.monotonic() - started, 1), up


def ready_seconds(env: dict[str, str]) -> dict[str, object]:
    status = json.loads(lab(env, "status", "--format", "json").stdout)
    return {vm["name"]: vm["ready_seconds"] for vm in status["vms"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cold", action="store_true", help="also build the image from scratch in a temporary cache")
    parser.add_argument("--hosts", default="", help="boot only these instances (default: the whole lab stack)")
    args = parser.parse_args()
    hosts = [h for h in args.hosts.split(",") if h]
    figures: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="ghtlab-bench-") as tmp:
        if args.cold:
            print("cold image build (empty cache)...", file=sys.stderr)
            figures["image_build_cold_s"] = round(timed_image_build(Path(tmp) / "image-cache"), 1)
        figures["image_build_warm_s"] = round(timed_image_build(paths.cache_dir()), 2)

        cache = Path(tmp) / "cache"
        cache.mkdir()
        for shared in ("images", "accelerator.json"):  # the golden images and the KVM probe's verdict
            if (paths.cache_dir() / shared).exists():
                (cache / shared).symlink_to(paths.cache_dir() / shared)
        env = {**os.environ, "SOCLE_STATE": str(Path(tmp) / "state"), "SOCLE_CACHE": str(cache)}
        try:
            print("socle lab up: first boot, then each VM's state saved...", file=sys.stderr)
            figures["lab_up_first_boot_s"], up = timed_up(env, hosts)
            if up.returncode != 0:
                figures["lab_up"] = f"failed: {up.stderr.strip().splitlines()[-1:]}"
                return report(figures, 1)
            figures["first_boot_to_ssh_s"] = ready_seconds(env)
            figures["state_saves"] = [line.strip() for line in up.stderr.splitlines() if "state saved" in line]
            again_s, again = timed_up(env, [])
            figures["lab_up_again_s"] = again_s if again.returncode == 0 else "failed"
            lab(env, "down")
            print("socle lab up again after lab down: resuming the saved states...", file=sys.stderr)
            figures["lab_up_warm_s"], warm = timed_up(env, hosts)
            if warm.returncode != 0 or "resumed" not in warm.stdout:
                figures["lab_up_warm"] = f"did not resume: {warm.stderr.strip().splitlines()[-1:]}"
                return report(figures, 1)
            figures["warm_resume_to_ssh_s"] = ready_seconds(env)
        finally:
            started = time.monotonic()
            lab(env, "down")
            figures["lab_down_s"] = round(time.monotonic() - started, 1)
    return report(figures, 0)


def report(figures: dict[str, object], status: int) -> int:
    print(json.dumps(figures, indent=2))
    warm = figures.get("lab_up_warm_s")
    verdict = "met" if isinstance(warm, float) and warm < 180 else "NOT met"
    load = os.getloadavg()[0]
    print(f"target warm lab up < 180 s: {verdict}; first boot {figures.get('lab_up_first_boot_s')} s "
          f"(host load average at the end: {load:.1f}; other work on the host's cores slows every TCG guest)")
    return status


if __name__ == "__main__":
    sys.exit(main())
