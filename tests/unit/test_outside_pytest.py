"""Plain pytest / testinfra runs of the conformance suites, as ops who do not use socle run them.

The conformance plugin is a ``pytest11`` entry point of the installed package: no ``pytest_plugins``
in a conftest, so ``pytest tests ...`` from the repository root collects; and the plugin stays idle in
sessions that do not run the suites. Every run here is a real pytest in a child process; only
collection happens, so no host is contacted.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from stack_plans import plan_of

from ght_socle import paths
from ght_socle.conform.collect import host_rule_ids
from ght_socle.inventory import write_inventory

ROOT = paths.project_root()


def run_pytest(*args: str, cwd: Path = ROOT, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args], cwd=cwd,
                          capture_output=True, text=True, check=False, timeout=500,
                          env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1", **(env or {})))


@pytest.fixture(scope="module")
def lab_inventory(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_inventory(plan_of("lab").outputs, tmp_path_factory.mktemp("inventory"))


def test_the_plugin_is_an_installed_entry_point_not_a_conftest_import() -> None:
    conftest = (ROOT / "tests" / "conformance" / "conftest.py").read_text(encoding="utf-8")
    assert "pytest_plugins =" not in conftest
    listing = run_pytest("--trace-config", "--co", "-q", str(ROOT / "tests" / "unit" / "test_catalog.py"))
    assert listing.returncode == 0, listing.stdout + listing.stderr
    assert "ght_socle.conform.plugin" in listing.stdout


def test_plain_testinfra_invocation_collects_every_pssi_test_per_host(lab_inventory: Path) -> None:
    hosts = ["app-01", "bastion-01"]
    result = run_pytest("tests/conformance", "--collect-only", "-q", f"--ansible-inventory={lab_inventory}",
                        "--hosts=" + ",".join(f"ssh://{host}" for host in hosts))
    assert result.returncode == 0, result.stdout + result.stderr
    collected = [line for line in result.stdout.splitlines() if line.startswith("tests/conformance/")]
    rules = host_rule_ids()
    assert rules, "the suites verify no rule"
    for host in hosts:
        per_host = [line for line in collected if line.endswith(f"[ssh://{host}]")]
        # At least one test per rule with a host check point (a few rules have several tests).
        assert len(per_host) >= len(rules), (host, len(per_host), len(rules))


def test_the_whole_tests_tree_collects_with_the_conformance_options(lab_inventory: Path) -> None:
    # The pitfall this guards against: pytest refuses pytest_plugins in a conftest that is not at the
    # rootdir as soon as the session starts above tests/conformance.
    result = run_pytest("tests", "--collect-only", "-q", f"--ansible-inventory={lab_inventory}",
                        "--hosts=ssh://app-01")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "tests/conformance/test_osh.py::" in result.stdout
    assert "tests/unit/test_catalog.py::" in result.stdout


def test_the_plugin_is_idle_in_sessions_without_the_suites(tmp_path: Path) -> None:
    (tmp_path / "test_plain.py").write_text("def test_plain():\n    assert 1 + 1 == 2\n", encoding="utf-8")
    # A settings file that is not YAML: loading the catalog would fail, so a passing session shows
    # the plugin loaded nothing.
    settings = tmp_path / "broken-settings.yaml"
    settings.write_text("rules: [\n", encoding="utf-8")
    broken = {"SOCLE_SETTINGS": str(settings)}
    plain = run_pytest(str(tmp_path / "test_plain.py"), "-q", cwd=tmp_path, env=broken)
    assert plain.returncode == 0, plain.stdout + plain.stderr
    assert "PSSI" not in plain.stdout and "pssi" not in plain.stdout.lower()
    assert "1 passed" in plain.stdout
    # The same settings make a session with the suites fail: the check above is not vacuous.
    suites = run_pytest("tests/conformance", "--collect-only", "-q", env=broken)
    assert suites.returncode != 0
    assert "broken-settings.yaml" in suites.stdout + suites.stderr
