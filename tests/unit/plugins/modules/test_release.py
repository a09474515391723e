"""Unit tests for the pidock.stack.release module: every operation, real and in check mode."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from ansible_collections.pidock.stack.plugins.modules import release
from conftest import ModuleFailed

HASH1 = "1" * 64
HASH2 = "2" * 64


def _create(run_module, root: Path, version: str, config_hash: str, check_mode: bool = False, **extra):
    args = {
        "root": str(root),
        "operation": "create",
        "version": version,
        "config_hash": config_hash,
        "files": [
            {"name": "compose.yml", "content": f"services: {{}}  # {version}\n"},
            {"name": ".env", "content": "SECRET=s3cret\n", "mode": "0600"},
        ],
        "images": {"app": {"image": "local/app:latest", "id": f"sha256:{version}"}},
    }
    args.update(extra)
    return run_module(release.main, args, check_mode=check_mode)


def _op(run_module, root: Path, operation: str, check_mode: bool = False, **args):
    return run_module(release.main, {"root": str(root), "operation": operation, **args}, check_mode=check_mode)


def test_create_check_real_idempotent(run_module, tmp_path) -> None:
    predicted = _create(run_module, tmp_path, "v1", HASH1, check_mode=True)
    assert predicted["changed"] is True
    assert predicted["release_id"] == "v1-111111111111"
    assert not (tmp_path / "releases").exists()

    created = _create(run_module, tmp_path, "v1", HASH1)
    assert created["changed"] is True
    assert created["release_id"] == predicted["release_id"]
    rdir = tmp_path / "releases" / "v1-111111111111"
    meta = json.loads((rdir / "release.json").read_text())
    assert meta["id"] == "v1-111111111111"
    assert meta["version"] == "v1"
    assert meta["config_hash"] == HASH1
    assert meta["outcome"] == "pending"
    assert meta["images"]["app"]["id"] == "sha256:v1"
    assert (rdir / ".env").stat().st_mode & 0o777 == 0o600
    assert "s3cret" not in json.dumps(created)

    assert _create(run_module, tmp_path, "v1", HASH1, check_mode=True)["changed"] is False
    assert _create(run_module, tmp_path, "v1", HASH1)["changed"] is False


def test_create_from_src_dir_hashes_content(run_module, tmp_path) -> None:
    src = tmp_path / "staging"
    src.mkdir()
    (src / "compose.yml").write_text("services: {}\n")
    (src / ".env").write_text("A=1\n")
    root = tmp_path / "root"
    first = _op(run_module, root, "create", version="v1", src_dir=str(src))
    again = _op(run_module, root, "create", version="v1", src_dir=str(src))
    (src / ".env").write_text("A=2\n")
    changed = _op(run_module, root, "create", version="v1", src_dir=str(src))
    assert first["changed"] and not again["changed"] and changed["changed"]
    assert first["release_id"] == again["release_id"] != changed["release_id"]
    assert (root / "releases" / first["release_id"] / ".env").stat().st_mode & 0o777 == 0o600


def test_activate_switches_symlink_and_tracks_previous(run_module, tmp_path) -> None:
    id1 = _create(run_module, tmp_path, "v1", HASH1)["release_id"]
    id2 = _create(run_module, tmp_path, "v2", HASH2)["release_id"]
    assert _op(run_module, tmp_path, "activate", release_id=id1)["changed"]
    predicted = _op(run_module, tmp_path, "activate", check_mode=True, release_id=id2)
    assert predicted["changed"] and predicted["current"] == id2
    assert os.readlink(tmp_path / "current") == f"releases/{id1}"
    done = _op(run_module, tmp_path, "activate", release_id=id2)
    assert done["changed"] and done["replaced"] == id1
    assert os.readlink(tmp_path / "current") == f"releases/{id2}"
    assert done["previous"] == id1
    assert not _op(run_module, tmp_path, "activate", release_id=id2)["changed"]
    back = _op(run_module, tmp_path, "activate", release_id="previous")
    assert back["release_id"] == id1
    assert os.readlink(tmp_path / "current") == f"releases/{id1}"
    history = _op(run_module, tmp_path, "history")["history"]
    assert [h["release"] for h in history] == [id1, id2, id1]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"operation": "activate", "release_id": "nope-000000000000"}, "does not exist"),
        ({"operation": "activate", "release_id": "previous"}, "no previous release"),
        ({"operation": "activate", "release_id": "../../etc"}, "invalid release id"),
        ({"operation": "create", "version": "v1", "config_hash": "zz"}, "config_hash must be hex"),
        ({"operation": "create", "version": "v1", "src_dir": "/nonexistent"}, "does not exist"),
        ({"operation": "set_outcome", "release_id": "nope-000000000000", "outcome": "failed"}, "does not exist"),
        (
            {"operation": "create", "version": "v1", "config_hash": HASH1, "files": [{"name": "../x", "content": ""}]},
            "invalid release file name",
        ),
        ({"operation": "create"}, "version"),
    ],
)
def test_bad_requests_fail_with_a_message(run_module, tmp_path, args, message) -> None:
    with pytest.raises(ModuleFailed) as failed:
        run_module(release.main, {"root": str(tmp_path), **args})
    assert message in failed.value.result["msg"]


@pytest.mark.parametrize("check_mode", [True, False])
def test_set_outcome(run_module, tmp_path, check_mode) -> None:
    rid = _create(run_module, tmp_path, "v1", HASH1)["release_id"]
    result = _op(run_module, tmp_path, "set_outcome", check_mode, release_id=rid, outcome="failed", note="gate")
    assert result["changed"]
    meta = json.loads((tmp_path / "releases" / rid / "release.json").read_text())
    assert meta["outcome"] == ("pending" if check_mode else "failed")
    if not check_mode:
        assert meta["outcome_message"] == "gate"
        again = _op(run_module, tmp_path, "set_outcome", release_id=rid, outcome="failed", note="gate")
        assert not again["changed"]


@pytest.mark.parametrize("check_mode", [True, False])
def test_prune_keeps_current_and_previous(run_module, tmp_path, check_mode) -> None:
    ids = [_create(run_module, tmp_path, f"v{n}", str(n) * 64)["release_id"] for n in range(1, 6)]
    # make creation order explicit
    for n, rid in enumerate(ids):
        path = tmp_path / "releases" / rid / "release.json"
        meta = json.loads(path.read_text())
        meta["created_epoch"] = n
        path.write_text(json.dumps(meta))
    _op(run_module, tmp_path, "activate", release_id=ids[1])
    _op(run_module, tmp_path, "activate", release_id=ids[0])
    result = _op(run_module, tmp_path, "prune", check_mode, keep=2)
    assert result["removed"] == [ids[2]]
    assert sorted(result["kept"]) == sorted([ids[0], ids[1], ids[3], ids[4]])
    assert "sha256:v3" in result["images_unneeded"]
    assert "sha256:v1" in result["images_needed"]
    assert (tmp_path / "releases" / ids[2]).exists() is check_mode


def test_lock_held_stale_and_unlock(run_module, tmp_path) -> None:
    lock = {"owner": "alice", "host": "ctl", "pid": 42}
    first = _op(run_module, tmp_path, "lock", token="t1", **lock)
    assert first["changed"]
    assert not _op(run_module, tmp_path, "lock", token="t1", **lock)["changed"]
    with pytest.raises(ModuleFailed) as failed:
        _op(run_module, tmp_path, "lock", token="t2", owner="bob", host="other", pid=7)
    assert "locked by alice@ctl pid 42" in failed.value.result["msg"]
    # a killed run left its lock behind long ago: taken over
    data = json.loads((tmp_path / "deploy.lock").read_text())
    data["epoch"] -= 4000
    (tmp_path / "deploy.lock").write_text(json.dumps(data))
    taken = _op(run_module, tmp_path, "lock", token="t2", owner="bob", host="other", pid=7, stale_after=1800)
    assert taken["changed"] and taken["taken_over"]["owner"] == "alice"
    assert json.loads((tmp_path / "deploy.lock").read_text())["token"] == "t2"
    assert not _op(run_module, tmp_path, "unlock", token="t1")["changed"]
    assert (tmp_path / "deploy.lock").exists()
    assert _op(run_module, tmp_path, "unlock", token="t2")["changed"]
    assert not (tmp_path / "deploy.lock").exists()


def test_lock_of_a_run_known_dead_is_taken_over_at_once(run_module, tmp_path) -> None:
    _op(run_module, tmp_path, "lock", token="ctl:42:100", owner="alice", host="ctl", pid=42)
    # Another token named as dead: the holder's lock stays (it is not the one named).
    with pytest.raises(ModuleFailed):
        _op(run_module, tmp_path, "lock", token="ctl:43:200", host="ctl", pid=43, take_over="ctl:41:50")
    taken = _op(run_module, tmp_path, "lock", token="ctl:43:200", host="ctl", pid=43, take_over="ctl:42:100")
    assert taken["changed"] and taken["taken_over"]["token"] == "ctl:42:100"
    assert json.loads((tmp_path / "deploy.lock").read_text())["token"] == "ctl:43:200"
    # Our own lock is ours again, whatever take_over says.
    assert not _op(run_module, tmp_path, "lock", token="ctl:43:200", take_over="ctl:43:200")["changed"]


def test_lock_check_mode_writes_nothing(run_module, tmp_path) -> None:
    assert _op(run_module, tmp_path, "lock", True, token="t1")["changed"]
    assert not (tmp_path / "deploy.lock").exists()


@pytest.mark.parametrize("check_mode", [True, False])
def test_audit_appends_json_lines(run_module, tmp_path, check_mode) -> None:
    for n in range(2):
        _op(run_module, tmp_path, "audit", check_mode, entry={"release": f"r{n}", "outcome": "success"})
    log = tmp_path / "audit.log"
    if check_mode:
        assert not log.exists()
    else:
        lines = [json.loads(x) for x in log.read_text().splitlines()]
        assert [x["release"] for x in lines] == ["r0", "r1"]


def test_list_flags_current(run_module, tmp_path) -> None:
    rid = _create(run_module, tmp_path, "v1", HASH1)["release_id"]
    _op(run_module, tmp_path, "activate", release_id=rid)
    listed = _op(run_module, tmp_path, "list")
    assert [(x["id"], x["current"], x["outcome"]) for x in listed["releases"]] == [(rid, True, "pending")]
    assert listed["changed"] is False
