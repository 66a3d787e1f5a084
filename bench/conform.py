"""Benchmark of ``socle conform`` on the running lab (real QEMU VMs under TCG).

In one run, on the same lab:

1. the full conformance suite on one host (wall time, remote commands per host): one warm-up run,
   then the median of ``--runs`` runs (the first run after a boot competes with the guests' own
   first-boot work and varies by several seconds);
2. the full suite on the whole fleet, hosts in parallel;
3. the naive testinfra pattern on the same host: one remote command per check (ssh backend with
   connection sharing, its best case), covering the same ground (sysctl keys, file modes,
   packages, services, sshd options, mount options, all read from the catalog parameters);
4. ``lynis audit system --quick`` on the same host (Debian's lynis, baked in the lab image).

Targets: one host under 15 s under TCG and at least 5x faster than the naive pattern.

    socle lab up && .venv/bin/python bench/conform.py [--host app-01] [--skip-lynis]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lynis_audit import audit
from running_lab import lab_inventory

from ght_socle.catalog import Catalog, default_catalog
from ght_socle.conform.inventory import Inventory, load_inventory
from ght_socle.conform.runner import RunOptions, build_report, run_suites

TARGET_ONE_HOST_SECONDS = 15.0
TARGET_SPEEDUP = 5.0


def run_conform(catalog: Catalog, inventory: Inventory, hosts: list[str]) -> dict[str, object]:
    started = time.perf_counter()
    document, _ = run_suites(inventory, RunOptions(hosts=hosts, workers=len(hosts)))
    seconds = time.perf_counter() - started
    report = build_report(catalog, inventory, hosts, document, seconds, None, str(inventory.directory))
    return {"seconds": seconds, "counts": report.counts(),
            "remote_commands": {h: info.remote_commands for h, info in report.hosts.items()},
            # on the VM (the gather script) and seen from the controller (SSH through the bastion included)
            "gather_seconds": {h: info.gather_seconds for h, info in report.hosts.items()},
            "round_trip_seconds": {h: info.round_trip_seconds for h, info in report.hosts.items()},
            "checks": sum(1 for r in report.results if r.status != "not-applicable")}


def naive_checks(catalog: Catalog) -> list[tuple[str, str]]:
    """(kind, argument) pairs: what the suite verifies, one testinfra call (one command) each."""
    checks: list[tuple[str, str]] = []
    checks += [("sysctl", key) for key in sorted(catalog.param("OSH-002", "sysctl"))]
    checks += [("file_mode", path) for path in sorted(catalog.param("OSH-009", "sensitive_file_modes"))]
    checks += [("package_absent", name) for name in sorted(catalog.param("ADM-007", "forbidden_packages"))]
    checks += [("package_absent", name) for name in sorted(catalog.param("OSH-005", "forbidden_server_packages"))]
    checks += [("service", name) for name in ("ssh", "auditd", "chrony", "rsyslog", "nftables", "apparmor",
                                                 "unattended-upgrades", "cron")]
    checks += [("sshd", key) for key in ("permitrootlogin", "passwordauthentication", "maxauthtries",
                                         "logingracetime", "clientaliveinterval", "clientalivecountmax",
                                         "allowgroups", "ciphers", "macs", "kexalgorithms", "x11forwarding",
                                         "permitemptypasswords")]
    checks += [("mount", target) for target in sorted(catalog.param("OSH-003", "mount_options"))]
    return checks


NAIVE_TEST = '''
import pytest

CHECKS = {checks!r}


@pytest.mark.parametrize(("kind", "arg"), CHECKS)
def test_naive(host, kind, arg):
    if kind == "sysctl":
        assert host.sysctl(arg) is not None
    elif kind == "file_mode":
        assert host.file(arg).mode & 0o007 == 0
    elif kind == "package_absent":
        assert not host.package(arg).is_installed
    elif kind == "service":
        assert host.service(arg).is_running
    elif kind == "sshd":
        assert host.run("sshd -T | grep -i '^%s '" % arg).rc == 0
    elif kind == "mount":
        assert "nodev" in host.mount_point(arg).options
'''


def run_naive(inventory: Inventory, host: str, checks: list[tuple[str, str]]) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="bench-naive-") as tmp:
        test_file = Path(tmp) / "test_naive.py"
        test_file.write_text(NAIVE_TEST.format(checks=checks), encoding="utf-8")
        control = Path(tmp) / "cm-%C"
        argv = [sys.executable, "-m", "pytest", str(test_file), "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
                "--rootdir", tmp, "-o", "addopts=", f"--hosts=ssh://{host}", f"--ssh-config={inventory.ssh_config}",
                "--sudo", f"--ssh-extra-args=-o ControlPath={control}"]
        started = time.perf_counter()
        completed = subprocess.run(argv, capture_output=True, text=True, check=False, cwd=tmp)
        seconds = time.perf_counter() - started
        subprocess.run(["ssh", "-F", str(inventory.ssh_config), "-o", f"ControlPath={control}", "-O", "exit", host],
                       capture_output=True, check=False)
    tail = completed.stdout.strip().splitlines()[-1:] or [completed.stderr.strip()[-200:]]
    if completed.returncode not in (0, 1):
        raise SystemExit(f"naive testinfra run failed (pytest exit {completed.returncode}): {tail[0]}")
    return {"seconds": seconds, "checks": len(checks), "outcome": tail[0]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--inventory", type=Path, help="inventory directory (default: the running lab's)")
    parser.add_argument("--host", help="host of the one-host runs (default: the first dpi_app host)")
    parser.add_argument("--skip-lynis", action="store_true")
    parser.add_argument("--runs", type=int, default=3, help="one-host runs after the warm-up (median reported)")
    args = parser.parse_args(argv)

    catalog = default_catalog()
    inventory = load_inventory(args.inventory or lab_inventory())
    hosts = sorted(inventory.hosts)
    host = args.host or next((h for h in hosts if "dpi_app" in inventory.hosts[h].groups), hosts[0])
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")

    print(f"socle conform, one host ({host}) ...", file=sys.stderr, flush=True)
    run_conform(catalog, inventory, [host])  # warm-up, not counted
    runs = [run_conform(catalog, inventory, [host]) for _ in range(args.runs)]
    times = [float(r["seconds"]) for r in runs]  # type: ignore[arg-type]
    median = statistics.median_low(times)  # a measured run, not an average of two
    one = runs[times.index(median)]
    print(f"  one-host runs: {', '.join(f'{t:.1f}' for t in times)} s (median {median:.1f} s)",
          file=sys.stderr, flush=True)
    # Each figure is printed as soon as it is measured (lynis alone can take minutes under TCG).
    print(f"  one host: {float(one['seconds']):.1f} s, remote commands {one['remote_commands']}, "  # type: ignore[arg-type]
          f"gather on the VM {one['gather_seconds']} s, SSH round trip {one['round_trip_seconds']} s",
          file=sys.stderr, flush=True)
    print(f"socle conform, fleet ({len(hosts)} hosts) ...", file=sys.stderr, flush=True)
    fleet = run_conform(catalog, inventory, hosts)
    checks = naive_checks(catalog)
    print(f"naive testinfra, {len(checks)} checks on {host} ...", file=sys.stderr, flush=True)
    naive = run_naive(inventory, host, checks)
    print(f"  naive: {float(naive['seconds']):.1f} s for {len(checks)} checks",  # type: ignore[arg-type]
          file=sys.stderr, flush=True)
    if not args.skip_lynis:
        print(f"lynis audit system --quick on {host} (many minutes under emulation) ...", file=sys.stderr, flush=True)
    lynis = None if args.skip_lynis else audit(inventory.ssh_config, host)

    one_seconds = float(one["seconds"])  # type: ignore[arg-type]
    naive_seconds = float(naive["seconds"])  # type: ignore[arg-type]
    speedup = naive_seconds / one_seconds
    print(f"\nsocle conform, one host ({host}): {one_seconds:.1f} s (median of {len(runs)}), "
          f"{one['checks']} applicable rule checks, remote commands {one['remote_commands']}, results {one['counts']}")
    print(f"socle conform, fleet of {len(hosts)}: {float(fleet['seconds']):.1f} s "  # type: ignore[arg-type]
          f"(remote commands per host {fleet['remote_commands']}), results {fleet['counts']}")
    print(f"naive testinfra (one remote command per check, ssh + ControlPath): {naive_seconds:.1f} s for "
          f"{naive['checks']} checks ({naive['outcome']})")
    if lynis is not None:
        print(f"lynis audit system --quick on {host}: {lynis.seconds:.1f} s, {lynis.seconds / one_seconds:.0f}x "
              f"the conformance suite ({lynis.summary()})")
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"controller load average at the end (1, 5, 15 min): {load} on {os.cpu_count()} CPU(s)")
    print(f"speed-up over naive: {speedup:.1f}x (target >= {TARGET_SPEEDUP:.0f}x); one host "
          f"{'within' if one_seconds < TARGET_ONE_HOST_SECONDS else 'OVER'} the {TARGET_ONE_HOST_SECONDS:.0f} s target")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
