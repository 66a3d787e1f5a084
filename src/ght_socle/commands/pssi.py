"""``socle pssi list | show RULE | validate [DIR] | coverage``: read and check the PSSI catalog."""

from __future__ import annotations

import argparse
import textwrap
from collections import Counter
from pathlib import Path

from ght_socle.catalog import DOMAINS, Catalog, load_catalog
from ght_socle.coverage import coverage
from ght_socle.output import add_format_option, print_json, table

EXIT_OK, EXIT_FINDINGS = 0, 1


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("pssi", help="read, validate and measure the coverage of the PSSI catalog",
                            description="The PSSI catalog: list rules, show one, validate, coverage.")
    parser.add_argument("--catalog", type=Path, help="catalog directory (default: policies/catalog)")
    parser.add_argument("--settings", type=Path, help="GHT settings file (default: policies/ght-settings.yaml)")
    pssi = parser.add_subparsers(dest="pssi_command", metavar="ACTION", parser_class=type(parser))
    pssi.required = True

    p_list = pssi.add_parser("list", help="one line per rule")
    p_list.add_argument("--domain", choices=list(DOMAINS), help="only this domain")
    add_format_option(p_list)
    p_list.set_defaults(handler=cmd_list)

    p_show = pssi.add_parser("show", help="everything about one rule")
    p_show.add_argument("rule", help="rule id, e.g. NET-004")
    add_format_option(p_show)
    p_show.set_defaults(handler=cmd_show)

    p_val = pssi.add_parser("validate", help="validate a catalog directory and/or a GHT settings file")
    p_val.add_argument("path", nargs="?", type=Path,
                       help="a catalog directory, or a GHT settings file (default: the project's)")
    p_val.set_defaults(handler=cmd_validate)

    p_cov = pssi.add_parser("coverage", help="where each rule is checked, enforced and verified")
    p_cov.add_argument("--strict", action="store_true",
                       help="exit 1 when a declared check point is not implemented")
    add_format_option(p_cov)
    p_cov.set_defaults(handler=cmd_coverage)


def _catalog(args: argparse.Namespace) -> Catalog:
    # Roles a check point may name are the catalog's declared list (_meta.yaml); whether each role
    # really carries the rule's tag is what `coverage --strict` verifies.
    return load_catalog(args.catalog, args.settings)


def cmd_list(args: argparse.Namespace) -> int:
    catalog = _catalog(args)
    rules = [r for r in catalog if not args.domain or r.domain == args.domain]
    if args.format == "json":
        print_json([{"rule_id": r.id, "domain": r.domain, "severity": r.severity,
                     "enforcement": catalog.enforcement(r.id), "title": r.title,
                     "statement_en": r.statement_en} for r in rules])
        return EXIT_OK
    table(((r.id, r.severity, catalog.enforcement(r.id), r.title) for r in rules),
          ("RULE", "SEVERITY", "ENFORCEMENT", "TITLE"))
    print(f"\n{len(rules)} rules. Details: socle pssi show RULE")
    return EXIT_OK


def cmd_show(args: argparse.Namespace) -> int:
    catalog = _catalog(args)
    rule = catalog.get(args.rule)
    effective = catalog.effective[rule.id]
    if args.format == "json":
        data = rule.model_dump()
        data.update(domain=rule.domain, effective_enforcement=effective.enforcement,
                    effective_params=dict(effective.params), tag=rule.tag)
        print_json(data)
        return EXIT_OK
    wrap = textwrap.TextWrapper(width=100, initial_indent="  ", subsequent_indent="  ")
    print(f"{rule.id} — {rule.title}  [{rule.severity}, {effective.enforcement}]")
    print(f"Domain: {rule.domain} ({DOMAINS[rule.domain]})   file: {catalog.files[rule.id]}")
    print("Énoncé (FR):")
    print(wrap.fill(rule.statement_fr))
    print("Statement (EN):")
    print(wrap.fill(rule.statement_en))
    print("Sources: " + "; ".join(str(s) for s in rule.sources))
    checks = rule.checks
    print("Check points:")
    print(f"  iac:     {', '.join(checks.iac) or '-'}")
    print(f"  enforce: {', '.join(f'{r} (tag {rule.tag})' for r in checks.enforce) or '-'}")
    print(f"  host:    {'conformance test marked ' + rule.id if checks.host else '-'}"
          + (f" (groups: {', '.join(rule.applies_to)})" if checks.host else ""))
    if checks.manual:
        print(f"  manual:  {checks.manual}")
    if effective.params:
        print("Parameters (effective):")
        for name, value in effective.params.items():
            print(f"  {name} = {value!r}  — {rule.params[name].description}")
    if rule.remediation:
        print("Remediation:")
        print(wrap.fill(rule.remediation))
    return EXIT_OK


def cmd_validate(args: argparse.Namespace) -> int:
    path: Path | None = args.path
    if path is not None and path.is_dir():
        catalog = load_catalog(path, args.settings)
        what = f"catalog {path}"
    elif path is not None:
        catalog = load_catalog(args.catalog, path)
        what = f"settings {path} against the catalog"
    else:
        catalog = _catalog(args)
        what = "catalog and GHT settings"
    domains = Counter(r.domain for r in catalog)
    print(f"ok: {what}: {len(catalog)} rules in {len(domains)} domains, catalog version {catalog.meta.version}")
    return EXIT_OK


def cmd_coverage(args: argparse.Namespace) -> int:
    catalog = _catalog(args)
    rows = coverage(catalog)
    gaps = [row for row in rows if row.gaps]
    if args.format == "json":
        print_json([row.as_dict() for row in rows])
    else:
        table(((row.rule.id, row.rule.severity, ",".join(row.iac) or "-",
                ",".join(r.split(":")[0] for r in row.enforce) or "-",
                "yes" if row.host else "-", "manual" if row.rule.checks.manual else "",
                "GAP" if row.gaps else "ok") for row in rows),
              ("RULE", "SEVERITY", "IAC POLICIES", "ENFORCED BY", "HOST", "", "STATUS"))
        counts = {p: sum(1 for r in rows if getattr(r.rule.checks, p)) for p in ("iac", "enforce", "host")}
        manual = sum(1 for r in rows if r.rule.checks.manual)
        print(f"\n{len(rows)} rules: {counts['iac']} checked on declared infrastructure, "
              f"{counts['enforce']} enforced by roles, {counts['host']} verified on hosts, "
              f"{manual} with a manual part.")
        for row in gaps:
            for gap in row.gaps:
                print(f"gap: {row.rule.id}: {gap}")
        if gaps:
            print(f"{len(gaps)} rules declare a check point that is not implemented.")
    return EXIT_FINDINGS if (args.strict and gaps) else EXIT_OK
