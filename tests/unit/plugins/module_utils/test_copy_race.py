"""The copy never reads outside its source tree, whatever the tree's owner swaps between scan and copy.

The app user owns the source tree; root copies it. A directory swapped for a symlink (or a file
for another file, or for a symlink) after the scan must make the copy fail loudly, with nothing
from outside the tree in the target.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from ansible_collections.pidock.stack.plugins.module_utils import _tree_copier as copier

SECRET = b"root-only secret\n"


def _swap_dir_for_link(src: Path, outside: Path) -> None:
    shutil.rmtree(src / "sub")
    os.symlink(outside, src / "sub")


def _swap_file_for_link(src: Path, outside: Path) -> None:
    (src / "sub" / "photo.jpg").unlink()
    os.symlink(outside / "photo.jpg", src / "sub" / "photo.jpg")


def _swap_file_for_hardlink(src: Path, outside: Path) -> None:
    # possible where fs.protected_hardlinks is off: another inode, not the one the scan saw
    (src / "sub" / "photo.jpg").unlink()
    os.link(outside / "photo.jpg", src / "sub" / "photo.jpg")


def _swap_parent_dir_for_link(src: Path, outside: Path) -> None:
    (outside / "deep").mkdir()
    (outside / "deep" / "photo.jpg").write_bytes(SECRET)
    shutil.rmtree(src / "sub")
    os.symlink(outside, src / "sub")


SWAPS: list[tuple[str, Callable[[Path, Path], None], str]] = [
    ("directory becomes a symlink out of the tree", _swap_dir_for_link, "sub/photo.jpg"),
    ("file becomes a symlink out of the tree", _swap_file_for_link, "sub/photo.jpg"),
    ("file becomes a hardlink to an outside file", _swap_file_for_hardlink, "sub/photo.jpg"),
    ("parent of a deeper file becomes a symlink", _swap_parent_dir_for_link, "sub/deep/photo.jpg"),
]


@pytest.mark.parametrize(("name", "swap", "victim"), SWAPS, ids=[s[0] for s in SWAPS])
@pytest.mark.parametrize("jobs", [1, 3])
def test_swap_between_scan_and_copy_fails_and_copies_nothing_from_outside(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    swap: Callable[[Path, Path], None],
    victim: str,
    jobs: int,
) -> None:
    src, dst, outside = tmp_path / "src", tmp_path / "dst", tmp_path / "outside"
    (src / "sub" / "deep").mkdir(parents=True)
    (src / "sub" / "photo.jpg").write_bytes(b"the app's photo\n")
    (src / "sub" / "deep" / "photo.jpg").write_bytes(b"a deeper photo\n")
    (src / "top.txt").write_bytes(b"top\n")
    outside.mkdir()
    (outside / "photo.jpg").write_bytes(SECRET)
    os.chmod(outside / "photo.jpg", 0o600)

    real_scan = copier._scan

    def scan_then_swap(*args: object, **kwargs: object) -> object:
        result = real_scan(*args, **kwargs)  # type: ignore[arg-type]
        swap(src, outside)
        return result

    monkeypatch.setattr(copier, "_scan", scan_then_swap)
    run = copier._TreeCopier(str(src), str(dst), jobs=jobs)
    with pytest.raises(copier._CopyError, match="changed during the copy"):
        run.run()
    for top, _dirs, files in os.walk(dst):
        for file in files:
            assert Path(top, file).read_bytes() != SECRET, f"{name}: {file} holds the outside file"
    assert not (dst / victim).exists() or (dst / victim).read_bytes() != SECRET


def test_unswapped_tree_still_copies(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    (src / "a" / "b").mkdir(parents=True)
    (src / "a" / "b" / "f").write_bytes(b"x" * 10)
    os.symlink("b/f", src / "a" / "link")
    _stats, comparison = copier._TreeCopier(str(src), str(dst)).run()
    assert comparison is not None and comparison["equal"] is True
    assert (dst / "a" / "b" / "f").read_bytes() == b"x" * 10
    assert os.readlink(dst / "a" / "link") == "b/f"


def test_walk_refuses_a_directory_swapped_while_it_runs(tmp_path: Path) -> None:
    """The scan itself lists a directory only through a descriptor that is the inode its parent listed."""
    src, outside = tmp_path / "src", tmp_path / "outside"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "mine").write_bytes(b"mine")
    outside.mkdir()
    (outside / "secret").write_bytes(SECRET)
    seen: list[bytes] = []
    with pytest.raises(OSError, match="no longer what the scan saw"):
        for rel, _st in copier._walk(os.fsencode(src), []):
            seen.append(rel)
            if rel == b"sub":
                shutil.rmtree(src / "sub")
                os.symlink(outside, src / "sub")
    assert b"sub/secret" not in seen
