"""What the Ansible roles actually implement: the tags on their tasks.

``socle pssi coverage --strict`` reads this instead of trusting the catalog: a rule whose
``enforce`` check point names a role must find a task tagged ``pssi_<id>`` in that role.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ght_socle import paths
from ght_socle.errors import ConfigError
from ght_socle.trust import yamlio

_NESTED_TASK_KEYS = ("block", "rescue", "always")


def _task_tags(tasks: Iterable[Any], inherited: frozenset[str] = frozenset()) -> set[str]:
    found: set[str] = set()
    for task in tasks or []:
        if not isinstance(task, dict):
            continue
        tags = task.get("tags", [])
        own = {tags} if isinstance(tags, str) else {str(t) for t in tags or []}
        scope = inherited | own
        found |= scope
        for key in _NESTED_TASK_KEYS:
            if isinstance(task.get(key), list):
                found |= _task_tags(task[key], frozenset(scope))
    return found


def role_tags(roles_dir: Path | None = None) -> dict[str, set[str]]:
    """Map each role under ``roles/`` to the set of tags used by its tasks (blocks included)."""
    roles_dir = roles_dir or paths.roles_dir()
    result: dict[str, set[str]] = {}
    if not roles_dir.is_dir():
        return result
    for role in sorted(p for p in roles_dir.iterdir() if (p / "tasks").is_dir()):
        tags: set[str] = set()
        for task_file in sorted((role / "tasks").rglob("*.yml")):
            try:
                content = yamlio.load_yaml(task_file)
            except ConfigError:
                continue  # ansible-lint reports broken YAML; coverage just finds no tag there
            if isinstance(content, list):
                tags |= _task_tags(content)
        result[role.name] = tags
    return result


def existing_roles(roles_dir: Path | None = None) -> set[str]:
    roles_dir = roles_dir or paths.roles_dir()
    if not roles_dir.is_dir():
        return set()
    return {p.name for p in roles_dir.iterdir() if (p / "tasks").is_dir() or (p / "meta").is_dir()}
