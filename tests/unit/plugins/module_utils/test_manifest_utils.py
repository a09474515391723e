"""Unit tests for plugins/module_utils/_manifest.py and _hf_cache.py helpers."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path

import pytest
from ansible_collections.pidock.stack.plugins.module_utils import _manifest as m
from ansible_collections.pidock.stack.plugins.module_utils import _tree_copier as c


@pytest.mark.parametrize(
    "content",
    [b"", b"hello\n", b"\x00" * 5000, os.urandom(3 * 1024 * 1024 + 7)],
    ids=["empty", "small", "zeros", "multi-chunk"],
)
def test_hash_file_matches_hashlib(tmp_path: Path, content: bytes) -> None:
    f = tmp_path / "f"
    f.write_bytes(content)
    assert m._hash_file(str(f)) == hashlib.sha256(content).hexdigest()


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        # `git hash-object` of these contents
        (b"", "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"),
        (b"hello\n", "ce013625030ba8dba906f756967f9e9ca394464a"),
    ],
)
def test_git_blob_sha1_is_git_hash_object(tmp_path: Path, content: bytes, expected: str) -> None:
    f = tmp_path / "f"
    f.write_bytes(content)
    assert m._git_blob_sha1(str(f)) == expected


@pytest.mark.parametrize(
    ("raw", "text", "has_b64"),
    [
        (b"plain.txt", "plain.txt", False),
        (b"with space/\xc3\xbc.jpg", "with space/ü.jpg", False),
        (b"latin1-\xe9.jpg", "latin1-\\xe9.jpg", True),
    ],
)
def test_path_text_round_trips(raw: bytes, text: str, has_b64: bool) -> None:
    got, b64 = m._text_of(raw)
    assert got == text
    assert (b64 is not None) == has_b64
    entry = {"path": got, **({"path_b64": b64} if b64 else {})}
    assert m._raw_of(json.loads(json.dumps(entry))) == raw


@pytest.mark.parametrize(
    ("value", "mapping", "expected"),
    [
        (999, {}, 999),
        (999, {"999": 1000}, 1000),
        (0, {"999": 1000}, 0),
        (0, {"999": 1000, "*": 1000}, 1000),
    ],
)
def test_map_id(value: int, mapping: dict[str, int], expected: int) -> None:
    assert m._map_id(value, mapping) == expected


def test_dumps_is_valid_stable_json(tmp_path: Path) -> None:
    (tmp_path / "a").write_text("x")
    (tmp_path / "ü b").mkdir()
    manifest = m._build_manifest(str(tmp_path))
    text = m._dumps(manifest)
    assert json.loads(text) == json.loads(json.dumps(manifest))
    assert m._dumps(json.loads(text)) == text
    assert "ü b" in text  # not \u-escaped: readable


def test_dumps_of_empty_tree_is_valid(tmp_path: Path) -> None:
    manifest = m._build_manifest(str(tmp_path), excludes=["."])
    assert json.loads(m._dumps({**manifest, "entries": []}))["entries"] == []


def test_load_rejects_foreign_json(tmp_path: Path) -> None:
    f = tmp_path / "x.json"
    f.write_text('{"entries": []}')
    with pytest.raises(ValueError, match="not a"):
        m._load(str(f))


def _entry(path: str, **fields: object) -> dict[str, object]:
    return {"path": path, "type": "file", "mode": "0644", "size": 1, "sha256": "a" * 64, **fields}


@pytest.mark.parametrize(
    ("source", "target", "expected"),
    [
        ([_entry("a")], [_entry("a")], {"missing": 0, "extra": 0, "changed": 0}),
        ([_entry("a")], [], {"missing": 1, "extra": 0, "changed": 0}),
        ([], [_entry("a")], {"missing": 0, "extra": 1, "changed": 0}),
        ([_entry("a")], [_entry("a", sha256="b" * 64)], {"missing": 0, "extra": 0, "changed": 1}),
        # ownership recorded on one side only is not a difference
        ([_entry("a", uid=0)], [_entry("a")], {"missing": 0, "extra": 0, "changed": 0}),
        ([_entry("a", uid=0)], [_entry("a", uid=1000)], {"missing": 0, "extra": 0, "changed": 1}),
        # a broken hardlink group is a difference
        ([_entry("a", link="a")], [_entry("a")], {"missing": 0, "extra": 0, "changed": 1}),
    ],
    ids=["equal", "missing", "extra", "hash", "uid-one-side", "uid", "hardlink"],
)
def test_compare_table(source: list, target: list, expected: dict[str, int]) -> None:
    result = m._compare({"entries": source}, {"entries": target})
    assert result["difference_counts"] == expected
    assert result["equal"] == (sum(expected.values()) == 0)


def test_compare_is_bounded_but_counts_all() -> None:
    source = {"entries": [_entry(f"f{i}") for i in range(50)]}
    result = m._compare(source, {"entries": []}, limit=7)
    assert result["difference_count"] == 50
    assert len(result["differences"]) == 7
    assert result["truncated"] is True


def test_compare_ignore_fields() -> None:
    result = m._compare({"entries": [_entry("a")]}, {"entries": [_entry("a", mode="0600")]}, ignore=["mode"])
    assert result["equal"] is True


@pytest.mark.parametrize("size", [0, 5, 1024 * 1024, 2 * 1024 * 1024 + 3])
def test_stream_copies_hashes_and_sets_metadata(tmp_path: Path, size: int) -> None:
    src, tmp = tmp_path / "src", tmp_path / "tmp"
    data = os.urandom(size)
    src.write_bytes(data)
    os.chmod(src, 0o640)
    os.utime(src, ns=(1_000_000_000_000_000_001, 1_200_000_000_000_000_003))
    tmp.write_bytes(b"a longer leftover of an interrupted run" * 100)
    os.chmod(tmp, 0o666)
    fd = os.open(src, os.O_RDONLY)
    try:
        digest = c._stream(fd, os.fsencode(tmp), os.stat(src), None)
    finally:
        os.close(fd)
    assert digest == hashlib.sha256(data).hexdigest()
    assert tmp.read_bytes() == data
    st = os.stat(tmp)
    assert (oct(st.st_mode & 0o7777), st.st_mtime_ns) == ("0o640", 1_200_000_000_000_000_003)


@pytest.mark.parametrize(
    ("rel", "dirs", "expected"),
    [(b"a/b/c", {b"a"}, True), (b"a/b/c", {b"a/b"}, True), (b"a", {b"a"}, False), (b"ab/c", {b"a"}, False)],
)
def test_under(rel: bytes, dirs: set[bytes], expected: bool) -> None:
    assert c._under(rel, dirs) is expected


def test_quick_match_is_size_and_mtime_of_a_regular_file(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_bytes(b"12345")
    b.write_bytes(b"abcde")
    os.utime(b, ns=(0, os.stat(a).st_mtime_ns))
    assert c._quick_match(os.stat(b), os.stat(a)) is True
    os.utime(b, ns=(0, os.stat(a).st_mtime_ns + 1))
    assert c._quick_match(os.stat(b), os.stat(a)) is False
    assert c._quick_match(os.stat(tmp_path), os.stat(tmp_path)) is False


class _Tally:
    """A stand-in meter: every advance() call, in order (the calls come from the byte loops)."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int, bool]] = []
        self.lock = threading.Lock()

    def advance(self, files: int = 0, nbytes: int = 0, read: bool = True) -> None:
        with self.lock:
            self.calls.append((files, nbytes, read))


