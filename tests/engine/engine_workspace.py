"""The project copy, state directory and environment a real-engine test works in."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Workspace:
    root: Path  # a copy of the project's Pulumi.yaml, stack program and configurations, policies
    env: dict[str, str]  # the process environment for `pulumi` and `socle`
    run: Callable[..., subprocess.CompletedProcess[str]]
