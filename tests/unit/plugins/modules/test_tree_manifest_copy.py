"""Unit tests for tree_manifest's copy mode (copy_to): copy once while hashing, read back, compare."""

from __future__ import annotations

import json
import os
import stat
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from ansible_collections.pidock.stack.plugins.module_utils import _manifest, _tree_copier
from ansible_collections.pidock.stack.plugins.modules import tree_manifest
from conftest import ModuleFailed, RunModule

ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")
LATIN1 = b"latin1-\xe9.bin"


def _tree(root: Path) -> Path:
    """Every awkward case: spaces, non-ASCII and non-UTF-8 names, links of every kind, a FIFO, odd modes."""
    root.mkdir()
    (root / "plain.txt").write_bytes(b"plain\n")
    (root / "with space").mkdir()
    (root / "with space" / "Käse & Brot.jpg").write_bytes(b"\xff\xd8 jpeg " * 100)
    (root / "日本語").mkdir()
    (root / "日本語" / "写真.png").write_bytes(os.urandom(3 * 1024 * 1024 + 11))  # several chunks
    os.chmod(root / "日本語" / "写真.png", 0o600)
    (root / "locked").mkdir()
    (root / "locked" / "inner").write_text("inner")
    os.chmod(root / "locked", 0o751)
    (root / "empty dir").mkdir()
    os.symlink("plain.txt", root / "rel-link")
    os.symlink("/etc/hostname", root / "abs-link")
    os.symlink("does/not/exist", root / "dangling")
    os.link(root / "plain.txt", root / "with space" / "hard copy.txt")
    os.link(root / "plain.txt", root / "日本語" / "third link")
    os.mkfifo(root / "a fifo")
    with open(os.path.join(os.fsencode(root), LATIN1), "wb") as handle:
        handle.write(b"latin")
    os.utime(root / "plain.txt", ns=(1_600_000_000_123_456_789, 1_600_000_000_987_654_321))
    os.utime(root / "locked", ns=(1_500_000_000_000_000_000, 1_500_000_000_000_000_001))
    return root


def _copy(run_module: RunModule, src: Path, dst: Path, check_mode: bool = False, **args: Any) -> dict[str, Any]:
    return run_module(tree_manifest.main, {"path": str(src), "copy_to": str(dst), **args}, check_mode=check_mode)


def _state(root: Path) -> dict[bytes, tuple]:
    """Everything the copy could change: type, mode, owner, size, mtime, inode, content, link target."""
    state: dict[bytes, tuple] = {}
    base = os.fsencode(root)
    for top, dirs, files in os.walk(base):
        for name in dirs + files:
            path = os.path.join(top, name)
            st = os.lstat(path)
            extra: object = None
            if stat.S_ISREG(st.st_mode):
                extra = Path(os.fsdecode(path)).read_bytes()
            elif stat.S_ISLNK(st.st_mode):
                extra = os.readlink(path)
            state[os.path.relpath(path, base)] = (st.st_mode, st.st_uid, st.st_gid, st.st_mtime_ns, st.st_ino, extra)
    return state


def _counts(result: dict[str, Any]) -> dict[str, int]:
    return {k: v for k, v in result["copy"].items() if not k.endswith("_seconds") and k != "hashes_reused"}


def _partials(root: Path) -> list[str]:
    return [top for top, dirs, _files in os.walk(root) if ".pidock-partial" in dirs]


