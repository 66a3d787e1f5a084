"""Strict grammars for the values that end up in generated files.

Each grammar is a ``check_<kind>(value) -> value`` function raising :class:`ValueError` with a short
reason (the value is never echoed when it may be a secret), and an ``Annotated`` type pydantic models
use (``HostName``, ``UserName``...). Grammars are deliberately narrower than what the target format
would accept: a value that needs quoting anywhere (a newline, a quote, ``%``, ``{{``, a space where
none belongs) is refused where it enters, so no generated file has to rely on escaping alone.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import AfterValidator

MAX_TEXT = 500  # free text (descriptions, justifications): a paragraph, not a document
MAX_NAME = 63   # a DNS label, and more than any user, group or stack name needs

HOST_NAME_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
# POSIX portable user/group names as Debian's adduser accepts them by default (NAME_REGEX).
USER_NAME_RE = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
# Ansible inventory group names (valid Python identifiers, lower case by project convention).
GROUP_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
DNS_LABEL_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
# Pulumi stack / environment names used as file names: a name, never a path.
STACK_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
# Host part and path of a URL written into apt configuration and cloud-init.
URL_PATH_RE = re.compile(r"^[A-Za-z0-9._~/+-]*$")
CONTROL_RE = re.compile(r"[\x00-\x1f\x7f\u0085\u2028\u2029]")
TEMPLATE_MARKERS = ("{{", "}}", "{%", "%}", "{#", "#}")


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {type(value).__name__}")
    return value


def _matching(value: Any, pattern: re.Pattern[str], description: str) -> str:
    """``value`` when it is a string that ``pattern`` matches; else "<value> is not <description>"."""
    text = _text(value)
    if not pattern.match(text):
        raise ValueError(f"{_shown(text)} is not {description}")
    return text


def check_host_name(value: Any) -> str:
    return _matching(value, HOST_NAME_RE, "a host name (lower-case letters, digits, '-', at most 63)")


INVENTORY_HOST_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$")
INVENTORY_GROUP_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


def check_inventory_host(value: Any) -> str:
    """A host name of a hand-written Ansible inventory (FQDNs allowed): it also names files."""
    text = _matching(value, INVENTORY_HOST_RE, "a host name (letters, digits, '.', '_', '-')")
    if ".." in text:
        raise ValueError(f"{_shown(text)} is not a host name (letters, digits, '.', '_', '-')")
    return text


def check_inventory_group(value: Any) -> str:
    """A group name as Ansible accepts it (letters, digits, '_', not starting with a digit)."""
    return _matching(value, INVENTORY_GROUP_RE, "an inventory group name (letters, digits, '_')")


def check_user_name(value: Any) -> str:
    return _matching(value, USER_NAME_RE, "a user or group name (lower-case letters, digits, '_', '-', "
                                          "at most 32, not starting with a digit or '-')")


def check_group_name(value: Any) -> str:
    return _matching(value, GROUP_NAME_RE, "an inventory group name (lower-case letters, digits, '_')")


def check_dns_domain(value: Any) -> str:
    text = _text(value)
    labels = text.split(".")
    if len(text) > 253 or not all(DNS_LABEL_RE.match(label) for label in labels):
        raise ValueError(f"{_shown(text)} is not a DNS domain (dot-separated labels of lower-case letters, "
                         "digits and '-')")
    return text


def check_ipv4(value: Any) -> str:
    text = _text(value)
    try:
        address = ipaddress.IPv4Address(text)
    except ValueError:
        raise ValueError(f"{_shown(text)} is not an IPv4 address") from None
    if str(address) != text:
        raise ValueError(f"{_shown(text)} is not an IPv4 address in canonical form")
    return text


def check_ipv4_cidr(value: Any) -> str:
    text = _text(value)
    try:
        network = ipaddress.IPv4Network(text, strict=True)
    except ValueError:
        raise ValueError(f"{_shown(text)} is not an IPv4 CIDR") from None
    if str(network) != text:
        raise ValueError(f"{_shown(text)} is not an IPv4 CIDR in canonical form")
    return text


def check_address(value: Any) -> str:
    """Where SSH reaches a host: an IPv4 address or a DNS name (never options, spaces or quotes)."""
    text = _text(value)
    try:
        return check_ipv4(text)
    except ValueError:
        pass
    try:
        return check_dns_domain(text)
    except ValueError:
        raise ValueError(f"{_shown(text)} is not an IPv4 address or a DNS name") from None


def check_http_url(value: Any) -> str:
    """An ``http(s)://host[:port][/path]`` URL: no credentials, query, fragment, quotes or spaces."""
    text = _text(value)
    if text == "":
        return text
    problem = f"{_shown(text)} is not an http(s):// URL (scheme, host, optional port and path)"
    if CONTROL_RE.search(text) or len(text) > 2048:
        raise ValueError(problem)
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise ValueError(problem) from None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username or parts.password:
        raise ValueError(problem)
    if parts.query or parts.fragment or text.endswith(("?", "#")) or not URL_PATH_RE.match(parts.path):
        raise ValueError(problem)
    host = parts.hostname
    try:
        check_address(host)
    except ValueError:
        raise ValueError(problem) from None
    if port is not None and not 1 <= port <= 65535:
        raise ValueError(problem)
    return text


