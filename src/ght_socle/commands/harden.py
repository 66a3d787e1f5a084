"""`socle harden`: apply the PSSI to the hosts of an inventory with the Ansible roles."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ght_socle.cli import EXIT_FINDINGS, EXIT_OK
from ght_socle.harden import DEFAULT_KEEP_ARTIFACTS, HardenResult, run_harden
from ght_socle.output import add_format_option, print_json, table


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "harden",
        help="apply the PSSI roles to an inventory (ansible-runner)",
        description="Run playbooks/site.yml against an inventory: the roles enforce the PSSI rules whose "
                    "`enforce` check point names them, with the catalog's parameters. Progress goes to stderr; "
                    "the per-host summary to stdout.",
        epilog="Exit codes: 0 every host converged, 1 a host failed or was unreachable, 2 bad input.",
    )
    parser.add_argument("--inventory", "-i", required=True, type=Path,
                        help="inventory directory (inventories/<env>) or its hosts.yml")
    parser.add_argument("--limit", "-l", help="only these hosts or groups (Ansible pattern)")
    parser.add_argument("--check", action="store_true", help="dry run: report what would change")
    parser.add_argument("--diff", action="store_true", help="show the changes made (or, with --check, planned)")
    parser.add_argument("--tags", "-t", default="",
                        help="comma-separated tags, e.g. pssi_adm_003,pssi_osh_002 (rule tags: socle pssi coverage)")
    parser.add_argument("-e", "--extra-vars", action="append", default=[], metavar="KEY=VALUE",
                        help="override a role variable for this run (repeatable)")
    parser.add_argument("--keep-artifacts", type=int, default=DEFAULT_KEEP_ARTIFACTS,
                        help=f"runner artifact directories kept (default {DEFAULT_KEEP_ARTIFACTS})")
    parser.add_argument("--no-mitogen", action="store_true", help="use Ansible's default strategy")
    add_format_option(parser)
    parser.set_defaults(handler=run)


def _extra_vars(pairs: list[str]) -> dict[str, object]:
    from ght_socle.errors import ConfigError
    from ght_socle.trust.yamlio import parse_yaml

    values: dict[str, object] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"expected KEY=VALUE, got {pair!r}", where="--extra-vars")
        try:
            values[key.strip()] = parse_yaml(raw, source="--extra-vars") if raw else ""
        except ConfigError:
            raise ConfigError(f"value of {key} is not valid YAML", where="--extra-vars") from None
    return values


def run(args: argparse.Namespace) -> int:
    tags = [t.strip() for t in args.tags.split(",") if t.strip()]
    result = run_harden(
        args.inventory,
        limit=args.limit,
        tags=tags,
        check=args.check,
        diff=args.diff,
        extra_vars=_extra_vars(args.extra_vars),
        keep_artifacts=args.keep_artifacts,
        use_mitogen=not args.no_mitogen,
    )
    if args.format == "json":
        print_json(result.as_dict())
    else:
        print_summary(result)
    return EXIT_OK if result.succeeded else EXIT_FINDINGS


def print_summary(result: HardenResult) -> None:
    rows = [(host, s.ok, s.changed, s.failed, s.unreachable, s.skipped) for host, s in sorted(result.hosts.items())]
    table(rows, ("HOST", "OK", "CHANGED", "FAILED", "UNREACHABLE", "SKIPPED"))
    mode = "check mode, " if result.check_mode else ""
    print(f"\n{len(result.hosts)} hosts in {result.duration_s:.0f} s ({mode}strategy {result.strategy}); "
          f"artifacts: {result.artifact_dir}")
    for failure in result.failures:
        kind = "unreachable" if failure.unreachable else "failed"
        print(f"  {failure.host} {kind} at '{failure.task}': {failure.message}")
    if result.succeeded:
        changed = result.changed_hosts
        if changed and not result.check_mode:
            print("Converged. Run it again: a second run must change nothing (idempotence). "
                  "Then verify with `socle conform`.")
        else:
            print("Nothing to change. Verify the hosts with `socle conform`.")
    else:
        print("Some hosts did not converge: fix the failures above and re-run "
              "(add --limit with the failed hosts to go faster).", file=sys.stdout)
