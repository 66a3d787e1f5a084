"""Typed stack configuration (``stacks/config/Pulumi.<env>.yaml``), validated before any resource.

``from_pulumi()`` is what ``stacks/__main__.py`` calls: it reads the configuration Pulumi hands the
program (the real CLI or ``socle plan``'s mock engine) and returns a validated :class:`StackConfig`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ght_socle import paths
from ght_socle.config.model import NAMESPACE, Host, Role, StackSettings
from ght_socle.config.validate import StackConfig, config_key, host_groups, load_stack_config

__all__ = ["NAMESPACE", "Host", "Role", "StackConfig", "StackSettings", "config_key", "from_pulumi",
           "host_groups", "load_stack_config", "source_label"]


def source_label(stack: str) -> str:
    """The file errors should name: the plan's --config file, else ``stacks/config/Pulumi.<stack>.yaml``."""
    from ght_socle.plan import current_config_file

    path = current_config_file() or paths.project_root() / "stacks" / "config" / f"Pulumi.{stack}.yaml"
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
    from ght_socle.plan import running_offline

    return load_stack_config(raw, secret_keys, source_label(pulumi.get_stack()), require_psks=not running_offline())