@pytest.mark.parametrize("jobs", [1, 4])
def test_fresh_copy_is_exact_and_verified(tmp_path: Path, run_module: RunModule, jobs: int) -> None:
    src = _tree(tmp_path / "src")
    dst = tmp_path / "dst"
    result = _copy(run_module, src, dst, jobs=jobs, ownership=True)

    assert result["changed"] is True
    assert result["equal"] is True, result["differences"]
    assert _counts(result) == {
        "files_copied": 5,  # plain (leader of 3 links), Käse, 写真, inner, latin1
        "bytes_copied": 6 + 800 + 3 * 1024 * 1024 + 11 + 5 + 5,
        "files_unchanged": 0,
        "links": 2 + 3,  # two hardlinks, three symlinks
        "specials": 1,
        "dirs_created": 5,  # the root and four directories
        "removed": 0,
        "metadata_fixed": 0,
        "recopied": 0,
        "vanished": 0,
    }
    # the copy is the source, entry for entry (as an independent manifest of each side sees it)
    a = _manifest._build_manifest(str(src), ownership=True)
    b = _manifest._build_manifest(str(dst), ownership=True)
    assert a["entries"] == b["entries"]
    assert os.readlink(dst / "dangling") == "does/not/exist"
    assert os.readlink(dst / "abs-link") == "/etc/hostname"
    assert (dst / "plain.txt").stat().st_ino == (dst / "with space" / "hard copy.txt").stat().st_ino
    assert (dst / "plain.txt").stat().st_nlink == 3
    assert stat.S_ISFIFO(os.lstat(dst / "a fifo").st_mode)
    assert stat.S_IMODE((dst / "locked").stat().st_mode) == 0o751
    assert stat.S_IMODE((dst / "日本語" / "写真.png").stat().st_mode) == 0o600
    assert os.path.exists(os.path.join(os.fsencode(dst), LATIN1))
    # times travel too: files, and directories after their contents were written
    assert (dst / "plain.txt").stat().st_mtime_ns == 1_600_000_000_987_654_321
    assert (dst / "locked").stat().st_mtime_ns == 1_500_000_000_000_000_001
    for name in ("with space", "日本語", "."):
        assert (dst / name).stat().st_mtime_ns == (src / name).stat().st_mtime_ns, name
    assert _partials(dst) == []


def test_second_run_copies_nothing(tmp_path: Path, run_module: RunModule) -> None:
    src = _tree(tmp_path / "src")
    dst = tmp_path / "dst"
    _copy(run_module, src, dst, ownership=True)
    before = _state(dst)
    again = _copy(run_module, src, dst, ownership=True)
    assert again["changed"] is False
    assert again["equal"] is True
    assert _counts(again) == {**dict.fromkeys(_counts(again), 0), "files_unchanged": 7}
    assert _state(dst) == before
    assert _copy(run_module, src, dst, check_mode=True, ownership=True)["changed"] is False


def test_dest_gets_the_source_manifest_unchanged(tmp_path: Path, run_module: RunModule) -> None:
    src = _tree(tmp_path / "src")
    plain, copied = tmp_path / "plain.json", tmp_path / "copied.json"
    maps = {"ownership": True, "uid_map": {"*": 1000}, "gid_map": {"*": 1000}}
    run_module(tree_manifest.main, {"path": str(src), "dest": str(plain), **maps})
    result = _copy(run_module, src, tmp_path / "dst", dest=str(copied), **maps)
    assert copied.read_text(encoding="utf-8") == plain.read_text(encoding="utf-8")
    assert result["dest"] == str(copied)
    # and a later compare_to of the copy against it agrees
    again = run_module(
        tree_manifest.main, {"path": str(tmp_path / "dst"), "compare_to": str(copied), "ownership": True}
    )
    assert again["equal"] is (os.geteuid() == 0), again["differences"]


@ROOT_ONLY
def test_ownership_is_mapped(tmp_path: Path, run_module: RunModule) -> None:
    src = _tree(tmp_path / "src")
    dst = tmp_path / "dst"
    os.chown(src / "日本語" / "写真.png", 4242, 4343)
    maps = {"ownership": True, "uid_map": {"*": 1000, "4242": 1500}, "gid_map": {"*": 1001}}
    result = _copy(run_module, src, dst, **maps)
    assert result["equal"] is True, result["differences"]
    assert (os.lstat(dst / "rel-link").st_uid, os.lstat(dst / "rel-link").st_gid) == (1000, 1001)
    assert (os.lstat(dst / "a fifo").st_uid, os.lstat(dst / "locked").st_gid) == (1000, 1001)
    assert (os.stat(dst / "日本語" / "写真.png").st_uid, os.stat(dst).st_uid) == (1500, 1000)
    assert stat.S_IMODE((dst / "locked").stat().st_mode) == 0o751
    # the copy's owners are the mapped ones: against the unmapped source they differ
    unmapped = run_module(tree_manifest.main, {"path": str(src), "compare_to": str(dst), "ownership": True})
    assert unmapped["difference_counts"]["changed"] == unmapped["counts"]["file"] + 9  # every entry


