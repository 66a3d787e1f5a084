"""Build the project's OpenStack provider plugin and install it where the engine looks for plugins.

The Go module proxy serves no version of Pulumi's own provider module, but it serves what that
provider is made of: the Terraform bridge, the Terraform OpenStack provider and Pulumi's fork of the
Terraform plugin SDK. ``engine/provider-openstack`` is the project's Go module over them: it serves
the Terraform provider under the type tokens of the installed ``pulumi_openstack`` SDK (the mapping
reads the SDK's token list, see :mod:`ght_socle.engine.openstack_sdk`).

The build has two steps, because the plugin answers GetSchema with a schema made from its own
mapping: ``openstack-schema`` (the bridge's tfgen over the mapping) writes ``schema.json``, then the
plugin is compiled with that file and the token list embedded (``go build -overlay``: nothing is
written into the checkout). The result goes to a cache directory per build key, like the CLI's, and
``pulumi plugin install resource openstack <version> --file`` puts it into ``$PULUMI_HOME/plugins``,
so a run with automatic plugin downloads off finds it.
"""

from __future__ import annotations

import filecmp
import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from ght_socle import paths
from ght_socle.engine.build import (
    BuildFigures,
    Engine,
    Progress,
    cache_root,
    find_engine,
    go_build_with_progress,
    go_command,
)
from ght_socle.engine.env import EngineSettings, engine_environment
from ght_socle.engine.openstack_sdk import read_surface
from ght_socle.engine.versions import BUILD_TAGS, OPENSTACK_VERSION
from ght_socle.errors import ConfigError, SocleError, ToolMissingError

PLUGIN_BINARY = "pulumi-resource-openstack"
PLUGIN_PACKAGE = "./cmd/pulumi-resource-openstack"
SCHEMA_PACKAGE = "./cmd/openstack-schema"
MANIFEST = "provider.json"
# The embedded files main.go names; the build supplies them through an overlay.
EMBEDDED = ("sdk-tokens.json", "schema.json")


@dataclass(frozen=True)
class ProviderPlugin:
    binary: Path
    source: str  # "cache" or "built"
    build: BuildFigures | None = None
    unmapped: dict[str, list[str]] | None = None  # Terraform names the SDK has no token for, left out


def module_dir() -> Path:
    """The project's Go module of the plugin."""
    return paths.project_root() / "engine" / "provider-openstack"


def _module_sources() -> list[Path]:
    module = module_dir()
    return sorted([module / "go.mod", module / "go.sum", *module.rglob("*.go")])


