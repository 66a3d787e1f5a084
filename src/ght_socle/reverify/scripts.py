"""The files the ``reverify`` role installs on a host, built from the library (one source for both sides)."""

from __future__ import annotations

from collections.abc import Mapping
from importlib import resources
from typing import Any

from ght_socle.conform.gather import gather_script, request_for_params


def host_script(name: str, params: Mapping[str, Mapping[str, Any]] | None = None) -> str:
    """``gather``: the conformance fact gatherer with the request of these rule parameters;
    ``agent``: the re-verification agent."""
    if name == "gather":
        return gather_script(request_for_params(params or {}))
    if name == "agent":
        return resources.files("ght_socle.reverify").joinpath("agent_script.py").read_text(encoding="utf-8")
    raise ValueError(f"unknown host script {name!r} (expected 'gather' or 'agent')")
