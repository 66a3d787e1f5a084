"""Benchmark of a real reboot of the running lab (QEMU VMs, TCG on the project's runners).

On the lab as it is (harden it first to measure a hardened fleet):

1. ``socle conform`` on the whole fleet, hosts in parallel (wall time, statuses);
2. ``socle lab reboot``: every VM at once, ``systemctl reboot`` in the guest, until SSH answers with a
   new boot id (per-VM reboot-to-SSH time, and the wall time of the whole reboot);
3. ``socle conform`` on the fleet again, and the rules whose status changed across the reboot.

    socle lab up && socle harden --inventory inventories/lab && .venv/bin/python bench/reboot.py
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import time
from pathlib import Path

from running_lab import SOCLE, lab_inventory


def conform(inventory: Path, output: Path) -> tuple[float, dict[tuple[str, str], str]]:
    started = time.perf_counter()
    completed = subprocess.run([*SOCLE, "conform", "--inventory", str(inventory), "--format", "json",
                                "--output", str(output)], capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if not output.exists():
        raise SystemExit(f"socle conform wrote no report (exit {completed.returncode}): {completed.stderr[-500:]}")
    rows = json.loads(output.read_text(encoding="utf-8"))
    return seconds, {(row["host"], row["rule_id"]): row["status"] for row in rows}


def counts(statuses: dict[tuple[str, str], str]) -> str:
    tally: dict[str, int] = {}
    for status in statuses.values():
        tally[status] = tally.get(status, 0) + 1
    return ", ".join(f"{status} {count}" for status, count in sorted(tally.items()))


def main() -> int:
    inventory = lab_inventory()
    with tempfile.TemporaryDirectory(prefix="bench-reboot-") as scratch:
        before_seconds, before = conform(inventory, Path(scratch) / "before.json")
        print(f"conform before the reboot: {before_seconds:6.1f} s  ({counts(before)})", flush=True)
        started = time.perf_counter()
        reboot = subprocess.run([*SOCLE, "lab", "reboot", "--format", "json"], capture_output=True, text=True,
                                check=False)
        reboot_seconds = time.perf_counter() - started
        if reboot.returncode != 0:
            raise SystemExit(f"socle lab reboot failed ({reboot.returncode}): {reboot.stderr[-1000:]}")
        for entry in json.loads(reboot.stdout)["rebooted"]:
            print(f"reboot to SSH {entry['name']:<12} {entry['seconds_to_ssh']:6.1f} s")
        print(f"reboot of the fleet (wall):  {reboot_seconds:6.1f} s")
        after_seconds, after = conform(inventory, Path(scratch) / "after.json")
        print(f"conform after the reboot:  {after_seconds:6.1f} s  ({counts(after)})")
    changed = sorted(key for key in before if after.get(key) != before[key])
    for host, rule in changed:
        print(f"changed across the reboot: {host} {rule} {before[(host, rule)]} -> {after.get((host, rule))}")
    if not changed:
        print("no rule changed status across the reboot")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
