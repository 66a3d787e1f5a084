"""The PSSI catalog: the single source of truth for rule IDs, parameters and check points.

The catalog is versioned YAML under ``policies/catalog/`` (one file per domain plus ``_meta.yaml``).
A GHT never edits it: it adapts parameters and enforcement levels in one settings file
(``policies/ght-settings.yaml``), validated against the catalog.

Every loading error is a :class:`~ght_socle.errors.ConfigError` naming the file, the rule and the
key, so ``socle pssi validate`` prints one line and exits 2.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from ght_socle import paths
from ght_socle.errors import ConfigError
from ght_socle.trust import yamlio
from ght_socle.trust.approval import check_approver, check_expiry_bound, check_justification
from ght_socle.trust.grammar import Text, check_config_word

DOMAINS: dict[str, str] = {
    "NET": "Network segmentation and exposure",
    "CMP": "Compute and virtual machines",
    "STO": "Storage and encryption",
    "BCK": "Backup and restore",
    "LOG": "Logging and time",
    "IAM": "Accounts and authentication",
    "ADM": "SSH and administration",
    "OSH": "Operating system hardening",
    "WKS": "Workstations",
    "UPD": "Updates",
    "LOC": "Data localisation",
}

RULE_ID = re.compile(r"^(?P<domain>[A-Z]{3})-(?P<num>\d{3})$")
Severity = Literal["critical", "high", "medium", "low"]
Enforcement = Literal["mandatory", "advisory", "disabled"]
ParamType = Literal["int", "float", "str", "bool", "list[str]", "list[int]", "cidr", "list[cidr]", "dict"]
SEVERITY_ORDER: dict[str, int] = {"critical": 0, "high": 1, "medium": 2, "low": 3}


def rule_tag(rule_id: str) -> str:
    """The Ansible tag and pytest-friendly slug of a rule: ``NET-004`` -> ``pssi_net_004``."""
    return "pssi_" + rule_id.lower().replace("-", "_")


def _check_param_value(kind: str, value: Any, name: str = "", minimum: float | None = None,
                       maximum: float | None = None) -> str | None:
    """Return why ``value`` is not of parameter type ``kind`` (or out of its range), or None when it is.

    Parameters reach role templates (sshd, PAM, sudoers, journald...): strings are single words
    (:func:`~ght_socle.trust.grammar.check_config_word`), and numbers have a range: ``min``/``max``
    when the catalog gives them, else ports (a name containing ``port``) within 1-65535 and every
    other number at least 1 (a timeout, a retention, a count of 0 or less disables what the rule
    requires). The values of a ``dict``
    parameter (sysctl settings...) are free numbers; only their text is checked."""
    def is_int(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool)

    def is_cidr(v: Any) -> bool:
        if not isinstance(v, str):
            return False
        try:
            ipaddress.ip_network(v, strict=False)
        except ValueError:
            return False
        return True

    checks: dict[str, tuple[Any, str]] = {
        "int": (is_int, "an integer"),
        "float": (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool), "a number"),
        "str": (lambda v: isinstance(v, str), "a string"),
        "bool": (lambda v: isinstance(v, bool), "true or false"),
        "list[str]": (lambda v: isinstance(v, list) and all(isinstance(i, str) for i in v), "a list of strings"),
        "list[int]": (lambda v: isinstance(v, list) and all(is_int(i) for i in v), "a list of integers"),
        "cidr": (is_cidr, "a CIDR such as 10.20.0.0/16"),
        "list[cidr]": (lambda v: isinstance(v, list) and all(is_cidr(i) for i in v), "a list of CIDRs"),
        "dict": (lambda v: isinstance(v, dict), "a mapping"),
    }
    test, expected = checks[kind]
    if not test(value):
        return f"expected {expected}, got {_shown(value)}"
    items = list(_leaves(value)) if isinstance(value, dict) else value if isinstance(value, list) else [value]
    for item in items:
        if isinstance(item, str):
            try:
                check_config_word(item)
            except ValueError as exc:
                return str(exc)
        elif isinstance(item, (int, float)) and not isinstance(item, bool) and kind != "dict":
            low, high = _param_range(name, minimum, maximum)
            if not low <= item <= high:
                return f"{item} is out of range ({low}-{high})" if high != float("inf") else \
                    f"{item} is out of range (at least {low})"
    return None


def _leaves(value: Any) -> Iterator[Any]:
    """Every key and scalar of a nested mapping (its strings reach templates like any other)."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _leaves(item)
    elif isinstance(value, list):
        for item in value:
            yield from _leaves(item)
    else:
        yield value


