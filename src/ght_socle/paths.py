"""Where the project's data lives, so that every module agrees on it."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def project_root() -> Path:
    """The checkout holding ``Pulumi.yaml``: ``$SOCLE_ROOT``, else the nearest parent of the cwd or package."""
    env = os.environ.get("SOCLE_ROOT")
    if env:
        return Path(env).resolve()
    for start in (Path.cwd(), PACKAGE_DIR):
        for candidate in (start, *start.parents):
            if (candidate / "Pulumi.yaml").is_file() and (candidate / "policies").is_dir():
                return candidate
    return PACKAGE_DIR.parents[1]


def policies_dir() -> Path:
    return project_root() / "policies"


def catalog_dir() -> Path:
    return policies_dir() / "catalog"


def settings_file() -> Path:
    """The GHT settings file: the one place a GHT adapts the PSSI (``$SOCLE_SETTINGS`` overrides)."""
    env = os.environ.get("SOCLE_SETTINGS")
    return Path(env) if env else policies_dir() / "ght-settings.yaml"


def roles_dir() -> Path:
    return project_root() / "roles"


def stacks_dir() -> Path:
    return project_root() / "stacks"


def inventories_dir() -> Path:
    return project_root() / "inventories"


def cache_dir() -> Path:
    """Long-lived cache (golden images): ``$SOCLE_CACHE`` or ``~/.cache/ght-socle``."""
    env = os.environ.get("SOCLE_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "ght-socle"


def state_dir() -> Path:
    """Run state (lab VMs, reports, runner artifacts): ``$SOCLE_STATE`` or ``<root>/.socle``."""
    env = os.environ.get("SOCLE_STATE")
    return Path(env) if env else project_root() / ".socle"
