"""ssh_config lines from checked values.

OpenSSH splits a line into words on spaces, honours double quotes, expands ``%`` tokens in file
names and host names, and ``${VAR}`` in file names. Values that reach ssh_config are names and
addresses already checked by :mod:`ght_socle.trust.grammar`; file paths are the one free-form value,
so they are restricted to a safe character set, quoted, and their ``%`` doubled.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from ght_socle.trust.grammar import check_address, check_host_name, check_user_name

KEY_TYPE_RE = re.compile(r"^(ssh|ecdsa|sk)-[A-Za-z0-9@.-]+$")
KEY_DATA_RE = re.compile(r"^[A-Za-z0-9+/]+={0,3}$")
SAFE_PATH_RE = re.compile(r"^/[A-Za-z0-9._/+@:,% -]*$")
# Keywords whose values OpenSSH expands as %-tokens (ssh_config(5), TOKENS).
TOKEN_KEYWORDS = frozenset({"IdentityFile", "UserKnownHostsFile", "HostName", "ControlPath", "CertificateFile"})
PATH_KEYWORDS = frozenset({"IdentityFile", "UserKnownHostsFile"})
NUMBER_KEYWORDS = frozenset({"Port", "ConnectTimeout", "ServerAliveInterval"})
YES_NO_KEYWORDS = frozenset({"IdentitiesOnly", "StrictHostKeyChecking", "CheckHostIP"})


def check_ssh_path(value: str) -> str:
    if not SAFE_PATH_RE.match(value) or "${" in value:
        raise ValueError(f"{value[:80]!r} cannot be written in ssh_config (an absolute path of letters, digits, "
                         "'.', '_', '/', '+', '@', ':', ',', '-' and spaces)")
    return value


def check_option(keyword: str, value: str) -> str:
    """The value of one ssh_config option, checked for its keyword; ValueError when it does not fit."""
    if keyword in PATH_KEYWORDS:
        return check_ssh_path(value)
    if keyword == "HostName":
        return check_address(value)
    if keyword == "User":
        return check_user_name(value)
    if keyword in ("HostKeyAlias", "ProxyJump"):
        return check_host_name(value)
    if keyword in NUMBER_KEYWORDS:
        if not value.isascii() or not value.isdigit() or not 0 < int(value) <= 65535:
            raise ValueError(f"{value[:20]!r} is not a number within 1-65535")
        return value
    if keyword in YES_NO_KEYWORDS:
        if value not in ("yes", "no"):
            raise ValueError(f"{value[:20]!r} is not yes or no")
        return value
    raise ValueError(f"{keyword} is not an option the inventory writes")


def render_value(keyword: str, value: str) -> str:
    """The value as written on the line: tokens escaped, quoted when it holds a space."""
    check_option(keyword, value)
    if keyword in TOKEN_KEYWORDS:
        value = value.replace("%", "%%")
    return f'"{value}"' if " " in value else value


def host_block(name: str, options: Mapping[str, str]) -> str:
    """One ``Host <name>`` block; every value checked for its keyword."""
    check_host_name(name)
    lines = [f"Host {name}"] + [f"    {keyword} {render_value(keyword, value)}" for keyword, value in options.items()]
    return "\n".join(lines) + "\n"
