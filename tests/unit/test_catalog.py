"""The project's PSSI catalog, the GHT settings, and ``socle pssi`` on good and broken catalogs.

Broken catalogs are the real catalog copied to a temporary project with exactly one thing
altered, so each test proves that one kind of mistake is caught with one line naming the file,
the rule and the key (exit status 2), and nothing else breaks the load.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from ght_socle import paths
from ght_socle.catalog import DOMAINS, Catalog, load_catalog
from ght_socle.cli import main

PROJECT_POLICIES = paths.policies_dir()

# Parameters other parts of the project read by name (policies, roles, conformance tests).
REQUIRED_PARAMS: dict[str, dict[str, str]] = {
    "NET-003": {"public_ingress_zones": "list[str]", "public_ingress_ports": "list[int]"},
    "NET-004": {"admin_ports": "list[str]"},
    "ADM-001": {"admin_cidrs": "list[cidr]"},
    "NET-008": {
        "ike_versions": "list[str]",
        "encryption_algorithms": "list[str]",
        "auth_algorithms": "list[str]",
        "pfs_groups": "list[str]",
    },
    "CMP-001": {"allowed_images": "list[str]"},
    "CMP-003": {"mandatory_metadata": "list[str]"},
    "STO-001": {"encrypted_volume_types": "list[str]"},
    "LOC-001": {"allowed_regions": "list[str]", "allowed_auth_url_suffixes": "list[str]"},
    "OSH-002": {"sysctl": "dict"},
    "OSH-003": {"mount_options": "dict"},
    "OSH-004": {"allowed_listening": "dict"},
    "OSH-007": {"setuid_allowlist": "list[str]"},
    "OSH-008": {"session_timeout_seconds": "int", "umask": "str"},
    "ADM-003": {"allow_groups": "list[str]", "max_auth_tries": "int"},
    "ADM-004": {"kex_algorithms": "list[str]", "ciphers": "list[str]", "macs": "list[str]"},
    "ADM-006": {"sudo_group": "str", "nopasswd_allowed": "list[str]"},
    "LOG-001": {"min_ntp_sources": "int"},
    "LOG-003": {"collector_port": "int"},
    "BCK-002": {"min_retention_days": "int", "offsite_required": "bool"},
    "UPD-002": {"unattended_upgrades_origins": "list[str]"},
}

INVENTORY_GROUPS = {
    "linux",
    "linux_servers",
    "linux_workstations",
    "bastion",
    "log_collector",
    "backup_server",
    "renforce",
    "dpi_app",
}
POLICY_NAME = re.compile(r"^[a-z]{3}(-[a-z0-9]+)+$")


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


@pytest.fixture
def temp_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the project's policies in a throw-away project root (no roles/ directory)."""
    shutil.copytree(PROJECT_POLICIES, tmp_path / "policies")
    (tmp_path / "Pulumi.yaml").write_text("name: ght-socle-test\nruntime: python\n", encoding="utf-8")
    monkeypatch.setenv("SOCLE_ROOT", str(tmp_path))
    monkeypatch.delenv("SOCLE_SETTINGS", raising=False)
    return tmp_path


