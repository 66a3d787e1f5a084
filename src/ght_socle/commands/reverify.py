"""``socle reverify``: read the hosts' signed re-verification summaries from the log zone (PSSI LOG-009).

Between two ``socle conform`` runs each Linux host re-checks its own posture on a timer and ships a
summary signed with its PKI key to the log collector. This command reads the collector's storage
(a copy of it, or the directory itself on the collector), trusts only the summaries whose signature
and certificate the GHT's CA proves, and prints the newest one per host. Exit 0 when every host's
latest summary is recent and without drift, 1 on a drift, a stale or failed run or a refused
message, 2 on bad input.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

from ght_socle.errors import ConfigError
from ght_socle.output import add_format_option, print_json, table
from ght_socle.reverify.summary import load_ca, parse_time, read_collector_dir


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "reverify",
        help="read the hosts' signed re-verification summaries from the log collector's storage (LOG-009)",
        description="Verify and list the newest re-verification summary of every host found in the log "
                    "collector's storage (<dir>/<host>/<date>.log): signature and certificate checked against the "
                    "GHT's CA, drift and age reported.",
        epilog="Exit codes: 0 every host recent and without drift, 1 a drift, a stale or failed re-verification or "
               "a refused message, 2 bad input.",
    )
    parser.add_argument("--logs", required=True, type=Path, help="the collector's storage directory (or a copy)")
    parser.add_argument("--ca", required=True, type=Path, help="the GHT's CA certificate (PEM)")
    parser.add_argument("--max-age-hours", type=float, default=12.5,
                        help="a summary older than this is stale (default 12.5: two 6-hour runs and the delay)")
    add_format_option(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if not args.logs.is_dir():
        raise ConfigError("not a directory", file=args.logs, where="--logs")
    try:
        ca = load_ca(args.ca)
    except OSError as exc:
        raise ConfigError(exc.strerror or "cannot be read", file=args.ca, where="--ca") from None
    except ValueError:
        raise ConfigError("not a PEM certificate", file=args.ca, where="--ca") from None
    if args.max_age_hours <= 0:
        raise ConfigError("must be positive", where="--max-age-hours")
    reading = read_collector_dir(args.logs, ca)
    now = dt.datetime.now(dt.UTC)
    rows: list[dict[str, str | int]] = []
    findings = 0
    for host, summary in sorted(reading.latest.items()):
        shipped = parse_time(summary.time)
        stale = shipped is None or now - shipped > dt.timedelta(hours=args.max_age_hours)
        verdict = "stale" if stale else summary.status
        findings += verdict != "ok"
        detail = "; ".join(summary.errors) if summary.status == "error" else "; ".join(summary.drift)
        if summary.drift_count > len(summary.drift):
            detail += f" (and {summary.drift_count - len(summary.drift)} more)"
        rows.append({"host": host, "time": summary.time, "verdict": verdict, "catalog": summary.catalog,
                     "drift_count": summary.drift_count, "detail": detail})
    findings += len(reading.refused)
    if args.format == "json":
        print_json({"hosts": rows, "refused": [{"where": w, "reason": r} for w, r in reading.refused]})
    else:
        table(([r["host"], r["time"], r["verdict"], r["drift_count"], str(r["detail"])[:100]] for r in rows),
              ["HOST", "LAST SUMMARY", "VERDICT", "DRIFTED", "DETAIL"])
        for where, reason in reading.refused:
            print(f"REFUSED {where}: {reason}")
        if not rows:
            print(f"No signed summary under {args.logs}: is the reverify role applied (socle harden --tags reverify)?")
        elif findings:
            print("Next: look at each drifted host with `socle conform --inventory <env> --limit <host>`, then "
                  "re-run `socle harden --limit <host>` if the change was not approved.", file=sys.stdout)
    return 1 if findings or not rows else 0
