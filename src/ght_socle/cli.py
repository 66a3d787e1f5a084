"""The ``socle`` command line.

One style for every subcommand: ``--help`` everywhere, ``--format`` where there is output to
parse, and exit codes 0 = ok, 1 = findings (violations, failed or unreachable hosts), 2 = bad
input or a check that could not run. Each subcommand lives in ``ght_socle.commands.<name>`` and
exposes ``register(subparsers)``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback
from collections.abc import Sequence

from ght_socle import __version__
from ght_socle.errors import SocleError

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_ERROR = 2

# Order is the order of the data flow, which is also the order of --help.
COMMAND_MODULES = ("pssi", "plan", "check", "engine", "inventory", "lab", "cloud", "harden", "conform", "reverify",
                   "demo")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        # argparse exits 2 already; keep its usage line but make the error one line.
        self.print_usage(sys.stderr)
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_ERROR)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="socle",
        description="ght-socle: plan, check, deploy, harden and verify a GHT's shared base against its PSSI.",
        epilog="Exit codes: 0 ok, 1 findings, 2 bad input or a check that could not run.",
    )
    parser.add_argument("--version", action="version", version=f"ght-socle {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="show the traceback of an unexpected error (also SOCLE_DEBUG=1)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"ght_socle.commands.{name}")
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = bool(getattr(args, "debug", False)) or os.environ.get("SOCLE_DEBUG") == "1"
    try:
        code = int(args.handler(args))
    except SocleError as exc:
        print(f"socle: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("socle: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        # Never a traceback for the operator (and never exit 1, which CI reads as "findings"): one
        # line, exit 2, and the way to see the details.
        if debug:
            traceback.print_exc()
        print(f"socle: error: unexpected {type(exc).__name__}: {' '.join(str(exc).split())[:200]} "
              "(a bug or an input the checks missed; rerun with --debug for the traceback)", file=sys.stderr)
        return EXIT_ERROR
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
