"""The one atomic write: final mode from the start, content durable, nothing left behind on failure."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest
from ansible_collections.pidock.stack.plugins.module_utils import _atomic

PLUGINS = Path(__file__).resolve().parents[4] / "plugins"


@pytest.mark.parametrize(
    ("data", "mode", "before"),
    [
        ("text é\n", 0o644, None),
        (b"\x00bytes", 0o600, b"old content that is longer"),
        ("", 0o640, b"x"),
        ("x" * (3 * 1024 * 1024), 0o600, None),
    ],
)
def test_write_atomic_replaces_with_mode(tmp_path: Path, data: str | bytes, mode: int, before: bytes | None) -> None:
    path = tmp_path / "f.json"
    if before is not None:
        path.write_bytes(before)
        os.chmod(path, 0o666)
    _atomic.write_atomic(str(path), data, mode)
    assert path.read_bytes() == (data.encode() if isinstance(data, str) else data)
    assert path.stat().st_mode & 0o7777 == mode
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.json"]


def test_temporary_file_never_has_a_wider_mode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    modes: list[int] = []
    real = os.replace

    def spy(src: str, dst: str) -> None:
        modes.append(os.stat(src).st_mode & 0o777)
        real(src, dst)

    monkeypatch.setattr(_atomic.os, "replace", spy)
    _atomic.write_atomic(str(tmp_path / "secret"), "pw", 0o600)
    assert modes == [0o600]


def test_failure_leaves_destination_and_no_temporary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "ledger.json"
    path.write_text("old")

    def broken(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(_atomic.os, "fsync", broken)
    with pytest.raises(OSError, match="No space"):
        _atomic.write_atomic(str(path), "new", 0o600)
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["ledger.json"]


def test_missing_directory_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        _atomic.write_atomic(str(tmp_path / "nope" / "f"), "x")


def test_no_other_plugin_writes_through_its_own_temporary_file() -> None:
    """One helper for one job: mkstemp (a hand-made atomic write) appears only in _atomic.py."""
    offenders = []
    for path in sorted(PLUGINS.rglob("*.py")):
        if path.name == "_atomic.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in ("mkstemp", "NamedTemporaryFile", "atomic_move"):
                offenders.append(f"{path.relative_to(PLUGINS)}:{node.lineno} {node.attr}")
    assert offenders == []
