# Copyright: pidock.stack maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the pidock.stack.tls role: refuse bad settings and bad provided bundles by name.

tls_input_errors(settings)                                  -> list of messages (empty when valid)
tls_bundle_errors(cert_info, key_info, chain, names, paths) -> [{check, msg}] of failed bundle checks
tls_reissue_reasons(certificate, record, wanted)            -> why the live self-signed bundle cannot be kept
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from typing import Any

# Smallest keys accepted, generated or provided.
_MIN_RSA_BITS = 2048
_MIN_EC_BITS = 256
_MAX_RSA_BITS = 16384
_NAME_RE = re.compile(r"(?:(?:DNS|IP):)?[A-Za-z0-9*_.:-]{1,253}")
_SERVER_AUTH = frozenset(
    ("TLS Web Server Authentication", "serverAuth", "Any Extended Key Usage", "anyExtendedKeyUsage")
)


def _integer(value: Any) -> int | None:
    """An int, or a string of digits as `-e tls_renew_days=3650` gives; None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?\d{1,9}", value.strip()):
        return int(value)
    return None


def tls_input_errors(settings: Mapping[str, Any]) -> list[str]:
    """Problems with the role's settings that argument_specs cannot express, naming the variable."""
    errors: list[str] = []
    numbers: dict[str, int] = {}
    for name, minimum in (("tls_validity_days", 1), ("tls_ca_validity_days", 1), ("tls_renew_days", 0)):
        value = _integer(settings.get(name))
        if value is None or value < minimum:
            errors.append(f"{name}: must be a whole number of days >= {minimum} (got {settings.get(name)!r})")
        else:
            numbers[name] = value
    mode = settings.get("tls_mode")
    leaf, ca = numbers.get("tls_validity_days", 0), numbers.get("tls_ca_validity_days", 0)
    if mode == "ca" and ca and leaf > ca:
        errors.append(
            f"tls_validity_days: {leaf} outlives the CA (tls_ca_validity_days {ca}); "
            "a certificate cannot be valid longer than its issuer"
        )
    if settings.get("tls_key_type") == "RSA" and mode != "provided":
        size = _integer(settings.get("tls_key_size"))
        if size is None or not _MIN_RSA_BITS <= size <= _MAX_RSA_BITS:
            errors.append(
                f"tls_key_size: RSA keys must have {_MIN_RSA_BITS} to {_MAX_RSA_BITS} bits "
                f"(got {settings.get('tls_key_size')!r})"
            )
    names = settings.get("tls_names") or []
    if not isinstance(names, list):
        errors.append(f"tls_names: must be a list of DNS names or IP addresses (got {type(names).__name__})")
        names = []
    for name in names:
        if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
            errors.append(f"tls_names: {name!r} is not a DNS name or an IP address")
    passphrase = settings.get("tls_ca_key_passphrase")
    if passphrase is not None and not isinstance(passphrase, str):
        errors.append("tls_ca_key_passphrase: must be a string (quote it)")
    return errors


def _canonical(name: str) -> str:
    """'DNS:Test.Local' -> 'DNS:test.local'; 'IP:::1' -> 'IP:::1' in compressed form; no prefix means DNS."""
    kind, _sep, value = name.partition(":") if name.startswith(("DNS:", "IP:")) else ("DNS", ":", name)
    if kind == "IP":
        try:
            return f"IP:{ipaddress.ip_address(value).compressed}"
        except ValueError:
            return f"IP:{value.lower()}"
    return f"DNS:{value.lower().rstrip('.')}"


def _covered(name: str, sans: set[str]) -> bool:
    wanted = _canonical(name)
    if wanted in sans:
        return True
    if wanted.startswith("DNS:") and "." in wanted:
        return "DNS:*." + wanted.split(".", 1)[1] in sans
    return False


def _key_problem(key_type: str, data: Mapping[str, Any]) -> str | None:
    if key_type == "RSA":
        bits = data.get("size") or 0
        return None if bits >= _MIN_RSA_BITS else f"an RSA key of {bits} bits (at least {_MIN_RSA_BITS} required)"
    if key_type == "ECC":
        bits = data.get("exponent_size") or 0
        curve = data.get("curve", "?")
        return None if bits >= _MIN_EC_BITS else f"an EC key on {curve} ({bits} bits, at least P-256 required)"
    if key_type in ("Ed25519", "Ed448"):
        return None
    return f"a {key_type or 'unknown'} key (RSA >= {_MIN_RSA_BITS} bits or EC >= P-256 required)"


