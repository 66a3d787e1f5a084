"""``socle check``: run a stack (or any Pulumi Python program) offline and evaluate the PSSI policies.

Exit 0 when no mandatory policy is violated (advisory and waived findings are still printed),
1 on any non-waived mandatory violation, 2 on bad input (no Pulumi.yaml, a failing program, bad
configuration, a malformed or expired waiver).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ght_socle.catalog import default_catalog
from ght_socle.errors import ConfigError
from ght_socle.output import add_format_option, progress, stack_name
from ght_socle.plan_model import Plan
from ght_socle.policy.engine import CheckResult, check_plan
from ght_socle.policy.registry import all_policies
from ght_socle.policy.report import SourceFiles, render_json, render_junit, render_sarif, render_text, summary_line
from ght_socle.policy.waivers import apply_waivers, default_waivers_file, load_waivers
from ght_socle.trust.files import explicit_file, write_text

FORMATS = ("text", "json", "junit", "sarif")
DEFAULT_STACK = "lab"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "check", help="evaluate the PSSI policies on a stack or a Pulumi program, offline",
        description="Run a Pulumi Python program under the mock engine (no cloud, no credentials) and evaluate "
                    "every PSSI policy on what it declares. Findings are grouped by rule with a fix hint.",
        epilog="Exit codes: 0 no mandatory violation, 1 mandatory violations, 2 bad input.")
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--stack", type=stack_name, metavar="NAME",
                        help=f"a stack of this project (stacks/config/Pulumi.NAME.yaml; default {DEFAULT_STACK})")
    target.add_argument("--program", type=Path, metavar="DIR", help="any Pulumi Python program directory")
    parser.add_argument("--config", type=Path, metavar="FILE",
                        help="stack configuration file (default: Pulumi.<stack>.yaml of the program)")
    parser.add_argument("--waivers", type=Path, metavar="FILE",
                        help="waivers file (default: policies/waivers.yaml when it exists)")
    add_format_option(parser, FORMATS)
    parser.add_argument("--output", type=Path, metavar="FILE", help="write the report to FILE instead of stdout")
    parser.set_defaults(handler=run)


def _plan(args: argparse.Namespace) -> tuple[Plan, SourceFiles]:
    # Imported here: the Pulumi SDK is heavy and only this path needs it.
    from ght_socle.plan import config_file_stack, load_project, run_plan

    if args.config is not None and not args.config.is_file():
        raise ConfigError("stack configuration file not found", file=args.config)
    program_dir: Path | None = args.program
    if program_dir is not None and not program_dir.is_dir():
        raise ConfigError("not a directory", file=program_dir)
    stack = args.stack if args.program is None else None
    if args.config is not None:
        # The stack is the one the file belongs to, never the default: waivers are per stack.
        stack = config_file_stack(args.config, stack)
    elif stack is None and program_dir is None:
        stack = DEFAULT_STACK
    project = load_project(program_dir)
    if stack is not None and args.config is None and not project.stack_config_file(stack).is_file():
        raise ConfigError(f"stack {stack!r} has no configuration", file=project.stack_config_file(stack))
    what = f"program {program_dir}" if program_dir is not None else f"stack {stack}"
    progress(f"socle check: planning {what} offline (mock engine)...")
    plan = run_plan(stack=stack, program_dir=program_dir, config_file=args.config)
    config_file = args.config or project.stack_config_file(plan.stack)
    files = [f for f in (config_file, project.main_file) if f.is_file()]
    return plan, SourceFiles(files=files, base=Path.cwd())


def run(args: argparse.Namespace) -> int:
    catalog = default_catalog()
    policies = all_policies()
    waivers_file: Path | None = args.waivers
    if waivers_file is not None and not waivers_file.is_file():
        raise ConfigError("waivers file not found", file=waivers_file)
    if waivers_file is None and default_waivers_file().is_file():
        waivers_file = default_waivers_file()
    # Waivers are validated before the (slower) plan: an expired one fails fast.
    waivers = load_waivers(waivers_file, catalog, policy_names=[p.name for p in policies]) if waivers_file else []
    plan, sources = _plan(args)
    progress(f"socle check: evaluating {len(policies)} policies on {len(plan.resources)} resources "
             f"of {plan.project}/{plan.stack}...")
    result: CheckResult = check_plan(plan, catalog, policies=policies)
    apply_waivers(result.findings, waivers, plan.stack)
    rendered = {
        "text": lambda: render_text(result),
        "json": lambda: render_json(result),
        "junit": lambda: render_junit(result),
        "sarif": lambda: render_sarif(result, sources, policies),
    }[args.format]()
    if args.output is not None:
        report, directory = explicit_file(args.output)
        write_text(report, rendered, within=directory)
        progress(f"socle check: {args.format} report written to {args.output}")
        print(summary_line(result), file=sys.stderr if args.format != "text" else sys.stdout)
    else:
        sys.stdout.write(rendered)
        if args.format != "text":
            progress(summary_line(result))
    return result.exit_code

