"""The registry of PSSI policies: one entry per policy name of the catalog's ``checks.iac``.

Policies are declared in the domain modules (``ght_socle.policy.rules.<domain>``) with the
:func:`resource_policy` / :func:`stack_policy` decorators. ``socle pssi coverage --strict`` reads
:func:`implemented_policies` to prove that every ``iac`` check point of the catalog exists.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from typing import Any

from ght_socle.policy.model import Policy, PolicyKind, Violation

DOMAIN_MODULES = ("net", "adm", "cmp", "sto", "bck", "iam", "log", "loc")

_POLICIES: dict[str, Policy] = {}


def _register(kind: PolicyKind, name: str, rule_id: str, description: str, types: Iterable[str],
              fix: str) -> Callable[[Callable[..., Iterable[Violation]]], Callable[..., Iterable[Violation]]]:
    def decorator(func: Callable[..., Iterable[Violation]]) -> Callable[..., Iterable[Violation]]:
        if name in _POLICIES and _POLICIES[name].check is not func:
            raise ValueError(f"policy {name} registered twice")
        _POLICIES[name] = Policy(name=name, rule_id=rule_id, description=description, kind=kind,
                                 resource_types=tuple(types), check=func, fix=fix)
        return func
    return decorator


def resource_policy(name: str, rule_id: str, description: str, types: Iterable[str], fix: str = "") -> Any:
    """Declare a policy over one resource at a time: ``check(resource, ctx) -> violations``."""
    return _register("resource", name, rule_id, description, types, fix)


def stack_policy(name: str, rule_id: str, description: str, types: Iterable[str] = (), fix: str = "") -> Any:
    """Declare a policy over the whole stack: ``check(stack, ctx) -> violations``."""
    return _register("stack", name, rule_id, description, types, fix)


def all_policies() -> list[Policy]:
    """Every registered policy, ordered by rule then name."""
    for module in DOMAIN_MODULES:
        importlib.import_module(f"ght_socle.policy.rules.{module}")
    return sorted(_POLICIES.values(), key=lambda p: (p.rule_id, p.name))


def get_policy(name: str) -> Policy:
    for policy in all_policies():
        if policy.name == name:
            return policy
    raise KeyError(name)


def implemented_policies() -> dict[str, str]:
    """Policy name -> rule id, for ``socle pssi coverage``."""
    return {p.name: p.rule_id for p in all_policies()}
