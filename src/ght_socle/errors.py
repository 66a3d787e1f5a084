"""Errors that end a command with one clear line and exit status 2.

Every user-facing failure caused by bad input (a file, a key, a value) or by a check that could
not run is raised as :class:`SocleError`; the CLI prints ``str(error)`` and exits 2. Any other
exception is a bug or an input a check missed: the CLI prints one line and exits 2 as well, and
``socle --debug`` (or ``SOCLE_DEBUG=1``) shows its traceback to the developer.
"""

from __future__ import annotations

from pathlib import Path


class SocleError(Exception):
    """A user-facing error: ``<file>: <where>: <message>`` on one line."""

    def __init__(self, message: str, *, file: str | Path | None = None, where: str | None = None) -> None:
        self.file = str(file) if file is not None else None
        self.where = where
        self.message = message
        super().__init__(self.render())

    def render(self) -> str:
        parts = [p for p in (self.file, self.where) if p]
        parts.append(self.message)
        return ": ".join(_one_line(str(p)) for p in parts)


MAX_PART = 400  # an error names a file, a key and a reason; a value it quotes is cut short


def _one_line(text: str) -> str:
    """Whitespace collapsed, other control characters made visible, long parts cut: whatever a bad
    value holds, the error stays one readable line."""
    flat = " ".join(text.split())
    visible = "".join(c if c.isprintable() else repr(c)[1:-1] for c in flat)
    return visible if len(visible) <= MAX_PART else visible[:MAX_PART - 3] + "..."


class ConfigError(SocleError):
    """Bad input: a file that does not parse or a key with a wrong value."""


class ToolMissingError(SocleError):
    """An external tool (qemu, debootstrap, ssh) is missing; the message says how to install it."""
