"""The environment to run the real ``pulumi`` CLI: where state, plugins and the passphrase live.

* state backend: ``$PULUMI_BACKEND_URL`` when the operator set one (an S3-compatible bucket, a
  self-hosted service), else a file backend under the engine state directory;
* plugins: ``PULUMI_HOME`` under the same directory, and automatic plugin downloads are off, so
  a missing plugin is a clear error instead of a download attempt;
* secrets: the passphrase provider, the passphrase read from ``$PULUMI_CONFIG_PASSPHRASE_FILE``,
  else from a file generated once (mode 0600) in the state directory. A team keeps its
  passphrase in its vault and points the variable at it.

The state directory is ``$SOCLE_PULUMI_STATE``, else ``$XDG_STATE_HOME/ght-socle/pulumi``
(``~/.local/state/ght-socle/pulumi``): outside the checkout, so ``make clean`` never touches it.
"""

from __future__ import annotations

import os
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path

from ght_socle.engine.build import Engine


def state_root() -> Path:
    env = os.environ.get("SOCLE_PULUMI_STATE")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_STATE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".local" / "state") / "ght-socle" / "pulumi"


def ensure_passphrase_file(path: Path) -> Path:
    """The passphrase file, created with a random passphrase (readable by its owner only) if missing."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_urlsafe(32) + "\n")
    return path


@dataclass(frozen=True)
class EngineSettings:
    state: Path
    backend_url: str
    passphrase_file: Path

    @classmethod
    def resolve(cls, state: Path | None = None) -> EngineSettings:
        """Settings from the environment; ``state`` (tests, benchmarks) replaces every default location."""
        root = state or state_root()
        backend = os.environ.get("PULUMI_BACKEND_URL") if state is None else None
        passphrase = os.environ.get("PULUMI_CONFIG_PASSPHRASE_FILE") if state is None else None
        return cls(state=root, backend_url=backend or f"file://{root / 'backend'}",
                   passphrase_file=Path(passphrase) if passphrase else root / "passphrase")


def engine_environment(engine: Engine, settings: EngineSettings) -> dict[str, str]:
    """Variables to add to a process environment to run ``pulumi`` against the project's engine."""
    if settings.backend_url.startswith("file://"):
        Path(settings.backend_url[len("file://"):]).mkdir(parents=True, exist_ok=True)
    ensure_passphrase_file(settings.passphrase_file)
    # The Python SDK and the project's packages: the interpreter running this code (the project venv).
    python_bin = str(Path(sys.executable).parent)
    return {
        "PATH": os.pathsep.join([*map(str, engine.bin_dirs), python_bin, os.environ.get("PATH", "")]),
        "PULUMI_HOME": str(settings.state / "home"),
        "PULUMI_BACKEND_URL": settings.backend_url,
        "PULUMI_CONFIG_PASSPHRASE_FILE": str(settings.passphrase_file),
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
        "PULUMI_PYTHON_CMD": sys.executable,
    }
