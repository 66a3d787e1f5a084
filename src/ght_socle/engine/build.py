"""Find or build the engine's binaries, at the versions the project pins, from Go modules.

No registry this project uses ships them, so each part of the engine (``ENGINE_PARTS``: the Pulumi
CLI, the project's Python language host) is compiled from a wrapper Go module under ``engine/``
whose go.mod and go.sum pin every dependency. Each part goes to a cache outside the checkout, one
directory per build key (part, version, Go toolchain, the wrapper module's files), so a second
``make engine`` reuses it in seconds. A part the CLI looks for beside its own binary (the language
host) is linked there. A ``pulumi`` already on PATH is used when it reports the pinned version.
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
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO

from ght_socle import paths
from ght_socle.engine.versions import BUILD_TAGS, CLI, ENGINE_PARTS, PULUMI_VERSION, EnginePart
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
class PartBinary:
    """Where a part of the engine is, and how it was had."""

    part: EnginePart
    path: Path
    source: str  # "PATH", "cache" or "built"
    build: BuildFigures | None = None


@dataclass(frozen=True)
class Engine:
    pulumi: Path
    source: str  # "PATH", "cache" or "built"
    build: BuildFigures | None = None
    plugins: tuple[PartBinary, ...] = field(default=())  # the other parts found or built (language host)

    @property
    def bin_dir(self) -> Path:
        return self.pulumi.parent

    @property
    def bin_dirs(self) -> list[Path]:
        """Directories to put on PATH: the CLI's, then those of parts not linked beside it."""
        dirs = [self.bin_dir]
        for plugin in self.plugins:
            if plugin.path.parent not in dirs:
                dirs.append(plugin.path.parent)
        return dirs

    def missing(self) -> list[EnginePart]:
        """Parts of ENGINE_PARTS this engine lacks."""
        found = {plugin.part.binary for plugin in self.plugins}
        return [part for part in ENGINE_PARTS if part is not CLI and part.binary not in found]


def engine_dir() -> Path:
    """The project's Go wrapper modules, one per part."""
    return paths.project_root() / "engine"


def module_dir(part: EnginePart = CLI) -> Path:
    """The wrapper Go module that pins a part (the CLI by default) and its dependencies."""
    return engine_dir() / part.module_dir


def cache_root() -> Path:
    """Built engines: ``$SOCLE_ENGINE_CACHE``, else ``<cache>/engine`` (``~/.cache/ght-socle/engine``)."""
    env = os.environ.get("SOCLE_ENGINE_CACHE")
    return Path(env) if env else paths.cache_dir() / "engine"


def go_command() -> str:
    found = shutil.which("go") or next((p for p in ("/usr/local/go/bin/go",) if os.access(p, os.X_OK)), None)
    if found is None:
        raise ToolMissingError("the Go toolchain is needed to build the Pulumi engine (install Go >= 1.26: "
                               "https://go.dev/doc/install, or put `go` on PATH)")
    return found


