"""A copy of a live tree: files the application renames away while the copy runs.

The bare-metal app writes an upload to a temporary name and renames it into place. A presync copy
taken while it serves can list such a file and find it gone a moment later, either before its lstat
(the walk) or before the copy opens it. Neither may fail a live copy (vanished='skip'); a copy of a
quiet tree (vanished='fail') still fails loudly on the second kind.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from ansible_collections.pidock.stack.plugins.module_utils import _manifest
from ansible_collections.pidock.stack.plugins.module_utils import _tree_copier as copier

TEMP = ".upload-7.bin.partial"


def _tree(src: Path) -> None:
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "photo.jpg").write_bytes(b"the app's photo\n")
    (src / "top.txt").write_bytes(b"top\n")
    (src / "sub" / TEMP).write_bytes(b"half an upload")


def _entries(manifest: dict[str, Any]) -> list[str]:
    return [e["path"] for e in manifest["entries"]]


def _remove_after_scan(monkeypatch: pytest.MonkeyPatch, victim: Path) -> None:
    real_scan = copier._scan

    def scan_then_remove(*args: Any, **kwargs: Any) -> Any:
        result = real_scan(*args, **kwargs)
        if os.fsdecode(args[0]).endswith("/src") and victim.exists():  # the source's scan, not the read-back's
            victim.unlink()
        return result

    monkeypatch.setattr(copier, "_scan", scan_then_remove)


# name, prepare(src, dst), copier options, expected: (error match or None, vanished, removed, target has TEMP)
CASES: list[tuple[str, Callable[[Path, Path], None], dict[str, Any], tuple[str | None, int, int, bool]]] = [
    ("gone before the copy opens it, live", lambda s, d: None, {"vanished": "skip"}, (None, 1, 0, False)),
    ("gone before the copy opens it, quiet tree", lambda s, d: None, {}, ("read .*partial", 0, 0, False)),
    (
        "an older copy is in the target, delete on",
        lambda s, d: copier._TreeCopier(str(s), str(d)).run(),
        {"vanished": "skip", "delete": True},
        (None, 1, 1, False),
    ),
    (
        "an older copy is in the target, delete off",
        lambda s, d: copier._TreeCopier(str(s), str(d)).run(),
        {"vanished": "skip"},
        (None, 1, 0, True),
    ),
]


@pytest.mark.parametrize(("name", "prepare", "options", "expected"), CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("jobs", [1, 3])
def test_a_file_gone_between_scan_and_copy(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    prepare: Callable[[Path, Path], None],
    options: dict[str, Any],
    expected: tuple[str | None, int, int, bool],
    jobs: int,
) -> None:
    error, vanished, removed, kept = expected
    src, dst = tmp_path / "src", tmp_path / "dst"
    _tree(src)
    prepare(src, dst)
    if (dst / "sub" / TEMP).exists():  # an older copy whose quick check fails: the copy must open the source
        (src / "sub" / TEMP).write_bytes(b"the whole upload, later")
    _remove_after_scan(monkeypatch, src / "sub" / TEMP)
    run = copier._TreeCopier(str(src), str(dst), jobs=jobs, **options)
    if error is not None:
        with pytest.raises(copier._CopyError, match=error):
            run.run()
        return
    manifest, comparison = run.run()
    assert f"sub/{TEMP}" not in _entries(manifest), name
    assert (run.stats.vanished, run.stats.removed) == (vanished, removed), name
    assert (dst / "sub" / TEMP).exists() is kept, name
    assert (dst / "sub" / "photo.jpg").read_bytes() == b"the app's photo\n"
    assert manifest["counts"]["file"] == 2
    assert comparison is not None
    assert comparison["equal"] is (not kept), comparison  # a copy kept without delete is a stray


def test_a_vanished_file_under_the_quick_check_is_left_out_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The file's copy is current, so the copy only hashes the source (no stat cache): gone then too."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    _tree(src)
    copier._TreeCopier(str(src), str(dst)).run()
    _remove_after_scan(monkeypatch, src / "sub" / TEMP)
    run = copier._TreeCopier(str(src), str(dst), vanished="skip", delete=True)
    manifest, comparison = run.run()
    assert comparison is not None and comparison["equal"] is True, comparison
    assert not (dst / "sub" / TEMP).exists()
    assert (run.stats.vanished, run.stats.removed, run.stats.files_unchanged) == (1, 1, 2)
    assert sorted(_entries(manifest)) == [".", "sub", "sub/photo.jpg", "top.txt"]


def test_a_hard_linked_file_that_vanished_still_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    _tree(src)
    os.link(src / "top.txt", src / "sub" / "same.txt")
    # the leader of the group is the smallest path, sub/same.txt
    _remove_after_scan(monkeypatch, src / "sub" / "same.txt")
    with pytest.raises(copier._CopyError, match="hard-linked"):
        copier._TreeCopier(str(src), str(dst), vanished="skip").run()


def test_bad_vanished_value_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="vanished must be fail or skip"):
        copier._TreeCopier(str(tmp_path), str(tmp_path / "x"), vanished="ignore")


def test_an_entry_gone_between_listing_and_lstat_is_left_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The walk lists a directory, then lstats each child; a child renamed in between is not there."""
    src = tmp_path / "src"
    _tree(src)
    real_scandir = os.scandir

    class Listed(contextlib.nullcontext):
        """What the walk's `with os.scandir(fd) as it` sees: the entries listed before the rename."""

    def list_then_rename(target: Any) -> Any:
        with real_scandir(target) as it:
            entries = list(it)
        if any(e.name == TEMP for e in entries):
            os.rename(src / "sub" / TEMP, src / "sub" / "upload-7.bin")
        return Listed(iter(entries))

    monkeypatch.setattr(_manifest.os, "scandir", list_then_rename)
    seen = [rel for rel, _st in _manifest._walk(os.fsencode(src), [])]
    monkeypatch.undo()
    assert b"sub/" + TEMP.encode() not in seen
    assert b"sub/photo.jpg" in seen and b"top.txt" in seen
    assert b"sub/upload-7.bin" not in seen  # renamed after the listing: the next walk finds it
