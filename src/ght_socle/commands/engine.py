"""``socle engine``: the real Pulumi engine next to the offline plan.

``build`` finds or builds the pinned Pulumi CLI and the project's Python language host
(``make engine``), ``status`` says what is there
and what is missing, ``env`` prints the export lines to use ``pulumi`` by hand, ``set-psk`` stores
a site's IPsec pre-shared key as an encrypted stack secret.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import shlex
import subprocess
import sys
from typing import Any

from ght_socle import paths
from ght_socle.config import config_key
from ght_socle.engine import EngineSettings, engine_environment, ensure_engine, find_engine
from ght_socle.engine.build import Engine, cache_root
from ght_socle.engine.versions import (
    CLI,
    ENGINE_PARTS,
    OPENSTACK_VERSION,
    POLICY_SDK_VERSION,
    PULUMI_VERSION,
    UNBUILDABLE,
    EnginePart,
)
from ght_socle.errors import ConfigError, SocleError, ToolMissingError
from ght_socle.output import add_format_option, print_json, progress
from ght_socle.plan import load_project
from ght_socle.trust.yamlio import load_yaml


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "engine", help="the real Pulumi engine: build the pinned CLI, its environment, stack secrets",
        description=f"The Pulumi CLI v{PULUMI_VERSION} built from Go modules into {cache_root()} "
                    "($SOCLE_ENGINE_CACHE), state and passphrase outside the checkout (docs/engine.md).")
    actions = parser.add_subparsers(dest="engine_action", metavar="ACTION")
    actions.required = True
    build = actions.add_parser("build", help="use or build the pinned CLI and the Python language host "
                                             "(long the first time; make engine)")
    build.set_defaults(handler=_build)
    status = actions.add_parser("status", help="versions, where the CLI is, what cannot be built here")
    add_format_option(status)
    status.set_defaults(handler=_status)
    env = actions.add_parser("env", help="print export lines to run pulumi by hand: eval \"$(socle engine env)\"")
    env.set_defaults(handler=_env)
    set_psk = actions.add_parser(
        "set-psk", help="store a site's IPsec pre-shared key as an encrypted stack secret (read from stdin)",
        description="Reads the key from the terminal (not echoed) or from stdin, never from the command line, "
                    "and runs `pulumi config set --secret --path` so Pulumi.<stack>.yaml gets its ciphertext.")
    set_psk.add_argument("--stack", required=True, help="stack whose configuration gets the key")
    set_psk.add_argument("site", help="site name, a key of ght-socle:sites in Pulumi.<stack>.yaml")
    set_psk.set_defaults(handler=_set_psk)


def _require_engine() -> Engine:
    engine = find_engine()
    if engine is None:
        raise ToolMissingError(f"no pulumi v{PULUMI_VERSION} on PATH or in {cache_root()}: run `make engine` first")
    return engine


def _build(args: argparse.Namespace) -> int:
    engine = ensure_engine(progress)
    print(f"pulumi v{PULUMI_VERSION}: {engine.pulumi} ({engine.source})")
    for plugin in engine.plugins:
        print(f"{plugin.part.binary} {plugin.part.version}: {plugin.path} ({plugin.source})")
    for part in UNBUILDABLE:
        print(f"not built: {part.name} ({part.module}): {part.reason}; so {part.consequence}")
    print("Next: eval \"$(socle engine env)\" to use this pulumi by hand; `socle plan` needs none of it.")
    return 0


def _status(args: argparse.Namespace) -> int:
    engine = find_engine()
    settings = EngineSettings.resolve()
    report: dict[str, Any] = {
        "pulumi": {"version": PULUMI_VERSION, "path": str(engine.pulumi) if engine else None,
                   "source": engine.source if engine else None},
        "parts": [_part_status(engine, part) for part in ENGINE_PARTS if part is not CLI],
        "pins": {"pulumi": PULUMI_VERSION, "pulumi-policy": POLICY_SDK_VERSION, "pulumi-openstack": OPENSTACK_VERSION},
        "cache": str(cache_root()),
        "state": str(settings.state), "backend": settings.backend_url,
        "passphrase_file": str(settings.passphrase_file),
        "not_buildable": [{"name": p.name, "module": p.module, "reason": p.reason} for p in UNBUILDABLE],
    }
    if args.format == "json":
        print_json(report)
    else:
        where = f"{engine.pulumi} ({engine.source})" if engine else "not built: run `make engine`"
        print(f"pulumi v{PULUMI_VERSION}: {where}")
        for part in report["parts"]:
            print(f"{part['name']} {part['version']}: {part['path'] or 'not built: run `make engine`'}")
        print(f"state: {settings.state}  backend: {settings.backend_url}")
        print(f"passphrase file: {settings.passphrase_file}")
        for part in UNBUILDABLE:
            print(f"not buildable here: {part.name}: {part.reason}")
    complete = engine is not None and not engine.missing()
    return 0 if complete else 1


def _part_status(engine: Engine | None, part: EnginePart) -> dict[str, str | None]:
    found = next((p for p in engine.plugins if p.part == part), None) if engine else None
    return {"name": part.binary, "version": part.version, "path": str(found.path) if found else None,
            "module": f"engine/{part.module_dir}"}


def _env(args: argparse.Namespace) -> int:
    variables = engine_environment(_require_engine(), EngineSettings.resolve())
    for name, value in variables.items():
        print(f"export {name}={shlex.quote(value)}")
    return 0


# An IPsec pre-shared key is only as strong as its entropy: 32 printable characters from a random
# generator carry well over the 128 bits ANSSI asks of symmetric secrets. Whitespace and control
# characters are refused because VPN gateways disagree on how they are trimmed.
PSK_MIN_LENGTH = 32
PSK_ALPHABET = frozenset(chr(code) for code in range(0x21, 0x7F))


def _read_secret(prompt: str) -> str:
    value = getpass.getpass(prompt) if sys.stdin.isatty() else sys.stdin.readline().rstrip("\r\n")
    if not value.strip():
        raise ConfigError("empty pre-shared key (give it on stdin or at the prompt)")
    # The messages never echo the key, not even in part.
    if len(value) < PSK_MIN_LENGTH:
        raise ConfigError(f"pre-shared key too short ({len(value)} characters, at least {PSK_MIN_LENGTH}; "
                          "e.g. openssl rand -base64 48)")
    if not set(value) <= PSK_ALPHABET:
        raise ConfigError("pre-shared key with whitespace, control or non-ASCII characters "
                          "(printable ASCII only; e.g. openssl rand -base64 48)")
    return value


def _pulumi(engine: Engine, command: list[str], env: dict[str, str], stdin: str | None = None) -> str:
    result = subprocess.run([str(engine.pulumi), *command, "--non-interactive"], cwd=paths.project_root(), env=env,
                            input=stdin, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        message = " ".join((result.stderr.strip() or result.stdout.strip() or "no output").split())
        raise SocleError(f"pulumi {' '.join(command[:2])} failed: {message}")
    return result.stdout


def _set_psk(args: argparse.Namespace) -> int:
    project = load_project()
    config_file = project.stack_config_file(args.stack)
    if not config_file.is_file():
        raise ConfigError(f"no configuration for stack {args.stack!r}", file=config_file)
    document = load_yaml(config_file, what="stack configuration")
    block = document.get("config") if isinstance(document, dict) else None
    sites = block.get(config_key("sites")) if isinstance(block, dict) else None
    if not isinstance(sites, dict):
        sites = {}
    if args.site not in sites:
        raise ConfigError(f"unknown site {args.site!r} (sites: {', '.join(sorted(sites)) or 'none'})",
                          file=config_file, where=f"key {config_key('sites')}")
    # Read and check the key before anything is created or written: a refused key leaves no trace.
    value = _read_secret(f"pre-shared key of site {args.site}: ")
    engine = _require_engine()
    env = {**os.environ, **engine_environment(engine, EngineSettings.resolve())}
    stacks = json.loads(_pulumi(engine, ["stack", "ls", "--json"], env) or "[]")
    if args.stack not in {stack.get("name") for stack in stacks}:
        _pulumi(engine, ["stack", "init", args.stack, "--secrets-provider", "passphrase"], env)
    _pulumi(engine, ["config", "set", "--stack", args.stack, "--secret", "--path",
                     f"{config_key('sites')}.{args.site}.psk"], env, stdin=value)
    print(f"site {args.site}: pre-shared key stored encrypted in {config_file} (passphrase secrets provider)")
    print("Next: commit that file (ciphertext only); keep the passphrase file in the team's vault.")
    return 0
