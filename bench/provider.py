"""Benchmark of the OpenStack provider plugin: its build, its size, how fast it answers GetSchema.

Cold (unless --skip-cold): the plugin built into an empty engine cache and an empty Go build cache
(the Go module cache is kept: downloads are not what is measured). Warm: the same call with the
project's cache, which then holds the plugin. Then `pulumi package get-schema` on the plugin (the
CLI starts it and asks GetSchema), timed. Prints wall times, the peak memory of the largest build
process (ru_maxrss of the children), the plugin's size and the schema's.

    .venv/bin/python bench/provider.py [--skip-cold]

The cold build takes 15 to 30 minutes on 2 cores: run it in the background.
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

from ght_socle.engine.build import find_engine
from ght_socle.engine.env import EngineSettings, engine_environment
from ght_socle.engine.provider import ensure_plugin
from ght_socle.engine.versions import OPENSTACK_VERSION


def quiet(_line: str) -> None:
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skip-cold", action="store_true", help="measure the warm call and GetSchema only")
    args = parser.parse_args()
    print(f"pulumi-resource-openstack {OPENSTACK_VERSION}, {os.cpu_count()} cores")
    if not args.skip_cold:
        scratch = Path(tempfile.mkdtemp(prefix="socle-provider-bench-"))
        saved = {name: os.environ.get(name) for name in ("SOCLE_ENGINE_CACHE", "GOCACHE")}
        os.environ.update(SOCLE_ENGINE_CACHE=str(scratch / "engine"), GOCACHE=str(scratch / "go-build"))
        try:
            started = time.monotonic()
            plugin = ensure_plugin(quiet)
            seconds = time.monotonic() - started
            peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
            print(f"cold build: {seconds:.0f} s ({seconds / 60:.1f} min), peak RSS {peak:.0f} MiB, "
                  f"plugin {plugin.binary.stat().st_size / 2**20:.0f} MiB")
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
            shutil.rmtree(scratch, ignore_errors=True)
    started = time.monotonic()
    plugin = ensure_plugin(quiet)
    print(f"warm (cached) build call: {time.monotonic() - started:.1f} s ({plugin.binary}, "
          f"{plugin.binary.stat().st_size / 2**20:.0f} MiB)")
    engine = find_engine()
    if engine is None:
        print("GetSchema not measured: no pulumi CLI (make engine)")
        return 1
    with tempfile.TemporaryDirectory(prefix="socle-provider-bench-state-") as state:
        env = {**os.environ, **engine_environment(engine, EngineSettings.resolve(state=Path(state)))}
        started = time.monotonic()
        schema = subprocess.run([str(engine.pulumi), "package", "get-schema", str(plugin.binary)], env=env,
                                capture_output=True, text=True, check=True).stdout
    print(f"pulumi package get-schema (plugin start + GetSchema): {time.monotonic() - started:.1f} s, "
          f"schema {len(schema) / 2**20:.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
