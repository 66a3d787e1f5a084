"""Benchmark of the real engine: its build, and a preview through the project's Python language host.

Cold: `socle engine build` into an empty engine cache and an empty Go build cache (the Go module
cache is kept: downloads are not what is measured), with no `pulumi` on PATH. Warm: `make engine`
with the project's real cache, which then holds a build. Host: the language host alone built into a
scratch directory with an empty Go build cache. Probe: `pulumi preview` and `pulumi up` of the
probe program (engine/probe, no provider resource) through the host, in a scratch state. Prints
wall times, the peak memory of the largest build process (ru_maxrss of the children), the binary
size, and for each stack the offline plan time next to a real `pulumi preview` (and one with the
CrossGuard pack) against the local cloud, in a scratch copy of the project (`socle cloud up
--control-plane` first; without a cloud the previews are reported as not measured).

    .venv/bin/python bench/engine.py [--cache DIR] [--skip-cold] [--skip-host]

The cold build takes 10 to 25 minutes on 2 cores: run it in the background.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ght_socle import paths
from ght_socle.cloud import client_env
from ght_socle.engine import EngineSettings, engine_environment
from ght_socle.engine.build import Engine, build_part, cache_root, find_engine, go_command
from ght_socle.engine.scratch import ScratchProject, scratch_project
from ght_socle.engine.versions import LANGUAGE_PYTHON, PULUMI_VERSION
from ght_socle.errors import SocleError
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


def host_build(scratch: Path) -> None:
    """The language host alone, with an empty Go build cache (the modules are in the module cache)."""
    saved = os.environ.get("GOCACHE")
    os.environ["GOCACHE"] = str(scratch / "go-build")
    try:
        figures = build_part(LANGUAGE_PYTHON, go_command(), scratch / "host", lambda line: None)
    finally:
        if saved is None:
            del os.environ["GOCACHE"]
        else:
            os.environ["GOCACHE"] = saved
    print(f"language host cold build: {figures.seconds:.0f} s ({figures.packages_compiled} packages), "
          f"peak RSS {figures.peak_rss_mib:.0f} MiB, binary {figures.binary_mib:.0f} MiB")


def probe_runs(engine: Engine, scratch: Path) -> None:
    """`pulumi preview` and `pulumi up` of the probe program through the language host."""
    root = scratch / "probe"
    shutil.copytree(paths.project_root() / "engine" / "probe", root)
    (root / ".venv").symlink_to(paths.project_root() / ".venv", target_is_directory=True)
    env = {**os.environ, **engine_environment(engine, EngineSettings.resolve(state=scratch / "state"))}
    pulumi = str(engine.pulumi)

    def run(*command: str, stdin: str | None = None) -> float:
        started = time.monotonic()
        subprocess.run([pulumi, *command, "--non-interactive"], cwd=root, env=env, input=stdin, text=True,
                       capture_output=True, check=True)
        return time.monotonic() - started

    run("stack", "init", "probe", "--secrets-provider", "passphrase")
    run("config", "set", "--secret", "token", stdin=secrets.token_urlsafe(24))
    preview = run("preview")
    update = run("up", "--yes")
    print(f"probe program through the language host: pulumi preview {preview:.1f} s, pulumi up {update:.1f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", type=Path, help="engine cache for the cold build (default: a new temporary one)")
    parser.add_argument("--skip-cold", action="store_true", help="measure the warm run and the plans only")
    parser.add_argument("--skip-host", action="store_true", help="do not measure the language host's own build")
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
    if not args.skip_host:
        with tempfile.TemporaryDirectory(prefix="socle-host-bench-") as host_scratch:
            host_build(Path(host_scratch))
    seconds, _ = timed(["make", "-s", "engine"], dict(os.environ))
    engine = find_engine()
    print(f"warm make engine: {seconds:.1f} s ({engine.pulumi if engine else 'no engine'}; cache {cache_root()})")
    if engine is not None:
        with tempfile.TemporaryDirectory(prefix="socle-probe-bench-") as probe_scratch:
            probe_runs(engine, Path(probe_scratch))
    previews = _scratch_for_previews(engine)
    for stack in STACKS:
        started = time.monotonic()
        plan = run_plan(stack=stack)
        line = f"{stack}: socle plan {time.monotonic() - started:.1f} s ({len(plan.resources)} resources)"
        if previews is not None:
            previews.prepare_stack(stack)
            started = time.monotonic()
            preview = previews.preview(stack, "--json")
            steps = len(json.loads(preview.stdout)["steps"])
            line += f"; real pulumi preview {time.monotonic() - started:.1f} s ({steps} steps, local cloud)"
            started = time.monotonic()
            previews.preview(stack, "--policy-pack", "policies")
            line += f"; with --policy-pack {time.monotonic() - started:.1f} s"
        print(line)
    return 0


def _scratch_for_previews(engine: Engine | None) -> ScratchProject | None:
    """A scratch project against the local cloud, or None (and why) when there is no engine or cloud."""
    if engine is None:
        print("real previews: not measured (no engine: make engine)")
        return None
    try:
        client_env()
    except SocleError as exc:
        print(f"real previews: not measured ({exc}; `socle cloud up --control-plane` first)")
        return None
    return scratch_project(Path(tempfile.mkdtemp(prefix="socle-preview-bench-")), engine)


if __name__ == "__main__":
    sys.exit(main())