def _param_range(name: str, minimum: float | None, maximum: float | None) -> tuple[float, float]:
    is_port = "port" in name
    low = minimum if minimum is not None else 1
    high = maximum if maximum is not None else (65535 if is_port else float("inf"))
    return low, high


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Source(_Strict):
    ref: str = Field(min_length=3, description="Document, e.g. 'ANSSI-BP-028 v2.0'")
    clause: str = Field(min_length=1, description="Clause number, e.g. 'R12'")

    def __str__(self) -> str:
        return f"{self.ref} {self.clause}"


class Param(_Strict):
    type: ParamType
    default: Any
    description: str = Field(min_length=3)
    min: float | None = Field(default=None, description="Lowest value allowed (default 1; ports 1-65535)")
    max: float | None = Field(default=None, description="Highest value allowed")

    def problem(self, value: Any, name: str) -> str | None:
        return _check_param_value(self.type, value, name, self.min, self.max)

    @model_validator(mode="after")
    def _default_has_type(self) -> Param:
        problem = _check_param_value(self.type, self.default, "", self.min, self.max)
        if problem:
            raise ValueError(f"default: {problem}")
        return self


class CheckPoints(_Strict):
    iac: list[str] = Field(default_factory=list, description="Policy names checking declared infrastructure")
    enforce: list[str] = Field(default_factory=list, description="Roles enforcing the rule (tag pssi_<id>)")
    host: bool = Field(default=False, description="A conformance test marked with the rule ID verifies it")
    manual: str | None = Field(default=None, description="Why (part of) the rule cannot be automated")

    @model_validator(mode="after")
    def _something_checks(self) -> CheckPoints:
        if not (self.iac or self.enforce or self.host or self.manual):
            raise ValueError("a rule needs at least one of iac, enforce, host, or a manual reason")
        return self


class Rule(_Strict):
    id: str
    title: str = Field(min_length=3, description="Short French title")
    statement_fr: str = Field(min_length=10)
    statement_en: str = Field(min_length=10)
    severity: Severity
    sources: list[Source] = Field(min_length=1)
    checks: CheckPoints
    params: dict[str, Param] = Field(default_factory=dict)
    applies_to: list[str] = Field(
        default_factory=lambda: ["linux"],
        description="Inventory groups whose hosts are held to the rule (host check point)",
    )
    enforcement: Enforcement = "mandatory"
    remediation: str = Field(default="", description="What to do when the rule fails")

    @field_validator("id")
    @classmethod
    def _id_format(cls, value: str) -> str:
        match = RULE_ID.match(value)
        if not match:
            raise ValueError(f"rule id {value!r} is not DOMAIN-NNN")
        if match["domain"] not in DOMAINS:
            raise ValueError(f"unknown domain {match['domain']!r} (known: {', '.join(DOMAINS)})")
        return value

    @property
    def domain(self) -> str:
        return self.id.split("-", 1)[0]

    @property
    def tag(self) -> str:
        return rule_tag(self.id)


class DomainFile(_Strict):
    domain: str
    rules: list[Rule] = Field(min_length=1)


class CatalogMeta(_Strict):
    version: str = Field(pattern=r"^\d+\.\d+\.\d+$")
    title: str
    roles: list[str] = Field(default_factory=list, description="Roles a check point may name")