def tls_bundle_errors(
    cert: Mapping[str, Any] | None,
    key: Mapping[str, Any] | None,
    chain: Mapping[str, Any] | None,
    names: list[str],
    paths: Mapping[str, str] | None = None,
) -> list[dict[str, str]]:
    """The failed checks of a provided bundle, from x509_certificate_info (cert),
    openssl_privatekey_info (key) and certificate_complete_chain (chain) results."""
    cert, key, chain, paths = cert or {}, key or {}, chain or {}, paths or {}
    failed: list[dict[str, str]] = []

    def fail(check: str, msg: str) -> None:
        failed.append({"check": check, "msg": msg})

    cert_ok = cert.get("public_key") is not None
    if not cert_ok:
        where = paths.get("cert", "the certificate")
        fail("certificate", f"cannot read a certificate from {where} {cert.get('msg', '')}".strip())
    if key.get("public_key") is None:
        fail("key", f"cannot read the private key {paths.get('key', '')} (encrypted keys are not supported)")
    if not cert_ok:
        return failed
    valid = cert.get("valid_at") or {}
    if not valid.get("now", False):
        period = f"valid from {cert.get('not_before', '?')} to {cert.get('not_after', '?')}"
        fail("expiry", f"the certificate is not valid now ({period})")
    if key.get("public_key") is not None and cert.get("public_key") != key.get("public_key"):
        fail("key-match", f"the private key {paths.get('key', '')} does not belong to the certificate")
    problem = _key_problem(str(cert.get("public_key_type", "")), cert.get("public_key_data") or {})
    if problem:
        fail("key-size", f"the certificate has {problem}")
    # A self-signed certificate (its own issuer, as `openssl req -x509` makes them for a bare-metal
    # nginx) carries CA:TRUE by default and is trusted directly: only an issued one must be a leaf.
    self_signed = cert.get("issuer") is not None and cert.get("issuer") == cert.get("subject")
    if "CA:TRUE" in (cert.get("basic_constraints") or []) and not self_signed:
        fail("leaf", "the certificate is a CA certificate (basicConstraints CA:TRUE), not a server certificate")
    usages = cert.get("extended_key_usage")
    if usages is not None and not _SERVER_AUTH & set(usages):
        fail("usage", f"the certificate's extended key usage ({', '.join(usages)}) does not include serverAuth")
    if not (chain.get("complete_chain") is not None or str(chain.get("msg") or "").startswith("Cannot complete chain")):
        fail("chain-order", str(chain.get("msg") or "each certificate must be signed by the next one"))
    sans = {_canonical(str(s)) for s in cert.get("subject_alt_name") or []}
    if not sans:
        fail("names", "the certificate has no subjectAltName (clients ignore the common name)")
    else:
        missing = [name for name in names if not _covered(str(name), sans)]
        if missing:
            fail("names", f"the certificate does not cover {', '.join(missing)}")
    return failed


# What pidock.stack.tls asks of a leaf it issues (key.yml): these extensions, none critical.
_LEAF_USAGE = ["digitalSignature", "keyEncipherment"]
_LEAF_EKU = ["serverAuth"]


def tls_reissue_reasons(
    certificate: Mapping[str, Any] | None, record: Mapping[str, Any] | None, wanted: Mapping[str, Any]
) -> list[str]:
    """Why the live bundle is not the one selfsigned mode would keep; empty: keep it as it is.

    certificate is tls_bundle_info's inspection (None: could not inspect); record the live
    .pidock-tls.json; wanted holds mode, names (DNS:/IP: prefixed, the first is the common name),
    key_type, key_size and key_curve. The same comparison community.crypto's key, CSR and
    certificate pipes make before keeping what they are given, so a kept bundle is the bundle they
    would have returned; anything else goes the long way through them.
    """
    if wanted.get("mode") != "selfsigned":
        return [f"mode {wanted.get('mode')}: only selfsigned bundles are kept without the crypto modules"]
    if not certificate:
        return ["no live certificate and key could be inspected"]
    record = record or {}
    reasons: list[str] = []
    if record.get("mode") != "selfsigned":
        reasons.append(f"the live files came from mode {record.get('mode') or 'unknown'}")
    if not certificate.get("key_matches"):
        reasons.append("the private key is not the certificate's key")
    if not certificate.get("self_signed"):
        reasons.append("the certificate is not self-signed")
    if not (certificate.get("valid_at") or {}).get("renew"):
        reasons.append("the certificate is expired or within the renewal window")
    key_type = wanted.get("key_type")
    if certificate.get("key_type") != key_type:
        reasons.append(f"the key is {certificate.get('key_type')}, {key_type} is wanted")
    elif key_type == "RSA" and _integer(wanted.get("key_size")) != certificate.get("key_size"):
        reasons.append(f"the key has {certificate.get('key_size')} bits, {wanted.get('key_size')} are wanted")
    elif key_type == "ECC" and certificate.get("key_curve") != wanted.get("key_curve"):
        reasons.append(f"the key is on {certificate.get('key_curve')}, {wanted.get('key_curve')} is wanted")
    names = [_canonical(str(n)) for n in wanted.get("names") or []]
    have = [_canonical(str(n)) for n in certificate.get("subject_alt_name") or []]
    if sorted(set(have)) != sorted(set(names)):
        reasons.append(f"the certificate names {sorted(set(have))}, {sorted(set(names))} are wanted")
    common = names[0].split(":", 1)[1] if names else None
    if (certificate.get("common_name") or "").lower() != (common or "").lower():
        reasons.append(f"the common name is {certificate.get('common_name')!r}, {common!r} is wanted")
    if certificate.get("ca") is not False:
        reasons.append("the certificate does not say CA:FALSE")
    if sorted(certificate.get("key_usage") or []) != sorted(_LEAF_USAGE):
        reasons.append(f"key usage {certificate.get('key_usage')}, {_LEAF_USAGE} is wanted")
    if list(certificate.get("extended_key_usage") or []) != _LEAF_EKU:
        reasons.append(f"extended key usage {certificate.get('extended_key_usage')}, {_LEAF_EKU} is wanted")
    if certificate.get("critical"):
        reasons.append(f"critical extensions {certificate.get('critical')}, none are wanted")
    return reasons


class FilterModule:
    """pidock.stack tls filters."""

    def filters(self) -> dict[str, Any]:
        return {
            "tls_input_errors": tls_input_errors,
            "tls_bundle_errors": tls_bundle_errors,
            "tls_reissue_reasons": tls_reissue_reasons,
        }
