"""Benchmark of the real engine's build: a cold build, a warm `make engine`, memory, binary size.

Cold: `socle engine build` into an empty engine cache and an empty Go build cache (the Go module
cache is kept: downloads are not what is measured), with no `pulumi` on PATH. Warm: `make engine`
with the project's real cache, which then holds a build. Prints wall times, the peak memory of
the largest build process (ru_maxrss of the children), the binary size, and the offline plan time
of each stack; a real `pulumi preview` per stack is printed as not measurable while the engine
lacks its language host and provider (docs/engine.md).

    .venv/bin/python bench/engine.py [--cache DIR] [--skip-cold]

The cold build takes 10 to 25 minutes on 2 cores: run it in the background.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ght_socle import paths
from ght_socle.engine.build import cache_root, find_engine
from ght_socle.engine.versions import PULUMI_VERSION, UNBUILDABLE
from ght_socle.plan import run_plan

STACKS = ("lab", "preprod", "prod")


def without_pulumi_on_path(path: str) -> str:
    return os.pathsep.join(d for d in path.split(os.pathsep) if d and not (Path(d) / "pulumi").exists())


def timed(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and the peak RSS (MiB) of the largest process the command started."""
    started = time.monotonic()
    subprocess.run(command, cwd=paths.project_root(), env=env, check=True)
    seconds = time.monotonic() - started
    # ru_maxrss of the children is a maximum over this process's life: measure the cold build first.
    return seconds, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", type=Path, help="engine cache for the cold build (default: a new temporary one)")
    parser.add_argument("--skip-cold", action="store_true", help="measure the warm run and the plans only")
    args = parser.parse_args()
    socle = str(Path(sys.executable).parent / "socle")
    print(f"pulumi v{PULUMI_VERSION}, {os.cpu_count()} cores")
    if not args.skip_cold:
        scratch = Path(tempfile.mkdtemp(prefix="socle-engine-bench-"))
        cache = args.cache or scratch / "engine"
        env = {**os.environ, "SOCLE_ENGINE_CACHE": str(cache), "GOCACHE": str(scratch / "go-build"),
               "PATH": without_pulumi_on_path(os.environ.get("PATH", ""))}
        seconds, peak = timed([socle, "engine", "build"], env)
        binaries = sorted(cache.glob("*/bin/pulumi"))
        size = binaries[0].stat().st_size / 2**20 if binaries else float("nan")
        print(f"cold build: {seconds:.0f} s ({seconds / 60:.1f} min), peak RSS {peak:.0f} MiB, "
              f"pulumi binary {size:.0f} MiB")
        shutil.rmtree(scratch / "go-build", ignore_errors=True)
        if args.cache is None:
            shutil.rmtree(scratch, ignore_errors=True)
    seconds, _ = timed(["make", "-s", "engine"], dict(os.environ))
    engine = find_engine()
    print(f"warm make engine: {seconds:.1f} s ({engine.pulumi if engine else 'no engine'}; cache {cache_root()})")
    for stack in STACKS:
        started = time.monotonic()
        plan = run_plan(stack=stack)
        print(f"{stack}: socle plan {time.monotonic() - started:.1f} s ({len(plan.resources)} resources); "
              f"pulumi preview not measurable: {'; '.join(p.consequence for p in UNBUILDABLE)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