@pytest.mark.parametrize(
    ("size", "chunks"),
    [(0, []), (5, [5]), (1024 * 1024, [1024 * 1024]), (2 * 1024 * 1024 + 3, [1024 * 1024, 1024 * 1024, 3])],
)
def test_hash_file_and_stream_advance_the_meter_per_chunk(tmp_path: Path, size: int, chunks: list[int]) -> None:
    src = tmp_path / "src"
    data = os.urandom(size)
    src.write_bytes(data)
    hashed = _Tally()
    assert m._hash_file(str(src), meter=hashed) == hashlib.sha256(data).hexdigest()
    assert hashed.calls == [(0, n, True) for n in chunks]
    streamed = _Tally()
    fd = os.open(src, os.O_RDONLY)
    try:
        assert (
            c._stream(fd, os.fsencode(tmp_path / "tmp"), os.stat(src), None, streamed)
            == hashlib.sha256(data).hexdigest()
        )
    finally:
        os.close(fd)
    assert streamed.calls == hashed.calls


@pytest.mark.parametrize("jobs", [1, 4])
def test_hash_many_counts_every_file_once(tmp_path: Path, jobs: int) -> None:
    paths = []
    for index in range(6):
        path = tmp_path / f"f{index}"
        path.write_bytes(b"x" * (index * 700_000))
        paths.append(os.fsencode(path))
    tally = _Tally()
    m._hash_many(paths, jobs, tally)
    assert sum(files for files, _n, _r in tally.calls) == 6
    assert sum(n for _f, n, _r in tally.calls) == sum(i * 700_000 for i in range(6))
