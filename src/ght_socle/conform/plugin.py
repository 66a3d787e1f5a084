"""pytest plugin of the conformance suites: PSSI markers, per-host facts, one result per rule × host.

testinfra stays the transport and the host parametrisation (``--hosts``, ``--ansible-inventory``,
``--ssh-config``...); this plugin adds what testinfra lacks for a conformance report:

* ``@pytest.mark.pssi("OSH-002")`` ties a test to a catalog rule (severity, parameters, roles);
* hosts outside the rule's ``applies_to`` groups are skipped as ``not-applicable`` at collection,
  so no remote command is spent on them;
* the ``facts`` fixture gathers everything in one remote command per host, cached for the run
  and shared between xdist workers (``--dist loadgroup``: one group per host);
* each test's outcome becomes one result record (pass/fail/error/not-applicable) with evidence;
  records travel from the xdist workers to the controller in the reports' ``user_properties``
  and are written to ``--pssi-results``.

A test that fails with an ``AssertionError`` is a ``fail``; any other exception (a fact missing,
an unreachable host in setup, a bug in the check) is an ``error``: never a pass.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ght_socle.catalog import Catalog, default_catalog
from ght_socle.conform.facts import FactMissing, HostFacts, RuleFailed
from ght_socle.conform.gather import FactCache, GatherError, fact_request, remote_command
from ght_socle.conform.inventory import Inventory, load_inventory

RESULT_PROPERTY = "pssi_result"
NOT_APPLICABLE = "not-applicable: "
STATE_KEY = pytest.StashKey["PssiState"]()
RUN_DIR_KEY = pytest.StashKey[tuple[Path, bool]]()


@dataclass
class PssiState:
    catalog: Catalog
    inventory: Inventory | None
    cache: FactCache
    run_dir: Path
    results_file: Path | None
    records: list[dict[str, Any]] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class RuleContext:
    """The rule a test verifies, with the GHT's effective parameters (never re-typed in a test)."""

    rule_id: str
    catalog: Catalog
    host_groups: frozenset[str]
    host_vars: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    # The bastions' addresses when the host is not a bastion itself: administration reaches the
    # host from there (ADM-001), whichever of its zones the bastion routes through.
    bastion_addresses: tuple[str, ...] = ()

    def param(self, name: str, rule_id: str | None = None) -> Any:
        """A parameter of this rule (or of ``rule_id`` when two rules share a setting)."""
        return self.catalog.param(rule_id or self.rule_id, name)

    def inventory_list(self, var: str) -> list[str]:
        """A ``ght_*`` list fact of the deployment (admin CIDRs, NTP servers...) from the inventory."""
        value = self.host_vars.get(var) or []
        return [str(v) for v in value] if isinstance(value, list) else [str(value)]

    def param_for_groups(self, name: str) -> list[Any]:
        """Union of a ``{group: [values]}`` parameter over the groups the host belongs to."""
        by_group = self.param(name)
        values: list[Any] = []
        for group, items in sorted(by_group.items()):
            if group in self.host_groups:
                values.extend(v for v in items if v not in values)
        return values


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("pssi", "PSSI conformance (ght-socle)")
    group.addoption("--pssi-inventory", default=None,
                    help="inventory directory or hosts.yml giving each host's groups (default: --ansible-inventory)")
    group.addoption("--pssi-results", default=None, help="write the result records (JSON list) to this file")
    group.addoption("--pssi-collected", default=None,
                    help="write {node id: rule id} of the collected pssi tests to this file (with --collect-only)")
    group.addoption("--pssi-run-dir", default=None,
                    help="directory where the xdist workers share the gathered facts (default: a temporary one)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "pssi(rule_id): the PSSI rule a conformance test verifies")


# The plugin is installed as a pytest11 entry point, so it is loaded by every pytest session of the
# environment: nothing (catalog, inventory, run directory) is set up until a session really meets a
# test marked ``pssi`` or asks for one of the ``--pssi-*`` outputs.
def _run_dir(config: pytest.Config) -> tuple[Path, bool]:
    """The directory where the gathered facts are shared, and whether this process must remove it."""
    if RUN_DIR_KEY not in config.stash:
        worker_input: dict[str, Any] | None = getattr(config, "workerinput", None)
        given = (worker_input or {}).get("pssi_run_dir") or config.getoption("pssi_run_dir")
        run_dir = Path(given) if given else Path(tempfile.mkdtemp(prefix="socle-conform-"))
        config.stash[RUN_DIR_KEY] = (run_dir, given is None and worker_input is None)
    return config.stash[RUN_DIR_KEY]


def _state(config: pytest.Config) -> PssiState:
    if STATE_KEY not in config.stash:
        inventory_option = config.getoption("pssi_inventory") or config.getoption("ansible_inventory", None)
        run_dir, _ = _run_dir(config)
        results = config.getoption("pssi_results")
        config.stash[STATE_KEY] = PssiState(
            catalog=default_catalog(),
            inventory=load_inventory(inventory_option) if inventory_option else None,
            cache=FactCache(run_dir),
            run_dir=run_dir,
            results_file=Path(results) if results else None,
        )
    return config.stash[STATE_KEY]


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist: every worker uses the controller's run directory, so each host is gathered once."""
    node.workerinput["pssi_run_dir"] = str(_run_dir(node.config)[0])


def _rule_id(item: pytest.Item) -> str | None:
    marker = item.get_closest_marker("pssi")
    if marker is None:
        return None
    if len(marker.args) != 1 or not isinstance(marker.args[0], str):
        raise pytest.UsageError(f"{item.nodeid}: pytest.mark.pssi takes one rule id, e.g. pssi('OSH-002')")
    return str(marker.args[0]).upper()


def _host_name(item: pytest.Item) -> str | None:
    callspec = getattr(item, "callspec", None)
    host = callspec.params.get("_testinfra_host") if callspec else None
    return str(host.backend.get_hostname()) if host is not None else None


def _groups(state: PssiState, host: str) -> frozenset[str] | None:
    if state.inventory is None or host not in state.inventory.hosts:
        return None
    return state.inventory.hosts[host].groups


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        rule_id = _rule_id(item)
        host = _host_name(item) if rule_id is not None else None
        if rule_id is None or host is None:
            continue
        state = _state(config)
        # One xdist group per host: a worker gathers a host once and runs all its rules.
        item.add_marker(pytest.mark.xdist_group(host))
        rule = state.catalog.rules.get(rule_id)
        if rule is None:
            continue  # reported as an error by the pssi_rule fixture
        groups = _groups(state, host)
        if state.catalog.enforcement(rule_id) == "disabled":
            item.add_marker(pytest.mark.skip(reason=f"{NOT_APPLICABLE}rule disabled in the GHT settings"))
        elif groups is not None and not set(rule.applies_to) & groups:
            item.add_marker(pytest.mark.skip(
                reason=f"{NOT_APPLICABLE}{host} is in none of the groups {', '.join(rule.applies_to)}"))


def pytest_collection_finish(session: pytest.Session) -> None:
    target = session.config.getoption("pssi_collected")
    if target:
        collected = {item.nodeid: rule_id for item in session.items if (rule_id := _rule_id(item))}
        Path(target).write_text(json.dumps(collected, indent=1), encoding="utf-8")


@pytest.fixture
def pssi_rule(request: pytest.FixtureRequest) -> RuleContext:
    state = _state(request.config)
    rule_id = _rule_id(request.node)
    if rule_id is None:
        raise pytest.UsageError(f"{request.node.nodeid} uses pssi_rule without a pssi marker")
    if rule_id not in state.catalog.rules:
        raise FactMissing(f"rule {rule_id} is not in the PSSI catalog")
    host = _host_name(request.node) or "local"
    host_vars = state.inventory.host_vars(host) if state.inventory else {}
    groups = _groups(state, host) or frozenset({"all", "linux"})
    bastions = tuple(state.inventory.bastion_addresses()) if state.inventory and "bastion" not in groups else ()
    return RuleContext(rule_id, state.catalog, groups, host_vars, bastions)


@pytest.fixture
def facts(request: pytest.FixtureRequest, host: Any) -> HostFacts:
    """Every fact of the host, gathered by one remote command the first time any rule needs it."""
    state = _state(request.config)
    name = str(host.backend.get_hostname())
    command = remote_command(fact_request(state.catalog))

    def run(cmd: str) -> tuple[int, str, str]:
        result = host.run(cmd)
        # Bytes decoded here: testinfra's own decoding may run an extra remote command for the locale.
        return (result.rc, result.stdout_bytes.decode("utf-8", "replace"),
                result.stderr_bytes.decode("utf-8", "replace"))

    raw = state.cache.get(name, run, command)
    return HostFacts(name, _groups(state, name) or frozenset({"all", "linux"}), raw)


def _exception_record(excinfo: pytest.ExceptionInfo[BaseException]) -> tuple[str, str, list[str]]:
    exc = excinfo.value
    if isinstance(exc, RuleFailed):
        return "fail", str(exc), list(exc.problems)
    if isinstance(exc, AssertionError):
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else "assertion failed"
        return "fail", message, [str(exc).strip()]
    if isinstance(exc, GatherError | FactMissing):
        return "error", str(exc), [str(exc)]
    return "error", f"check could not run: {type(exc).__name__}: {exc}", [excinfo.exconly()]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    report: pytest.TestReport = yield
    rule_id = _rule_id(item)
    host = _host_name(item)
    if rule_id is None or host is None:
        return report
    status: str | None = None
    message, evidence = "", list[str]()
    if report.when == "setup" and report.skipped:
        reason = str(call.excinfo.value) if call.excinfo else ""
        reason = getattr(call.excinfo.value, "msg", reason) if call.excinfo else reason
        if reason.startswith(NOT_APPLICABLE):
            status, message = "not-applicable", reason.removeprefix(NOT_APPLICABLE)
        else:
            status, message = "error", f"skipped, so not verified: {reason}"
    elif report.failed and call.excinfo is not None:
        status, message, evidence = _exception_record(call.excinfo)
        if report.when != "call":
            status = "error"
    elif report.when == "call" and report.passed:
        status, message = "pass", "rule met"
    elif report.when == "call" and report.skipped:
        status, message = "error", "skipped during the check, so not verified"
    if status is not None:
        record = {"host": host, "rule_id": rule_id, "status": status, "message": message, "evidence": evidence,
                  "duration": round(report.duration, 3), "test": item.nodeid}
        report.user_properties.append((RESULT_PROPERTY, json.dumps(record)))
    return report


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    # Runs on the controller for every report, including those sent back by xdist workers.
    for name, value in report.user_properties:
        if name == RESULT_PROPERTY:
            _STATE_RECORDS.append(json.loads(str(value)))


# Records are kept module-level because pytest_runtest_logreport has no access to the config.
_STATE_RECORDS: list[dict[str, Any]] = []


def host_stats(run_dir: Path) -> dict[str, dict[str, Any]]:
    """Gathering figures per host read back from the shared cache (time, round trips, OS)."""
    stats: dict[str, dict[str, Any]] = {}
    for path in sorted(run_dir.glob("facts-*.json")):
        host = path.name.removeprefix("facts-").removesuffix(".json")
        raw = json.loads(path.read_text(encoding="utf-8"))
        os_release = (raw.get("system") or {}).get("os_release", {})
        stats[host] = {"reachable": True, "gather_seconds": raw.get("gather_seconds"),
                       "round_trip_seconds": raw.get("_controller", {}).get("round_trip_seconds"),
                       "os": os_release.get("PRETTY_NAME", "")}
    for path in sorted(run_dir.glob("facts-*.error")):
        host = path.name.removeprefix("facts-").removesuffix(".error")
        stats[host] = {"reachable": False, "error": path.read_text(encoding="utf-8")}
    return stats


def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    if getattr(config, "workerinput", None) is not None or not config.getoption("pssi_results"):
        return
    state = _state(config)
    if state.results_file is not None:
        from ght_socle.conform.gather import count_remote_commands

        hosts = host_stats(state.run_dir)
        for host, count in count_remote_commands(state.run_dir).items():
            hosts.setdefault(host, {})["remote_commands"] = count
        document = {"records": _STATE_RECORDS, "hosts": hosts,
                    "seconds": round(time.monotonic() - state.started, 3)}
        state.results_file.parent.mkdir(parents=True, exist_ok=True)
        state.results_file.write_text(json.dumps(document, indent=1), encoding="utf-8")


def pytest_unconfigure(config: pytest.Config) -> None:
    run_dir, owned = config.stash.get(RUN_DIR_KEY, (None, False))
    if run_dir is not None and owned:
        shutil.rmtree(run_dir, ignore_errors=True)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    """Plain pytest runs: one line per host with the rule statuses (``socle conform`` prints more)."""
    if not _STATE_RECORDS or config.getoption("pssi_results"):
        return
    by_host: dict[str, dict[str, list[str]]] = {}
    for record in _STATE_RECORDS:
        by_host.setdefault(record["host"], {}).setdefault(record["status"], []).append(record["rule_id"])
    terminalreporter.section("PSSI conformance")
    for host, statuses in sorted(by_host.items()):
        parts = [f"{status} {len(rules)}" for status, rules in sorted(statuses.items())]
        failing = sorted(statuses.get("fail", []) + statuses.get("error", []))
        terminalreporter.write_line(f"{host}: {', '.join(parts)}" + (f"  [{' '.join(failing)}]" if failing else ""))
