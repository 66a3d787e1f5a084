"""A scratch copy of the project whose stacks preview with the real engine against the local cloud.

What the parity tests and ``bench/engine.py`` both need: the program, stack configs and policies copied
into a directory of their own (the checkout's stack files are never touched), a state backend and a
generated passphrase there, the project's virtualenv, the local cloud's credentials and authority
(``OS_*``), and in the copy's GHT settings the local cloud's identity endpoint allow-listed (LOC-001),
as a GHT names its certified provider's endpoints there. Each stack is created, pointed at the local
cloud and given random IPsec keys through ``socle engine set-psk``.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from ght_socle import paths
from ght_socle.engine.build import Engine
from ght_socle.engine.env import EngineSettings, engine_environment
from ght_socle.errors import SocleError

COMMAND_TIMEOUT = 900


@dataclass
class ScratchProject:
    root: Path
    env: dict[str, str]
    engine: Engine

    def run(self, *command: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(list(command), cwd=self.root, env=self.env, input=stdin, capture_output=True,
                                text=True, check=False, timeout=COMMAND_TIMEOUT)
        if check and result.returncode != 0:
            raise SocleError(f"{' '.join(command[:3])} failed ({result.returncode}): "
                             f"{(result.stderr or result.stdout).strip()[-600:]}")
        return result

    def pulumi(self, *args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run(str(self.engine.pulumi), *args, stdin=stdin, check=check)

    def socle(self, *args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run(sys.executable, "-m", "ght_socle.cli", *args, stdin=stdin, check=check)

    def prepare_stack(self, stack: str) -> None:
        """Create ``stack`` (passphrase secrets), point it at the local cloud, set each site's key."""
        from ght_socle.cloud.services import KEYSTONE

        self.pulumi("stack", "init", stack, "--secrets-provider", "passphrase", "--non-interactive")
        self.pulumi("config", "set", "--stack", stack, "openstack:authUrl", KEYSTONE.url("/v3"))
        config = yaml.safe_load((self.root / "stacks" / "config" / f"Pulumi.{stack}.yaml").read_text())
        for site in (config.get("config") or {}).get("ght-socle:sites") or {}:
            self.socle("engine", "set-psk", "--stack", stack, site, stdin=secrets.token_urlsafe(36) + "\n")

    def preview(self, stack: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.pulumi("preview", "--stack", stack, "--non-interactive", *args, check=check)


def allow_local_cloud(policies: Path) -> None:
    """Allow-list the local cloud's identity endpoint (LOC-001) in the GHT settings under ``policies``."""
    from ght_socle.cloud.services import KEYSTONE

    settings = policies / "ght-settings.yaml"
    document = yaml.safe_load(settings.read_text()) or {}
    document.setdefault("rules", {}).setdefault("LOC-001", {}).setdefault("params", {})[
        "allowed_auth_url_suffixes"] = [f"//127.0.0.1:{KEYSTONE.port}/v3"]
    settings.write_text(yaml.safe_dump(document, sort_keys=False, allow_unicode=True))


def copy_program(root: Path) -> None:
    """Copy what `pulumi` runs into ``root``: Pulumi.yaml, the stack program, its configs, the policies."""
    source = paths.project_root()
    (root / "stacks").mkdir(parents=True)
    shutil.copy(source / "Pulumi.yaml", root / "Pulumi.yaml")
    shutil.copy(source / "stacks" / "__main__.py", root / "stacks" / "__main__.py")
    shutil.copytree(source / "stacks" / "config", root / "stacks" / "config")
    shutil.copytree(source / "policies", root / "policies")


def scratch_project(directory: Path, engine: Engine) -> ScratchProject:
    """The copy under ``directory`` (``project/`` and ``state/``), its plugin installed, ready for stacks."""
    from ght_socle.cloud import client_env
    from ght_socle.engine.provider import find_plugin, install_plugin

    root = directory / "project"
    copy_program(root)
    # The runtime options (program and pack) name the virtualenv beside Pulumi.yaml: the project's.
    (root / ".venv").symlink_to(paths.project_root() / ".venv", target_is_directory=True)
    allow_local_cloud(root / "policies")
    settings = EngineSettings.resolve(state=directory / "state")
    env = {**os.environ, **engine_environment(engine, settings), **client_env(), "SOCLE_ROOT": str(root),
           "SOCLE_PULUMI_STATE": str(settings.state), "PULUMI_CONFIG_PASSPHRASE_FILE": str(settings.passphrase_file)}
    plugin = find_plugin()
    if plugin is None:
        raise SocleError("no OpenStack provider plugin: run `make engine`")
    install_plugin(engine, plugin, env, progress=lambda _line: None)
    return ScratchProject(root=root, env=env, engine=engine)
