"""`socle conform` input handling (before any host is contacted) and the suites' collection."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ght_socle.catalog import default_catalog
from ght_socle.conform.collect import host_rule_ids
from ght_socle.conform.inventory import load_inventory
from ght_socle.errors import ConfigError

HOSTS = """\
all:
  vars: {ght_admin_cidrs: [10.40.1.0/24]}
  hosts:
    app-01: {ght_role: dpi_app}
    wks-01: {}
  children:
    linux:
      children:
        linux_servers:
          hosts: {app-01: {}}
        linux_workstations:
          hosts: {wks-01: {}}
"""


@pytest.fixture
def inventory(tmp_path: Path) -> Path:
    (tmp_path / "hosts.yml").write_text(HOSTS, encoding="utf-8")
    (tmp_path / "ssh_config").write_text("Host app-01\n  HostName 192.0.2.1\n", encoding="utf-8")
    return tmp_path


def socle_conform(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ght_socle.cli", "conform", *args], capture_output=True, text=True,
                          check=False, timeout=120)


def test_inventory_groups_are_nested_and_limit_takes_hosts_groups_and_patterns(inventory: Path) -> None:
    loaded = load_inventory(inventory)
    assert {"all", "linux", "linux_servers"} <= loaded.hosts["app-01"].groups
    assert "linux_servers" not in loaded.hosts["wks-01"].groups
    assert loaded.select(None) == ["app-01", "wks-01"]
    assert loaded.select("linux_workstations") == ["wks-01"]
    assert loaded.select("app-*,wks-01") == ["app-01", "wks-01"]
    assert loaded.host_vars("app-01")["ght_admin_cidrs"] == ["10.40.1.0/24"]
    with pytest.raises(ConfigError, match="--limit 'db-\\*' matches no host"):
        loaded.select("db-*")


@pytest.mark.parametrize(("extra", "message"), [
    (("--limit", "nothing"), "hosts.yml: --limit 'nothing' matches no host or group"),
    (("--diff", "/nonexistent/previous.json"), "/nonexistent/previous.json: file not found"),
    (("--workers", "0"), "--workers must be at least 1"),
])
def test_bad_input_exits_2_with_one_line(inventory: Path, extra: tuple[str, ...], message: str) -> None:
    completed = socle_conform("--inventory", str(inventory), *extra)
    assert completed.returncode == 2
    assert message in completed.stderr
    assert len(completed.stderr.strip().splitlines()) == 1, completed.stderr


def test_malformed_waivers_exit_2_naming_file_entry_and_key(inventory: Path) -> None:
    (inventory / "waivers.yaml").write_text(
        "waivers:\n  - id: W-9\n    hosts: app-01\n    rule: OSH-002\n    justification: legacy device needs it\n"
        "    approver: RSSI\n    expires: 2027-13-01\n", encoding="utf-8")
    completed = socle_conform("--inventory", str(inventory))
    assert completed.returncode == 2
    assert completed.stderr.strip() == (f"socle: error: {inventory / 'waivers.yaml'}: waiver #1 (W-9), key expires: "
                                        "expected a date YYYY-MM-DD (UTC), got '2027-13-01'"), completed.stderr


def test_missing_inventory_exits_2(tmp_path: Path) -> None:
    completed = socle_conform("--inventory", str(tmp_path / "nowhere"))
    assert completed.returncode == 2 and "inventory not found" in completed.stderr


def test_collected_suites_cover_every_host_checked_rule() -> None:
    expected = {rule.id for rule in default_catalog().with_check("host")}
    assert host_rule_ids() == expected
