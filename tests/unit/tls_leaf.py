"""The leaf certificate pidock.stack.tls issues in selfsigned mode (key.yml, selfsigned.yml), built
with cryptography for unit tests, with one thing changed on request."""

from __future__ import annotations

import datetime
import ipaddress
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

NOW = datetime.datetime(2026, 11, 28, tzinfo=datetime.timezone.utc)  # noqa: UP017


def _pem_key(key: Any, password: bytes | None = None) -> bytes:
    enc = serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc)


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def leaf(**change: Any) -> tuple[bytes, bytes]:
    """(privkey PEM, fullchain PEM) as selfsigned mode issues them, with `change` applied."""
    key = change.get("key") or ec.generate_private_key(ec.SECP256R1())
    names = change.get("names", ["localhost", "127.0.0.1"])
    sans = [_general_name(n) for n in names]
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, change.get("cn", "localhost"))])
    issuer_key = change.get("issuer_key", key)
    issuer = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Some CA")]) if "issuer_key" in change else subject
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(change.get("cert_key", key).public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - datetime.timedelta(days=1))
        .not_valid_after(NOW + datetime.timedelta(days=change.get("days_left", 3650)))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=change.get("ca", False), path_length=None), critical=False)
        .add_extension(
            x509.KeyUsage(True, False, True, False, False, False, False, False, False),
            critical=change.get("ku_critical", False),
        )
        .add_extension(x509.ExtendedKeyUsage([change.get("eku", ExtendedKeyUsageOID.SERVER_AUTH)]), critical=False)
    )
    cert = builder.sign(issuer_key, hashes.SHA256())
    return _pem_key(key, change.get("password")), cert.public_bytes(serialization.Encoding.PEM)
