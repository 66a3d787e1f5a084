"""The offline plan: what a Pulumi program declares, as plain data.

``socle plan`` runs a program under Pulumi's mock engine and records every resource as a
:class:`PlannedResource`. Policies (``socle check``), the lab (``socle lab up``) and the inventory
bridge all read this one structure, so they agree on what the stack declares.

Input keys are the provider's wire names (camelCase: ``remoteIpPrefix``, ``blockDevices``), the same
names CrossGuard hands to policies. Numbers may arrive as floats (``22.0``): compare numerically.
Secret inputs are unwrapped to their plain value in memory (as CrossGuard does) and their top-level
keys listed in ``secret_keys``; JSON output masks them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SECRET_MASK = "[secret]"


@dataclass
class PlannedResource:
    urn: str
    type: str  # e.g. "openstack:networking/secGroupRule:SecGroupRule" or "ght:network:ZonedNetwork"
    name: str
    parent: str | None  # parent URN, None for children of the stack
    custom: bool
    inputs: dict[str, Any]
    secret_keys: set[str] = field(default_factory=set)
    provider: str | None = None

    def masked_inputs(self) -> dict[str, Any]:
        return {k: (SECRET_MASK if k in self.secret_keys else v) for k, v in self.inputs.items()}

    def as_json(self) -> dict[str, Any]:
        return {"urn": self.urn, "type": self.type, "name": self.name, "parent": self.parent,
                "custom": self.custom, "inputs": self.masked_inputs(), "secret_keys": sorted(self.secret_keys)}


@dataclass
class Plan:
    project: str
    stack: str
    resources: list[PlannedResource]
    outputs: dict[str, Any]
    config: dict[str, Any] = field(default_factory=dict)

    def of_type(self, type_token: str) -> list[PlannedResource]:
        return [r for r in self.resources if r.type == type_token]

    def by_urn(self) -> dict[str, PlannedResource]:
        return {r.urn: r for r in self.resources}

    def as_json(self) -> dict[str, Any]:
        return {"project": self.project, "stack": self.stack,
                "resources": [r.as_json() for r in self.resources], "outputs": self.outputs}