def _run(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise SocleError(f"{' '.join(command[:3])} failed (exit {result.returncode}): {last}", file=cwd)
    return result.stdout


def _key_prefix(part: EnginePart) -> str:
    return f"{part.binary}-{part.version}-"


def build_key(go: str, part: EnginePart = CLI) -> str:
    """Directory name of a part's build: part and version, plus a digest of what changes its output.

    The digest covers the contents of the wrapper module's files in name order (go.mod, go.sum,
    then the sources of a part that has its own), the Go toolchain version and the build tags.
    """
    digest = hashlib.sha256()
    for source in sorted(p for p in module_dir(part).iterdir() if p.is_file()):
        digest.update(source.read_bytes())
    digest.update(_run([go, "env", "GOVERSION"], module_dir(part)).encode())
    digest.update(BUILD_TAGS.encode())
    return f"{_key_prefix(part)}{digest.hexdigest()[:12]}"


def reported_version(binary: Path, part: EnginePart = CLI) -> str | None:
    """What the binary says its version is (``v3.260.0``), None when it does not run."""
    env = {**os.environ, "PULUMI_SKIP_UPDATE_CHECK": "true"}
    try:
        result = subprocess.run([str(binary), *part.version_args], capture_output=True, text=True, env=env,
                                timeout=60, check=False)
    except OSError:
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def _pinned(binary: Path, part: EnginePart = CLI) -> bool:
    complete = all((binary.parent / Path(extra.path).name).is_file() for extra in part.extra_files)
    return complete and reported_version(binary, part) == part.version


def _cached(part: EnginePart) -> Path | None:
    """A binary of the part at the pinned version in the cache (any build key)."""
    root = cache_root()
    if root.is_dir():
        for candidate in sorted(root.glob(f"{_key_prefix(part)}*/bin/{part.binary}")):
            if _pinned(candidate, part):
                return candidate
    return None


def _owned(cli: Path) -> bool:
    """Whether the CLI is one of the cache's builds (parts may be linked beside it)."""
    return cli.resolve().is_relative_to(cache_root().resolve())


def find_engine() -> Engine | None:
    """A CLI at the pinned version (on PATH, else in the cache) and whichever other parts exist."""
    on_path = shutil.which(CLI.binary)
    if on_path and _pinned(Path(on_path)):
        cli, source = Path(on_path), "PATH"
    else:
        cached = _cached(CLI)
        if cached is None:
            return None
        cli, source = cached, "cache"
    plugins = []
    for part in ENGINE_PARTS:
        if part is CLI:
            continue
        beside = cli.parent / part.binary
        found = beside if part.beside_cli and beside.exists() and _pinned(beside.resolve(), part) else _cached(part)
        if found is not None:
            plugins.append(PartBinary(part, found, "cache"))
    return Engine(cli, source, plugins=tuple(plugins))


def ensure_engine(progress: Progress) -> Engine:
    """Every part at its pinned version: the CLI (PATH or cache), then the others, built when missing."""
    go: str | None = None
    on_path = shutil.which(CLI.binary)
    cli: PartBinary
    if on_path and _pinned(Path(on_path)):
        progress(f"==> using pulumi v{PULUMI_VERSION} on PATH: {on_path}")
        cli = PartBinary(CLI, Path(on_path), "PATH")
    else:
        go = go_command()
        cli = ensure_part(CLI, go, progress)
    plugins = []
    for part in ENGINE_PARTS:
        if part is CLI:
            continue
        go = go or go_command()
        plugin = ensure_part(part, go, progress)
        if part.beside_cli and _owned(cli.path):
            plugin = PartBinary(part, _link_beside(cli.path, plugin.path), plugin.source, plugin.build)
        plugins.append(plugin)
    return Engine(cli.path, cli.source, cli.build, tuple(plugins))


def _link_beside(cli: Path, binary: Path) -> Path:
    """Link a part's binary into the CLI's directory, where Pulumi looks for its bundled plugins."""
    link = cli.parent / binary.name
    if link.is_symlink() and link.resolve() == binary.resolve():
        return link
    if link.exists() and not link.is_symlink():
        raise ConfigError(f"{link} is a file, not the link to {binary} socle engine build makes; remove it",
                          file=link)
    temporary = link.with_name(link.name + ".new")
    temporary.unlink(missing_ok=True)
    temporary.symlink_to(binary)
    temporary.replace(link)  # atomic: a running CLI sees the old link or the new one
    return link


def ensure_part(part: EnginePart, go: str, progress: Progress) -> PartBinary:
    """One part from the cache under its current build key, built first when missing."""
    if not (module_dir(part) / "go.mod").is_file():
        raise ConfigError(f"the engine's Go wrapper module for {part.binary} is missing: run from a ght-socle "
                          "checkout (or set SOCLE_ROOT to one)", file=module_dir(part) / "go.mod")
    target = cache_root() / build_key(go, part)
    cached = target / "bin" / part.binary
    if cached.is_file() and _pinned(cached, part):
        progress(f"==> {part.binary} {part.version} already built: {cached}")
        return PartBinary(part, cached, "cache")
    figures = build_part(part, go, target, progress)
    return PartBinary(part, cached, "built", figures)


def _watch_compiles(stream: IO[str], counter: list[int]) -> None:
    # `go build -v` names each package on stderr as it compiles it.
    for _line in stream:
        counter[0] += 1


def go_build_with_progress(command: list[str], module: Path, env: dict[str, str], total: int,
                           progress: Progress) -> tuple[int, int]:
    """Run a ``go build -v`` command, reporting every 20 s how many of ``total`` packages it compiled.

    Returns the exit status and the number of packages compiled.
    """
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
                progress(f"    {(time.monotonic() - started) / 60:4.1f} min: {compiled[0]}/{total} packages compiled")
        watcher.join(timeout=5)
    return process.returncode, compiled[0]


def _module_file(go: str, part: EnginePart, module: str, path: str, env: dict[str, str]) -> Path:
    """A file of a Go module the part's wrapper module requires, from the module cache."""
    root = _run([go, "list", "-m", "-f", "{{.Dir}}", module], module_dir(part), env).strip()
    found = Path(root) / path
    if not root or not found.is_file():
        raise SocleError(f"{path} is not in the module {module} (module directory {root or 'unknown'})",
                         file=module_dir(part) / "go.mod")
    return found


def build_part(part: EnginePart, go: str, target: Path, progress: Progress) -> BuildFigures:
    """Download the pinned modules, compile the part into ``target/bin`` with its files beside it."""
    module = module_dir(part)
    env = {**os.environ, "CGO_ENABLED": "0"}
    first_time = ("about 1.5 GB into the Go module cache" if part is CLI else "seconds when the CLI was built")
    progress(f"==> building {part.binary} {part.version} from Go modules into {target}")
    progress(f"    downloading the pinned modules (first time: {first_time})")
    _run([go, "mod", "download"], module, env)
    total = len(_run([go, "list", "-deps", part.package], module, env).split())
    expected = ("10 to 25 minutes on 2 cores, several GB of memory" if part is CLI
                else "a few minutes on 2 cores")
    progress(f"    compiling {total} packages (first time: {expected})")
    staging = target.with_name(target.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "bin").mkdir(parents=True)
    binary = staging / "bin" / part.binary
    command = [go, "build", "-v", "-trimpath", "-tags", BUILD_TAGS,
               "-ldflags", f"-s -w -X {part.version_symbol}={part.version}",
               "-o", str(binary), part.package]
    started = time.monotonic()
    returncode, compiled = go_build_with_progress(command, module, env, total, progress)
    seconds = time.monotonic() - started
    if returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        raise SocleError(f"go build of {part.package} failed (exit {returncode}); rerun `go build -v "
                         f"{part.package}` in that directory to see the compiler's message", file=module)
    for extra in part.extra_files:
        # Files of the module cache are read-only; the copy gets the mode of an executable script.
        placed = staging / "bin" / Path(extra.path).name
        shutil.copyfile(_module_file(go, part, extra.module, extra.path, env), placed)
        placed.chmod(0o755)
    figures = BuildFigures(
        seconds=round(seconds, 1),
        peak_rss_mib=round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
        packages_compiled=compiled, binary_mib=round(binary.stat().st_size / 2**20, 1))
    manifest = {"part": part.binary, "version": part.version, "pulumi": PULUMI_VERSION, "build": asdict(figures)}
    (staging / MANIFEST).write_text(json.dumps(manifest, indent=2))
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    progress(f"    built in {seconds / 60:.1f} min, peak memory {figures.peak_rss_mib:.0f} MiB, "
             f"binary {figures.binary_mib:.0f} MiB")
    return figures
