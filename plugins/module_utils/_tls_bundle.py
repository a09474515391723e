# Copyright: (c) 2026, pidock.stack maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A stack's live TLS files (privkey.pem, fullchain.pem, ca.pem, .pidock-tls.json): names, reads, plans.

Shared by pidock.stack.tls_bundle_info (read) and pidock.stack.tls_bundle (write). Pure functions
apart from _read_bundle; the write goes through _atomic.write_atomic.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

# The file of each part of the bundle, in the stack's TLS directory.
_FILES = {"privkey": "privkey.pem", "fullchain": "fullchain.pem", "ca": "ca.pem", "record": ".pidock-tls.json"}


@dataclass(frozen=True)
class _Have:
    """A file as it is on disk (content None: absent)."""

    content: bytes | None
    uid: int = -1
    gid: int = -1
    mode: int = -1


@dataclass(frozen=True)
class _Want:
    """A file as it should be (content None: absent)."""

    content: bytes | None
    uid: int = 0
    gid: int = 0
    mode: int = 0o644


def _path(directory: str, part: str) -> str:
    return os.path.join(directory, _FILES[part])


def _read(path: str) -> _Have:
    try:
        with open(path, "rb") as handle:
            st = os.fstat(handle.fileno())
            return _Have(handle.read(), st.st_uid, st.st_gid, st.st_mode & 0o7777)
    except FileNotFoundError:
        return _Have(None)


def _read_bundle(directory: str) -> dict[str, _Have]:
    return {part: _read(_path(directory, part)) for part in _FILES}


def _text(have: _Have) -> str:
    return (have.content or b"").decode("utf-8", "replace")


def _record(have: _Have) -> dict[str, Any]:
    """The parsed .pidock-tls.json; {} when absent or unreadable (then the role treats the files as unknown)."""
    try:
        data = json.loads(_text(have) or "{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _pem(text: str) -> bytes | None:
    """A PEM part as the live file holds it: trimmed, one final newline; '' means no file."""
    text = text.strip()
    return (text + "\n").encode() if text else None


def _record_bytes(record: dict[str, Any]) -> bytes:
    return (json.dumps(record, indent=4, sort_keys=True) + "\n").encode()


def _plan(have: dict[str, _Have], want: dict[str, _Want]) -> list[tuple[str, str]]:
    """(part, action) for every part that differs: write (content), attributes (owner/mode), remove."""
    actions = []
    for part, w in want.items():
        h = have.get(part, _Have(None))
        if w.content is None:
            if h.content is not None:
                actions.append((part, "remove"))
        elif h.content != w.content:
            actions.append((part, "write"))
        elif (h.uid, h.gid, h.mode) != (w.uid, w.gid, w.mode):
            actions.append((part, "attributes"))
    return actions


def _colon_hex(data: bytes) -> str:
    return ":".join(f"{b:02x}" for b in data)


def _general_name(name: Any, x509: Any) -> str | None:
    """A subjectAltName entry as community.crypto prints it: DNS:name or IP:address."""
    if isinstance(name, x509.DNSName):
        return f"DNS:{name.value}"
    if isinstance(name, x509.IPAddress):
        return f"IP:{name.value}"
    return None


def _inspect(privkey: bytes | None, fullchain: bytes | None, renew_seconds: int, now: float) -> dict[str, Any] | None:
    """The live leaf certificate and whether the live key is its key; None when either cannot be read.

    The keys are those of community.crypto.x509_certificate_info that pidock.stack.tls uses
    (fingerprints.sha256, not_after, serial_number, subject_alt_name, valid_at.renew), plus what its
    keep-or-reissue decision compares (pidock.stack.tls_keep). Needs python3-cryptography; without it
    (or with an unreadable or encrypted key) the role inspects with community.crypto as before.
    """
    if not privkey or not fullchain:
        return None
    try:
        import datetime

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec, rsa
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    except ImportError:
        return None
    try:
        cert = x509.load_pem_x509_certificate(fullchain)
        key = serialization.load_pem_private_key(privkey, password=None)
    except (ValueError, TypeError):
        return None

    def extension(cls: Any) -> Any:
        try:
            return cert.extensions.get_extension_for_class(cls)
        except x509.ExtensionNotFound:
            return None

    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    public = key.public_key()
    if isinstance(public, ec.EllipticCurvePublicKey):
        key_type, key_size, key_curve = "ECC", public.curve.key_size, public.curve.name
    elif isinstance(public, rsa.RSAPublicKey):
        key_type, key_size, key_curve = "RSA", public.key_size, None
    else:
        key_type, key_size, key_curve = type(public).__name__, None, None

    san = extension(x509.SubjectAlternativeName)
    names = [n for n in (_general_name(g, x509) for g in (san.value if san else [])) if n]
    basic = extension(x509.BasicConstraints)
    usage = extension(x509.KeyUsage)
    usages = []
    if usage:
        for attr, label in (("digital_signature", "digitalSignature"), ("key_encipherment", "keyEncipherment")):
            if getattr(usage.value, attr):
                usages.append(label)
        for attr, label in (
            ("content_commitment", "nonRepudiation"),
            ("data_encipherment", "dataEncipherment"),
            ("key_cert_sign", "keyCertSign"),
            ("crl_sign", "cRLSign"),
        ):
            if getattr(usage.value, attr):
                usages.append(label)
        if usage.value.key_agreement:
            usages.append("keyAgreement")
    eku = extension(x509.ExtendedKeyUsage)
    eku_names = [
        "serverAuth" if oid == ExtendedKeyUsageOID.SERVER_AUTH else oid.dotted_string
        for oid in (eku.value if eku else [])
    ]
    cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    # timezone.utc, not datetime.UTC: managed hosts may run Python older than 3.11.
    utc = datetime.timezone.utc  # noqa: UP017
    # cryptography < 42 (Debian 12 has 38) has only the naive UTC datetimes.
    not_before = getattr(cert, "not_valid_before_utc", None) or cert.not_valid_before.replace(tzinfo=utc)
    not_after = getattr(cert, "not_valid_after_utc", None) or cert.not_valid_after.replace(tzinfo=utc)
    at = now + renew_seconds
    return {
        "fingerprints": {"sha256": _colon_hex(cert.fingerprint(hashes.SHA256()))},
        "not_after": not_after.astimezone(utc).strftime("%Y%m%d%H%M%SZ"),
        "serial_number": cert.serial_number,
        "subject_alt_name": names,
        "common_name": cn[0].value if cn else None,
        "self_signed": cert.issuer == cert.subject,
        "key_matches": public.public_bytes(der, spki) == cert.public_key().public_bytes(der, spki),
        "key_type": key_type,
        "key_size": key_size,
        "key_curve": key_curve,
        "ca": basic.value.ca if basic else None,
        "key_usage": sorted(usages),
        "extended_key_usage": eku_names,
        "critical": sorted(e.oid.dotted_string for e in cert.extensions if e.critical),
        "valid_at": {"renew": not_before.timestamp() <= at <= not_after.timestamp()},
    }
