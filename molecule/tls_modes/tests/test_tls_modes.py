"""pidock.stack.tls in selfsigned, ca and provided mode: files, chains, names, facts, a handshake."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from pidock_helpers import run_ok, served_fingerprint

STACKS = ("inventory", "selfsigned", "provided")
_EPHEMERAL = Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/nonexistent"))


def _dir(stack: str) -> str:
    return f"/opt/pidock/stacks/{stack}/tls"


def _facts(host, stack: str) -> dict:
    return json.loads(host.file(f"/root/tls-facts-{stack}.json").content_string)


def _fingerprint(host, path: str) -> str:
    out = run_ok(host, "openssl x509 -noout -fingerprint -sha256 -in %s", path)
    return out.strip().split("=", 1)[1]


def _sans(host, path: str) -> str:
    return run_ok(host, "openssl x509 -noout -ext subjectAltName -in %s", path)


@pytest.mark.parametrize("stack", STACKS)
def test_files_owner_and_modes(host, stack):
    tls = host.file(_dir(stack))
    assert tls.is_directory and tls.user == "root" and tls.mode == 0o750
    key = host.file(f"{_dir(stack)}/privkey.pem")
    assert key.user == "root" and key.group == "root" and key.mode == 0o600
    assert host.file(f"{_dir(stack)}/fullchain.pem").mode == 0o644


@pytest.mark.parametrize("stack", STACKS)
def test_key_matches_certificate(host, stack):
    cert_pub = run_ok(host, "openssl x509 -noout -pubkey -in %s", f"{_dir(stack)}/fullchain.pem")
    key_pub = run_ok(host, "openssl pkey -pubout -in %s", f"{_dir(stack)}/privkey.pem")
    assert cert_pub == key_pub


@pytest.mark.parametrize("stack", STACKS)
def test_facts_describe_the_installed_certificate(host, stack):
    facts = _facts(host, stack)
    fullchain = f"{_dir(stack)}/fullchain.pem"
    assert facts["dir"] == _dir(stack)
    assert facts["fullchain_path"] == fullchain
    assert facts["privkey_path"] == f"{_dir(stack)}/privkey.pem"
    assert facts["fingerprint_sha256"] == _fingerprint(host, fullchain)
    end = run_ok(
        host, 'date -u -d "$(openssl x509 -noout -enddate -in %s | cut -d= -f2)" +%%Y-%%m-%%dT%%H:%%M:%%SZ', fullchain
    )
    assert facts["not_after"] == end.strip()
    for name in facts["names"]:
        assert name.split(":", 1)[1] in _sans(host, fullchain)


def test_ca_mode_chains_to_the_one_controller_ca(host):
    tls = _dir("inventory")
    ca = host.file(f"{tls}/ca.pem").content_string
    assert ca == (_EPHEMERAL / "ca" / "ca.pem").read_text()
    assert _facts(host, "inventory")["ca_path"] == f"{tls}/ca.pem"
    out = run_ok(host, "openssl verify -CAfile %s %s", f"{tls}/ca.pem", f"{tls}/fullchain.pem")
    assert out.strip().endswith(": OK")
    issuer = run_ok(host, "openssl x509 -noout -issuer -in %s", f"{tls}/fullchain.pem")
    assert "pidock pidock private CA" in issuer


def test_ca_key_stays_on_the_controller(host):
    key = _EPHEMERAL / "ca" / "ca.key"
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    assert not host.run("grep -rl 'PRIVATE KEY' /opt/pidock/stacks/inventory/tls/ca.pem").stdout


def test_ca_mode_names_cover_the_host(host):
    sans = _sans(host, f"{_dir('inventory')}/fullchain.pem")
    assert f"DNS:{host.backend.get_hostname()}" in sans
    assert "DNS:inventory.pidock.test" in sans
    assert "IP Address:127.0.0.1" in sans


def test_selfsigned_mode(host):
    tls = _dir("selfsigned")
    subject = run_ok(host, "openssl x509 -noout -subject -in %s", f"{tls}/fullchain.pem").split("=", 1)[1]
    issuer = run_ok(host, "openssl x509 -noout -issuer -in %s", f"{tls}/fullchain.pem").split("=", 1)[1]
    assert subject == issuer
    sans = _sans(host, f"{tls}/fullchain.pem")
    assert "DNS:selfsigned.pidock.test" in sans and "IP Address:192.0.2.10" in sans
    assert not host.file(f"{tls}/ca.pem").exists
    assert _facts(host, "selfsigned")["ca_path"] is None


def test_provided_bundle_installed_as_given(host):
    bundle = _EPHEMERAL / "provided"
    tls = _dir("provided")
    expected_chain = "\n".join((bundle / name).read_text().strip() for name in ("leaf.pem", "intermediate.pem"))
    assert host.file(f"{tls}/fullchain.pem").content_string.strip() == expected_chain
    assert host.file(f"{tls}/privkey.pem").content_string.strip() == (bundle / "leaf.key").read_text().strip()
    if host.backend.get_hostname() == "tls-modes-trixie":  # from the controller, with the root CA
        assert host.file(f"{tls}/ca.pem").content_string.strip() == (bundle / "root.pem").read_text().strip()
        out = run_ok(
            host,
            "openssl verify -CAfile %s -untrusted %s %s",
            f"{tls}/ca.pem",
            f"{tls}/fullchain.pem",
            f"{tls}/fullchain.pem",
        )
        assert out.strip().endswith(": OK")
    else:  # from /var/lib/inventory/ssl on the host, no CA given
        assert not host.file(f"{tls}/ca.pem").exists


def test_short_lived_certificate_was_reissued(host):
    short, renewed = json.loads(host.file("/root/tls-renewal.json").content_string)
    assert renewed["fingerprint_sha256"] != short["fingerprint_sha256"]
    assert renewed["changed"] is True
    assert renewed["not_after"] > short["not_after"]
    fullchain = "/opt/pidock/stacks/renew/tls/fullchain.pem"
    assert _fingerprint(host, fullchain) == renewed["fingerprint_sha256"]
    # valid for at least another 360 days (the default validity is 365)
    run_ok(host, "openssl x509 -noout -checkend %s -in %s", str(360 * 86400), fullchain)


def test_tls_handshake_presents_the_issued_certificate(host):
    """A real TLS server on loopback serves the ca-mode files; the client sees the fact's fingerprint."""
    tls = _dir("inventory")
    fingerprint = served_fingerprint(host, tls, "inventory.pidock.test", f"{tls}/ca.pem")
    assert fingerprint == _facts(host, "inventory")["fingerprint_sha256"]
