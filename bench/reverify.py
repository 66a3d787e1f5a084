"""Benchmark of the hosts' re-verification (PSSI LOG-009) on the running, hardened lab.

For every Linux host, in sequence (as the timers would rarely overlap on one hypervisor): one run of
``ght-reverify.service`` (gather, compare, sign, ship), its wall time seen from the controller, the
size of the signed message, then the time until the collector holds it (rsyslog over TLS), and
``socle reverify`` over a copy of the collector's storage.

    socle lab up && socle harden --inventory inventories/lab && .venv/bin/python bench/reverify.py
"""

from __future__ import annotations

import base64
import json
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from running_lab import SOCLE, lab_inventory

from ght_socle.conform.inventory import load_inventory
from ght_socle.paths import state_dir

STORAGE = "/var/log/remote"


def ssh(inventory: Path, host: str, command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ssh", "-F", str(inventory / "ssh_config"), "-o", "BatchMode=yes", host,
                           f"sudo -n sh -c {shlex.quote(command)}"], capture_output=True, text=True, check=False)


def group(inventory: Path, name: str) -> list[str]:
    # The inventory's values are tagged !unsafe (trust boundary): read it with the library's loader.
    return sorted(host for host, entry in load_inventory(inventory).hosts.items() if name in entry.groups)


def main() -> int:
    inventory = lab_inventory()
    collector = group(inventory, "log_collector")[0]
    for host in group(inventory, "linux"):
        started = time.perf_counter()
        run = ssh(inventory, host,
                  "systemctl start ght-reverify.service && cat /var/lib/ght-reverify/last-summary.json")
        seconds = time.perf_counter() - started
        if run.returncode != 0:
            print(f"{host:12} ght-reverify failed ({run.returncode}): {run.stderr.strip()[-200:]}")
            continue
        summary = json.loads(run.stdout)
        arrived = None
        if host == collector:  # the collector keeps its own logs (LOG-003): nothing to deliver
            print(f"{host:12} run {seconds:6.1f} s  status {summary['status']:5}  message {len(summary['line']):5} B  "
                  "kept in the collector's own journal", flush=True)
            continue
        while arrived is None and time.perf_counter() - started < seconds + 120:
            # The signature is new at every run (ECDSA): it names this summary and no earlier one.
            signature = summary["line"].split(" sig=", 1)[1].split(" ", 1)[0][:40]
            seen = ssh(inventory, collector, f"grep -c -F {shlex.quote(signature)} {STORAGE}/{host}/*.log")
            if any(line.rsplit(":", 1)[-1].strip() not in ("", "0") for line in seen.stdout.splitlines()):
                arrived = time.perf_counter() - started - seconds
            else:
                time.sleep(1)
        delivery = f"{arrived:5.1f} s" if arrived is not None else "not within 120 s"
        print(f"{host:12} run {seconds:6.1f} s  status {summary['status']:5}  message {len(summary['line']):5} B  "
              f"on the collector {delivery} later", flush=True)
    archive = ssh(inventory, collector, f"tar -C {STORAGE} -cf - . | base64 -w0")
    with tempfile.TemporaryDirectory(prefix="bench-reverify-") as scratch:
        subprocess.run(["tar", "-C", scratch, "-xf", "-"], input=base64.b64decode(archive.stdout), check=True)
        ca = state_dir() / "pki" / inventory.name / "ca.crt"  # the lab PKI socle harden created
        started = time.perf_counter()
        read = subprocess.run([*SOCLE, "reverify", "--logs", scratch, "--ca", str(ca)], capture_output=True,
                              text=True, check=False)
        print(f"socle reverify over the collector's copy: {time.perf_counter() - started:.1f} s, "
              f"exit {read.returncode}")
        print(read.stdout.rstrip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
