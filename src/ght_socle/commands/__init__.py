"""Subcommands of ``socle``; each module exposes ``register(subparsers)``."""
