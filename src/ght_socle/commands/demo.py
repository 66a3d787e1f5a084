"""``socle demo``: the main job on the embedded default, the local lab, end to end.

plan + policy check of the ``lab`` stack -> lab VMs up -> hardening -> conformance -> HTML report.
Each step is the same ``socle`` command an operator would type, run as a child process so a step's
global state (Pulumi's mock engine, Ansible) never leaks into the next one.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from dataclasses import dataclass

from ght_socle import paths
from ght_socle.output import progress

EXIT_OK, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2


@dataclass(frozen=True)
class Step:
    title: str
    argv: tuple[str, ...]
    # A step whose findings (exit 1) do not stop the demo: conformance findings are the demo's output.
    findings_are_output: bool = False


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "demo",
        help="run the whole chain on the local lab (plan, check, lab up, harden, conform)",
        description="Plan and policy-check the lab stack, boot the lab VMs, harden them, verify "
                    "conformance and write the HTML report. Leaves the lab running (socle lab down stops it).",
    )
    parser.add_argument("--keep-going", action="store_true", help="continue after a failed step")
    parser.set_defaults(handler=run)


def _steps(inventory: str, report: str) -> list[Step]:
    return [
        Step("Offline plan of the lab stack", ("plan", "--stack", "lab")),
        Step("PSSI policy check of the lab stack", ("check", "--stack", "lab")),
        Step("Boot the lab VMs", ("lab", "up")),
        Step("Harden the fleet", ("harden", "--inventory", inventory)),
        Step("Verify conformance", ("conform", "--inventory", inventory, "--format", "html", "--output", report),
             findings_are_output=True),
    ]


def run(args: argparse.Namespace) -> int:
    inventory = str(paths.inventories_dir() / "lab")
    report = str(paths.state_dir() / "reports" / "demo-conformance.html")
    steps = _steps(inventory, report)
    started = time.monotonic()
    results: list[tuple[Step, int, float]] = []
    for number, step in enumerate(steps, 1):
        progress(f"\n=== [{number}/{len(steps)}] {step.title}: socle {' '.join(step.argv)}")
        t0 = time.monotonic()
        code = subprocess.call([sys.executable, "-m", "ght_socle.cli", *step.argv])
        results.append((step, code, time.monotonic() - t0))
        failed = code == EXIT_ERROR or (code == EXIT_FINDINGS and not step.findings_are_output)
        if failed and not args.keep_going:
            break
    print("\nDemo summary")
    for step, code, seconds in results:
        verdict = {EXIT_OK: "ok", EXIT_FINDINGS: "findings"}.get(code, "error")
        print(f"  {verdict:<8} {seconds:7.1f}s  {step.title}")
    print(f"  total {time.monotonic() - started:.0f}s")
    last_step, last_code, _ = results[-1]
    if last_step is steps[-1] and last_code in (EXIT_OK, EXIT_FINDINGS):
        print(f"\nConformance report: {report}")
        print("Next: open the report, then `socle lab ssh bastion-01` to look around, "
              "`socle lab down` to stop the VMs.")
        return last_code
    print(f"\nStopped at: {last_step.title}. Re-run that step alone to see its details: "
          f"socle {' '.join(last_step.argv)}")
    return last_code if last_code else EXIT_ERROR
