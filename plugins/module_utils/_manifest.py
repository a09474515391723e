# Copyright: (c) 2026, pidock.stack maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Directory-tree manifests: SHA-256 per file, symlink targets, modes, ownership, hardlink groups.

Private helpers for the ``tree_manifest`` module (and the ``hf_cache_check`` module's hashing). The copy
mode lives in _tree_copier, its stat cache in _stat_cache.
Paths are handled as bytes throughout, so any name the filesystem holds round-trips: in JSON a
path is its UTF-8 text when it decodes, otherwise a ``\\xNN``-escaped text plus ``path_b64``
carrying the exact bytes.
"""

from __future__ import annotations

import base64
import errno
import fnmatch
import hashlib
import json
import os
import stat
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from ansible_collections.pidock.stack.plugins.module_utils._progress import ProgressMeter
from ansible_collections.pidock.stack.plugins.module_utils._stat_cache import _cached, _StatKey

_FORMAT = "pidock.tree_manifest/1"
_CHUNK = 1024 * 1024
_FIELDS = ("type", "size", "sha256", "target", "mode", "uid", "gid", "link")


@dataclass
class _Scan:
    """One walk of a tree: manifest records without hashes, the raw paths and lstat results alongside."""

    root: bytes
    records: list[dict[str, Any]] = field(default_factory=list)
    raws: list[bytes] = field(default_factory=list)
    stats: list[os.stat_result] = field(default_factory=list)
    files: list[int] = field(default_factory=list)
    inodes: dict[tuple[int, int], list[int]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=lambda: {"file": 0, "dir": 0, "symlink": 0, "other": 0})
    total: int = 0


def _hash_file(
    path: str | bytes, algorithm: str = "sha256", prefix: bytes = b"", meter: ProgressMeter | None = None
) -> str:
    """Stream a file through a hash in 1 MiB chunks (hashlib releases the GIL on large updates).

    With ``meter``, each chunk read advances it by its bytes (the caller counts the file when done).
    """
    digest = hashlib.new(algorithm)
    if prefix:
        digest.update(prefix)
    with open(path, "rb", buffering=0) as handle:
        buf = bytearray(_CHUNK)
        view = memoryview(buf)
        while True:
            count = handle.readinto(buf)
            if not count:
                break
            digest.update(view[:count])
            if meter is not None:
                meter.advance(nbytes=count)
    return digest.hexdigest()


def _hash_fd(fd: int, meter: ProgressMeter | None = None) -> str:
    """SHA-256 of everything readable from ``fd`` (read from its current offset, 1 MiB at a time)."""
    digest = hashlib.sha256()
    buf = bytearray(_CHUNK)
    view = memoryview(buf)
    while True:
        count = os.readv(fd, [buf])
        if not count:
            break
        digest.update(view[:count])
        if meter is not None:
            meter.advance(nbytes=count)
    return digest.hexdigest()


def _git_blob_sha1(path: str | bytes) -> str:
    """The git blob id of a file: sha1(b"blob <size>\\0" + content)."""
    size = os.stat(path).st_size
    return _hash_file(path, "sha1", b"blob %d\0" % size)


def _text_of(raw: bytes) -> tuple[str, str | None]:
    """JSON-safe text of a path and, when it is not valid UTF-8, its exact bytes in base64."""
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError:
        return raw.decode("utf-8", "backslashreplace"), base64.b64encode(raw).decode("ascii")


def _show(path: bytes) -> str:
    """A path as text for messages."""
    return _text_of(path)[0]


def _raw_of(entry: dict[str, Any]) -> bytes:
    """The exact bytes of an entry's path (inverse of _text_of)."""
    if entry.get("path_b64"):
        return base64.b64decode(entry["path_b64"])
    return entry["path"].encode("utf-8")


def _map_id(value: int, mapping: dict[str, int] | None) -> int:
    if not mapping:
        return value
    if str(value) in mapping:
        return int(mapping[str(value)])
    if "*" in mapping:
        return int(mapping["*"])
    return value


def _walk(root: bytes, excludes: list[str]) -> Iterator[tuple[bytes, os.stat_result]]:
    """Yield (relative path, lstat) for the root ('.') and everything below it, never following links.

    Each directory is listed through a descriptor opened component by component with O_NOFOLLOW
    (see _open_below) and checked against the inode its parent's listing reported, so a directory
    swapped for a symlink while the walk runs fails the walk instead of listing another tree. An entry
    gone between the listing and its lstat (a writer renaming its temporary file) is left out.
    """
    yield b".", os.lstat(root)
    stack: list[tuple[bytes, os.stat_result | None]] = [(b"", None)]
    while stack:
        rel_dir, expect = stack.pop()
        fd = _open_below(root, rel_dir, directory=True, expect=expect)
        try:
            with os.scandir(fd) as it:
                children = sorted(it, key=lambda e: e.name)
            found: list[tuple[bytes, os.stat_result]] = []
            for child in children:
                name = os.fsencode(child.name)
                rel = os.path.join(rel_dir, name) if rel_dir else name
                if excludes and _excluded(rel, excludes):
                    continue
                try:
                    found.append((rel, os.stat(name, dir_fd=fd, follow_symlinks=False)))
                except FileNotFoundError:
                    continue  # removed or renamed since the listing: as if listed a moment later
        finally:
            os.close(fd)
        for rel, st in found:
            yield rel, st
            if stat.S_ISDIR(st.st_mode):
                stack.append((rel, st))


class _Swapped(OSError):
    """An entry is not what the scan saw: a symlink, another type or another inode took its place."""


_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC  # NONBLOCK: a FIFO put there never hangs


def _open_below(root: bytes, rel: bytes, *, directory: bool = False, expect: os.stat_result | None = None) -> int:
    """Open ``root/rel`` read-only without following a symlink in any component below ``root``.

    Every component is opened relative to its parent's descriptor with O_NOFOLLOW, so a component
    swapped for a symlink fails with ELOOP (or ENOTDIR) instead of leading out of the tree. With
    ``expect`` the opened inode must be the one the scan saw (same device, inode and type).
    Raises _Swapped when the entry is not what was expected; other OSErrors pass through.
    """
    parts = [p for p in rel.split(b"/") if p and p != b"."]
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for index, name in enumerate(parts):
            last = index == len(parts) - 1
            flags = _DIR_FLAGS if (directory or not last) else _FILE_FLAGS
            try:
                nxt = os.open(name, flags, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.ENXIO):
                    where = os.path.join(root, *parts[: index + 1])
                    message = f"{_show(where)} is no longer what the scan saw ({exc.strerror})"
                    raise _Swapped(exc.errno, message) from exc
                raise
            os.close(fd)
            fd = nxt
        if expect is not None:
            st = os.fstat(fd)
            if (st.st_dev, st.st_ino, stat.S_IFMT(st.st_mode)) != (
                expect.st_dev,
                expect.st_ino,
                stat.S_IFMT(expect.st_mode),
            ):
                raise _Swapped(errno.ESTALE, f"{_show(os.path.join(root, rel))} was replaced after the scan")
        return fd
    except BaseException:
        os.close(fd)
        raise


def _excluded(rel: bytes, patterns: list[str]) -> bool:
    text = rel.decode("utf-8", "surrogateescape")
    base = text.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatchcase(text, p) or fnmatch.fnmatchcase(base, p) for p in patterns)


