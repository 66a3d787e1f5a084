"""Benchmark of `socle harden` on the running lab: converge times and the Lynis hardening index.

Figures printed (and written to <state>/bench/harden.json):
  * Lynis hardening index of one VM before the roles (`lynis audit system --quick`, Debian's lynis);
  * wall time of the first converge of the whole default fleet, with its per-host stats;
  * wall time of the second, idempotent run (and whether it changed anything);
  * Lynis hardening index of the same VM after the roles.

Needs a running lab (`socle lab up`); a lab that was already hardened gives a "first converge" that
is really a re-run, and the script says so. Usage: python bench/harden.py [--host app-01] [--no-mitogen]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from lynis_audit import audit

from ght_socle import paths
from ght_socle.harden import run_harden


def ssh(inventory: Path, host: str, command: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ssh", "-F", str(inventory / "ssh_config"), "-o", "BatchMode=yes", host,
                           f"sudo -n sh -c {json.dumps(command)}"], capture_output=True, text=True, timeout=timeout,
                          check=False, stdin=subprocess.DEVNULL)


def already_hardened(inventory: Path, host: str) -> bool:
    return ssh(inventory, host, "test -f /etc/sysctl.d/99-zz-ght-hardening.conf").returncode == 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--inventory", type=Path, default=paths.inventories_dir() / "lab")
    parser.add_argument("--host", default="app-01", help="VM audited with Lynis before and after")
    parser.add_argument("--no-mitogen", action="store_true")
    parser.add_argument("--no-lynis", action="store_true",
                        help="skip the Lynis audits (each takes 10+ minutes under full emulation on 2 cores)")
    args = parser.parse_args()
    if not (args.inventory / "hosts.yml").is_file():
        print(f"no lab inventory at {args.inventory}: start the lab with `socle lab up`", file=sys.stderr)
        return 2

    figures: dict[str, object] = {"host_audited": args.host, "mitogen": not args.no_mitogen}
    fresh = not already_hardened(args.inventory, args.host)
    figures["fresh_lab"] = fresh
    if not args.no_lynis:
        print(f"lab {'fresh' if fresh else 'already hardened'}; Lynis on {args.host} before the roles...",
              file=sys.stderr)
        before = audit(args.inventory / "ssh_config", args.host)
        print(f"  before: {before.summary()}", file=sys.stderr, flush=True)
        figures["lynis_before"] = before.as_dict()

    first = run_harden(args.inventory, use_mitogen=not args.no_mitogen)
    figures["first_converge_s"] = round(first.duration_s, 1)
    figures["first_converge_ok"] = first.succeeded
    figures["first_converge_hosts"] = {h: s.as_dict() for h, s in first.hosts.items()}
    second = run_harden(args.inventory, use_mitogen=not args.no_mitogen)
    figures["second_run_s"] = round(second.duration_s, 1)
    figures["second_run_changed"] = {h: s.changed for h, s in second.hosts.items()}
    figures["strategy"] = second.strategy

    if not args.no_lynis:
        after = audit(args.inventory / "ssh_config", args.host)
        figures["lynis_after"] = after.as_dict()
    out = paths.state_dir() / "bench" / "harden.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2), encoding="utf-8")

    hosts = len([h for h in first.hosts if h != "localhost"])
    print(f"fleet: {hosts} hosts, strategy {second.strategy}, {'fresh' if fresh else 're-run of a hardened'} lab")
    print(f"first converge : {figures['first_converge_s']} s ({'ok' if first.succeeded else 'FAILED'})")
    print(f"second run     : {figures['second_run_s']} s, changed per host {figures['second_run_changed']}")
    if not args.no_lynis:
        print(f"Lynis on {args.host} before the roles: {before.summary()}")
        print(f"Lynis on {args.host} after the roles : {after.summary()}")
    print(f"figures written to {out}")
    return 0 if first.succeeded and second.succeeded else 1


if __name__ == "__main__":
    sys.exit(main())
