"""tls_bundle and tls_bundle_info: the stack's live TLS files read in one call, and written in one call that
touches only what differs (check mode predicts it, the key is never readable by others)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from ansible.module_utils import basic
from ansible_collections.pidock.stack.plugins.module_utils import _tls_bundle as tb
from ansible_collections.pidock.stack.plugins.module_utils._atomic import parse_mode
from ansible_collections.pidock.stack.plugins.modules import tls_bundle, tls_bundle_info
from conftest import ModuleFailed, RunModule

KEY = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49\n-----END PRIVATE KEY-----"
CERT = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----"
CA = "-----BEGIN CERTIFICATE-----\nMIIBCA\n-----END CERTIFICATE-----"
RECORD = {"mode": "selfsigned", "names": ["DNS:pi"], "acme_directory": None}
UID, GID = os.getuid(), os.getgid()


def _args(tmp_path: Path, **over: Any) -> dict[str, Any]:
    args = {
        "dir": str(tmp_path / "tls"),
        "privkey": KEY,
        "fullchain": CERT,
        "ca": "",
        "record": RECORD,
        "dir_owner": str(UID),
        "dir_group": str(GID),
        "key_owner": str(UID),
        "key_group": str(GID),
        "cert_owner": str(UID),
        "cert_group": str(GID),
    }
    args.update(over)
    return args


@pytest.mark.parametrize(
    ("value", "expected"), [("0600", 0o600), ("640", 0o640), (0o750, 0o750), ("0o600", None), ("", None), ("9", None)]
)
def test_mode(value: Any, expected: int | None) -> None:
    if expected is None:
        with pytest.raises(ValueError, match=r"octal|range"):
            parse_mode(value)
    else:
        assert parse_mode(value) == expected


PLAN_CASES = [
    ("all absent", {}, {"privkey": tb._Want(b"k"), "ca": tb._Want(None)}, [("privkey", "write")]),
    ("same", {"privkey": tb._Have(b"k", 0, 0, 0o644)}, {"privkey": tb._Want(b"k")}, []),
    ("mode only", {"privkey": tb._Have(b"k", 0, 0, 0o640)}, {"privkey": tb._Want(b"k")}, [("privkey", "attributes")]),
    ("ca to remove", {"ca": tb._Have(b"c", 0, 0, 0o644)}, {"ca": tb._Want(None)}, [("ca", "remove")]),
    (
        "content differs",
        {"fullchain": tb._Have(b"a", 0, 0, 0o644)},
        {"fullchain": tb._Want(b"b")},
        [("fullchain", "write")],
    ),
]


@pytest.mark.parametrize(("name", "have", "want", "expected"), PLAN_CASES, ids=[c[0] for c in PLAN_CASES])
def test_plan(name: str, have: dict[str, Any], want: dict[str, Any], expected: list[tuple[str, str]]) -> None:
    assert tb._plan(have, want) == expected


def _state(tmp_path: Path) -> dict[str, tuple[str, int]]:
    d = tmp_path / "tls"
    return {p.name: (p.read_text(), p.stat().st_mode & 0o7777) for p in sorted(d.iterdir())}


def test_check_then_real_then_idempotent(tmp_path: Path, run_module: RunModule) -> None:
    """community.docker's rhythm: check mode -> real -> idempotent check -> idempotent."""
    checked = run_module(tls_bundle.main, _args(tmp_path), check_mode=True)
    assert checked["changed"] and checked["files"] == {
        "dir": "create",
        "privkey": "write",
        "fullchain": "write",
        "record": "write",
    }
    assert not (tmp_path / "tls").exists()

    real = run_module(tls_bundle.main, _args(tmp_path))
    assert real["changed"] and real["files"] == checked["files"]
    state = _state(tmp_path)
    assert state["privkey.pem"] == (KEY + "\n", 0o600)
    assert state["fullchain.pem"] == (CERT + "\n", 0o644)
    assert json.loads(state[".pidock-tls.json"][0]) == RECORD
    assert "ca.pem" not in state
    assert (tmp_path / "tls").stat().st_mode & 0o7777 == 0o750

    assert run_module(tls_bundle.main, _args(tmp_path), check_mode=True) == {"changed": False, "files": {}}
    assert run_module(tls_bundle.main, _args(tmp_path)) == {"changed": False, "files": {}}


def test_only_what_differs_is_touched(tmp_path: Path, run_module: RunModule) -> None:
    run_module(tls_bundle.main, _args(tmp_path, ca=CA))
    key_inode = (tmp_path / "tls" / "privkey.pem").stat().st_ino
    os.chmod(tmp_path / "tls" / "fullchain.pem", 0o600)
    result = run_module(tls_bundle.main, _args(tmp_path, ca="", fullchain=CERT + "\n\n"))
    # The chain's content is the same once trimmed: only its mode is set back; the CA goes.
    assert result["files"] == {"fullchain": "attributes", "ca": "remove"}
    assert (tmp_path / "tls" / "privkey.pem").stat().st_ino == key_inode
    assert not (tmp_path / "tls" / "ca.pem").exists()
    assert (tmp_path / "tls" / "fullchain.pem").stat().st_mode & 0o7777 == 0o644


