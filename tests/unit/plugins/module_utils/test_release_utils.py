"""Unit tests for plugins/module_utils/_release.py."""

from __future__ import annotations

import json
import os

import pytest
from ansible_collections.pidock.stack.plugins.module_utils import _release as r


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("v1", "v1"),
        ("v2 (hotfix)", "v2-hotfix"),
        ("2026.11.21+build/7", "2026.11.21-build-7"),
        ("///", "release"),
        ("x" * 60, "x" * 40),
    ],
)
def test_slug(version: str, expected: str) -> None:
    assert r.slug(version) == expected


def test_release_id_is_deterministic_and_depends_on_both_inputs() -> None:
    h1 = r.config_hash_of({"compose.yml": "a", ".env": "b"}, {"app": {"id": "sha256:1"}})
    h1_again = r.config_hash_of({".env": "b", "compose.yml": "a"}, {"app": {"id": "sha256:1"}})
    h2 = r.config_hash_of({"compose.yml": "a", ".env": "c"}, {"app": {"id": "sha256:1"}})
    h3 = r.config_hash_of({"compose.yml": "a", ".env": "b"}, {"app": {"id": "sha256:2"}})
    assert h1 == h1_again
    assert len({h1, h2, h3}) == 3
    assert r.release_id_for("v1", h1) == r.release_id_for("v1", h1_again) == f"v1-{h1[:12]}"
    assert r.release_id_for("v1", h1) != r.release_id_for("v2", h1)


@pytest.mark.parametrize("bad", ["", "xyz", "12345", "g" * 64])
def test_release_id_rejects_non_hex_hash(bad: str) -> None:
    with pytest.raises(r.ReleaseError):
        r.release_id_for("v1", bad)


@pytest.mark.parametrize("name", ["../x", "a/b", ".", "..", "release.json", "", "a b"])
def test_file_names_are_plain(name: str) -> None:
    with pytest.raises(r.ReleaseError):
        r.check_file_name(name)


@pytest.mark.parametrize("release_id", ["../etc", "a/b", "", ".hidden", "x" * 90])
def test_release_ids_are_checked(release_id: str) -> None:
    with pytest.raises(r.ReleaseError):
        r.check_release_id(release_id)


def _meta(release_id: str, epoch: float, images: dict | None = None) -> dict:
    return {"id": release_id, "created_epoch": epoch, "images": images or {}}


@pytest.mark.parametrize(
    ("keep", "protected", "kept", "removed"),
    [
        (2, [], ["r4", "r5"], ["r1", "r2", "r3"]),
        (2, ["r1"], ["r1", "r4", "r5"], ["r2", "r3"]),
        (2, ["r5", "r2"], ["r2", "r4", "r5"], ["r1", "r3"]),
        (10, [], ["r1", "r2", "r3", "r4", "r5"], []),
        (1, [None, "r3"], ["r3", "r5"], ["r1", "r2", "r4"]),
    ],
)
def test_plan_prune_keeps_newest_and_protected(keep, protected, kept, removed) -> None:
    releases = [_meta(f"r{i}", i) for i in range(1, 6)]
    got_kept, got_removed, _needed, _unneeded = r.plan_prune(releases, keep, protected)
    assert got_kept == kept
    assert got_removed == removed


def test_plan_prune_never_frees_an_image_a_kept_release_needs() -> None:
    releases = [
        _meta("r1", 1, {"app": {"id": "sha256:old"}, "db": {"id": "sha256:db"}}),
        _meta("r2", 2, {"app": {"id": "sha256:mid"}, "db": {"id": "sha256:db"}}),
        _meta("r3", 3, {"app": {"id": "sha256:new"}, "db": {"id": "sha256:db"}}),
    ]
    _kept, removed, needed, unneeded = r.plan_prune(releases, 1, ["r2"])
    assert removed == ["r1"]
    assert needed == ["sha256:db", "sha256:mid", "sha256:new"]
    assert unneeded == ["sha256:old"]


def test_plan_prune_rejects_keep_zero() -> None:
    with pytest.raises(r.ReleaseError):
        r.plan_prune([], 0, [])


@pytest.mark.parametrize(
    ("holder", "age", "expected"),
    [
        (None, 0, "free"),
        ({"token": "mine"}, 10, "ours"),
        ({"token": "other"}, 10, "held"),
        ({"token": "other"}, 4000, "stale"),
        ({"token": "other", "epoch": "garbage"}, None, "stale"),
    ],
)
def test_lock_decision(holder, age, expected) -> None:
    now = 10_000.0
    if holder is not None and age is not None:
        holder = {**holder, "epoch": now - age}
    assert r.lock_decision(holder, "mine", 1800, now) == expected


def test_lock_create_is_exclusive(tmp_path) -> None:
    path = str(tmp_path / "deploy.lock")
    assert r.try_create_lock(path, {"token": "a"})
    assert not r.try_create_lock(path, {"token": "b"})
    assert json.loads((tmp_path / "deploy.lock").read_text())["token"] == "a"


def test_write_activate_and_previous(tmp_path) -> None:
    root = str(tmp_path)
    for n, outcome in ((1, "success"), (2, "success"), (3, "failed")):
        meta = r.build_metadata(f"v{n}-aaaaaaaaaaaa", f"v{n}", "a" * 64, ["compose.yml"], {}, {}, float(n))
        r.write_release(root, f"v{n}-aaaaaaaaaaaa", {"compose.yml": ("x", 0o644), ".env": ("S=1", 0o600)}, meta)
        path = r.release_path(root, f"v{n}-aaaaaaaaaaaa")
        r.write_json_atomic(os.path.join(path, r.META_FILE), r.with_outcome(meta, outcome, "", float(n)))
        r.activate(root, f"v{n}-aaaaaaaaaaaa", float(n))
    assert os.readlink(tmp_path / "current") == "releases/v3-aaaaaaaaaaaa"
    assert r.current_release(root) == "v3-aaaaaaaaaaaa"
    assert r.previous_release(root) == "v2-aaaaaaaaaaaa"
    env = tmp_path / "releases" / "v1-aaaaaaaaaaaa" / ".env"
    assert oct(env.stat().st_mode & 0o777) == "0o600"
    assert [m["id"] for m in r.list_releases(root)] == [f"v{n}-aaaaaaaaaaaa" for n in (1, 2, 3)]
    assert not [p for p in os.listdir(tmp_path / "releases") if p.startswith(".")]
    # a failed release is never "previous"
    r.activate(root, "v2-aaaaaaaaaaaa", 4.0)
    assert r.previous_release(root) == "v1-aaaaaaaaaaaa"


@pytest.mark.parametrize("outcome", ["pending", "success", "failed", "rolled_back", "interrupted"])
def test_with_outcome_accepts_every_outcome(outcome: str) -> None:
    assert r.with_outcome({"outcome": "pending"}, outcome, "note", 1.0)["outcome"] == outcome


def test_with_outcome_rejects_unknown() -> None:
    with pytest.raises(r.ReleaseError):
        r.with_outcome({}, "great", "", 0.0)


def test_audit_entry_is_one_json_line() -> None:
    line = r.audit_entry({"release": "v1-x", "outcome": "success"}, 0.0)
    assert "\n" not in line
    assert json.loads(line) == {"time": "1970-01-01T00:00:00Z", "release": "v1-x", "outcome": "success"}