def _delete_file(dst: Path) -> None:
    os.unlink(dst / "with space" / "Käse & Brot.jpg")


def _truncate(dst: Path) -> None:
    os.truncate(dst / "日本語" / "写真.png", 1000)


def _chmod(dst: Path) -> None:
    os.chmod(dst / "locked" / "inner", 0o666)


def _stray(dst: Path) -> None:
    (dst / "with space" / "stray.tmp").write_text("left over")
    (dst / "gone dir").mkdir()
    (dst / "gone dir" / "deep").write_text("x")


def _partial_leftover(dst: Path) -> None:
    os.unlink(dst / "日本語" / "写真.png")
    (dst / "日本語" / ".pidock-partial").mkdir(mode=0o700)
    (dst / "日本語" / ".pidock-partial" / "写真.png").write_bytes(b"half of it")
    (dst / ".pidock-partial").mkdir(mode=0o700)  # an empty one from rsync


def _same_size_same_mtime(dst: Path) -> None:
    target = dst / "with space" / "Käse & Brot.jpg"
    st = target.stat()
    target.write_bytes(b"\x00" * st.st_size)
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))


def _broken_hardlink(dst: Path) -> None:
    os.unlink(dst / "日本語" / "third link")
    (dst / "日本語" / "third link").write_bytes(b"plain\n")


def _type_changed(dst: Path) -> None:
    os.unlink(dst / "plain.txt")
    (dst / "plain.txt").mkdir()
    (dst / "plain.txt" / "inside").write_text("x")
    os.unlink(dst / "rel-link")
    os.symlink("with space", dst / "rel-link")


@pytest.mark.parametrize(
    ("damage", "delete", "expected"),
    [
        (_delete_file, False, {"files_copied": 1, "files_unchanged": 6}),
        (_truncate, False, {"files_copied": 1, "files_unchanged": 6}),
        (_chmod, False, {"metadata_fixed": 1, "files_unchanged": 7}),
        (_stray, True, {"removed": 3, "files_unchanged": 7}),
        (_partial_leftover, False, {"files_copied": 1, "files_unchanged": 6, "removed": 2}),
        (_same_size_same_mtime, False, {"recopied": 1, "files_unchanged": 7}),
        (_broken_hardlink, False, {"links": 1, "files_unchanged": 6}),
        (_type_changed, False, {"files_copied": 1, "removed": 2, "links": 3, "files_unchanged": 4}),
    ],
    ids=["deleted", "truncated", "chmod", "stray-delete", "partial-leftover", "same-size-mtime", "hardlink", "type"],
)
def test_resume_repairs_a_damaged_copy(
    tmp_path: Path, run_module: RunModule, damage: Callable[[Path], None], delete: bool, expected: dict[str, int]
) -> None:
    src = _tree(tmp_path / "src")
    dst = tmp_path / "dst"
    _copy(run_module, src, dst, ownership=True)
    damage(dst)
    os.utime(dst / "with space", ns=(1, 1))  # a directory time to put right, on every path

    predicted = _copy(run_module, src, dst, check_mode=True, ownership=True, delete=delete)
    result = _copy(run_module, src, dst, ownership=True, delete=delete)

    assert result["changed"] is True
    assert result["equal"] is True, result["differences"]
    counts = {k: v for k, v in _counts(result).items() if v and k not in ("bytes_copied", "metadata_fixed")}
    assert counts == {k: v for k, v in expected.items() if k != "metadata_fixed"}
    assert result["copy"]["metadata_fixed"] >= expected.get("metadata_fixed", 0)
    # the quick check predicted the same work (only a content check can find a same-size-same-mtime file)
    assert predicted["changed"] is True
    assert _counts(predicted) == _counts(result)
    assert "equal" not in predicted  # there was work to do: no verification claimed
    assert _manifest._build_manifest(str(src))["entries"] == _manifest._build_manifest(str(dst))["entries"]
    assert _partials(dst) == []
    assert _copy(run_module, src, dst, ownership=True, delete=delete)["changed"] is False


