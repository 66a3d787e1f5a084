"""``socle inventory``: stack outputs -> ``inventories/<stack>/`` (hosts.yml, ssh_config, known_hosts).

In production the outputs come from the deployed stack (``pulumi stack output --json > FILE`` then
``--outputs FILE``); without ``--outputs`` the stack is planned offline and its outputs used, which
gives the same document since every address is fixed by the configuration.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

from ght_socle import paths
from ght_socle.commands.plan import stack_config_exists
from ght_socle.inventory import known_hosts_filled, load_outputs_file, write_inventory
from ght_socle.output import add_format_option, print_json, progress, stack_name, table
from ght_socle.plan import run_plan
from ght_socle.trust.files import explicit_dir


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "inventory", help="write the Ansible inventory of a stack (hosts.yml, ssh_config, known_hosts)",
        description="Turn a stack's outputs into an Ansible inventory directory.")
    parser.add_argument("--stack", type=stack_name, required=True, help="stack name (lab, preprod, prod...)")
    parser.add_argument("--outputs", type=Path, metavar="FILE",
                        help="outputs of the deployed stack (pulumi stack output --json > FILE); "
                             "default: plan the stack offline")
    parser.add_argument("--output-dir", type=Path, metavar="DIR", help="default: inventories/<stack>/")
    add_format_option(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.outputs is not None:
        outputs = load_outputs_file(args.outputs)
        source = str(args.outputs)
    else:
        stack_config_exists(args.stack, None)
        progress(f"planning stack {args.stack} offline for its outputs...")
        outputs = run_plan(stack=args.stack).outputs
        source = f"offline plan of stack {args.stack}"
    if args.output_dir is not None:
        directory = args.output_dir
        within = explicit_dir(directory)
    else:
        directory, within = paths.inventories_dir() / args.stack, paths.project_root()
    hosts_yml = write_inventory(outputs, directory, source=source, within=within)
    hosts = outputs["hosts"]
    groups = Counter(group for host in hosts.values() for group in host["groups"])
    keys_ready = known_hosts_filled(directory)
    if args.format == "json":
        print_json({"directory": str(directory), "hosts_yml": str(hosts_yml), "hosts": sorted(hosts),
                    "groups": dict(sorted(groups.items())), "known_hosts_filled": keys_ready})
        return 0
    print(f"Inventory of stack {args.stack}: {len(hosts)} hosts in {directory}")
    table(sorted(groups.items()), ["group", "hosts"])
    if keys_ready:
        print(f"\nNext: harden the hosts with socle harden (inventory {hosts_yml})")
    else:
        print(f"\nknown_hosts has no host key yet: fill {directory / 'known_hosts'} as its comments explain "
              "(host key checking stays on), then run socle harden.")
    return 0
