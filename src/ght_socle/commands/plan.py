"""``socle plan``: run a stack offline under Pulumi's mock engine and show what it declares.

No Pulumi CLI, no cloud, no credentials: the program runs in-process (``ght_socle.plan``). Text
output is the resource tree followed by counts per type and per zone; ``--format json`` is the
plan policies and the lab read (every resource with type, name, parent and inputs, secrets
masked, plus the stack outputs).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import TextIO

from ght_socle.errors import ConfigError
from ght_socle.output import add_format_option, print_json, progress, stack_name, table
from ght_socle.plan import config_file_stack, load_project, run_plan
from ght_socle.plan_model import Plan, PlannedResource


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "plan", help="plan a stack offline (mock engine): resource tree, counts, JSON for policies",
        description="Run the Pulumi program offline under the mock engine and list every declared resource.")
    parser.add_argument("--stack", type=stack_name, required=True,
                        help="stack name (config in <stackConfigDir>/Pulumi.<stack>.yaml)")
    parser.add_argument("--config", type=Path, metavar="FILE", help="stack configuration file to use instead")
    parser.add_argument("--program", type=Path, metavar="DIR",
                        help="Pulumi program directory holding Pulumi.yaml (default: the project root)")
    add_format_option(parser)
    parser.set_defaults(handler=run)


def stack_config_exists(stack: str, program: Path | None) -> None:
    """Fail early with the list of known stacks when ``Pulumi.<stack>.yaml`` is missing."""
    project = load_project(program)
    path = project.stack_config_file(stack)
    if not path.is_file():
        known = sorted(p.name[len("Pulumi."):-len(".yaml")] for p in project.stack_config_dir.glob("Pulumi.*.yaml"))
        raise ConfigError(f"no configuration for stack {stack!r} (known stacks: {', '.join(known) or 'none'})",
                          file=path)


def resource_zone(resource: PlannedResource, by_urn: dict[str, PlannedResource]) -> str:
    """The zone a resource belongs to: its ``zone=`` tag or ``metadata.zone``, else its parent's."""
    current: PlannedResource | None = resource
    while current is not None:
        tags = current.inputs.get("tags")
        if isinstance(tags, list):
            for tag in tags:
                if isinstance(tag, str) and tag.startswith("zone="):
                    return tag[5:]
        metadata = current.inputs.get("metadata")
        if isinstance(metadata, dict) and isinstance(metadata.get("zone"), str):
            return str(metadata["zone"])
        if isinstance(current.inputs.get("zone"), str):
            return str(current.inputs["zone"])
        current = by_urn.get(current.parent) if current.parent else None
    return "-"


def short_type(type_token: str) -> str:
    """``openstack:networking/secGroupRule:SecGroupRule`` -> ``networking/SecGroupRule``."""
    parts = type_token.split(":")
    if len(parts) == 3 and "/" in parts[1]:
        return f"{parts[1].split('/')[0]}/{parts[2]}"
    return type_token


def print_text(plan: Plan, out: TextIO) -> None:
    by_urn = plan.by_urn()
    children: dict[str | None, list[PlannedResource]] = defaultdict(list)
    for resource in plan.resources:
        children[resource.parent if resource.parent in by_urn else None].append(resource)

    def walk(parent: str | None, depth: int) -> None:
        for resource in sorted(children.get(parent, []), key=lambda r: (r.custom, r.type, r.name)):
            out.write(f"{'  ' * depth}{resource.name}  [{short_type(resource.type)}]\n")
            walk(resource.urn, depth + 1)

    out.write(f"Stack {plan.project}/{plan.stack}: {len(plan.resources)} resources\n\n")
    walk(None, 0)
    out.write("\nBy type:\n")
    types = Counter(r.type for r in plan.resources)
    table(sorted(types.items(), key=lambda kv: (-kv[1], kv[0])), ["type", "count"], out)
    out.write("\nBy zone:\n")
    zones = Counter(resource_zone(r, by_urn) for r in plan.resources)
    table(sorted(zones.items()), ["zone", "resources"], out)
    hosts = plan.outputs.get("hosts")
    if isinstance(hosts, dict):
        out.write(f"\n{len(hosts)} hosts; next: socle check --stack {plan.stack}, "
                  f"then socle inventory --stack {plan.stack}\n")


def run(args: argparse.Namespace) -> int:
    if args.config is None:
        stack_config_exists(args.stack, args.program)
    else:
        config_file_stack(args.config, args.stack)
    progress(f"planning stack {args.stack} offline (mock engine)...")
    plan = run_plan(stack=args.stack, program_dir=args.program, config_file=args.config)
    try:
        if args.format == "json":
            print_json(plan.as_json())
        else:
            print_text(plan, sys.stdout)
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader stopped early (socle plan ... | head): not an error of the plan.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0
