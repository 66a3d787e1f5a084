"""``socle conform``: verify deployed hosts against the PSSI and write the report for the RSSI.

Runs the conformance suites (``tests/conformance``) on an inventory: one batched remote command
per host, hosts in parallel, waivers applied, then a terminal summary with what to do next and a
report (JSON always, plus JUnit or HTML). Exit 0 when every applicable rule passes or is waived,
1 on any failure of a mandatory rule, 2 when a check could not run or the input is bad.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import sys
from pathlib import Path

from ght_socle import paths
from ght_socle.catalog import default_catalog
from ght_socle.conform.inventory import load_inventory
from ght_socle.conform.report import diff_runs, load_previous, print_summary, to_html, to_json, to_junit
from ght_socle.conform.results import RunReport
from ght_socle.conform.runner import RunOptions, build_report, run_suites
from ght_socle.conform.waivers import Waivers, load_waivers
from ght_socle.errors import ConfigError
from ght_socle.output import add_format_option, progress
from ght_socle.trust.files import explicit_file, write_text

EXTENSIONS = {"text": "txt", "json": "json", "junit": "xml", "html": "html"}


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "conform",
        help="verify hosts against the PSSI (conformance suites) and write the report",
        description="Run the PSSI conformance suites on an inventory: facts gathered in one remote command per "
                    "host, hosts in parallel, waivers applied. Prints a summary per host and per rule with the "
                    "commands to run next, and writes the report under .socle/reports/ (or --output).",
        epilog="Exit codes: 0 every applicable rule passes or is waived, 1 a mandatory rule fails, "
               "2 a check could not run (unreachable host, missing fact) or bad input.",
    )
    parser.add_argument("--inventory", required=True, type=Path,
                        help="inventory directory (hosts.yml, ssh_config, known_hosts, waivers.yaml)")
    parser.add_argument("--limit", help="hosts to check: names, groups or patterns, comma-separated")
    parser.add_argument("-n", "--workers", type=int, help="parallel pytest workers (default: one per host, max 8)")
    add_format_option(parser, ("text", "json", "junit", "html"))
    parser.add_argument("--output", type=Path,
                        help="report file ('-' for stdout; default .socle/reports/conform-<date>.<ext>)")
    parser.add_argument("--diff", type=Path, metavar="PREVIOUS.json",
                        help="compare with an earlier JSON report: print what regressed and what was fixed")
    parser.add_argument("--waivers", type=Path, help="waivers file (default: <inventory>/waivers.yaml when present)")
    parser.set_defaults(handler=run)


def _waivers(args: argparse.Namespace, inventory_dir: Path) -> Waivers | None:
    path = args.waivers or inventory_dir / "waivers.yaml"
    if args.waivers is None and not path.exists():
        return None
    return load_waivers(path, default_catalog())


def _write(path: Path, text: str, within: Path) -> None:
    write_text(path, text, within=within)


def render(report: RunReport, fmt: str) -> str:
    catalog = default_catalog()
    if fmt == "json":
        return json.dumps(to_json(report), indent=2, ensure_ascii=False) + "\n"
    if fmt == "junit":
        return to_junit(report)
    if fmt == "html":
        return to_html(report, catalog)
    buffer = io.StringIO()
    print_summary(report, catalog, buffer)
    return buffer.getvalue()


def run(args: argparse.Namespace) -> int:
    catalog = default_catalog()
    inventory = load_inventory(args.inventory)
    hosts = inventory.select(args.limit)
    if args.workers is not None and args.workers < 1:
        raise ConfigError("--workers must be at least 1", where="--workers")
    # Every input is validated before any host is contacted.
    waivers = _waivers(args, inventory.directory)
    previous = load_previous(args.diff) if args.diff else None
    label = str(args.inventory)

    document, seconds = run_suites(inventory, RunOptions(hosts=hosts, workers=args.workers))
    report = build_report(catalog, inventory, hosts, document, seconds, waivers, label)

    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    reports_dir = paths.state_dir() / "reports"
    json_text = render(report, "json")
    json_path = reports_dir / f"conform-{stamp}.json"
    _write(json_path, json_text, paths.state_dir())
    _write(reports_dir / "conform-latest.json", json_text, paths.state_dir())

    summary = render(report, "text")
    report_path: Path | None = json_path
    if args.format != "text" or args.output is not None:
        content = json_text if args.format == "json" else render(report, args.format)
        if str(args.output) == "-":
            sys.stdout.write(content)
            report_path = None
        else:
            if args.output is not None:
                report_path, within = explicit_file(args.output)
            else:
                report_path, within = reports_dir / f"conform-{stamp}.{EXTENSIONS[args.format]}", paths.state_dir()
            if report_path != json_path:
                _write(report_path, content, within)
    # The summary goes to stdout unless stdout carries the machine-readable report.
    summary_stream = sys.stderr if report_path is None else sys.stdout
    summary_stream.write(summary)
    if previous is not None:
        diff = diff_runs(previous, report.results)
        summary_stream.write(f"\nSince {args.diff}: {len(diff.regressed)} regressed, {len(diff.fixed)} fixed, "
                             f"{diff.still_failing} still failing\n")
        for line in diff.lines():
            summary_stream.write(line + "\n")
    if report_path is not None:
        summary_stream.write(f"\nReport: {report_path}\n")
    if report_path != json_path:
        progress(f"JSON results (for --diff): {json_path}")
    return report.exit_code()
