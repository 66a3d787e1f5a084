"""`socle pssi coverage --strict` trusts what is implemented, not what the catalog claims."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from ght_socle import paths
from ght_socle.cli import main

FAKE_RULE = {
    "id": "NET-099",
    "title": "Règle témoin aux points de contrôle inexistants",
    "statement_fr": "Cette règle témoin déclare des points de contrôle qui n'existent pas.",
    "statement_en": "A fixture rule whose check points do not exist.",
    "severity": "low",
    "sources": [{"ref": "ANSSI guide d'hygiène v2", "clause": "mesure 19"}],
    "checks": {"iac": ["net-does-not-exist"], "enforce": ["baseline"], "host": True},
}


def _catalog_with_fake_rule(tmp_path: Path) -> Path:
    catalog = tmp_path / "catalog"
    shutil.copytree(paths.catalog_dir(), catalog)
    net = yaml.safe_load((catalog / "NET.yaml").read_text(encoding="utf-8"))
    net["rules"].append(FAKE_RULE)
    (catalog / "NET.yaml").write_text(yaml.safe_dump(net, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return catalog


def _coverage(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[dict[str, object]]]:
    code = main(["pssi", *args, "coverage", "--strict", "--format", "json"])
    return code, json.loads(capsys.readouterr().out)


def test_project_catalog_has_no_gap(capsys: pytest.CaptureFixture[str]) -> None:
    code, rows = _coverage(capsys)
    gaps = {row["rule_id"]: row["gaps"] for row in rows if row["gaps"]}
    assert gaps == {}
    assert code == 0


def test_a_claimed_but_missing_check_point_fails_strict(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, rows = _coverage(capsys, "--catalog", str(_catalog_with_fake_rule(tmp_path)))
    assert code == 1
    fake = next(row for row in rows if row["rule_id"] == "NET-099")
    gaps = " | ".join(fake["gaps"])  # type: ignore[arg-type]
    assert "net-does-not-exist is not in the policy registry" in gaps
    assert "role baseline has no task tagged pssi_net_099" in gaps
    assert "pssi('NET-099')" in gaps
    # Only the fixture rule is a gap: the real rules stay covered.
    assert [row["rule_id"] for row in rows if row["gaps"]] == ["NET-099"]


def test_coverage_json_lists_every_rule_with_its_check_points(capsys: pytest.CaptureFixture[str]) -> None:
    main(["pssi", "coverage", "--format", "json"])
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) >= 60
    assert {row["domain"] for row in rows} == {"NET", "CMP", "STO", "BCK", "LOG", "IAM", "ADM", "OSH", "WKS", "UPD",
                                                "LOC"}
    for row in rows:
        assert {"rule_id", "domain", "severity", "iac", "enforce", "host", "manual", "sources"} <= row.keys()
        assert row["sources"]