def test_check_mode_writes_nothing_and_predicts(tmp_path: Path, run_module: RunModule) -> None:
    src = _tree(tmp_path / "src")
    dst = tmp_path / "dst"
    dest = tmp_path / "m.json"
    predicted = _copy(run_module, src, dst, check_mode=True, dest=str(dest))
    assert not dst.exists()
    assert not dest.exists()
    assert predicted["changed"] is True
    assert "equal" not in predicted  # nothing to read back yet: no verification is claimed
    real = _copy(run_module, src, dst, dest=str(dest))
    assert _counts(predicted) == _counts(real)

    _truncate(dst)
    _stray(dst)
    before = _state(dst)
    predicted = _copy(run_module, src, dst, check_mode=True, delete=True)
    assert _state(dst) == before
    assert predicted["changed"] is True
    assert predicted["copy"]["files_copied"] == 1
    assert predicted["copy"]["removed"] == 3


def test_without_delete_strays_stay_as_extra(tmp_path: Path, run_module: RunModule) -> None:
    src = _tree(tmp_path / "src")
    dst = tmp_path / "dst"
    _copy(run_module, src, dst)
    _stray(dst)
    assert _copy(run_module, src, dst)["copy"]["metadata_fixed"] == 2  # mtimes of the root and "with space", put back
    result = _copy(run_module, src, dst)
    assert result["changed"] is False
    assert result["equal"] is False
    assert result["difference_counts"] == {"missing": 0, "extra": 3, "changed": 0}
    assert (dst / "with space" / "stray.tmp").read_text() == "left over"
    with pytest.raises(ModuleFailed, match=r"differs from its copy .*3 extra"):
        _copy(run_module, src, dst, fail_on_difference=True)


def test_excluded_paths_are_neither_copied_nor_deleted(tmp_path: Path, run_module: RunModule) -> None:
    src = _tree(tmp_path / "src")
    dst = tmp_path / "dst"
    dst.mkdir()
    (dst / "keep.log").write_text("mine")
    result = _copy(run_module, src, dst, exclude=["*.log", "日本語"], delete=True)
    assert result["equal"] is True, result["differences"]
    assert (dst / "keep.log").read_text() == "mine"
    assert not (dst / "日本語").exists()


