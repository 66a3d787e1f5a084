"""Benchmark of ``socle check`` on a large synthetic GHT: 30 hospital sites, 500 virtual machines.

Reuses the synthetic stack configuration of ``bench/plan.py``, plans it offline with the project's
stack program, evaluates every PSSI policy and renders the SARIF report, as the pull-request check
does. Prints wall time, peak memory (ru_maxrss) and policy-evaluation time per 1000 resources.
Target on a 2-core machine: under 30 s in total.

    .venv/bin/python bench/check.py [--sites 30] [--vms 500]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

import yaml

from ght_socle.catalog import default_catalog
from ght_socle.plan import run_plan
from ght_socle.policy.engine import evaluate, stack_from_plan
from ght_socle.policy.registry import all_policies
from ght_socle.policy.report import SourceFiles, render_sarif

TARGET_SECONDS = 30.0
BENCH_DIR = Path(__file__).resolve().parent


def _bench_plan() -> ModuleType:
    """bench/plan.py, whose synthetic GHT generator this benchmark shares."""
    spec = importlib.util.spec_from_file_location("bench_plan", BENCH_DIR / "plan.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sites", type=int, default=30)
    parser.add_argument("--vms", type=int, default=500)
    args = parser.parse_args(argv)

    started, cpu_started = time.perf_counter(), time.process_time()
    catalog = default_catalog()
    policies = all_policies()
    config = _bench_plan().synthetic_config(args.sites, args.vms)
    with tempfile.TemporaryDirectory() as scratch:
        config_file = Path(scratch) / "Pulumi.bench.yaml"
        config_file.write_text(yaml.safe_dump(config, sort_keys=False))
        print(f"planning a synthetic GHT: {args.sites} sites, {args.vms} VMs ...", file=sys.stderr, flush=True)
        plan_started = time.perf_counter()
        plan = run_plan(stack="bench", config_file=config_file)
        plan_seconds = time.perf_counter() - plan_started

        print(f"evaluating {len(policies)} policies ...", file=sys.stderr, flush=True)
        eval_started = time.perf_counter()
        stack = stack_from_plan(plan)
        result = evaluate(stack, catalog, project=plan.project, stack_name=plan.stack, policies=policies)
        eval_seconds = time.perf_counter() - eval_started

        report_started = time.perf_counter()
        sarif = render_sarif(result, SourceFiles(files=[config_file]), policies)
        report_seconds = time.perf_counter() - report_started
    total = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB

    resources = len(plan.resources)
    instances = len(plan.of_type("openstack:compute/instance:Instance"))
    print(f"resources: {resources}  instances: {instances}  policies: {len(result.policies)}  "
          f"findings: {len(result.findings)} ({len(result.blocking)} mandatory)  SARIF: {len(sarif) // 1024} KiB")
    print(f"plan (mock engine): {plan_seconds:.1f} s")
    print(f"policy evaluation: {eval_seconds:.2f} s = {1000 * eval_seconds / max(resources, 1) * 1000:.0f} ms "
          "per 1000 resources")
    print(f"report (SARIF): {report_seconds:.2f} s")
    print(f"wall time: {total:.1f} s (target < {TARGET_SECONDS:.0f} s); CPU time {cpu:.1f} s "
          f"(load average {os.getloadavg()[0]:.1f}: other work on the machine stretches wall time)")
    print(f"peak memory (ru_maxrss): {peak_mb:.0f} MB")
    ok = total < TARGET_SECONDS
    print("within target" if ok else "OUTSIDE TARGET")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