def run_socle(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# --- the project's catalog -------------------------------------------------------------------


def test_project_catalog_covers_every_domain(catalog: Catalog) -> None:
    assert len(catalog) >= 60
    by_domain = catalog.by_domain()
    assert set(by_domain) == set(DOMAINS)
    empty = [domain for domain, rules in by_domain.items() if not rules]
    assert empty == []


def test_every_rule_is_sourced_and_remediable(catalog: Catalog) -> None:
    for rule in catalog:
        assert rule.sources, rule.id
        assert rule.remediation.strip(), rule.id
        assert rule.title != rule.statement_fr, rule.id


def test_required_parameters_exist_with_their_type(catalog: Catalog) -> None:
    for rule_id, params in REQUIRED_PARAMS.items():
        rule = catalog.get(rule_id)
        for name, kind in params.items():
            assert name in rule.params, f"{rule_id} lacks parameter {name}"
            assert rule.params[name].type == kind, f"{rule_id}.{name} is {rule.params[name].type}"


def test_check_points_follow_the_conventions(catalog: Catalog) -> None:
    owner_of_policy: dict[str, str] = {}
    for rule in catalog:
        for policy in rule.checks.iac:
            assert POLICY_NAME.match(policy), f"{rule.id}: {policy} is not lower-kebab"
            assert policy.startswith(rule.domain.lower() + "-"), f"{rule.id}: {policy} lacks the domain prefix"
            assert policy not in owner_of_policy, f"{policy} is declared by {owner_of_policy.get(policy)} and {rule.id}"
            owner_of_policy[policy] = rule.id
        assert set(rule.checks.enforce) <= set(catalog.meta.roles), rule.id
        assert set(rule.applies_to) <= INVENTORY_GROUPS, rule.id
    assert 30 <= len(owner_of_policy) <= 40


def test_windows_rules_are_enforced_by_the_windows_role_only(catalog: Catalog) -> None:
    for rule in catalog:
        if "windows_workstation" in rule.checks.enforce:
            assert rule.domain == "WKS", rule.id
            assert not rule.checks.host, f"{rule.id}: the conformance lab has no Windows host"
            assert rule.checks.manual, rule.id


def test_ght_settings_override_a_parameter_and_an_enforcement(catalog: Catalog) -> None:
    defaults = load_catalog(use_settings=False)
    assert defaults.param("NET-003", "public_ingress_ports") == [443]
    assert catalog.param("NET-003", "public_ingress_ports") == [443, 8443]
    assert defaults.enforcement("WKS-006") == "mandatory"
    assert catalog.enforcement("WKS-006") == "advisory"
    # Parameters the GHT does not override keep the catalog's default.
    assert catalog.param("NET-004", "admin_ports") == defaults.param("NET-004", "admin_ports")


# --- socle pssi on the project's catalog -----------------------------------------------------


def test_pssi_list_text_and_json(catalog: Catalog, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_socle(["pssi", "list"], capsys)
    assert code == 0
    assert "NET-004" in out and f"{len(catalog)} rules" in out

    code, out, _ = run_socle(["pssi", "list", "--domain", "LOC", "--format", "json"], capsys)
    assert code == 0
    rows = json.loads(out)
    assert [row["rule_id"] for row in rows] == [r.id for r in catalog if r.domain == "LOC"]
    assert all(row["domain"] == "LOC" for row in rows)


def test_pssi_show_text_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_socle(["pssi", "show", "NET-004"], capsys)
    assert code == 0
    assert "NET-004" in out and "admin_ports" in out and "net-admin-ports-from-admin-only" in out

    code, out, _ = run_socle(["pssi", "show", "net-004", "--format", "json"], capsys)
    assert code == 0
    data = json.loads(out)
    assert data["id"] == "NET-004"
    assert data["tag"] == "pssi_net_004"
    assert data["effective_params"]["admin_ports"] == ["22", "3389", "5985-5986", "5900-5999", "623"]
    assert data["checks"]["enforce"] == ["host_firewall"]


def test_pssi_show_unknown_rule_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_socle(["pssi", "show", "NET-999"], capsys)
    assert code == 2
    assert out == ""
    assert len(err.strip().splitlines()) == 1 and "NET-999" in err


def test_pssi_coverage_json(catalog: Catalog, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_socle(["pssi", "coverage", "--format", "json"], capsys)
    assert code == 0
    rows = json.loads(out)
    assert [row["rule_id"] for row in rows] == [r.id for r in catalog]
    by_id = {row["rule_id"]: row for row in rows}
    for key in ("rule_id", "domain", "severity", "iac", "enforce", "host", "manual"):
        assert all(key in row for row in rows), key
    assert by_id["NET-004"]["iac"] == ["net-admin-ports-from-admin-only"]
    assert by_id["NET-004"]["enforce"] == ["host_firewall:pssi_net_004"]
    assert by_id["NET-004"]["host"] is True
    assert by_id["LOC-005"]["manual"]


def test_pssi_validate_accepts_the_project(temp_project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_socle(["pssi", "validate", str(temp_project / "policies" / "catalog")], capsys)
    assert code == 0, err
    assert out.startswith("ok: ")
    code, out, err = run_socle(["pssi", "validate", str(temp_project / "policies" / "ght-settings.yaml")], capsys)
    assert code == 0, err


# --- socle pssi validate on broken catalogs and settings -------------------------------------


def _edit_yaml(path: Path, change: Callable[[Any], None]) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")


def _rule(data: dict[str, Any], rule_id: str) -> dict[str, Any]:
    return next(r for r in data["rules"] if r["id"] == rule_id)


def _duplicate_id(data: dict[str, Any]) -> None:
    _rule(data, "NET-002")["id"] = "NET-001"


def _unknown_domain(data: dict[str, Any]) -> None:
    _rule(data, "NET-004")["id"] = "XYZ-004"


def _missing_statement(data: dict[str, Any]) -> None:
    del _rule(data, "NET-004")["statement_fr"]


def _wrong_param_type(data: dict[str, Any]) -> None:
    _rule(data, "NET-004")["params"]["admin_ports"]["default"] = 22


def _unknown_role(data: dict[str, Any]) -> None:
    _rule(data, "NET-004")["checks"]["enforce"] = ["firewalld"]


# (how to break NET.yaml, rule the error must name, key the error must name)
BROKEN_CATALOGS = {
    "duplicated-id": (_duplicate_id, "NET-001", "key id"),
    "unknown-domain": (_unknown_domain, "XYZ-004", "key id"),
    "missing-statement": (_missing_statement, "NET-004", "key statement_fr"),
    "wrong-param-type": (_wrong_param_type, "NET-004", "key params.admin_ports"),
    "unknown-role": (_unknown_role, "NET-004", "key checks.enforce"),
}


def _assert_one_line(err: str, *fragments: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], f"{fragment!r} not in {lines[0]!r}"


@pytest.mark.parametrize("kind", list(BROKEN_CATALOGS))
def test_validate_rejects_a_broken_catalog(kind: str, temp_project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    change, rule_id, key = BROKEN_CATALOGS[kind]
    catalog_dir = temp_project / "policies" / "catalog"
    net_file = catalog_dir / "NET.yaml"
    _edit_yaml(net_file, change)
    code, out, err = run_socle(["pssi", "validate", str(catalog_dir)], capsys)
    assert code == 2
    assert out == ""
    _assert_one_line(err, str(net_file), f"rule {rule_id}", key)


def test_validate_rejects_broken_yaml(temp_project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    catalog_dir = temp_project / "policies" / "catalog"
    net_file = catalog_dir / "NET.yaml"
    text = net_file.read_text(encoding="utf-8")
    broken = text.replace("  - id: NET-004\n", "  - id: NET-004\n    title: [unclosed\n", 1)
    assert broken != text
    net_file.write_text(broken, encoding="utf-8")
    code, out, err = run_socle(["pssi", "validate", str(catalog_dir)], capsys)
    assert code == 2
    assert out == ""
    _assert_one_line(err, str(net_file), "broken YAML", "line ")


def _unknown_settings_key(data: dict[str, Any]) -> None:
    data["rules"]["NET-003"]["enforcment"] = "advisory"


def _wrong_override_type(data: dict[str, Any]) -> None:
    data["rules"]["NET-003"]["params"]["public_ingress_ports"] = "443"


def _unknown_parameter(data: dict[str, Any]) -> None:
    data["rules"]["NET-003"]["params"]["public_ports"] = [443]


def _unknown_rule(data: dict[str, Any]) -> None:
    data["rules"]["NET-999"] = {"enforcement": "advisory"}


BROKEN_SETTINGS = {
    "unknown-key": (_unknown_settings_key, "NET-003", "key enforcment"),
    "wrong-override-type": (_wrong_override_type, "NET-003", "key params.public_ingress_ports"),
    "unknown-parameter": (_unknown_parameter, "NET-003", "key params.public_ports"),
    "unknown-rule": (_unknown_rule, "NET-999", "unknown rule"),
}


@pytest.mark.parametrize("kind", list(BROKEN_SETTINGS))
def test_validate_rejects_broken_settings(kind: str, temp_project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    change, rule_id, key = BROKEN_SETTINGS[kind]
    settings_file = temp_project / "policies" / "ght-settings.yaml"
    _edit_yaml(settings_file, change)
    code, out, err = run_socle(["pssi", "validate", str(settings_file)], capsys)
    assert code == 2
    assert out == ""
    _assert_one_line(err, str(settings_file), f"rule {rule_id}", key)


def test_broken_settings_stop_every_pssi_command(temp_project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings_file = temp_project / "policies" / "ght-settings.yaml"
    _edit_yaml(settings_file, _wrong_override_type)
    code, out, err = run_socle(["pssi", "list"], capsys)
    assert code == 2
    assert out == ""
    _assert_one_line(err, str(settings_file), "rule NET-003", "key params.public_ingress_ports")