def test_failure_names_the_path_and_keeps_the_partial_file(
    tmp_path: Path, run_module: RunModule, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = _tree(tmp_path / "src")
    dst = tmp_path / "dst"
    real_stream = _tree_copier._stream

    def half_then_fail(source: int, tmp: bytes, st: os.stat_result, *args: Any) -> str:
        if tmp.endswith("写真.png".encode()):
            with open(tmp, "wb") as handle:
                handle.write(b"first megabyte")
            raise OSError(28, "No space left on device")
        return real_stream(source, tmp, st, *args)

    monkeypatch.setattr(_tree_copier, "_stream", half_then_fail)
    with pytest.raises(ModuleFailed, match=r"copy .*日本語/写真\.png: No space left on device"):
        _copy(run_module, src, dst)
    assert (dst / "日本語" / ".pidock-partial" / "写真.png").read_bytes() == b"first megabyte"
    monkeypatch.setattr(_tree_copier, "_stream", real_stream)
    resumed = _copy(run_module, src, dst)
    assert resumed["equal"] is True
    assert resumed["copy"]["removed"] == 1  # the leftover .pidock-partial; empty ones went with the failure
    assert _partials(dst) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"copy_to": "/nonexistent/pidock/copy"}, "parent directory does not exist"),
        ({"copy_to": "/etc/hostname"}, "not a directory"),
        ({"copy_to": "/tmp", "compare_to": "/tmp"}, "mutually exclusive"),
        ({"delete": True}, "delete needs copy_to"),
        ({"copy_to": "/tmp/x", "checksum": False}, "needs checksum"),
        ({"copy_to": "SRC/with space/inside"}, "overlap"),
        ({"copy_to": "SRC/.."}, "overlap"),
    ],
)
def test_errors(tmp_path: Path, run_module: RunModule, args: dict, message: str) -> None:
    src = _tree(tmp_path / "src")
    args = {k: v.replace("SRC", str(src)) if isinstance(v, str) else v for k, v in args.items()}
    with pytest.raises(ModuleFailed, match=message):
        run_module(tree_manifest.main, {"path": str(src), **args})


