"""pidock.stack.tls in acme mode: a certificate from pebble over a really answered HTTP-01."""

from __future__ import annotations

import json

from pidock_helpers import run_ok, served_fingerprint

TLS = "/opt/pidock/stacks/inventory/tls"
NAMES = ("acme.pidock.test", "www.acme.pidock.test")


def _facts(host) -> dict:
    return json.loads(host.file("/root/tls-facts-inventory.json").content_string)


def _pebble_root(host) -> str:
    """Pebble makes a new root at every start; its management API hands it out."""
    run_ok(host, "curl -sS --fail -o /root/pebble-root.pem https://127.0.0.1:15000/roots/0")
    return "/root/pebble-root.pem"


def test_files_and_modes(host):
    assert host.file(TLS).mode == 0o750
    key = host.file(f"{TLS}/privkey.pem")
    assert key.user == "root" and key.mode == 0o600
    assert host.file("/var/lib/pidock/tls/inventory/acme-account.key").mode == 0o600
    assert not host.file(f"{TLS}/ca.pem").exists


def test_certificate_chains_to_pebble_root(host):
    root = _pebble_root(host)
    fullchain = f"{TLS}/fullchain.pem"
    assert host.file(fullchain).content_string.count("BEGIN CERTIFICATE") == 2  # leaf + pebble intermediate
    out = run_ok(host, "openssl verify -CAfile %s -untrusted %s %s", root, fullchain, fullchain)
    assert out.strip().endswith(": OK")
    assert "Pebble Intermediate CA" in run_ok(host, "openssl x509 -noout -issuer -in %s", fullchain)


def test_certificate_covers_the_requested_names(host):
    sans = run_ok(host, "openssl x509 -noout -ext subjectAltName -in %s", f"{TLS}/fullchain.pem")
    for name in NAMES:
        assert f"DNS:{name}" in sans
    facts = _facts(host)
    assert sorted(facts["names"]) == sorted(f"DNS:{n}" for n in NAMES)
    assert facts["mode"] == "acme" and facts["ca_path"] is None


def test_http01_challenges_were_fetched_by_pebble(host):
    """The web server on port 80 served each challenge to pebble (converge and the renewal)."""
    log = run_ok(host, "journalctl -u acme-web --no-pager -o cat")
    fetched = {
        line.split('"GET ', 1)[1].split(" ", 1)[0]
        for line in log.splitlines()
        if '"GET /.well-known/acme-challenge/' in line and '" 200 ' in line
    }
    # Two names, two orders: four challenges, less the rare authorization pebble 2.4 reuses for the
    # renewal although PEBBLE_AUTHZREUSE=0 (seen once in CI: the renewal answered one challenge).
    # Every name answered at least once, and the renewal at least one more.
    assert len(fetched) >= len(NAMES) + 1, log
    leftover = host.run("ls -A /var/www/acme/.well-known/acme-challenge").stdout.split()
    assert leftover == [], "challenge responses must be removed"


def test_tls_handshake_presents_the_issued_certificate(host):
    root = _pebble_root(host)
    fingerprint = served_fingerprint(host, TLS, "acme.pidock.test", root)
    assert fingerprint == _facts(host)["fingerprint_sha256"]
