"""Benchmark of the Python install: the pull-request check's (base) against the full one (every extra).

Each install goes into a fresh virtualenv, within the lock (constraints.txt), from a warm pip cache
(downloads are not what is measured; a cold cache adds the download of the same sizes):

    .venv/bin/python bench/install.py

Figures: wall time of `pip install`, size of the virtualenv on disk, number of distributions.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
INSTALLS = {"PR check (base: `pip install .`)": ".", "full (`pip install '.[ops,cloud]'`)": ".[ops,cloud]"}


def size_mib(directory: Path) -> float:
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file() and not p.is_symlink()) / 2**20


def measure(target: str, venv: Path) -> tuple[float, float, int]:
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--upgrade", "pip"], check=True)
    before = size_mib(venv)
    started = time.monotonic()
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "-c", str(ROOT / "constraints.txt"), target],
                   cwd=ROOT, check=True)
    seconds = time.monotonic() - started
    listed = subprocess.run([str(python), "-m", "pip", "list", "--format", "freeze"], capture_output=True, text=True,
                            check=True).stdout.split()
    return seconds, size_mib(venv) - before, len(listed)


def main() -> int:
    print(f"{'install':42} {'seconds':>8} {'MiB':>8} {'dists':>6}")
    with tempfile.TemporaryDirectory(prefix="ght-socle-bench-install-") as scratch:
        for label, target in INSTALLS.items():
            seconds, mib, count = measure(target, Path(scratch) / label.split()[0].lower())
            print(f"{label:42} {seconds:8.1f} {mib:8.0f} {count:6d}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