class SettingsWaiver(_Strict):
    """Why a critical rule is lowered (advisory or disabled), who accepted it, until when."""

    justification: Annotated[str, AfterValidator(check_justification)]
    approver: Annotated[str, AfterValidator(check_approver)]
    expires: dt.date

    @field_validator("expires", mode="before")
    @classmethod
    def _iso_date(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return dt.date.fromisoformat(value)
            except ValueError:
                raise ValueError(f"expected a date YYYY-MM-DD (UTC), got {value[:30]!r}") from None
        raise ValueError("expected a date YYYY-MM-DD (UTC)")

    @field_validator("expires")
    @classmethod
    def _current_and_bounded(cls, value: dt.date) -> dt.date:
        today = dt.datetime.now(dt.UTC).date()
        if value < today:
            raise ValueError(f"expired on {value.isoformat()}: renew the approval or restore the rule")
        return check_expiry_bound(value, today)


class RuleSettings(_Strict):
    enforcement: Enforcement | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    waiver: SettingsWaiver | None = Field(default=None, description="Needed to lower a critical rule")


class GhtSettings(_Strict):
    """The GHT's one settings file: parameter and enforcement overrides, never new rules."""

    ght: Text = Field(default="GHT", description="Name of the GHT, printed in reports")
    rules: dict[str, RuleSettings] = Field(default_factory=dict)


@dataclass(frozen=True)
class EffectiveRule:
    """A catalog rule with the GHT settings applied."""

    rule: Rule
    enforcement: str
    params: Mapping[str, Any]

    @property
    def id(self) -> str:
        return self.rule.id

    @property
    def severity(self) -> str:
        return self.rule.severity


def _pydantic_error(error: ValidationError, file: Path, rules_raw: list[Any] | None) -> ConfigError:
    """Turn the first pydantic error into ``file: rule ID: key: message``."""
    first = error.errors()[0]
    loc = list(first["loc"])
    where_parts: list[str] = []
    if rules_raw is not None and len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int):
        raw = rules_raw[loc[1]] if loc[1] < len(rules_raw) else {}
        rule_id = raw.get("id") if isinstance(raw, dict) else None
        where_parts.append(f"rule {rule_id or '#' + str(loc[1] + 1)}")
        loc = loc[2:]
    key = ".".join(str(p) for p in loc)
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "missing":
        message = "missing key"
    elif first["type"] == "extra_forbidden":
        message = "unknown key"
    if key:
        where_parts.append(f"key {key}")
    return ConfigError(message, file=file, where=", ".join(where_parts) or None)


def load_yaml(path: Path) -> Any:
    """Read YAML through the project's one loading path (limits, no implicit dates, one-line errors)."""
    return yamlio.load_yaml(path)


@dataclass
class Catalog:
    """All rules, loaded and validated, with the GHT settings applied."""

    meta: CatalogMeta
    rules: dict[str, Rule]
    files: dict[str, Path]
    settings: GhtSettings = field(default_factory=GhtSettings)
    settings_path: Path | None = None

    def __iter__(self) -> Iterator[Rule]:
        return iter(self.rules.values())

    def __len__(self) -> int:
        return len(self.rules)

    def get(self, rule_id: str) -> Rule:
        try:
            return self.rules[rule_id.upper()]
        except KeyError:
            raise ConfigError(f"unknown rule {rule_id!r}") from None

    @cached_property
    def effective(self) -> dict[str, EffectiveRule]:
        out: dict[str, EffectiveRule] = {}
        for rule in self.rules.values():
            override = self.settings.rules.get(rule.id, RuleSettings())
            params = {name: p.default for name, p in rule.params.items()}
            params.update(override.params)
            out[rule.id] = EffectiveRule(rule, override.enforcement or rule.enforcement, params)
        return out

    def param(self, rule_id: str, name: str) -> Any:
        """The effective value of one rule parameter (catalog default, or the GHT's override)."""
        effective = self.effective.get(rule_id)
        if effective is None or name not in effective.params:
            raise ConfigError(f"catalog has no parameter {name!r} on rule {rule_id}")
        return effective.params[name]

    def enforcement(self, rule_id: str) -> str:
        return self.effective[rule_id].enforcement

    def by_domain(self) -> dict[str, list[Rule]]:
        grouped: dict[str, list[Rule]] = {d: [] for d in DOMAINS}
        for rule in self.rules.values():
            grouped[rule.domain].append(rule)
        return grouped

    def with_check(self, point: Literal["iac", "enforce", "host"]) -> list[Rule]:
        return [r for r in self.rules.values() if getattr(r.checks, point)]


def _load_domain_file(path: Path) -> list[Rule]:
    raw = load_yaml(path)
    if not isinstance(raw, dict):
        raise ConfigError("expected a mapping with 'domain' and 'rules'", file=path)
    rules_raw = raw.get("rules") if isinstance(raw.get("rules"), list) else None
    try:
        parsed = DomainFile.model_validate(raw)
    except ValidationError as exc:
        raise _pydantic_error(exc, path, rules_raw) from None
    if parsed.domain not in DOMAINS:
        raise ConfigError(f"unknown domain {parsed.domain!r}", file=path, where="key domain")
    for rule in parsed.rules:
        if rule.domain != parsed.domain:
            raise ConfigError(
                f"rule of domain {rule.domain} in the {parsed.domain} file", file=path, where=f"rule {rule.id}"
            )
    return parsed.rules