def test_record_matches_to_nice_json(tmp_path: Path, run_module: RunModule) -> None:
    """The record is byte for byte what the role wrote before (to_nice_json + newline): no change on upgrade."""
    from ansible.plugins.filter.core import to_nice_json

    run_module(tls_bundle.main, _args(tmp_path))
    assert (tmp_path / "tls" / ".pidock-tls.json").read_text() == to_nice_json(RECORD) + "\n"


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"key_mode": "rw-------"}, "key_mode"),
        ({"cert_owner": "no-such-user-pidock"}, "unknown user"),
        ({"privkey": "  "}, "must not be empty"),
    ],
)
def test_bad_input_changes_nothing(tmp_path: Path, run_module: RunModule, over: dict[str, Any], message: str) -> None:
    with pytest.raises(ModuleFailed, match=message):
        run_module(tls_bundle.main, _args(tmp_path, **over))
    assert not (tmp_path / "tls").exists()


def test_info_reads_the_bundle_and_the_bindings(
    tmp_path: Path, run_module: RunModule, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_module(tls_bundle.main, _args(tmp_path, ca=CA))

    def run_command(self: basic.AnsibleModule, argv: list[str], **_: Any) -> tuple[int, str, str]:
        assert argv[1:4] == ["-W", "-f", "${Package} ${Status}\n"]
        return 1, "python3-cryptography install ok installed\nfoo:arm64 deinstall ok config-files\n", "bar unknown"

    monkeypatch.setattr(basic.AnsibleModule, "run_command", run_command)
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", lambda self, name, required=False, **_: f"/usr/bin/{name}")
    got = run_module(
        tls_bundle_info.main, {"dir": str(tmp_path / "tls"), "packages": ["python3-cryptography", "foo", "bar"]}
    )
    assert got["privkey"] == KEY + "\n" and got["fullchain"] == CERT + "\n" and got["ca"] == CA + "\n"
    assert got["record"] == RECORD
    assert got["packages_missing"] == ["foo", "bar"]


def test_info_on_a_fresh_host(tmp_path: Path, run_module: RunModule) -> None:
    got = run_module(tls_bundle_info.main, {"dir": str(tmp_path / "none"), "renew_days": 30}, check_mode=True)
    assert got == {
        "changed": False,
        "privkey": "",
        "fullchain": "",
        "ca": "",
        "record": {},
        "packages_missing": [],
        "certificate": None,
    }


def test_info_inspects_the_live_pair_only_when_asked(tmp_path: Path, run_module: RunModule) -> None:
    """renew_days: the live leaf and key inspected (the table of tls_reissue_reasons' cases is in
    tests/unit/plugins/filter/test_tls_reissue.py); without it nothing is parsed."""
    from tls_leaf import leaf

    key, cert = leaf()
    (tmp_path / "tls").mkdir()
    (tmp_path / "tls" / "privkey.pem").write_bytes(key)
    (tmp_path / "tls" / "fullchain.pem").write_bytes(cert)
    got = run_module(tls_bundle_info.main, {"dir": str(tmp_path / "tls"), "renew_days": 30}, check_mode=True)
    assert got["certificate"]["key_matches"] is True
    assert got["certificate"]["subject_alt_name"] == ["DNS:localhost", "IP:127.0.0.1"]
    # 3650 days left: still valid in 3600 days, not in 3700.
    assert got["certificate"]["valid_at"] == {"renew": True}
    got = run_module(tls_bundle_info.main, {"dir": str(tmp_path / "tls"), "renew_days": 3700}, check_mode=True)
    assert got["certificate"]["valid_at"] == {"renew": False}
    got = run_module(tls_bundle_info.main, {"dir": str(tmp_path / "tls")}, check_mode=True)
    assert got["certificate"] is None


@pytest.mark.parametrize(
    ("text", "record"), [("", {}), ("{broken", {}), ("[1]", {}), ('{"mode": "acme"}', {"mode": "acme"})]
)
def test_record_parsing(text: str, record: dict[str, Any]) -> None:
    assert tb._record(tb._Have(text.encode())) == record


@pytest.mark.parametrize("missing", [{"privkey": ""}, {"fullchain": ""}, {"privkey": "", "fullchain": ""}])
def test_check_mode_predicts_a_write_when_the_certificate_is_not_known_yet(
    tmp_path: Path, run_module: RunModule, missing: dict[str, Any]
) -> None:
    """ACME under --check: no certificate yet, so the bundle will be written; nothing changes now."""
    res = run_module(tls_bundle.main, _args(tmp_path, **missing), check_mode=True)
    assert res["changed"] is True
    assert all(res["files"][part] == "write" for part in missing)
    assert not (tmp_path / "tls").exists()