def _type_of(mode: int) -> str:
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "dir"
    if stat.S_ISLNK(mode):
        return "symlink"
    if stat.S_ISFIFO(mode):
        return "fifo"
    if stat.S_ISSOCK(mode):
        return "socket"
    return "device"


def _scan(
    root: bytes,
    patterns: list[str],
    *,
    ownership: bool,
    uid_map: dict[str, int] | None,
    gid_map: dict[str, int] | None,
    meter: ProgressMeter | None = None,
) -> _Scan:
    """Walk ``root`` once and record every entry except file hashes (filled in by the caller).

    With ``meter``, each regular file seen advances it by one file and its size (not read, so no rate).
    """
    scan = _Scan(root=root)
    for rel, st in _walk(root, patterns):
        kind = _type_of(st.st_mode)
        text, b64 = _text_of(rel)
        rec: dict[str, Any] = {"path": text}
        if b64:
            rec["path_b64"] = b64
        rec["type"] = kind
        rec["mode"] = f"{stat.S_IMODE(st.st_mode):04o}"
        if ownership:
            rec["uid"] = _map_id(st.st_uid, uid_map)
            rec["gid"] = _map_id(st.st_gid, gid_map)
        if kind == "file":
            rec["size"] = st.st_size
            scan.total += st.st_size
            scan.files.append(len(scan.records))
            if st.st_nlink > 1:
                scan.inodes.setdefault((st.st_dev, st.st_ino), []).append(len(scan.records))
            if meter is not None:
                meter.advance(files=1, nbytes=st.st_size, read=False)
        elif kind == "symlink":
            target = os.readlink(os.path.join(root, rel))
            ttext, tb64 = _text_of(target)
            rec["target"] = ttext
            if tb64:
                rec["target_b64"] = tb64
        scan.counts[kind if kind in scan.counts else "other"] += 1
        scan.records.append(rec)
        scan.raws.append(rel)
        scan.stats.append(st)
    return scan