def _count_reads(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Record every file the module hashes by reading it from then on."""
    read: list[bytes] = []
    real = _manifest._hash_file

    def counting(path: str | bytes, *args: Any, **kwargs: Any) -> str:
        read.append(os.fsencode(path))
        return real(path, *args, **kwargs)

    real_src = _tree_copier._TreeCopier._hash_src

    def counting_src(self: _tree_copier._TreeCopier, rel: bytes, st: os.stat_result) -> str:
        read.append(self._src(rel))
        return real_src(self, rel, st)

    monkeypatch.setattr(_manifest, "_hash_file", counting)
    monkeypatch.setattr(_tree_copier, "_hash_file", counting)
    monkeypatch.setattr(_tree_copier._TreeCopier, "_hash_src", counting_src)
    return read


def test_state_reuses_hashes_of_untouched_files(
    tmp_path: Path, run_module: RunModule, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = _tree(tmp_path / "src")
    dst = tmp_path / "dst"
    state = tmp_path / "tree.state.json"
    first = _copy(run_module, src, dst, ownership=True, stat_cache=str(state))
    assert first["equal"] is True
    assert first["copy"]["hashes_reused"] == 0
    assert state.stat().st_mode & 0o777 == 0o600
    files = first["counts"]["file"]

    read = _count_reads(monkeypatch)
    again = _copy(run_module, src, dst, ownership=True, stat_cache=str(state))
    assert again["changed"] is False
    assert again["equal"] is True
    # every file of both trees vouched for by the cache: nothing was read
    assert read == []
    assert again["copy"]["hashes_reused"] >= files
    assert again["digest"] == first["digest"]


def test_state_does_not_hide_a_copy_changed_behind_forged_size_and_mtime(tmp_path: Path, run_module: RunModule) -> None:
    src = _tree(tmp_path / "src")
    dst = tmp_path / "dst"
    state = tmp_path / "tree.state.json"
    _copy(run_module, src, dst, stat_cache=str(state))
    _same_size_same_mtime(dst)  # ctime moves: the cache no longer vouches for it

    result = _copy(run_module, src, dst, stat_cache=str(state))
    assert result["equal"] is True, result["differences"]
    assert result["copy"]["recopied"] == 1
    assert _manifest._build_manifest(str(src))["entries"] == _manifest._build_manifest(str(dst))["entries"]


def test_state_rehashes_a_changed_source(
    tmp_path: Path, run_module: RunModule, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = _tree(tmp_path / "src")
    dst = tmp_path / "dst"
    state = tmp_path / "tree.state.json"
    first = _copy(run_module, src, dst, stat_cache=str(state))
    with open(src / "locked" / "inner", "ab") as handle:
        handle.write(b"more\n")

    read = _count_reads(monkeypatch)
    result = _copy(run_module, src, dst, stat_cache=str(state))
    assert result["equal"] is True
    assert result["copy"]["files_copied"] == 1
    assert result["digest"] != first["digest"]
    # the changed file was hashed while copied; only its copy was read back
    assert read == [os.fsencode(dst / "locked" / "inner")]


def test_state_is_kept_when_the_copy_differs(tmp_path: Path, run_module: RunModule) -> None:
    src = _tree(tmp_path / "src")
    dst = tmp_path / "dst"
    state = tmp_path / "tree.state.json"
    _copy(run_module, src, dst, stat_cache=str(state))
    before = state.read_bytes()
    (dst / "stray.txt").write_text("stray")

    result = _copy(run_module, src, dst, stat_cache=str(state))
    assert result["equal"] is False
    assert state.read_bytes() == before


def test_damaged_or_foreign_state_is_an_empty_cache(tmp_path: Path, run_module: RunModule) -> None:
    src = _tree(tmp_path / "src")
    dst = tmp_path / "dst"
    state = tmp_path / "tree.state.json"
    state.write_text('{"format": "something else"}')
    result = _copy(run_module, src, dst, stat_cache=str(state))
    assert result["equal"] is True
    assert result["copy"]["hashes_reused"] == 0
    assert json.loads(state.read_text())["format"] == "pidock.tree_manifest.state/1"


def test_stat_cache_needs_copy_to(tmp_path: Path, run_module: RunModule) -> None:
    src = _tree(tmp_path / "src")
    with pytest.raises(ModuleFailed, match="stat_cache needs copy_to"):
        run_module(tree_manifest.main, {"path": str(src), "stat_cache": str(tmp_path / "s.json")})


def test_result_is_json(tmp_path: Path, run_module: RunModule) -> None:
    src = _tree(tmp_path / "src")
    result = _copy(run_module, src, tmp_path / "dst", max_differences=1)
    json.dumps(result)
    assert set(result["copy"]) >= {"files_copied", "bytes_copied", "recopied", "copy_seconds", "verify_seconds"}


def _guard_after_copy(tmp_path: Path, run_module: RunModule) -> tuple[Path, Path, Path]:
    """A verified copy and a guard file (the cutover's marker: the stack serves from dst); each test sets its time."""
    src = _tree(tmp_path / "src")
    dst = tmp_path / "dst"
    _copy(run_module, src, dst, delete=True)
    guard = tmp_path / "stack-serving"
    guard.write_text("since cutover\n")
    return src, dst, guard


@pytest.mark.parametrize(
    ("name", "change"),
    [
        ("a stray written after the guard", lambda dst: (dst / "with space" / "upload.jpg").write_bytes(b"new")),
        ("a copied file rewritten", lambda dst: (dst / "plain.txt").write_bytes(b"changed by the app")),
        ("a copied file deleted (its directory changed)", lambda dst: (dst / "locked" / "inner").unlink()),
        ("a chmod", lambda dst: os.chmod(dst / "日本語" / "写真.png", 0o644)),
    ],
)
def test_guard_refuses_to_write_over_what_changed_since(
    tmp_path: Path, run_module: RunModule, name: str, change: Callable[[Path], object]
) -> None:
    src, dst, guard = _guard_after_copy(tmp_path, run_module)
    os.utime(guard, (0, 0))  # the guard's moment: before anything below
    change(dst)
    before = _state(dst)
    with pytest.raises(ModuleFailed) as failed:
        _copy(run_module, src, dst, delete=True, guard_file=str(guard))
    assert "changed after 1970-01-01T00:00:00Z (guard_file)" in failed.value.result["msg"]
    assert "Nothing was written" in failed.value.result["msg"]
    assert _state(dst) == before, name


def test_guard_lets_an_untouched_copy_through_and_a_missing_file_means_no_guard(
    tmp_path: Path, run_module: RunModule
) -> None:
    src, dst, guard = _guard_after_copy(tmp_path, run_module)
    now = os.stat(dst).st_ctime + 60
    os.utime(guard, (now, now))  # nothing in dst changed after the guard's moment
    assert _copy(run_module, src, dst, delete=True, guard_file=str(guard))["equal"] is True
    (dst / "with space" / "upload.jpg").write_bytes(b"new")
    result = _copy(run_module, src, dst, delete=True, guard_file=str(tmp_path / "no-such-guard"))
    assert result["equal"] is True and not (dst / "with space" / "upload.jpg").exists()


def test_guard_file_needs_copy_to(tmp_path: Path, run_module: RunModule) -> None:
    src = _tree(tmp_path / "src")
    with pytest.raises(ModuleFailed, match="guard_file needs copy_to"):
        run_module(tree_manifest.main, {"path": str(src), "guard_file": str(tmp_path / "g")})


# -- progress_file --------------------------------------------------------------------------------


def _one_big_file(root: Path, size: int = 6 * 1024 * 1024 + 5) -> Path:
    root.mkdir()
    (root / "small.txt").write_bytes(b"small\n")
    (root / "big.bin").write_bytes(os.urandom(size))
    return root


def _phase(records: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [r for r in records if r["phase"] == name]


@pytest.mark.parametrize("jobs", [1, 2])
def test_progress_moves_while_a_big_file_is_copied_and_read_back(
    tmp_path: Path, run_module: RunModule, progress: list[dict[str, Any]], jobs: int
) -> None:
    src = _one_big_file(tmp_path / "src")
    size = (src / "big.bin").stat().st_size + 6
    path = tmp_path / "progress.json"
    result = _copy(run_module, src, tmp_path / "dst", jobs=jobs, progress_file=str(path))
    assert result["equal"] is True

    phases = [r["phase"] for i, r in enumerate(progress) if i == 0 or progress[i - 1]["phase"] != r["phase"]]
    assert phases == ["scan", "copy", "sync", "verify"]
    for name in ("copy", "verify"):
        records = [r for r in _phase(progress, name) if r["bytes_total"] is not None]
        assert {r["bytes_total"] for r in records} == {size}
        assert {r["files_total"] for r in records} == {2}
        during = [r["bytes_done"] for r in records if 0 < r["bytes_done"] < size]
        assert len(during) >= 4, f"{name}: the meter moved only {during} while the 6 MiB file was read"
        assert during == sorted(during)
    final = json.loads(path.read_text())
    assert final == progress[-1]
    assert final["done"] is True
    assert final["phase"] == "verify"
    assert final["bytes_done"] == final["bytes_total"] == size
    assert final["files_done"] == final["files_total"] == 2
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_progress_of_a_resumed_copy_counts_cached_hashes_as_done(
    tmp_path: Path, run_module: RunModule, progress: list[dict[str, Any]]
) -> None:
    src = _one_big_file(tmp_path / "src")
    dst, state, path = tmp_path / "dst", tmp_path / "state.json", tmp_path / "progress.json"
    _copy(run_module, src, dst, stat_cache=str(state))
    result = _copy(run_module, src, dst, stat_cache=str(state), progress_file=str(path))
    assert result["changed"] is False
    for name in ("copy", "verify"):  # records are samples: the big file's hash is counted, maybe not the small one's
        last = _phase(progress, name)[-1]
        assert last["bytes_done"] >= 6 * 1024 * 1024
        assert last["rate"] is None  # nothing was read: the stat cache vouched for every hash
    final = json.loads(path.read_text())
    assert (final["done"], final["rate"], final["bytes_done"]) == (True, None, final["bytes_total"])


def test_progress_in_check_mode(tmp_path: Path, run_module: RunModule, progress: list[dict[str, Any]]) -> None:
    src = _one_big_file(tmp_path / "src")
    path = tmp_path / "progress.json"
    result = _copy(run_module, src, tmp_path / "dst", check_mode=True, progress_file=str(path))
    assert result["changed"] is True and not (tmp_path / "dst").exists()
    copy = _phase(progress, "copy")
    assert any(0 < r["bytes_done"] < r["bytes_total"] for r in copy)  # the source is hashed to predict
    assert copy[-1]["bytes_done"] >= 6 * 1024 * 1024
    final = json.loads(path.read_text())
    assert (final["done"], final["bytes_done"]) == (True, final["bytes_total"])


def test_progress_adds_no_walk(tmp_path: Path, run_module: RunModule, monkeypatch: pytest.MonkeyPatch) -> None:
    """The totals come from the walk the copy makes anyway: no second walk of either tree."""
    src = _tree(tmp_path / "src")
    walks: list[bytes] = []
    real = _manifest._walk

    def counting(root: bytes, excludes: list[str]) -> Any:
        walks.append(root)
        return real(root, excludes)

    monkeypatch.setattr(_manifest, "_walk", counting)
    monkeypatch.setattr(_tree_copier, "_walk", counting)
    _copy(run_module, src, tmp_path / "plain")
    without = sorted(os.path.basename(w) for w in walks)
    assert without == [b"plain", b"src"]  # the source once, the copy read back once
    walks.clear()
    _copy(run_module, src, tmp_path / "metered", progress_file=str(tmp_path / "progress.json"))
    assert sorted(os.path.basename(w).replace(b"metered", b"plain") for w in walks) == without


@pytest.mark.parametrize(
    ("progress_file", "message"),
    [
        ("SRC/progress.json", "progress_file .*/src/progress.json is inside path"),
        ("DST/progress.json", "progress_file .*/dst/progress.json is inside copy_to"),
        ("TMP/missing/progress.json", "progress_file directory .*/missing does not exist"),
    ],
)
def test_progress_file_errors(tmp_path: Path, run_module: RunModule, progress_file: str, message: str) -> None:
    src = _tree(tmp_path / "src")
    (tmp_path / "dst").mkdir()
    where = {"SRC": str(src), "DST": str(tmp_path / "dst"), "TMP": str(tmp_path)}
    for key, value in where.items():
        progress_file = progress_file.replace(key, value)
    with pytest.raises(ModuleFailed, match=message):
        _copy(run_module, src, tmp_path / "dst", progress_file=progress_file)
    assert list((tmp_path / "dst").iterdir()) == []


def test_start_file_go_copies_after_waiting(tmp_path: Path, run_module: RunModule) -> None:
    """A job started ahead: it copies once its start file says go (written here by a timer)."""
    src = _tree(tmp_path / "src")
    dst = tmp_path / "dst"
    start = tmp_path / "start"
    timer = threading.Timer(0.3, lambda: start.write_text("go\n"))
    timer.start()
    result = _copy(run_module, src, dst, start_file=str(start), start_timeout=10)
    timer.join()
    assert result["start"] == "go" and result["waited"] >= 0.25
    assert "started" not in result, "async's own key: a job whose result holds it never finishes"
    assert result["changed"] is True and result["equal"] is True


@pytest.mark.parametrize("word", ["cancel", "anything"])
def test_start_file_cancel_does_nothing(tmp_path: Path, run_module: RunModule, word: str) -> None:
    src = _tree(tmp_path / "src")
    dst = tmp_path / "dst"
    (tmp_path / "start").write_text(word)
    result = _copy(run_module, src, dst, start_file=str(tmp_path / "start"), dest=str(tmp_path / "m.json"))
    assert result["start"] == "cancel" and result["changed"] is False
    assert "started" not in result
    assert not dst.exists() and not (tmp_path / "m.json").exists()


def test_start_file_missing_fails_having_done_nothing(tmp_path: Path, run_module: RunModule) -> None:
    src = _tree(tmp_path / "src")
    dst = tmp_path / "dst"
    with pytest.raises(ModuleFailed, match=r"not started, nothing done: .*start did not appear within 1 s"):
        _copy(run_module, src, dst, start_file=str(tmp_path / "start"), start_timeout=1)
    assert not dst.exists()