def _go(go: str, arguments: list[str], cwd: Path, env: dict[str, str]) -> str:
    result = subprocess.run([go, *arguments], cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise SocleError(f"go {' '.join(arguments[:2])} failed (exit {result.returncode}): {last}", file=cwd)
    return result.stdout


def build_key(go: str, sdk_tokens: str) -> str:
    """Cache directory name: the version plus a digest of the module, Go, the tags and the SDK's tokens."""
    digest = hashlib.sha256()
    module = module_dir()
    for source in _module_sources():
        digest.update(str(source.relative_to(module)).encode())
        digest.update(source.read_bytes())
    digest.update(_go(go, ["env", "GOVERSION"], module, dict(os.environ)).encode())
    digest.update(BUILD_TAGS.encode())
    digest.update(sdk_tokens.encode())
    return f"{PLUGIN_BINARY}-v{OPENSTACK_VERSION}-{digest.hexdigest()[:12]}"


def reported_version(binary: Path) -> str | None:
    """What ``pulumi-resource-openstack -version`` prints (``5.4.1``), None when it does not run."""
    try:
        result = subprocess.run([str(binary), "-version"], capture_output=True, text=True, timeout=60, check=False)
    except OSError:
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def _current_target() -> tuple[str, str, Path]:
    """The Go command, the SDK's token list and the cache directory of the build they make."""
    if not (module_dir() / "go.mod").is_file():
        raise ConfigError("the provider plugin's Go module is missing: run from a ght-socle checkout "
                          "(or set SOCLE_ROOT to one)", file=module_dir() / "go.mod")
    surface = read_surface()
    if surface.version != OPENSTACK_VERSION:
        raise ConfigError(f"the installed pulumi_openstack is {surface.version}, the project pins "
                          f"{OPENSTACK_VERSION} (reinstall: make venv)", file=paths.project_root() / "pyproject.toml")
    go = go_command()
    sdk_tokens = surface.tokens_json()
    return go, sdk_tokens, cache_root() / build_key(go, sdk_tokens)


def find_plugin() -> ProviderPlugin | None:
    """The plugin built from the current module and SDK, if the cache has it (an older build is not it)."""
    binary = _current_target()[2] / "bin" / PLUGIN_BINARY
    if binary.is_file() and reported_version(binary) == OPENSTACK_VERSION:
        return ProviderPlugin(binary, "cache")
    return None


def ensure_plugin(progress: Progress) -> ProviderPlugin:
    """The plugin for the installed SDK, built first unless the cache has this build key."""
    go, sdk_tokens, target = _current_target()
    binary = target / "bin" / PLUGIN_BINARY
    if binary.is_file() and reported_version(binary) == OPENSTACK_VERSION:
        progress(f"==> {PLUGIN_BINARY} {OPENSTACK_VERSION} already built: {binary}")
        return ProviderPlugin(binary, "cache")
    return build_plugin(go, target, sdk_tokens, progress)


def _compile(go: str, package: str, output: Path, env: dict[str, str], extra: list[str],
             progress: Progress, what: str) -> int:
    """``go build`` one package of the module with the release flags; returns the packages compiled."""
    module = module_dir()
    total = len(_go(go, ["list", "-deps", *extra, package], module, env).split())
    progress(f"    {what}: {total} packages")
    command = [go, "build", "-v", "-trimpath", "-tags", BUILD_TAGS, *extra, "-o", str(output), package]
    returncode, compiled = go_build_with_progress(command, module, env, total, progress)
    if returncode != 0:
        raise SocleError(f"go build of {package} failed (exit {returncode}); rerun `go build {package}` "
                         "in that directory to see the compiler's message", file=module)
    return compiled


def build_plugin(go: str, target: Path, sdk_tokens: str, progress: Progress) -> ProviderPlugin:
    """Generate the schema, compile the plugin with it into ``target/bin`` and record the figures."""
    module = module_dir()
    env = {**os.environ, "CGO_ENABLED": "0"}
    progress(f"==> building {PLUGIN_BINARY} {OPENSTACK_VERSION} (Terraform bridge over terraform-provider-openstack) "
             f"into {target}")
    progress("    downloading the pinned modules (first time: about 1 GB into the Go module cache)")
    _go(go, ["mod", "download"], module, env)
    staging = target.with_name(target.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "bin").mkdir(parents=True)
    started = time.monotonic()
    try:
        tokens_file = staging / "sdk-tokens.json"
        tokens_file.write_text(sdk_tokens)
        generator = staging / "openstack-schema"
        progress("    first the schema generator, then the plugin (first time: 15 to 30 minutes on 2 cores)")
        compiled = _compile(go, SCHEMA_PACKAGE, generator, env, ["-ldflags", "-s -w"], progress, "schema generator")
        schema_file = staging / "schema.json"
        generated = subprocess.run([str(generator), "-version", OPENSTACK_VERSION, "-tokens", str(tokens_file),
                                    "-out", str(schema_file)], capture_output=True, text=True, check=False)
        if generated.returncode != 0:
            last = (generated.stderr.strip().splitlines() or ["no output"])[-1]
            raise SocleError(f"openstack-schema failed (exit {generated.returncode}): {last}", file=module)
        unmapped = {kind: names.split() for line in generated.stderr.splitlines() if line.startswith("unmapped ")
                    for kind, names in [line.removeprefix("unmapped ").split(":", 1)]}
        overlay = staging / "overlay.json"
        plugin_dir = module / PLUGIN_PACKAGE
        overlay.write_text(json.dumps({"Replace": {str((plugin_dir / name).resolve()): str(staging / name)
                                                   for name in EMBEDDED}}))
        binary = staging / "bin" / PLUGIN_BINARY
        compiled += _compile(go, PLUGIN_PACKAGE, binary, env,
                             ["-overlay", str(overlay), "-ldflags", f"-s -w -X main.version={OPENSTACK_VERSION}"],
                             progress, "plugin")
        generator.unlink()
        overlay.unlink()
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    seconds = time.monotonic() - started
    figures = BuildFigures(
        seconds=round(seconds, 1),
        peak_rss_mib=round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
        packages_compiled=compiled, binary_mib=round(binary.stat().st_size / 2**20, 1))
    (staging / MANIFEST).write_text(json.dumps({"openstack": OPENSTACK_VERSION, "build": asdict(figures),
                                                "unmapped": unmapped}, indent=2))
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    progress(f"    built in {seconds / 60:.1f} min, peak memory {figures.peak_rss_mib:.0f} MiB, "
             f"plugin {figures.binary_mib:.0f} MiB")
    for kind, names in unmapped.items():
        if names:
            progress(f"    left out (the SDK has no token for these {kind}): {' '.join(names)}")
    return ProviderPlugin(target / "bin" / PLUGIN_BINARY, "built", figures, unmapped)


def installed_version(engine: Engine, env: dict[str, str]) -> str | None:
    """The version of the resource plugin ``openstack`` in the PULUMI_HOME of ``env``, if any."""
    result = subprocess.run([str(engine.pulumi), "plugin", "ls", "--json"], env=env, capture_output=True,
                            text=True, timeout=120, check=False)
    if result.returncode != 0:
        raise SocleError(f"pulumi plugin ls failed: {(result.stderr.strip().splitlines() or ['no output'])[-1]}")
    listing = json.loads(result.stdout or "[]") or []
    versions = [p.get("version") for p in listing if p.get("name") == "openstack" and p.get("kind") == "resource"]
    return OPENSTACK_VERSION if OPENSTACK_VERSION in versions else (versions[0] if versions else None)


def installed_binary(env: dict[str, str]) -> Path:
    """Where ``pulumi plugin install`` puts the plugin in the PULUMI_HOME of ``env``."""
    return Path(env["PULUMI_HOME"]) / "plugins" / f"resource-openstack-v{OPENSTACK_VERSION}" / PLUGIN_BINARY


def install_plugin(engine: Engine, plugin: ProviderPlugin, env: dict[str, str], progress: Progress) -> None:
    """Put the plugin into ``$PULUMI_HOME/plugins`` (of ``env``) unless that very binary is there already.

    A plugin of the same version from an earlier build (another build key) is replaced: the engine
    knows plugins by version only, so it would keep running the old one.
    """
    installed = installed_binary(env)
    if installed.is_file() and filecmp.cmp(installed, plugin.binary, shallow=False):
        progress(f"==> resource plugin openstack {OPENSTACK_VERSION} already installed in {env['PULUMI_HOME']}")
        return
    command = [str(engine.pulumi), "plugin", "install", "resource", "openstack", OPENSTACK_VERSION,
               "--file", str(plugin.binary), "--reinstall"]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, check=False)
    if result.returncode != 0:
        raise SocleError(f"pulumi plugin install failed: {(result.stderr.strip().splitlines() or ['no output'])[-1]}")
    progress(f"==> installed resource plugin openstack {OPENSTACK_VERSION} into {env['PULUMI_HOME']}")


def ensure_openstack_plugin(engine: Engine, settings: EngineSettings, progress: Progress) -> ProviderPlugin:
    """Build (or reuse) the plugin and install it for the engine environment of ``settings``."""
    plugin = ensure_plugin(progress)
    install_plugin(engine, plugin, {**os.environ, **engine_environment(engine, settings)}, progress)
    return plugin


def main() -> int:
    """``python -m ght_socle.engine.provider``: build and install the plugin for the operator's engine."""
    def say(line: str) -> None:
        print(line, flush=True)

    engine = find_engine()
    try:
        if engine is None:
            raise ToolMissingError("no pulumi CLI of the pinned version: run `make engine` first")
        plugin = ensure_openstack_plugin(engine, EngineSettings.resolve(), say)
    except SocleError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    say(f"{PLUGIN_BINARY} {OPENSTACK_VERSION}: {plugin.binary} ({plugin.source})")
    say("Next: eval \"$(socle engine env)\"; pulumi plugin ls lists it; pulumi preview of a program uses it.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
