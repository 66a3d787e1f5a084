"""Typed stack configuration (``stacks/config/Pulumi.<env>.yaml``), validated before any resource.

``from_pulumi()`` is what ``stacks/__main__.py`` calls: it reads the configuration Pulumi hands the
program (the real CLI or ``socle plan``'s mock engine) and returns a validated :class:`StackConfig`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ght_socle import paths
from ght_socle.config.model import NAMESPACE, Host, Role, StackSettings
from ght_socle.config.validate import StackConfig, config_key, host_groups, load_stack_config, secret_paths_of

__all__ = ["NAMESPACE", "Host", "Role", "StackConfig", "StackSettings", "config_key", "from_pulumi",
           "host_groups", "load_stack_config", "secret_paths_of", "source_label"]


def config_file_of(stack: str) -> Path:
    """The stack's configuration file: the plan's --config file, else ``stacks/config/Pulumi.<stack>.yaml``."""
    from ght_socle.plan import current_config_file

    return current_config_file() or paths.project_root() / "stacks" / "config" / f"Pulumi.{stack}.yaml"


def file_secret_paths(stack: str) -> set[str] | None:
    """Paths of the values stored as secrets in the stack's file; None when there is no file to read."""
    from ght_socle.trust.yamlio import load_yaml

    path = config_file_of(stack)
    if not path.is_file():
        return None
    raw = load_yaml(path, what="stack configuration")
    block = raw.get("config") if isinstance(raw, dict) else None
    return secret_paths_of(block) if isinstance(block, dict) else set()


def source_label(stack: str) -> str:
    """The file errors should name: the plan's --config file, else ``stacks/config/Pulumi.<stack>.yaml``."""
    path = config_file_of(stack)
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def from_pulumi() -> StackConfig:
    """The current program's stack configuration, read from the Pulumi runtime and validated."""
    import pulumi
    from pulumi.runtime import config as runtime_config

    raw: dict[str, Any] = dict(runtime_config.get_config_env())
    raw.update(runtime_config.CONFIG.get())
    secret_keys = set(runtime_config.get_config_secret_keys_env()) | set(runtime_config._SECRET_KEYS.get())
    stack = pulumi.get_stack()
    from ght_socle.plan import running_offline

    return load_stack_config(raw, secret_keys, source_label(stack), secret_paths=file_secret_paths(stack),
                             require_psks=not running_offline())
