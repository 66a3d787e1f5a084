"""`socle harden` (not implemented yet: owned by its own issue)."""

from __future__ import annotations

import argparse

from ght_socle.errors import SocleError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("harden", help="(not implemented yet)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    raise SocleError("socle harden is not implemented yet")
