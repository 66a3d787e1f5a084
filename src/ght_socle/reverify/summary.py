"""Read and verify the re-verification summaries the hosts ship to the log zone (PSSI LOG-009).

A summary is one syslog message written by the host's agent (``agent_script.py``)::

    GHT-REVERIFY v1 payload=<base64 JSON> sig=<base64 signature> cert=<base64 DER certificate>

It is trusted only when the certificate was issued by the GHT's CA, names the host the payload
speaks for, and its key signed the payload's exact bytes: a summary edited on the way, or written by
another host, or by a key outside the PKI, is refused with the reason.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

FORMAT = "GHT-REVERIFY v1"
LINE = re.compile(re.escape(FORMAT) + r" payload=(?P<payload>[A-Za-z0-9+/=]+) sig=(?P<sig>[A-Za-z0-9+/=]+)"
                  r" cert=(?P<cert>[A-Za-z0-9+/=]+)")


class SummaryRefused(Exception):
    """A summary that cannot be trusted; the message says why."""


@dataclass(frozen=True)
class Summary:
    host: str
    time: str
    status: str
    catalog: str
    baseline: str | None
    drift_count: int
    drift: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> Summary:
        try:
            return cls(host=str(payload["host"]), time=str(payload["time"]), status=str(payload["status"]),
                       catalog=str(payload.get("catalog", "unknown")), baseline=payload.get("baseline"),
                       drift_count=int(payload.get("drift_count", 0)), drift=[str(d) for d in payload.get("drift", [])],
                       errors=[str(e) for e in payload.get("errors", [])])
        except (KeyError, TypeError, ValueError) as exc:
            raise SummaryRefused(f"the payload lacks a field or has a wrong type: {exc}") from None


def load_ca(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _common_name(certificate: x509.Certificate) -> str:
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else ""


def _verify_signature(certificate: x509.Certificate, signature: bytes, payload: bytes) -> None:
    key = certificate.public_key()
    if isinstance(key, ec.EllipticCurvePublicKey):
        key.verify(signature, payload, ec.ECDSA(hashes.SHA256()))
    elif isinstance(key, rsa.RSAPublicKey):
        key.verify(signature, payload, padding.PKCS1v15(), hashes.SHA256())
    else:
        raise SummaryRefused(f"unsupported key type {type(key).__name__} in the host certificate")


def verify_line(line: str, ca: x509.Certificate) -> Summary:
    """The summary carried by ``line``, once its certificate and signature are proven; else SummaryRefused."""
    match = LINE.search(line)
    if match is None:
        raise SummaryRefused(f"not a {FORMAT} message")
    try:
        payload = base64.b64decode(match["payload"], validate=True)
        signature = base64.b64decode(match["sig"], validate=True)
        certificate = x509.load_der_x509_certificate(base64.b64decode(match["cert"], validate=True))
    except (binascii.Error, ValueError) as exc:
        raise SummaryRefused(f"malformed message: {exc}") from None
    try:
        certificate.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        raise SummaryRefused("the certificate was not issued by the GHT's CA") from None
    try:
        _verify_signature(certificate, signature, payload)
    except InvalidSignature:
        raise SummaryRefused(f"bad signature (certificate {_common_name(certificate)!r})") from None
    try:
        document = json.loads(payload)
    except ValueError as exc:
        raise SummaryRefused(f"the payload is not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise SummaryRefused("the payload is not a JSON object")
    summary = Summary.from_payload(document)
    signer = _common_name(certificate)
    if summary.host.split(".")[0] != signer.split(".")[0]:
        raise SummaryRefused(f"summary for {summary.host!r} signed by {signer!r}")
    return summary


@dataclass
class CollectorReading:
    """Every summary found in the collector's files: the newest trusted one per host, and the refused lines."""

    latest: dict[str, Summary] = field(default_factory=dict)
    refused: list[tuple[str, str]] = field(default_factory=list)  # (where, reason)


def read_lines(lines: Iterable[tuple[str, str]], ca: x509.Certificate) -> CollectorReading:
    """``lines`` are ``(where, text)``; ISO timestamps of one format sort as times."""
    reading = CollectorReading()
    for where, text in lines:
        if FORMAT not in text:
            continue
        try:
            summary = verify_line(text, ca)
        except SummaryRefused as exc:
            reading.refused.append((where, str(exc)))
            continue
        known = reading.latest.get(summary.host)
        if known is None or summary.time >= known.time:
            reading.latest[summary.host] = summary
    return reading


def read_collector_dir(storage: Path, ca: x509.Certificate) -> CollectorReading:
    """Read the collector's storage (``<dir>/<host>/<date>.log``, rsyslog's layout in the log zone)."""

    def lines() -> Iterable[tuple[str, str]]:
        for path in sorted(storage.rglob("*.log")):
            with path.open(encoding="utf-8", errors="replace") as stream:
                for number, text in enumerate(stream, start=1):
                    yield f"{path}:{number}", text

    return read_lines(lines(), ca)


def parse_time(text: str) -> datetime.datetime | None:
    try:
        moment = datetime.datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC)


def last_summary_problems(recorded: str | None, ca_pem: str | None, host_time: float,
                          max_age: datetime.timedelta) -> list[str]:
    """What is wrong with the summary a host last shipped (its ``last-summary.json``), as rule evidence.

    The summary must exist, carry a signature the host's CA accepts, be younger than ``max_age`` at the
    host's clock, and come from a re-verification that ran (status ``error`` is a check that could not run).
    A drift is not a problem here: it is what the summary reports to the SOC.
    """
    if recorded is None:
        return ["no re-verification summary yet (/var/lib/ght-reverify/last-summary.json absent)"]
    try:
        document = json.loads(recorded)
        line = str(document["line"])
    except (ValueError, KeyError, TypeError):
        return ["/var/lib/ght-reverify/last-summary.json is not a recorded summary"]
    if not ca_pem:
        return ["cannot verify the summary's signature: the host's CA certificate (/etc/ght-pki/ca.crt) is absent"]
    try:
        summary = verify_line(line, x509.load_pem_x509_certificate(ca_pem.encode("ascii")))
    except ValueError as exc:
        return [f"the host's CA certificate does not load: {exc}"]
    except SummaryRefused as exc:
        return [f"last summary refused: {exc}"]
    problems = []
    shipped = parse_time(summary.time)
    now = datetime.datetime.fromtimestamp(host_time, tz=datetime.UTC)
    if shipped is None:
        problems.append(f"last summary has no valid time ({summary.time!r})")
    elif now - shipped > max_age:
        problems.append(f"last summary shipped at {summary.time}, older than {max_age}: the timer does not run")
    if summary.status == "error":
        problems.append("last re-verification could not run: " + "; ".join(summary.errors))
    return problems
