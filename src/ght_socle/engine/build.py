"""Find or build the Pulumi CLI, at the version the project pins, from Pulumi's Go modules.

No registry this project uses ships the CLI binary, so it is compiled from the Go module
``github.com/pulumi/pulumi/pkg/v3`` through the wrapper module in ``engine/cli`` (its go.mod and
go.sum pin every dependency). The binary goes to a cache outside the checkout, one directory per
build key (version, Go toolchain, go.sum), so a second ``make engine`` reuses it in seconds.
A ``pulumi`` already on PATH is used when it reports the pinned version.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO

from ght_socle import paths
from ght_socle.engine.versions import BUILD_TAGS, CLI_PACKAGE, PULUMI_VERSION, VERSION_SYMBOL
from ght_socle.errors import ConfigError, SocleError, ToolMissingError

Progress = Callable[[str], None]
PROGRESS_EVERY_SECONDS = 20.0
MANIFEST = "engine.json"


@dataclass(frozen=True)
class BuildFigures:
    seconds: float
    peak_rss_mib: float  # largest process of the build (the Go linker, as a rule)
    packages_compiled: int
    binary_mib: float


@dataclass(frozen=True)
class Engine:
    pulumi: Path
    source: str  # "PATH", "cache" or "built"
    build: BuildFigures | None = None

    @property
    def bin_dir(self) -> Path:
        return self.pulumi.parent


def module_dir() -> Path:
    """The wrapper Go module that pins the CLI and its dependencies."""
    return paths.project_root() / "engine" / "cli"


def cache_root() -> Path:
    """Built engines: ``$SOCLE_ENGINE_CACHE``, else ``<cache>/engine`` (``~/.cache/ght-socle/engine``)."""
    env = os.environ.get("SOCLE_ENGINE_CACHE")
    return Path(env) if env else paths.cache_dir() / "engine"


def go_command() -> str:
    found = shutil.which("go") or next((p for p in ("/usr/local/go/bin/go",) if os.access(p, os.X_OK)), None)
    if found is None:
        raise ToolMissingError("the Go toolchain is needed to build the Pulumi CLI (install Go >= 1.26: "
                               "https://go.dev/doc/install, or put `go` on PATH)")
    return found


def _run(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise SocleError(f"{' '.join(command[:3])} failed (exit {result.returncode}): {last}", file=cwd)
    return result.stdout


def build_key(go: str) -> str:
    """Directory name of a build: the pinned version plus a digest of what changes its output."""
    digest = hashlib.sha256()
    for name in ("go.mod", "go.sum"):
        digest.update((module_dir() / name).read_bytes())
    digest.update(_run([go, "env", "GOVERSION"], module_dir()).encode())
    digest.update(BUILD_TAGS.encode())
    return f"pulumi-v{PULUMI_VERSION}-{digest.hexdigest()[:12]}"


def reported_version(pulumi: Path) -> str | None:
    """What ``pulumi version`` prints (``v3.260.0``), None when it does not run."""
    env = {**os.environ, "PULUMI_SKIP_UPDATE_CHECK": "true"}
    try:
        result = subprocess.run([str(pulumi), "version"], capture_output=True, text=True, env=env, timeout=60,
                                check=False)
    except OSError:
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def _pinned(pulumi: Path) -> bool:
    return reported_version(pulumi) == f"v{PULUMI_VERSION}"


def find_engine() -> Engine | None:
    """A CLI at the pinned version: on PATH, else in the cache (any build key of this version)."""
    on_path = shutil.which("pulumi")
    if on_path and _pinned(Path(on_path)):
        return Engine(Path(on_path), "PATH")
    root = cache_root()
    if root.is_dir():
        for candidate in sorted(root.glob(f"pulumi-v{PULUMI_VERSION}-*/bin/pulumi")):
            if _pinned(candidate):
                return Engine(candidate, "cache")
    return None


def ensure_engine(progress: Progress) -> Engine:
    """The pinned CLI, built first if neither PATH nor the cache has it."""
    on_path = shutil.which("pulumi")
    if on_path and _pinned(Path(on_path)):
        progress(f"==> using pulumi v{PULUMI_VERSION} on PATH: {on_path}")
        return Engine(Path(on_path), "PATH")
    if not (module_dir() / "go.mod").is_file():
        raise ConfigError("the engine's Go wrapper module is missing: run from a ght-socle checkout "
                          "(or set SOCLE_ROOT to one)", file=module_dir() / "go.mod")
    go = go_command()
    target = cache_root() / build_key(go)
    cached = target / "bin" / "pulumi"
    if cached.is_file() and _pinned(cached):
        progress(f"==> pulumi v{PULUMI_VERSION} already built: {cached}")
        return Engine(cached, "cache")
    figures = build_cli(go, target, progress)
    return Engine(cached, "built", figures)


def _watch_compiles(stream: IO[str], counter: list[int]) -> None:
    # `go build -v` names each package on stderr as it compiles it.
    for _line in stream:
        counter[0] += 1


def build_cli(go: str, target: Path, progress: Progress) -> BuildFigures:
    """Download the pinned modules, compile the CLI into ``target/bin`` and record the figures."""
    module = module_dir()
    env = {**os.environ, "CGO_ENABLED": "0"}
    progress(f"==> building pulumi v{PULUMI_VERSION} from Go modules into {target}")
    progress("    downloading the pinned modules (first time: about 1.5 GB into the Go module cache)")
    _run([go, "mod", "download"], module, env)
    total = len(_run([go, "list", "-deps", CLI_PACKAGE], module, env).split())
    progress(f"    compiling {total} packages (first time: 10 to 25 minutes on 2 cores, several GB of memory)")
    staging = target.with_name(target.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "bin").mkdir(parents=True)
    command = [go, "build", "-v", "-trimpath", "-tags", BUILD_TAGS,
               "-ldflags", f"-s -w -X {VERSION_SYMBOL}=v{PULUMI_VERSION}",
               "-o", str(staging / "bin" / "pulumi"), CLI_PACKAGE]
    started = time.monotonic()
    next_report = started + PROGRESS_EVERY_SECONDS
    compiled = [0]
    with subprocess.Popen(command, cwd=module, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                          text=True) as process:
        assert process.stderr is not None  # stderr=PIPE
        watcher = threading.Thread(target=_watch_compiles, args=(process.stderr, compiled), daemon=True)
        watcher.start()
        while process.poll() is None:
            time.sleep(1.0)
            if time.monotonic() >= next_report:
                next_report += PROGRESS_EVERY_SECONDS
                elapsed = time.monotonic() - started
                progress(f"    {elapsed / 60:4.1f} min: {compiled[0]}/{total} packages compiled")
        watcher.join(timeout=5)
    seconds = time.monotonic() - started
    if process.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        raise SocleError(f"go build of {CLI_PACKAGE} failed (exit {process.returncode}); rerun `go build -v "
                         f"{CLI_PACKAGE}` in that directory to see the compiler's message", file=module)
    binary = staging / "bin" / "pulumi"
    figures = BuildFigures(
        seconds=round(seconds, 1),
        peak_rss_mib=round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
        packages_compiled=compiled[0], binary_mib=round(binary.stat().st_size / 2**20, 1))
    (staging / MANIFEST).write_text(json.dumps({"pulumi": PULUMI_VERSION, "build": asdict(figures)}, indent=2))
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    progress(f"    built in {seconds / 60:.1f} min, peak memory {figures.peak_rss_mib:.0f} MiB, "
             f"binary {figures.binary_mib:.0f} MiB")
    return figures
