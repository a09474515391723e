"""A live self-signed bundle kept without the crypto modules: tls_bundle_info's inspection
(module_utils/_tls_bundle._inspect) of real certificates and keys, and tls_reissue_reasons' verdict.

Each case builds the leaf pidock.stack.tls issues (key.yml, selfsigned.yml) with one thing changed,
and names the reason that must come back; the unchanged leaf must be kept.
"""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from ansible_collections.pidock.stack.plugins.filter.tls_checks import FilterModule, tls_reissue_reasons
from ansible_collections.pidock.stack.plugins.module_utils import _tls_bundle as tb
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID
from tls_leaf import NOW, leaf

DAY = 86400
RENEW_DAYS = 30
WANTED = {
    "mode": "selfsigned",
    "names": ["DNS:localhost", "IP:127.0.0.1"],
    "key_type": "ECC",
    "key_size": 2048,
    "key_curve": "secp256r1",
}
RECORD = {"mode": "selfsigned", "names": WANTED["names"]}


def inspect(pair: tuple[bytes, bytes]) -> dict[str, Any] | None:
    return tb._inspect(pair[0], pair[1], RENEW_DAYS * DAY, NOW.timestamp())


def test_the_leaf_the_role_issues_is_kept_and_reported_like_x509_certificate_info() -> None:
    pair = leaf()
    info = inspect(pair)
    assert info is not None
    assert tls_reissue_reasons(info, RECORD, WANTED) == []
    cert = x509.load_pem_x509_certificate(pair[1])
    assert info["fingerprints"]["sha256"] == cert.fingerprint(hashes.SHA256()).hex(":")
    assert info["not_after"] == (NOW + datetime.timedelta(days=3650)).strftime("%Y%m%d%H%M%SZ")
    assert info["serial_number"] == cert.serial_number
    assert info["subject_alt_name"] == ["DNS:localhost", "IP:127.0.0.1"]
    assert info["valid_at"] == {"renew": True}


OTHER_EC = ec.generate_private_key(ec.SECP256R1())

# (case, change to the leaf, record, wanted changes, a word of the reason)
CASES: list[tuple[str, dict[str, Any], dict[str, Any], dict[str, Any], str]] = [
    ("a name added to tls_names", {}, RECORD, {"names": [*WANTED["names"], "DNS:pi.local"]}, "names"),
    ("a name removed", {"names": ["localhost", "127.0.0.1", "old.local"]}, RECORD, {}, "names"),
    ("another common name", {"cn": "pi.local"}, RECORD, {}, "common name"),
    ("RSA wanted now", {}, RECORD, {"key_type": "RSA"}, "is ECC, RSA"),
    (
        "RSA of another size",
        {"key": rsa.generate_private_key(65537, 2048)},
        RECORD,
        {"key_type": "RSA", "key_size": 3072},
        "bits",
    ),
    ("another curve", {"key": ec.generate_private_key(ec.SECP384R1())}, RECORD, {}, "secp384r1"),
    ("the key is not the certificate's", {"cert_key": OTHER_EC}, RECORD, {}, "not the certificate's key"),
    ("issued by a CA", {"issuer_key": OTHER_EC}, RECORD, {}, "not self-signed"),
    ("inside the renewal window", {"days_left": 10}, RECORD, {}, "renewal window"),
    ("a CA certificate", {"ca": True}, RECORD, {}, "CA:FALSE"),
    ("a client certificate", {"eku": ExtendedKeyUsageOID.CLIENT_AUTH}, RECORD, {}, "extended key usage"),
    ("a critical extension", {"ku_critical": True}, RECORD, {}, "critical"),
    ("files of another mode", {}, {"mode": "provided"}, {}, "mode provided"),
    ("no record", {}, {}, {}, "mode unknown"),
    ("another role mode", {}, RECORD, {"mode": "ca"}, "only selfsigned"),
]


@pytest.mark.parametrize(("case", "change", "record", "wanted", "reason"), CASES, ids=[c[0] for c in CASES])
def test_what_sends_the_bundle_the_long_way(
    case: str, change: dict[str, Any], record: dict[str, Any], wanted: dict[str, Any], reason: str
) -> None:
    reasons = tls_reissue_reasons(inspect(leaf(**change)), record, {**WANTED, **wanted})
    assert any(reason in r for r in reasons), (case, reasons)


@pytest.mark.parametrize(
    ("case", "pair"),
    [
        ("no files", (b"", b"")),
        ("an encrypted key", leaf(password=b"secret")),
        ("a broken certificate", (leaf()[0], b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")),
    ],
)
def test_what_cannot_be_inspected_goes_the_long_way(case: str, pair: tuple[bytes, bytes]) -> None:
    assert inspect(pair) is None, case
    assert tls_reissue_reasons(None, RECORD, WANTED) == ["no live certificate and key could be inspected"]


def test_names_compare_canonically() -> None:
    """Upper case, a trailing dot and an uncompressed IPv6 address name the same certificate."""
    info = inspect(leaf(names=["localhost", "127.0.0.1", "::1"]))
    wanted = {**WANTED, "names": ["DNS:LOCALHOST.", "IP:127.0.0.1", "IP:0:0:0:0:0:0:0:1"]}
    assert tls_reissue_reasons(info, RECORD, wanted) == []


def test_registered() -> None:
    assert FilterModule().filters()["tls_reissue_reasons"] is tls_reissue_reasons
