"""Bounded-time fuzzing of the loaders (Hypothesis): whatever bytes a catalog file, a settings file,
a waivers file or a stack configuration holds, loading it returns data or raises the one-line
:class:`~ght_socle.errors.ConfigError`; never another exception, never a traceback.
"""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ght_socle.catalog import load_catalog
from ght_socle.config import load_stack_config
from ght_socle.errors import ConfigError
from ght_socle.plan import load_project
from ght_socle.plan import load_stack_config as read_stack_file
from ght_socle.policy.waivers import load_waivers
from ght_socle.trust.yamlio import parse_yaml

ROOT = Path(__file__).resolve().parents[2]
FUZZ = settings(max_examples=40, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

# Text that looks like YAML more often than random text would: indicators, anchors, tags, dates.
YAML_PIECES = st.sampled_from([
    "\n", "  ", "- ", ": ", "&a ", "*a", "!!python/object:os.system ", "!unsafe ", "{", "}", "[", "]", ",", "'",
    '"', "#", "|", ">", "2027-02-30", "0x1F", "~", "null", "yes", "1e400", "\x00", "\ud800", "é", "%YAML 1.1\n",
    "---\n", "...\n", "<<: *a\n", "rules:", "id: NET-001", "params:", "default:", "waivers:", "expires: ",
])
YAMLISH = st.lists(st.one_of(YAML_PIECES, st.text(max_size=12)), max_size=40).map("".join)


@FUZZ
@given(text=YAMLISH)
def test_yaml_parser_returns_data_or_one_line_error(text: str) -> None:
    try:
        parse_yaml(text, source="fuzz.yaml")
    except ConfigError as exc:
        assert "\n" not in str(exc) and str(exc).startswith("fuzz.yaml")


@pytest.fixture(scope="module")
def catalog_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("catalog")
    shutil.copytree(ROOT / "policies" / "catalog", directory / "catalog")
    return directory / "catalog"


@FUZZ
@given(data=st.data())
def test_catalog_loader_survives_any_domain_file(catalog_copy: Path, data: st.DataObject) -> None:
    original = (ROOT / "policies" / "catalog" / "NET.yaml").read_bytes()
    position = data.draw(st.integers(0, len(original)))
    insert = data.draw(st.one_of(YAMLISH.map(lambda t: t.encode("utf-8", "surrogatepass")), st.binary(max_size=16)))
    cut = data.draw(st.integers(0, 40))
    (catalog_copy / "NET.yaml").write_bytes(original[:position] + insert + original[position + cut:])
    try:
        load_catalog(catalog_copy, use_settings=False)
    except ConfigError as exc:
        assert "\n" not in str(exc) and "NET.yaml" in str(exc)


SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12), st.floats(allow_nan=True),
                    st.text(max_size=30), YAMLISH, st.dates().map(str))
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                      st.dictionaries(st.text(max_size=10), inner, max_size=4)),
                      max_leaves=12)


@FUZZ
@given(data=st.data())
def test_settings_loader_survives_any_override(tmp_path: Path, data: st.DataObject) -> None:
    rule = data.draw(st.sampled_from(["NET-003", "OSH-008", "LOG-005", "ADM-003", "NOPE-1", "NET-004"]))
    body = {"rules": {rule: {"params": data.draw(st.dictionaries(
        st.sampled_from(["public_ingress_ports", "session_timeout_seconds", "retention_days_min", "x"]),
        VALUES, max_size=2)), "enforcement": data.draw(st.sampled_from(["mandatory", "disabled", "advisory", 3]))}}}
    path = tmp_path / "ght-settings.yaml"
    path.write_text(json.dumps(body))
    try:
        load_catalog(settings_path=path)
    except ConfigError as exc:
        assert "\n" not in str(exc) and str(path) in str(exc)


@FUZZ
@given(entry=st.dictionaries(st.sampled_from(["rule", "stack", "resource", "justification", "approver", "expires",
                                              "policy", "other"]), VALUES, max_size=7))
def test_waivers_loader_survives_any_entry(tmp_path: Path, entry: dict[str, Any]) -> None:
    from ght_socle.catalog import default_catalog

    path = tmp_path / "waivers.yaml"
    path.write_text(json.dumps({"waivers": [entry]}))
    try:
        load_waivers(path, default_catalog())
    except ConfigError as exc:
        assert "\n" not in str(exc) and str(path) in str(exc)


_LAB = read_stack_file(load_project(), "lab")
FIELDS = [*sorted(key for key in _LAB.parsed if key.startswith("ght-socle:")), "openstack:region", "ght-socle:x"]


@FUZZ
@given(data=st.data())
def test_stack_config_loader_survives_any_value(data: st.DataObject) -> None:
    parsed = copy.deepcopy(_LAB.parsed)
    key = data.draw(st.sampled_from(FIELDS))
    parsed[key] = data.draw(VALUES)
    raw = {k: v if isinstance(v, str) else json.dumps(v) for k, v in parsed.items()}
    try:
        load_stack_config(raw, _LAB.secret_keys, "Pulumi.lab.yaml")
    except ConfigError as exc:
        assert "\n" not in str(exc) and "Pulumi.lab.yaml" in str(exc)
