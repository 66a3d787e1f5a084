"""Run the conformance suites on an inventory and turn the raw records into a :class:`RunReport`.

pytest runs in a child process (a fresh interpreter per run: testinfra and xdist keep global
caches) with the plugin's results file; hosts are spread over xdist workers, one group per host.
Every (host, rule) pair the catalog expects gets a result: a rule whose test was not collected
or did not report is an ``error``, never a silent pass.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from ght_socle import paths
from ght_socle.catalog import Catalog
from ght_socle.conform.collect import suites_dir
from ght_socle.conform.inventory import Inventory
from ght_socle.conform.results import CheckResult, HostInfo, RunReport, next_step
from ght_socle.conform.waivers import Waivers, apply_waivers
from ght_socle.errors import SocleError
from ght_socle.output import progress

# testinfra's ssh backend passes this as ConnectTimeout. Its default (10 s) is shorter than a
# handshake through the bastion on a loaded emulated lab; an unreachable host still fails fast
# (refused, no route) or after this many seconds (silently dropped packets).
CONNECT_TIMEOUT = 30


@dataclass
class RunOptions:
    hosts: list[str]
    workers: int | None = None
    suites: Path | None = None
    timeout: float = 900.0


def pytest_argv(inventory: Inventory, options: RunOptions, results: Path, run_dir: Path) -> list[str]:
    """The pytest command line: testinfra's ssh backend with the inventory's ssh_config as is."""
    workers = options.workers if options.workers is not None else min(len(options.hosts), 8)
    argv = [
        sys.executable, "-m", "pytest", str(options.suites or suites_dir()),
        "-p", "ght_socle.conform.plugin", "-p", "no:cacheprovider", "-q", "--no-header", "-rN",
        "--rootdir", str(paths.project_root()), "-o", "addopts=",
        f"--hosts={','.join(f'ssh://{h}?timeout={CONNECT_TIMEOUT}' for h in options.hosts)}",
        f"--ssh-config={inventory.ssh_config}",
        f"--pssi-inventory={inventory.directory}", f"--pssi-results={results}", f"--pssi-run-dir={run_dir}",
    ]
    if workers > 1:
        argv += ["-n", str(workers), "--dist", "loadgroup"]
    else:
        argv += ["-p", "no:xdist"]
    return argv


def run_suites(inventory: Inventory, options: RunOptions) -> tuple[dict[str, object], float]:
    if not inventory.ssh_config.exists():
        raise SocleError("ssh_config not found next to hosts.yml", file=inventory.ssh_config)
    with tempfile.TemporaryDirectory(prefix="socle-conform-") as tmp:
        results = Path(tmp) / "results.json"
        run_dir = Path(tmp) / "facts"
        run_dir.mkdir()
        argv = pytest_argv(inventory, options, results, run_dir)
        env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
        # The ssh and ansible tools of the venv must be found by testinfra.
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        progress(f"conform: {len(options.hosts)} host(s), one batched fact gathering each: "
                 f"{', '.join(options.hosts)}")
        started = time.monotonic()
        try:
            completed = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                       env=env, cwd=paths.project_root(), timeout=options.timeout, check=False)
        except subprocess.TimeoutExpired:
            raise SocleError(f"the conformance run took more than {options.timeout:.0f} s", where="conform") from None
        seconds = time.monotonic() - started
        # pytest exit codes 0/1 carry results; 2-5 mean it could not run the suites.
        if completed.returncode not in (0, 1) or not results.exists():
            tail = [line for line in completed.stdout.strip().splitlines() if line.strip()][-5:]
            for line in tail:
                progress(f"  pytest: {line}")
            raise SocleError(f"the conformance suites could not run (pytest exit {completed.returncode})",
                             where="conform")
        document: dict[str, object] = json.loads(results.read_text(encoding="utf-8"))
        return document, seconds


def build_report(catalog: Catalog, inventory: Inventory, hosts: list[str], document: dict[str, object],
                 seconds: float, waivers: Waivers | None, inventory_label: str) -> RunReport:
    records = document.get("records", [])
    host_stats = document.get("hosts", {})
    assert isinstance(records, list) and isinstance(host_stats, dict)
    by_key: dict[tuple[str, str], dict[str, object]] = {}
    rank = {"error": 0, "fail": 1, "pass": 2, "not-applicable": 3}
    for record in records:
        key = (str(record["host"]), str(record["rule_id"]))
        if key not in by_key or rank.get(str(record["status"]), 9) < rank.get(str(by_key[key]["status"]), 9):
            by_key[key] = record
    results: list[CheckResult] = []
    for host in hosts:
        groups = inventory.hosts[host].groups
        for rule in catalog.with_check("host"):
            record = by_key.get((host, rule.id))
            applies = bool(set(rule.applies_to) & groups) and catalog.enforcement(rule.id) != "disabled"
            if record is None:
                status = "error" if applies else "not-applicable"
                message = ("no conformance result: the rule's test was not collected or did not report"
                           if applies else f"{host} is in none of the groups {', '.join(rule.applies_to)}")
                record = {"status": status, "message": message, "evidence": [], "duration": 0.0, "test": ""}
            results.append(CheckResult(
                host=host, rule_id=rule.id, status=str(record["status"]), severity=rule.severity,
                message=str(record["message"]), evidence=[str(e) for e in record.get("evidence", [])],
                title=rule.title, remediation=rule.remediation,
                next_step=next_step(catalog, rule.id, host, inventory_label),
                enforcement=catalog.enforcement(rule.id), duration=float(record.get("duration", 0.0)),
                test=str(record.get("test", "")),
            ))
    unused = apply_waivers(results, waivers) if waivers else []
    infos = {}
    for host in hosts:
        stats = host_stats.get(host, {})
        infos[host] = HostInfo(
            name=host, groups=sorted(inventory.hosts[host].groups), reachable=bool(stats.get("reachable", True)),
            gather_seconds=stats.get("gather_seconds"), round_trip_seconds=stats.get("round_trip_seconds"),
            remote_commands=int(stats.get("remote_commands", 0)), os=str(stats.get("os", "")),
        )
    return RunReport(results=results, hosts=infos, catalog_version=catalog.meta.version, ght=catalog.settings.ght,
                     inventory=inventory_label, duration_seconds=seconds,
                     waivers_file=str(waivers.file) if waivers and waivers.file else None, unused_waivers=unused)