def _validate_settings(settings: GhtSettings, rules: Mapping[str, Rule], path: Path) -> None:
    for rule_id, override in settings.rules.items():
        rule = rules.get(rule_id)
        if rule is None:
            raise ConfigError("unknown rule (a GHT adapts rules, it does not add them)", file=path,
                              where=f"rule {str(rule_id)[:40]}")
        lowered = override.enforcement is not None and override.enforcement != "mandatory"
        if rule.severity == "critical" and lowered and override.waiver is None:
            raise ConfigError(f"rule {rule_id} is critical: making it {override.enforcement} needs a waiver of its "
                              "own (waiver: {justification, approver, expires})", file=path,
                              where=f"rule {rule_id}, key enforcement")
        for name, value in override.params.items():
            param = rule.params.get(name)
            if param is None:
                raise ConfigError("unknown parameter", file=path, where=f"rule {rule_id}, key params.{name}")
            problem = param.problem(value, name)
            if problem:
                raise ConfigError(problem, file=path, where=f"rule {rule_id}, key params.{name}")


def load_settings(path: Path | None) -> GhtSettings:
    if path is None or not path.exists():
        return GhtSettings()
    raw = load_yaml(path) or {}
    if not isinstance(raw, dict):
        raise ConfigError("expected a mapping", file=path)
    try:
        return GhtSettings.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = [str(p) for p in first["loc"]]
        where = None
        if len(loc) >= 2 and loc[0] == "rules":
            where = f"rule {loc[1]}" + (f", key {'.'.join(loc[2:])}" if loc[2:] else "")
        elif loc:
            where = f"key {'.'.join(loc)}"
        message = "unknown key" if first["type"] == "extra_forbidden" else first["msg"]
        raise ConfigError(message, file=path, where=where) from None


def load_catalog(
    directory: Path | None = None,
    settings_path: Path | None = None,
    *,
    use_settings: bool = True,
    known_roles: Iterable[str] | None = None,
) -> Catalog:
    """Load and validate every domain file of the catalog, then apply the GHT settings.

    ``known_roles`` (default: the roles declared in ``_meta.yaml``) is what an ``enforce`` check
    point may name; naming anything else is an error.
    """
    directory = directory or paths.catalog_dir()
    if not directory.is_dir():
        raise ConfigError("catalog directory not found", file=directory)
    meta_path = directory / "_meta.yaml"
    meta_raw = load_yaml(meta_path)
    try:
        meta = CatalogMeta.model_validate(meta_raw)
    except ValidationError as exc:
        raise _pydantic_error(exc, meta_path, None) from None
    roles = set(known_roles if known_roles is not None else meta.roles)

    rules: dict[str, Rule] = {}
    files: dict[str, Path] = {}
    domain_files = sorted(p for p in directory.glob("*.yaml") if p.name != "_meta.yaml")
    if not domain_files:
        raise ConfigError("no domain file (NET.yaml, CMP.yaml, ...)", file=directory)
    for path in domain_files:
        for rule in _load_domain_file(path):
            if rule.id in rules:
                raise ConfigError(f"duplicated rule id (first in {files[rule.id].name})", file=path,
                                  where=f"rule {rule.id}, key id")
            for role in rule.checks.enforce:
                if role not in roles:
                    raise ConfigError(f"names role {role!r}, which does not exist", file=path,
                                      where=f"rule {rule.id}, key checks.enforce")
            rules[rule.id] = rule
            files[rule.id] = path

    settings_file = settings_path if settings_path is not None else (paths.settings_file() if use_settings else None)
    settings = load_settings(settings_file) if use_settings else GhtSettings()
    if use_settings and settings_file is not None and settings_file.exists():
        _validate_settings(settings, rules, settings_file)
    ordered = dict(sorted(rules.items(), key=lambda kv: (list(DOMAINS).index(kv[1].domain), kv[0])))
    return Catalog(meta=meta, rules=ordered, files=files, settings=settings,
                   settings_path=settings_file if use_settings else None)


_DEFAULT: Catalog | None = None


def default_catalog() -> Catalog:
    """The project's catalog with the project's GHT settings, loaded once per process."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = load_catalog()
    return _DEFAULT
