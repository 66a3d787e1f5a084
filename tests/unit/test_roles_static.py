"""Static checks of the hardening roles: traceability to the PSSI, documented variables, FQCN modules.

These read the role files as data (no Ansible run): every task names and tags its rule, every
default variable is documented in meta/argument_specs.yml and prefixed by its role, every rule
toggle is a catalog rule and is really used, and every rule whose `enforce` check point names a
role finds its tag there.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from ght_socle import paths
from ght_socle.catalog import default_catalog, rule_tag
from ght_socle.coverage import Implementations, rule_coverage
from ght_socle.roles_index import role_tags

ROLES_DIR = paths.roles_dir()
ROLES = sorted(p.name for p in ROLES_DIR.iterdir() if (p / "tasks").is_dir())
RULE_IN_NAME = re.compile(r"^((?:[A-Z]{3}-\d{3})(?:, [A-Z]{3}-\d{3})*) \| \S")
TOGGLE = re.compile(r"^(?P<role>[a-z_]+?)_pssi_(?P<domain>[a-z]{3})_(?P<num>\d{3})$")
# Task keywords that are not modules (so that what remains must be a fully qualified module name).
TASK_KEYWORDS = {
    "name", "when", "tags", "vars", "loop", "loop_control", "register", "notify", "become", "become_user",
    "changed_when", "failed_when", "check_mode", "no_log", "delegate_to", "run_once", "throttle", "args",
    "block", "rescue", "always", "ignore_errors", "listen", "environment", "until", "retries", "delay",
    "with_items", "diff", "any_errors_fatal",
}
# Configuration files whose reload could cut access or break a service: written with `validate`.
MUST_VALIDATE = ("sshd_config", "sudoers", "nftables.conf", "rsyslog", "chrony.conf", "sshd_backup_config",
                 "aide.conf")


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def walk_tasks(tasks: list[Any], inherited_tags: frozenset[str] = frozenset()) -> Iterator[tuple[dict[str, Any],
                                                                                              frozenset[str]]]:
    for task in tasks or []:
        if not isinstance(task, dict):
            continue
        tags = task.get("tags", [])
        scope = inherited_tags | frozenset([tags] if isinstance(tags, str) else tags)
        yield task, scope
        for key in ("block", "rescue", "always"):
            yield from walk_tasks(task.get(key) or [], scope)


def role_task_files(role: str) -> list[Path]:
    return sorted((ROLES_DIR / role / "tasks").rglob("*.yml"))


def imported_tags(role: str) -> dict[str, frozenset[str]]:
    """Tags given to each task file by the import_tasks that pulls it in (from tasks/main.yml)."""
    given: dict[str, frozenset[str]] = {}
    for task, scope in walk_tasks(load(ROLES_DIR / role / "tasks" / "main.yml")):
        target = task.get("ansible.builtin.import_tasks")
        if target:
            given[target] = scope
    return given


def all_tasks(role: str) -> Iterator[tuple[Path, dict[str, Any], frozenset[str]]]:
    given = imported_tags(role)
    for path in role_task_files(role):
        for task, scope in walk_tasks(load(path)):
            yield path, task, scope | given.get(path.name, frozenset())


def test_there_are_roles_for_every_enforce_check_point() -> None:
    named = {role for rule in default_catalog() for role in rule.checks.enforce}
    assert named <= set(ROLES), f"roles named by the catalog but missing: {sorted(named - set(ROLES))}"


@pytest.mark.parametrize("role", ROLES)
def test_role_layout(role: str) -> None:
    for relative in ("defaults/main.yml", "meta/main.yml", "meta/argument_specs.yml", "tasks/main.yml"):
        assert (ROLES_DIR / role / relative).is_file(), f"{role}: {relative} missing"
    meta = load(ROLES_DIR / role / "meta" / "main.yml")
    assert meta["dependencies"] == []
    assert meta["galaxy_info"]["platforms"], f"{role}: meta/main.yml lists no platform"


@pytest.mark.parametrize("role", ROLES)
def test_argument_specs_document_every_default(role: str) -> None:
    defaults = load(ROLES_DIR / role / "defaults" / "main.yml") or {}
    specs = load(ROLES_DIR / role / "meta" / "argument_specs.yml")["argument_specs"]
    options = specs["main"]["options"]
    assert set(defaults) == set(options), (
        f"{role}: undocumented {sorted(set(defaults) - set(options))}, stale {sorted(set(options) - set(defaults))}")
    for name, spec in options.items():
        assert spec.get("description"), f"{role}: {name} has no description"
        assert spec.get("type") in {"str", "bool", "int", "list", "dict", "raw", "path"}, f"{role}: {name} type"
        assert spec.get("default") == defaults[name], f"{role}: {name}: argument_specs default differs"


@pytest.mark.parametrize("role", ROLES)
def test_variables_are_prefixed_by_the_role(role: str) -> None:
    defaults = load(ROLES_DIR / role / "defaults" / "main.yml") or {}
    strays = [name for name in defaults if not name.startswith(role + "_")]
    assert not strays, f"{role}: variables without the {role}_ prefix: {strays}"


@pytest.mark.parametrize("role", ROLES)
def test_rule_toggles_name_catalog_rules_and_are_used(role: str) -> None:
    catalog = default_catalog()
    defaults = load(ROLES_DIR / role / "defaults" / "main.yml") or {}
    sources = "\n".join(p.read_text(encoding="utf-8") for p in (ROLES_DIR / role).rglob("*")
                        if p.is_file() and p.suffix in (".yml", ".j2") and "defaults" not in p.parts)
    toggles = [name for name in defaults if "_pssi_" in name]
    assert toggles, f"{role}: no rule toggle"
    for name in toggles:
        match = TOGGLE.match(name)
        assert match and match["role"] == role, f"{role}: toggle {name} is not <role>_pssi_<domain>_<nnn>"
        rule_id = f"{match['domain'].upper()}-{match['num']}"
        assert rule_id in catalog.rules, f"{role}: {name} names {rule_id}, which is not in the catalog"
        assert name in sources, f"{role}: toggle {name} is never used by the tasks or templates"


@pytest.mark.parametrize("role", ROLES)
def test_every_task_names_and_tags_its_rule(role: str) -> None:
    catalog = default_catalog()
    problems = []
    for path, task, tags in all_tasks(role):
        name = str(task.get("name", ""))
        match = RULE_IN_NAME.match(name)
        if not match:
            problems.append(f"{path.name}: task {name!r} does not start with 'RULE-ID | '")
            continue
        for rule_id in match.group(1).split(", "):
            if rule_id not in catalog.rules:
                problems.append(f"{path.name}: {name!r} names {rule_id}, not a catalog rule")
            elif not {rule_tag(rule_id)} & tags and "import_tasks" not in str(task):
                problems.append(f"{path.name}: {name!r} is not tagged {rule_tag(rule_id)}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("role", ROLES)
def test_modules_are_fully_qualified(role: str) -> None:
    files = role_task_files(role)
    handlers = ROLES_DIR / role / "handlers" / "main.yml"
    if handlers.is_file():
        files.append(handlers)
    problems = []
    for path in files:
        for task, _tags in walk_tasks(load(path)):
            if "block" in task:
                continue
            modules = [key for key in task if key not in TASK_KEYWORDS]
            if len(modules) != 1 or modules[0].count(".") < 2:
                problems.append(f"{path.name}: {task.get('name')!r} uses {modules}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("role", ROLES)
def test_risky_configuration_files_are_validated_before_use(role: str) -> None:
    problems = []
    for path, task, _tags in all_tasks(role):
        for module in ("ansible.builtin.template", "ansible.builtin.copy", "ansible.builtin.lineinfile"):
            args = task.get(module)
            if isinstance(args, dict):
                dest = str(args.get("dest") or args.get("path") or "")
                # The pre-flight renders a scratch candidate that a dedicated task tests.
                if any(marker in dest for marker in MUST_VALIDATE) and "validate" not in args:
                    problems.append(f"{path.name}: {task.get('name')!r} writes {dest} without validate")
    assert not problems, "\n".join(problems)


def test_catalog_enforce_check_points_find_their_tags() -> None:
    catalog = default_catalog()
    impl = Implementations(tags=role_tags(ROLES_DIR))
    gaps = [gap for rule in catalog for gap in rule_coverage(rule, impl).gaps if gap.startswith("role ")]
    assert not gaps, "\n".join(gaps)


def test_secret_tasks_are_no_log() -> None:
    """Tasks that create a secret on the host never print it."""
    offenders = []
    for role in ROLES:
        for path, task, _tags in all_tasks(role):
            if "block" in task:
                continue
            text = yaml.safe_dump(task)
            if re.search(r"repository\.pass|password_hash\(|/dev/urandom \| base64", text) and not task.get("no_log"):
                offenders.append(f"{role}/{path.name}: {task.get('name')}")
    assert not offenders, offenders