def check_stack_name(value: Any) -> str:
    return _matching(value, STACK_NAME_RE, "a stack name (lower-case letters, digits, '-', '_'; a name, not a path)")


def check_text(value: Any, *, max_length: int = MAX_TEXT) -> str:
    """Free text shown to people (descriptions, justifications, approvers): one line of printable text
    without template markers, so it reads the same in a terminal, a report and a Jinja template."""
    text = _text(value)
    if CONTROL_RE.search(text.replace("\n", " ")):
        raise ValueError("contains control characters")
    if len(text) > max_length:
        raise ValueError(f"longer than {max_length} characters")
    if any(marker in text for marker in TEMPLATE_MARKERS):
        raise ValueError("contains a template marker ({{, {%, {#)")
    return text


def check_config_word(value: Any) -> str:
    """A word a role writes into a configuration file (sshd, sudoers, PAM, apt, journald): printable,
    no space, quote or template marker, so it cannot end the directive it sits in or start another."""
    text = _text(value)
    if (not text or len(text) > 256 or not text.isprintable() or any(c.isspace() for c in text)
            or any(c in text for c in "\"'`") or any(marker in text for marker in TEMPLATE_MARKERS)):
        raise ValueError(f"{_shown(text)} is not a single word (printable, no space, quote or template marker, "
                         "at most 256 characters)")
    return text


def check_plain_token(value: Any) -> str:
    """A short identifier-like value (flavor, image, volume type, region, owner...): no space, quote,
    control character or template marker."""
    text = _text(value)
    if not re.match(r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,127}$", text):
        raise ValueError(f"{_shown(text)} is not a plain name (letters, digits, '.', '_', ':', '/', '@', '+', '-')")
    return text


def check_ssh_public_key(value: Any) -> str:
    text = _text(value)
    parts = text.split(" ")
    if (CONTROL_RE.search(text) or len(text) > 16384 or len(parts) < 2
            or not parts[0].startswith(("ssh-", "ecdsa-", "sk-"))
            or not re.match(r"^[A-Za-z0-9@.-]+$", parts[0]) or not re.match(r"^[A-Za-z0-9+/]+={0,3}$", parts[1])):
        raise ValueError(f"{text[:40]!r} is not an OpenSSH public key (type, base64 key, optional comment)")
    return text


def _shown(text: str) -> str:
    """The value as an error message may show it: quoted, cut short, control characters visible."""
    return repr(text[:60] + ("..." if len(text) > 60 else ""))


HostName = Annotated[str, AfterValidator(check_host_name)]
UserName = Annotated[str, AfterValidator(check_user_name)]
GroupName = Annotated[str, AfterValidator(check_group_name)]
DnsDomain = Annotated[str, AfterValidator(check_dns_domain)]
IPv4 = Annotated[str, AfterValidator(check_ipv4)]
IPv4Cidr = Annotated[str, AfterValidator(check_ipv4_cidr)]
Address = Annotated[str, AfterValidator(check_address)]
HttpUrl = Annotated[str, AfterValidator(check_http_url)]
StackName = Annotated[str, AfterValidator(check_stack_name)]
Text = Annotated[str, AfterValidator(check_text)]
PlainToken = Annotated[str, AfterValidator(check_plain_token)]
SshPublicKey = Annotated[str, AfterValidator(check_ssh_public_key)]
