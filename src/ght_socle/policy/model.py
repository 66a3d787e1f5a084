"""Plain data the PSSI policies read and return.

A policy never sees Pulumi objects: it reads :class:`Resource` values (type, name, URN, inputs under
the provider's wire names) and, for stack policies, a :class:`Stack` that also resolves references
between resources. Two adapters build them: one from an offline :class:`~ght_socle.plan_model.Plan`
(``socle check``), one from CrossGuard arguments (``pulumi preview --policy-pack policies``). The
policies are therefore the same functions in both paths.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from ght_socle.catalog import Catalog

PolicyKind = Literal["resource", "stack"]

# Errors raised by reading a value that is unknown until deployment. Only CrossGuard has such values
# (during ``pulumi preview``); the pack adapter registers its error type here.
UNKNOWN_VALUE_ERRORS: tuple[type[Exception], ...] = ()


def register_unknown_value_error(error: type[Exception]) -> None:
    global UNKNOWN_VALUE_ERRORS
    if error not in UNKNOWN_VALUE_ERRORS:
        UNKNOWN_VALUE_ERRORS = (*UNKNOWN_VALUE_ERRORS, error)


@dataclass(frozen=True)
class Resource:
    """One declared resource, as a policy sees it."""

    type: str
    name: str
    urn: str
    props: Mapping[str, Any]
    # Top-level input keys holding a Pulumi secret. None when the source cannot tell (CrossGuard
    # unwraps secrets before policies run), so policies fall back to other evidence.
    secret_keys: frozenset[str] | None = frozenset()
    parent: str | None = None

    def get(self, key: str, default: Any = None) -> Any:
        value = self.props.get(key, default)
        return default if value is None else value

    def known(self, key: str) -> Any:
        """``props[key]``, or None when absent or not known before deployment (a new resource's ID)."""
        try:
            return self.props.get(key)
        except UNKNOWN_VALUE_ERRORS:
            return None

    def known_items(self, key: str) -> list[Any]:
        """The items of a list property that are known now (IDs of new resources are not, in preview)."""
        items: list[Any] = []
        value = self.known(key)
        if not isinstance(value, Sequence) or isinstance(value, (str, bytes)):
            return items
        for index in range(len(value)):
            try:
                items.append(value[index])
            except UNKNOWN_VALUE_ERRORS:
                continue
        return items

    def present(self, key: str) -> bool:
        """Whether ``key`` is set, possibly to a value known only after deployment."""
        try:
            return self.props.get(key) not in (None, "")
        except UNKNOWN_VALUE_ERRORS:
            return True

    @property
    def metadata(self) -> Mapping[str, Any]:
        value = self.props.get("metadata")
        return value if isinstance(value, Mapping) else {}

    @property
    def tags(self) -> list[str]:
        value = self.props.get("tags")
        return [str(t) for t in as_list(value)]

    def tag_values(self, key: str) -> list[str]:
        """Values of ``key=value`` tags (networking resources carry tags as a list of strings)."""
        prefix = f"{key}="
        return [t[len(prefix):] for t in self.tags if t.startswith(prefix)]


def as_list(value: Any) -> list[Any]:
    """A list property as a list (CrossGuard hands read-only sequence proxies, not lists)."""
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        return list(value)
    return []


def records(value: Any) -> list[Mapping[str, Any]]:
    """The mapping items of a list property (``blockDevices``, ``networks``, ``schedulerHints``...)."""
    return [item for item in as_list(value) if isinstance(item, Mapping)]


def item_known(item: Mapping[str, Any], key: str) -> Any:
    """``item[key]`` of a record (see :func:`records`), or None when absent or not known before deployment."""
    try:
        return item.get(key)
    except UNKNOWN_VALUE_ERRORS:
        return None


def item_present(item: Mapping[str, Any], key: str) -> bool:
    """Whether a record sets ``key``, possibly to a value known only after deployment."""
    try:
        return item.get(key) not in (None, "")
    except UNKNOWN_VALUE_ERRORS:
        return True


# Resolves a reference held in a property (an ID, or a name for compute security groups) to the
# resources it may designate, restricted to the given types.
Resolver = Callable[[Resource, str, Any, Sequence[str]], "Resource | None"]
# Every resource of the given types a property depends on (its references, known or not).
Referencer = Callable[[Resource, str, Sequence[str]], "list[Resource]"]


@dataclass
class Stack:
    """Every resource of a stack, its outputs and configuration, and a way to follow references."""

    resources: list[Resource]
    outputs: Mapping[str, Any] = field(default_factory=dict)
    config: Mapping[str, Any] = field(default_factory=dict)  # namespaced keys, secrets masked
    resolver: Resolver | None = None
    referencer: Referencer | None = None
    _by_type: dict[str, list[Resource]] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        for resource in self.resources:
            self._by_type.setdefault(resource.type, []).append(resource)

    def of_type(self, *types: str) -> list[Resource]:
        found: list[Resource] = []
        for type_token in types:
            found.extend(self._by_type.get(type_token, []))
        return found

    def resolve(self, resource: Resource, prop: str, value: Any, types: Sequence[str]) -> Resource | None:
        """The resource of one of ``types`` that ``value`` (read from ``resource.props[prop]``) designates."""
        if self.resolver is None:
            return None
        return self.resolver(resource, prop, value, types)

    def follow(self, resource: Resource, prop: str, types: Sequence[str]) -> Resource | None:
        """The resource that ``resource.props[prop]`` references, known or not yet known."""
        return self.resolve(resource, prop, resource.known(prop), types)

    def references(self, resource: Resource, prop: str, types: Sequence[str]) -> list[Resource]:
        """Every resource of ``types`` that ``resource.props[prop]`` depends on (IDs known or not).

        In a preview, a reference to a resource created by the same update has no ID yet: the
        dependencies the engine records still say which resources the property points to.
        """
        return self.referencer(resource, prop, types) if self.referencer is not None else []


@dataclass(frozen=True)
class Violation:
    """What a policy reports: a message, the resource concerned (None: the whole stack), a fix hint."""

    message: str
    resource: Resource | None = None
    fix: str = ""


SecretConfigCheck = Callable[[Any], bool]


@dataclass
class PolicyContext:
    """What a policy may know besides the resources: catalog parameters, the clock, secret config values."""

    catalog: Catalog
    rule_id: str
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    # True when a value comes from a secret stack configuration value (``secure:`` in Pulumi.<stack>.yaml).
    is_secret_config_value: SecretConfigCheck = field(default=lambda value: False)

    def param(self, name: str, rule: str | None = None) -> Any:
        """A catalog parameter (with the GHT override) of this policy's rule, or of ``rule``."""
        return self.catalog.param(rule or self.rule_id, name)

    def has_param(self, name: str, rule: str) -> bool:
        effective = self.catalog.effective.get(rule)
        return effective is not None and name in effective.params


ResourceCheck = Callable[[Resource, PolicyContext], Iterable[Violation]]
StackCheck = Callable[[Stack, PolicyContext], Iterable[Violation]]


@dataclass(frozen=True)
class Policy:
    """One named policy of the registry, checking one catalog rule."""

    name: str  # the catalog's kebab name (checks.iac)
    rule_id: str
    description: str
    kind: PolicyKind
    resource_types: tuple[str, ...]
    check: Callable[..., Iterable[Violation]]
    fix: str = ""  # default fix hint when a violation gives none

    def run(self, target: Resource | Stack, ctx: PolicyContext) -> Iterator[Violation]:
        for violation in self.check(target, ctx):
            if violation.resource is None and isinstance(target, Resource):
                violation = Violation(violation.message, target, violation.fix)
            if not violation.fix and self.fix:
                violation = Violation(violation.message, violation.resource, self.fix)
            yield violation