def _finish(scan: _Scan, *, ownership: bool, hashed: bool) -> dict[str, Any]:
    """Mark hardlink groups (leader = smallest path of the group) and assemble the sorted manifest."""
    groups = 0
    for members in scan.inodes.values():
        if len(members) < 2:
            continue
        groups += 1
        leader_text = _text_of(min(scan.raws[i] for i in members))[0]
        for i in members:
            scan.records[i]["link"] = leader_text
    order = sorted(range(len(scan.records)), key=lambda i: scan.raws[i])
    return {
        "format": _FORMAT,
        "root": os.fsdecode(scan.root),
        "options": {"ownership": ownership, "hashed": hashed},
        "counts": {**scan.counts, "hardlink_groups": groups},
        "total_bytes": scan.total,
        "entries": [scan.records[i] for i in order],
    }


def _hash_many(paths: list[bytes], jobs: int, meter: ProgressMeter | None = None) -> list[str]:
    """SHA-256 of each file, ``jobs`` at a time; with ``meter``, each file read advances it (bytes, then the file)."""

    def one(path: bytes) -> str:
        if meter is None:
            return _hash_file(path)
        digest = _hash_file(path, meter=meter)
        meter.advance(files=1)
        return digest

    if jobs > 1 and len(paths) > 1:
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            return list(pool.map(one, paths))
    return [one(p) for p in paths]


def _build_manifest(
    path: str | bytes,
    *,
    ownership: bool = False,
    uid_map: dict[str, int] | None = None,
    gid_map: dict[str, int] | None = None,
    hash_files: bool = True,
    excludes: Iterable[str] = (),
    jobs: int = 1,
    meter: ProgressMeter | None = None,
    hash_phase: str = "hash",
) -> dict[str, Any]:
    """Walk ``path`` and return its manifest (a JSON-serialisable dict, entries sorted by path bytes).

    With ``meter``: phase ``scan`` during the walk, then ``hash_phase`` with the totals the walk found.
    """
    root = os.fsencode(path)
    if not os.path.isdir(root):
        raise NotADirectoryError(f"{os.fsdecode(root)} is not a directory")
    if meter is not None:
        meter.phase("scan")
    scan = _scan(root, list(excludes), ownership=ownership, uid_map=uid_map, gid_map=gid_map, meter=meter)
    if hash_files:
        if meter is not None:
            meter.phase(hash_phase, len(scan.files), scan.total)
        _hash_scan(scan, jobs, meter=meter)
    return _finish(scan, ownership=ownership, hashed=hash_files)


