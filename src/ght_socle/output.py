"""Shared terminal output helpers: one look for every subcommand."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Sequence
from typing import Any, TextIO


def add_format_option(parser: Any, choices: Sequence[str] = ("text", "json"), default: str = "text") -> None:
    parser.add_argument("--format", choices=list(choices), default=default,
                        help=f"output format ({', '.join(choices)}; default {default})")


def print_json(data: Any, stream: TextIO | None = None) -> None:
    json.dump(data, stream or sys.stdout, indent=2, ensure_ascii=False, default=str)
    (stream or sys.stdout).write("\n")


def table(rows: Iterable[Sequence[Any]], headers: Sequence[str], stream: TextIO | None = None) -> None:
    """Print a left-aligned plain-text table (no dependency, stable in CI logs)."""
    out = stream or sys.stdout
    materialised = [[str(c) for c in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in materialised:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=False)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    out.write(fmt.format(*headers).rstrip() + "\n")
    out.write(fmt.format(*("-" * w for w in widths)).rstrip() + "\n")
    for row in materialised:
        out.write(fmt.format(*row).rstrip() + "\n")


def progress(message: str) -> None:
    """A progress line on stderr, so stdout stays parseable with --format json."""
    print(message, file=sys.stderr, flush=True)


def stack_name(value: str) -> str:
    """argparse ``type=`` for a stack or environment name: a name, never a path."""
    from ght_socle.trust.grammar import check_stack_name

    try:
        return check_stack_name(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
