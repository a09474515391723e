"""Unit tests for plugins/filter/tls_checks.py: settings and provided-bundle checks."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from ansible_collections.pidock.stack.plugins.filter.tls_checks import (
    FilterModule,
    tls_bundle_errors,
    tls_input_errors,
)

SETTINGS: dict[str, Any] = {
    "tls_mode": "ca",
    "tls_key_type": "ECC",
    "tls_key_size": 2048,
    "tls_validity_days": 365,
    "tls_ca_validity_days": 3650,
    "tls_renew_days": 30,
    "tls_names": ["inventory.pidock.test", "192.0.2.10", "DNS:*.pidock.test", "IP:::1"],
}

# What x509_certificate_info / openssl_privatekey_info / certificate_complete_chain return for a good bundle.
CERT: dict[str, Any] = {
    "public_key": "PUB",
    "public_key_type": "ECC",
    "public_key_data": {"curve": "secp256r1", "exponent_size": 256},
    "valid_at": {"now": True, "renew": True},
    "not_before": "20260101000000Z",
    "not_after": "20270101000000Z",
    "basic_constraints": ["CA:FALSE"],
    "extended_key_usage": ["TLS Web Server Authentication"],
    "subject_alt_name": ["DNS:inventory.example.test", "DNS:*.example.test", "IP:192.0.2.10"],
    "subject": {"commonName": "inventory.example.test"},
    "issuer": {"commonName": "Example Intermediate CA"},
}
KEY: dict[str, Any] = {"public_key": "PUB"}
CHAIN: dict[str, Any] = {"complete_chain": ["leaf", "intermediate"]}
NAMES = ["DNS:inventory.example.test", "DNS:app.example.test", "IP:192.0.2.10"]


def _with(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    out = copy.deepcopy(base)
    out.update(changes)
    return out


def test_good_settings_pass() -> None:
    assert tls_input_errors(SETTINGS) == []


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"tls_renew_days": "3650"}, None),  # the documented rotation command: -e gives a string
        ({"tls_renew_days": 3650}, None),
        ({"tls_validity_days": -5}, "tls_validity_days: must be a whole number of days >= 1 (got -5)"),
        ({"tls_validity_days": "soon"}, "tls_validity_days: must be a whole number of days"),
        ({"tls_renew_days": -1}, "tls_renew_days: must be a whole number of days >= 0"),
        ({"tls_ca_validity_days": 0}, "tls_ca_validity_days: must be a whole number of days >= 1"),
        ({"tls_validity_days": 4000}, "tls_validity_days: 4000 outlives the CA"),
        ({"tls_validity_days": 4000, "tls_mode": "selfsigned"}, None),
        ({"tls_key_type": "RSA", "tls_key_size": 1024}, "tls_key_size: RSA keys must have 2048 to 16384 bits"),
        ({"tls_key_type": "RSA", "tls_key_size": "4096"}, None),
        ({"tls_key_type": "ECC", "tls_key_size": 1024}, None),  # not used for EC keys
        ({"tls_names": ["ok.test", "evil.test\nDNS:other.test"]}, "tls_names: 'evil.test\\nDNS:other.test'"),
        ({"tls_names": ["has space.test"]}, "tls_names: 'has space.test' is not a DNS name"),
        ({"tls_names": "inventory.test"}, "tls_names: must be a list"),
    ],
)
def test_settings(changes: dict[str, Any], expected: str | None) -> None:
    errors = tls_input_errors(_with(SETTINGS, **changes))
    if expected is None:
        assert errors == []
    else:
        assert any(expected in e for e in errors), errors


def test_good_bundle_passes() -> None:
    assert tls_bundle_errors(CERT, KEY, CHAIN, NAMES) == []


@pytest.mark.parametrize(
    ("cert", "key", "chain", "names", "check", "expected"),
    [
        ({"msg": "no PEM"}, KEY, CHAIN, NAMES, "certificate", "cannot read a certificate"),
        (CERT, {}, CHAIN, NAMES, "key", "cannot read the private key"),
        (_with(CERT, valid_at={"now": False}), KEY, CHAIN, NAMES, "expiry", "not valid now"),
        (CERT, {"public_key": "OTHER"}, CHAIN, NAMES, "key-match", "does not belong"),
        (
            _with(CERT, public_key_type="RSA", public_key_data={"size": 1024}),
            KEY,
            CHAIN,
            NAMES,
            "key-size",
            "an RSA key of 1024 bits (at least 2048 required)",
        ),
        (
            _with(CERT, public_key_data={"curve": "secp192r1", "exponent_size": 192}),
            KEY,
            CHAIN,
            NAMES,
            "key-size",
            "EC key on secp192r1",
        ),
        (_with(CERT, public_key_type="DSA", public_key_data={"size": 2048}), KEY, CHAIN, NAMES, "key-size", "DSA"),
        (_with(CERT, basic_constraints=["CA:TRUE"]), KEY, CHAIN, NAMES, "leaf", "is a CA certificate"),
        (
            _with(CERT, extended_key_usage=["TLS Web Client Authentication"]),
            KEY,
            CHAIN,
            NAMES,
            "usage",
            "does not include serverAuth",
        ),
        (CERT, KEY, {"msg": "Cannot find parent for leaf"}, NAMES, "chain-order", "Cannot find parent"),
        # no SAN: the crash of f5e7451 ('argument of type NoneType is not iterable')
        (_with(CERT, subject_alt_name=None), KEY, CHAIN, NAMES, "names", "has no subjectAltName"),
        # a chain in the wrong order puts the intermediate first: a CA certificate without SAN
        (
            _with(CERT, subject_alt_name=None, basic_constraints=["CA:TRUE", "pathlen:0"], extended_key_usage=None),
            KEY,
            {"msg": "Cannot find parent"},
            NAMES,
            "leaf",
            "is a CA certificate",
        ),
        (CERT, KEY, CHAIN, ["DNS:other.test"], "names", "does not cover DNS:other.test"),
        (CERT, KEY, CHAIN, ["DNS:a.b.example.test"], "names", "does not cover DNS:a.b.example.test"),
    ],
)
def test_bad_bundles_name_the_check(cert, key, chain, names, check: str, expected: str) -> None:
    failed = tls_bundle_errors(cert, key, chain, names, {"cert": "leaf.pem", "key": "leaf.key"})
    found = [f for f in failed if f["check"] == check]
    assert found, failed
    assert expected in found[0]["msg"], found


@pytest.mark.parametrize(
    ("cert", "chain", "names"),
    [
        (CERT, CHAIN, ["Test.Example.Test", "DNS:INVENTORY.example.test"]),  # names are case-insensitive
        (_with(CERT, subject_alt_name=["DNS:Inventory.Example.Test"]), CHAIN, ["DNS:inventory.example.test"]),
        (_with(CERT, subject_alt_name=["IP:2001:db8:0:0:0:0:0:1"]), CHAIN, ["IP:2001:db8::1"]),
        (_with(CERT, extended_key_usage=None), CHAIN, NAMES),  # no EKU extension: any use
        (
            _with(CERT, extended_key_usage=["TLS Web Client Authentication", "TLS Web Server Authentication"]),
            CHAIN,
            NAMES,
        ),
        (_with(CERT, public_key_type="RSA", public_key_data={"size": 2048}), CHAIN, NAMES),
        (_with(CERT, public_key_data={"curve": "secp384r1", "exponent_size": 384}), CHAIN, NAMES),
        # self-signed (`openssl req -x509`: CA:TRUE by default), as a bare-metal nginx has it
        (
            _with(CERT, basic_constraints=["CA:TRUE"], issuer={"commonName": "inventory.example.test"}),
            {"msg": "Cannot complete chain"},
            NAMES,
        ),
        (CERT, {"msg": "Cannot complete chain. Stuck at cert"}, NAMES),  # no trust store needed
    ],
)
def test_good_variants_pass(cert, chain, names) -> None:
    assert tls_bundle_errors(cert, KEY, chain, names) == []


def test_filters_exported() -> None:
    assert set(FilterModule().filters()) == {"tls_input_errors", "tls_bundle_errors", "tls_reissue_reasons"}