def _hash_scan(
    scan: _Scan,
    jobs: int,
    cache: dict[bytes, tuple[_StatKey, str]] | None = None,
    meter: ProgressMeter | None = None,
) -> int:
    """Fill in the SHA-256 of every file of ``scan``, from ``cache`` where its stat key matches; returns the reuses.

    With ``meter``, a hash from the cache counts as one file and its size done without reading.
    """
    todo: list[int] = []
    for index in scan.files:
        digest = _cached(cache, scan.raws[index], scan.stats[index])
        if digest is None:
            todo.append(index)
        else:
            scan.records[index]["sha256"] = digest
            if meter is not None:
                meter.advance(files=1, nbytes=scan.stats[index].st_size, read=False)
    if todo:
        digests = _hash_many([os.path.join(scan.root, scan.raws[i]) for i in todo], jobs, meter)
        for index, digest in zip(todo, digests, strict=True):
            scan.records[index]["sha256"] = digest
    return len(scan.files) - len(todo)


def _dumps(manifest: dict[str, Any]) -> str:
    """Stable JSON text of a manifest: one entry per line so diffs of two manifest files stay readable."""
    head = {k: v for k, v in manifest.items() if k != "entries"}
    lines = [json.dumps(e, sort_keys=True, ensure_ascii=False) for e in manifest.get("entries", [])]
    body = ",\n    ".join(lines)
    head_text = json.dumps(head, sort_keys=True, ensure_ascii=False)[:-1]
    sep = ", " if head else ""
    return f'{head_text}{sep}"entries": [\n    {body}\n  ]}}\n' if lines else f'{head_text}{sep}"entries": []}}\n'


def _load(path: str) -> dict[str, Any]:
    with open(path, encoding="utf-8") as handle:
        data = json.load(handle)
    if not isinstance(data, dict) or data.get("format") != _FORMAT or not isinstance(data.get("entries"), list):
        raise ValueError(f"{path} is not a {_FORMAT} manifest")
    return data


def _compare(
    source: dict[str, Any],
    target: dict[str, Any],
    *,
    ignore: Iterable[str] = (),
    limit: int = 100,
) -> dict[str, Any]:
    """Differences of ``target`` against ``source``: missing (only in source), extra, changed (with fields).

    A field is compared only when both sides recorded it (a manifest built without ownership
    does not make every uid differ).
    """
    skip = set(ignore)
    src = {_raw_of(e): e for e in source["entries"]}
    dst = {_raw_of(e): e for e in target["entries"]}
    differences: list[dict[str, Any]] = []
    tally = {"missing": 0, "extra": 0, "changed": 0}

    def note(kind: str, raw: bytes, **extra: Any) -> None:
        tally[kind] += 1
        if len(differences) < limit:
            text, b64 = _text_of(raw)
            item: dict[str, Any] = {"path": text, "kind": kind, **extra}
            if b64:
                item["path_b64"] = b64
            differences.append(item)

    for raw in sorted(src.keys() | dst.keys()):
        a, b = src.get(raw), dst.get(raw)
        if b is None:
            note("missing", raw)
        elif a is None:
            note("extra", raw)
        else:
            fields = [f for f in _FIELDS if f not in skip and _comparable(f, a, b) and a.get(f) != b.get(f)]
            if fields:
                before = {f: a.get(f) for f in fields}
                note("changed", raw, fields=fields, source=before, target={f: b.get(f) for f in fields})
    return {
        "equal": not any(tally.values()),
        "difference_count": sum(tally.values()),
        "difference_counts": tally,
        "differences": differences,
        "truncated": sum(tally.values()) > len(differences),
    }


def _comparable(field: str, a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Ownership and hashes count only when both manifests recorded them; the rest always count."""
    if field in ("uid", "gid"):
        return field in a and field in b
    if field == "sha256":
        return a.get("type") == b.get("type") == "file" and field in a and field in b
    return True
