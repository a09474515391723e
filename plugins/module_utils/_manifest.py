# Copyright: (c) 2026, pidock.stack maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Directory-tree manifests: SHA-256 per file, symlink targets, modes, ownership, hardlink groups.

Private helpers for the ``tree_manifest`` module (and the ``hf_cache_check`` module's hashing).
Paths are handled as bytes throughout, so any name the filesystem holds round-trips: in JSON a
path is its UTF-8 text when it decodes, otherwise a ``\\xNN``-escaped text plus ``path_b64``
carrying the exact bytes.
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import json
import os
import stat
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

_FORMAT = "pidock.tree_manifest/1"
_CHUNK = 1024 * 1024
_FIELDS = ("type", "size", "sha256", "target", "mode", "uid", "gid", "link")


def _hash_file(path: str | bytes, algorithm: str = "sha256", prefix: bytes = b"") -> str:
    """Stream a file through a hash in 1 MiB chunks (hashlib releases the GIL on large updates)."""
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
    """Yield (relative path, lstat) for the root ('.') and everything below it, never following links."""
    yield b".", os.lstat(root)
    stack = [b""]
    while stack:
        rel_dir = stack.pop()
        with os.scandir(os.path.join(root, rel_dir) if rel_dir else root) as it:
            children = sorted(it, key=lambda e: e.name)
        for child in children:
            rel = os.path.join(rel_dir, child.name) if rel_dir else child.name
            if excludes and _excluded(rel, excludes):
                continue
            st = child.stat(follow_symlinks=False)
            yield rel, st
            if stat.S_ISDIR(st.st_mode):
                stack.append(rel)


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


def _build_manifest(
    path: str | bytes,
    *,
    ownership: bool = False,
    uid_map: dict[str, int] | None = None,
    gid_map: dict[str, int] | None = None,
    hash_files: bool = True,
    excludes: Iterable[str] = (),
    jobs: int = 1,
) -> dict[str, Any]:
    """Walk ``path`` and return its manifest (a JSON-serialisable dict, entries sorted by path bytes)."""
    root = os.fsencode(path)
    if not os.path.isdir(root):
        raise NotADirectoryError(f"{os.fsdecode(root)} is not a directory")
    patterns = list(excludes)
    records: list[dict[str, Any]] = []
    raws: list[bytes] = []
    inodes: dict[tuple[int, int], list[int]] = {}
    to_hash: list[int] = []
    counts = {"file": 0, "dir": 0, "symlink": 0, "other": 0}
    total = 0
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
            total += st.st_size
            if hash_files:
                to_hash.append(len(records))
            if st.st_nlink > 1:
                inodes.setdefault((st.st_dev, st.st_ino), []).append(len(records))
        elif kind == "symlink":
            target = os.readlink(os.path.join(root, rel))
            ttext, tb64 = _text_of(target)
            rec["target"] = ttext
            if tb64:
                rec["target_b64"] = tb64
        counts[kind if kind in counts else "other"] += 1
        records.append(rec)
        raws.append(rel)

    if to_hash:
        files = [os.path.join(root, raws[i]) for i in to_hash]
        if jobs > 1 and len(files) > 1:
            with ThreadPoolExecutor(max_workers=jobs) as pool:
                digests = list(pool.map(_hash_file, files))
        else:
            digests = [_hash_file(f) for f in files]
        for index, digest in zip(to_hash, digests, strict=True):
            records[index]["sha256"] = digest

    groups = 0
    for members in inodes.values():
        if len(members) < 2:
            continue
        groups += 1
        leader = min(raws[i] for i in members)
        leader_text = _text_of(leader)[0]
        for i in members:
            records[i]["link"] = leader_text

    order = sorted(range(len(records)), key=lambda i: raws[i])
    return {
        "format": _FORMAT,
        "root": os.fsdecode(root),
        "options": {"ownership": ownership, "hashed": hash_files},
        "counts": {**counts, "hardlink_groups": groups},
        "total_bytes": total,
        "entries": [records[i] for i in order],
    }


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
