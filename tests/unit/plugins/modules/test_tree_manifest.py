"""Unit tests for the tree_manifest module."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest
from ansible_collections.pidock.stack.plugins.modules import tree_manifest
from conftest import ModuleFailed, RunModule


def _build(root: Path) -> Path:
    """A tree with the awkward cases: spaces, non-ASCII and non-UTF-8 names, links of every kind, empty dirs."""
    root.mkdir()
    (root / "plain.txt").write_bytes(b"plain\n")
    (root / "with space").mkdir()
    (root / "with space" / "Käse & Brot.jpg").write_bytes(b"\xff\xd8 jpeg " * 100)
    (root / "日本語").mkdir()
    (root / "日本語" / "写真.png").write_bytes(b"png" * 10)
    os.chmod(root / "日本語" / "写真.png", 0o600)
    (root / "empty dir").mkdir()
    os.symlink("plain.txt", root / "rel-link")
    os.symlink("/etc/hostname", root / "abs-link")
    os.symlink("does/not/exist", root / "dangling")
    os.symlink("with space", root / "dir-link")
    os.link(root / "plain.txt", root / "with space" / "hard copy.txt")
    with open(os.path.join(os.fsencode(root), b"latin1-\xe9.bin"), "wb") as handle:
        handle.write(b"latin")
    return root


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, symlinks=True)
    # copytree does not keep hardlinks; restore the group as rsync -H would
    os.unlink(dst / "with space" / "hard copy.txt")
    os.link(dst / "plain.txt", dst / "with space" / "hard copy.txt")
    return dst


def _entries(result: dict) -> dict[str, dict]:
    return {e["path"]: e for e in result["manifest"]}


def test_records_every_kind_of_entry(tmp_path: Path, run_module: RunModule) -> None:
    root = _build(tmp_path / "src")
    result = run_module(tree_manifest.main, {"path": str(root), "return_entries": True})
    entries = _entries(result)
    assert result["changed"] is False
    assert entries["rel-link"] == {"path": "rel-link", "type": "symlink", "mode": "0777", "target": "plain.txt"}
    assert entries["abs-link"]["target"] == "/etc/hostname"
    assert entries["dangling"]["target"] == "does/not/exist"
    assert entries["dir-link"]["type"] == "symlink"  # not followed
    assert "dir-link/hard copy.txt" not in entries
    assert entries["empty dir"]["type"] == "dir"
    assert entries["日本語/写真.png"]["mode"] == "0600"
    assert entries["with space/Käse & Brot.jpg"]["size"] == 800
    assert entries["plain.txt"]["link"] == entries["with space/hard copy.txt"]["link"] == "plain.txt"
    odd = entries["latin1-\\xe9.bin"]
    assert odd["path_b64"] == "bGF0aW4xLekuYmlu"
    assert result["counts"] == {"file": 5, "dir": 4, "symlink": 4, "other": 0, "hardlink_groups": 1}
    assert result["total_bytes"] == 6 + 800 + 30 + 6 + 5


def test_sha256_is_the_real_one(tmp_path: Path, run_module: RunModule) -> None:
    root = _build(tmp_path / "src")
    entries = _entries(run_module(tree_manifest.main, {"path": str(root), "return_entries": True}))
    assert entries["plain.txt"]["sha256"] == hashlib.sha256(b"plain\n").hexdigest()


@pytest.mark.parametrize("jobs", [1, 4])
def test_copy_compares_equal_and_digest_is_stable(tmp_path: Path, run_module: RunModule, jobs: int) -> None:
    src = _build(tmp_path / "src")
    dst = _copy(src, tmp_path / "dst")
    a = run_module(tree_manifest.main, {"path": str(src), "compare_to": str(dst), "jobs": jobs})
    assert a["equal"] is True, a["differences"]
    assert a["difference_count"] == 0
    b = run_module(tree_manifest.main, {"path": str(dst)})
    assert a["digest"] == b["digest"]


def _break_hash(dst: Path) -> None:
    (dst / "with space" / "Käse & Brot.jpg").write_bytes(b"\xff\xd8 JPEG " * 100)


def _remove(dst: Path) -> None:
    os.unlink(dst / "日本語" / "写真.png")


def _add(dst: Path) -> None:
    (dst / "extra file").write_text("x")


def _retarget(dst: Path) -> None:
    os.unlink(dst / "rel-link")
    os.symlink("with space", dst / "rel-link")


def _chmod(dst: Path) -> None:
    os.chmod(dst / "plain.txt", 0o600)


def _unlink_hardlink(dst: Path) -> None:
    os.unlink(dst / "with space" / "hard copy.txt")
    shutil.copyfile(dst / "plain.txt", dst / "with space" / "hard copy.txt")


def _file_to_symlink(dst: Path) -> None:
    os.unlink(dst / "plain.txt")
    os.symlink("with space/hard copy.txt", dst / "plain.txt")


@pytest.mark.parametrize(
    ("mutate", "path", "kind", "fields"),
    [
        (_break_hash, "with space/Käse & Brot.jpg", "changed", ["sha256"]),
        (_remove, "日本語/写真.png", "missing", None),
        (_add, "extra file", "extra", None),
        (_retarget, "rel-link", "changed", ["target"]),
        (_chmod, "plain.txt", "changed", ["mode"]),
        (_unlink_hardlink, "with space/hard copy.txt", "changed", ["link"]),
        (_file_to_symlink, "plain.txt", "changed", ["type", "size", "target", "mode", "link"]),
    ],
    ids=["content", "missing", "extra", "symlink-target", "mode", "hardlink", "type"],
)
def test_differences_are_found(
    tmp_path: Path, run_module: RunModule, mutate, path: str, kind: str, fields: list[str] | None
) -> None:
    src = _build(tmp_path / "src")
    dst = _copy(src, tmp_path / "dst")
    mutate(dst)
    result = run_module(tree_manifest.main, {"path": str(src), "compare_to": str(dst)})
    assert result["equal"] is False
    found = {d["path"]: d for d in result["differences"]}
    assert found[path]["kind"] == kind
    if fields is not None:
        assert found[path]["fields"] == fields


def test_fail_on_difference(tmp_path: Path, run_module: RunModule) -> None:
    src = _build(tmp_path / "src")
    dst = _copy(src, tmp_path / "dst")
    _add(dst)
    with pytest.raises(ModuleFailed, match="1 extra") as failed:
        run_module(tree_manifest.main, {"path": str(src), "compare_to": str(dst), "fail_on_difference": True})
    assert failed.value.result["difference_counts"]["extra"] == 1


def test_dest_written_atomically_then_idempotent_and_check_mode(tmp_path: Path, run_module: RunModule) -> None:
    src = _build(tmp_path / "src")
    dest = tmp_path / "out" / "m.json"
    dest.parent.mkdir()
    args = {"path": str(src), "dest": str(dest)}

    predicted = run_module(tree_manifest.main, args, check_mode=True)
    assert predicted["changed"] is True
    assert not dest.exists()

    written = run_module(tree_manifest.main, args)
    assert written["changed"] is True
    data = json.loads(dest.read_text(encoding="utf-8"))
    assert data["counts"]["file"] == 5
    assert oct(dest.stat().st_mode & 0o777) == "0o644"
    assert [p.name for p in dest.parent.iterdir()] == ["m.json"]  # no temp file left

    assert run_module(tree_manifest.main, args, check_mode=True)["changed"] is False
    assert run_module(tree_manifest.main, args)["changed"] is False

    (src / "new").write_text("n")
    assert run_module(tree_manifest.main, args, check_mode=True)["changed"] is True
    assert "new" not in dest.read_text(encoding="utf-8")


def test_diff_mode_shows_manifest_text(tmp_path: Path, run_module: RunModule) -> None:
    src = _build(tmp_path / "src")
    dest = tmp_path / "m.json"
    result = run_module(tree_manifest.main, {"path": str(src), "dest": str(dest), "_ansible_diff": True})
    assert result["diff"]["before"] == ""
    assert '"path": "plain.txt"' in result["diff"]["after"]


def test_compare_to_manifest_file(tmp_path: Path, run_module: RunModule) -> None:
    src = _build(tmp_path / "src")
    dest = tmp_path / "m.json"
    run_module(tree_manifest.main, {"path": str(src), "dest": str(dest)})
    dst = _copy(src, tmp_path / "dst")
    assert run_module(tree_manifest.main, {"path": str(dst), "compare_to": str(dest)})["equal"] is True
    _break_hash(dst)
    result = run_module(tree_manifest.main, {"path": str(dst), "compare_to": str(dest)})
    assert result["equal"] is False
    assert result["differences"][0]["source"]["sha256"] != result["differences"][0]["target"]["sha256"]


def test_non_utf8_name_round_trips_through_manifest_file(tmp_path: Path, run_module: RunModule) -> None:
    src = _build(tmp_path / "src")
    dest = tmp_path / "m.json"
    run_module(tree_manifest.main, {"path": str(src), "dest": str(dest)})
    dst = _copy(src, tmp_path / "dst")
    os.rename(os.path.join(os.fsencode(dst), b"latin1-\xe9.bin"), os.path.join(os.fsencode(dst), b"latin1-\xe8.bin"))
    result = run_module(tree_manifest.main, {"path": str(dst), "compare_to": str(dest)})
    kinds = sorted((d["kind"], d["path_b64"]) for d in result["differences"])
    # path (the copy) has \xe8, the recorded source \xe9
    assert kinds == [("extra", "bGF0aW4xLekuYmlu"), ("missing", "bGF0aW4xLeguYmlu")]


@pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")
@pytest.mark.parametrize(
    ("uid_map", "equal"),
    [({}, False), ({"*": 1000}, True), ({str(os.geteuid()): 1000}, True), ({"4242": 1000}, False)],
)
def test_uid_map_makes_a_chowned_copy_equal(tmp_path: Path, run_module: RunModule, uid_map: dict, equal: bool) -> None:
    src = _build(tmp_path / "src")
    dst = _copy(src, tmp_path / "dst")
    for base, dirs, files in os.walk(dst):
        for name in dirs + files:
            os.chown(os.path.join(base, name), 1000, 1000, follow_symlinks=False)
    os.chown(dst, 1000, 1000)
    args = {
        "path": str(src),
        "compare_to": str(dst),
        "ownership": True,
        "uid_map": uid_map,
        "gid_map": {"*": 1000},
    }
    assert run_module(tree_manifest.main, args)["equal"] is equal


def test_exclude_and_checksum_off(tmp_path: Path, run_module: RunModule) -> None:
    src = _build(tmp_path / "src")
    args = {"path": str(src), "exclude": ["日本語", "*.bin"], "checksum": False, "return_entries": True}
    result = run_module(tree_manifest.main, args)
    entries = _entries(result)
    assert "日本語/写真.png" not in entries
    assert "latin1-\\xe9.bin" not in entries
    assert all("sha256" not in e for e in entries.values())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"path": "/nonexistent/pidock"}, "cannot read"),
        ({"compare_to": "/nonexistent/pidock.json"}, "cannot read compare_to"),
        ({"uid_map": {"*": "nobody"}}, "not a number"),
    ],
)
def test_errors(tmp_path: Path, run_module: RunModule, args: dict, message: str) -> None:
    src = _build(tmp_path / "src")
    with pytest.raises(ModuleFailed, match=message):
        run_module(tree_manifest.main, {"path": str(src), **args})


def _with_big_file(root: Path) -> int:
    (root / "big.bin").write_bytes(os.urandom(5 * 1024 * 1024 + 3))
    return (root / "big.bin").stat().st_size


@pytest.mark.parametrize("jobs", [1, 3])
def test_progress_while_hashing(tmp_path: Path, run_module: RunModule, progress: list[dict], jobs: int) -> None:
    root = _build(tmp_path / "src")
    big = _with_big_file(root)
    path = tmp_path / "progress.json"
    result = run_module(tree_manifest.main, {"path": str(root), "jobs": jobs, "progress_file": str(path)})

    assert [r["phase"] for r in progress][:1] == ["scan"]
    hashing = [r for r in progress if r["phase"] == "hash"]
    assert {(r["files_total"], r["bytes_total"]) for r in hashing} == {
        (result["counts"]["file"], result["total_bytes"])
    }
    during = [r["bytes_done"] for r in hashing if 0 < r["bytes_done"] < big]
    assert len(during) >= 3 and during == sorted(during)
    final = json.loads(path.read_text())
    assert final["done"] is True and final["phase"] == "hash"
    assert final["bytes_done"] == final["bytes_total"] == result["total_bytes"]
    assert final["files_done"] == final["files_total"] == result["counts"]["file"]


def test_progress_reads_a_compare_to_directory_as_verify(
    tmp_path: Path, run_module: RunModule, progress: list[dict]
) -> None:
    src = _build(tmp_path / "src")
    _with_big_file(src)
    dst = _copy(src, tmp_path / "dst")
    path = tmp_path / "progress.json"
    result = run_module(tree_manifest.main, {"path": str(src), "compare_to": str(dst), "progress_file": str(path)})
    assert result["equal"] is True
    phases = [r["phase"] for i, r in enumerate(progress) if i == 0 or progress[i - 1]["phase"] != r["phase"]]
    assert phases == ["scan", "hash", "scan", "verify"]
    final = json.loads(path.read_text())
    assert (final["phase"], final["done"], final["bytes_done"]) == ("verify", True, result["total_bytes"])


def test_no_progress_file_writes_nothing(tmp_path: Path, run_module: RunModule, progress: list[dict]) -> None:
    root = _build(tmp_path / "src")
    run_module(tree_manifest.main, {"path": str(root)})
    assert progress == []
