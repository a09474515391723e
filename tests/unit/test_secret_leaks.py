"""scripts/secret_leaks.py: the test secrets it scans for are the ones the scenarios set, and both modes work."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_SPEC = importlib.util.spec_from_file_location("secret_leaks", ROOT / "scripts" / "secret_leaks.py")
assert _SPEC and _SPEC.loader
secret_leaks = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(secret_leaks)


def _read(path: str) -> str:
    return (ROOT / path).read_text()


@pytest.mark.parametrize(
    ("where", "source"),
    [
        ("compose_deploy compose_secrets.POSTGRES_PASSWORD", lambda: _read("molecule/compose_deploy/vars/stack.yml")),
        ("migrate migrate_test_db_password", lambda: _read("molecule/migrate/files/test_db_password.txt")),
        ("docker_pi docker_proxy_env credentials", lambda: _read("molecule/docker_pi/converge.yml")),
        ("tls_modes tls_ca_key_passphrase", lambda: _read("molecule/tls_modes/side_effect.yml")),
    ],
)
def test_the_scanned_secrets_are_the_scenarios(where, source) -> None:
    assert secret_leaks.TEST_SECRETS[where] in source()


def test_scan_names_the_leak_but_not_the_value(tmp_path, capsys) -> None:
    clean, dirty = tmp_path / "clean.log", tmp_path / "dirty.log"
    clean.write_text("ok: [host] => censored\n")
    dirty.write_text("POSTGRES_PASSWORD='s3cret-inventory-$pw'\n")
    assert secret_leaks.main(["scan", str(clean)]) == 0
    assert secret_leaks.main(["scan", str(clean), str(dirty)]) == 1
    err = capsys.readouterr().err
    assert "compose_deploy compose_secrets.POSTGRES_PASSWORD" in err and "s3cret" not in err


def test_lint_passes_on_the_roles() -> None:
    assert secret_leaks.lint() == []


def test_usage() -> None:
    assert secret_leaks.main([]) == 2
