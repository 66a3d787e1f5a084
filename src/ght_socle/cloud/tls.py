"""TLS of the local cloud: its own certificate authority and the certificate its API front presents.

Every OpenStack API of the local cloud is reached over HTTPS, as a production cloud's are (the stack
configs refuse any other scheme for the identity endpoint, since credentials travel to it). The
authority is the local cloud's alone, made at the first ``up`` in the state directory: it signs one
server certificate for ``127.0.0.1`` and ``localhost``, the names its clients use. Clients trust it
through ``OS_CACERT`` / ``cacert`` in clouds.yaml (Python) and the provider's ``cacertFile``.

Lab only: the authority's key sits in a 0600 file of the state directory, next to what it protects.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ght_socle.cloud.layout import Layout
from ght_socle.errors import SocleError
from ght_socle.trust import files

SERVER_NAMES = ("localhost",)
SERVER_ADDRESSES = ("127.0.0.1",)
AUTHORITY_DAYS = 3650
SERVER_DAYS = 397  # the longest validity public CAs may issue; the lab renews well before
RENEW_BEFORE_DAYS = 30


@dataclass(frozen=True)
class TlsFiles:
    """The paths a client (the authority) and the TLS front (certificate chain and key) read."""

    authority: Path
    server_bundle: Path  # certificate, then key: the form HAProxy's ``crt`` takes

    @classmethod
    def of(cls, layout: Layout) -> TlsFiles:
        return cls(authority=layout.tls / "ca.pem", server_bundle=layout.tls / "api.pem")

    @property
    def authority_key(self) -> Path:
        return self.authority.with_name("ca-key.pem")


def ensure_certificates(layout: Layout) -> TlsFiles:
    """Create the authority once, and the server certificate when missing, expiring or not for our names."""
    tls = TlsFiles.of(layout)
    if not tls.authority.exists() or not tls.authority_key.exists():
        _new_authority(layout, tls)
    try:
        authority = x509.load_pem_x509_certificate(tls.authority.read_bytes())
        authority_key = serialization.load_pem_private_key(tls.authority_key.read_bytes(), password=None)
        if not isinstance(authority_key, ec.EllipticCurvePrivateKey):
            raise ValueError("the key is not an EC key")
    except (ValueError, OSError) as exc:
        raise SocleError(f"unreadable certificate authority ({exc}): `socle cloud down --purge` starts afresh",
                         file=tls.authority) from exc
    if not _server_is_current(tls, authority):
        _new_server_certificate(layout, tls, authority, authority_key)
    return tls


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _private_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _write(layout: Layout, path: Path, data: bytes) -> None:
    path.parent.mkdir(mode=0o700, exist_ok=True)
    files.write_text(path, data.decode(), within=layout.root, mode=0o600)


def _new_authority(layout: Layout, tls: TlsFiles) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ght-socle"),
                      x509.NameAttribute(NameOID.COMMON_NAME, "ght-socle local cloud CA (lab only)")])
    now = _now()
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=AUTHORITY_DAYS))
                   .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                   .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                                key_encipherment=False, data_encipherment=False, key_agreement=False,
                                                key_cert_sign=True, crl_sign=True, encipher_only=False,
                                                decipher_only=False), critical=True)
                   .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
                   .sign(key, hashes.SHA256()))
    _write(layout, tls.authority_key, _private_pem(key))
    _write(layout, tls.authority, certificate.public_bytes(serialization.Encoding.PEM))
    # A new authority invalidates the server certificate it did not sign.
    tls.server_bundle.unlink(missing_ok=True)


def _server_is_current(tls: TlsFiles, authority: x509.Certificate) -> bool:
    if not tls.server_bundle.exists():
        return False
    try:
        certificate = x509.load_pem_x509_certificate(tls.server_bundle.read_bytes())
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, x509.ExtensionNotFound):
        return False
    wanted_ips = {ipaddress.ip_address(address) for address in SERVER_ADDRESSES}
    return (certificate.issuer == authority.subject
            and certificate.not_valid_after_utc - _now() > datetime.timedelta(days=RENEW_BEFORE_DAYS)
            and set(names.get_values_for_type(x509.DNSName)) == set(SERVER_NAMES)
            and set(names.get_values_for_type(x509.IPAddress)) == wanted_ips)


def _new_server_certificate(layout: Layout, tls: TlsFiles, authority: x509.Certificate,
                            authority_key: ec.EllipticCurvePrivateKey) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    alternative_names: list[x509.GeneralName] = [x509.DNSName(name) for name in SERVER_NAMES]
    alternative_names += [x509.IPAddress(ipaddress.ip_address(address)) for address in SERVER_ADDRESSES]
    certificate = (x509.CertificateBuilder()
                   .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, SERVER_ADDRESSES[0])]))
                   .issuer_name(authority.subject).public_key(key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=SERVER_DAYS))
                   .add_extension(x509.SubjectAlternativeName(alternative_names), critical=False)
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(authority_key.public_key()),
                                  critical=False)
                   .sign(authority_key, hashes.SHA256()))
    _write(layout, tls.server_bundle, certificate.public_bytes(serialization.Encoding.PEM) + _private_pem(key))
