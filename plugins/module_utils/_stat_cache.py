# Copyright: (c) 2026, pidock.stack maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The stat cache of tree_manifest's copy mode: hashes of files untouched since the last verified copy.

A file's SHA-256 is reused only while its size, mtime, ctime and inode are those recorded with it.
The cache file is JSON, written 0600 by the module (plugins/module_utils/_atomic.py) once a copy
is verified equal; a missing, unreadable or foreign file is an empty cache.
"""

from __future__ import annotations

import base64
import json
import os
from typing import Any

_STATE_FORMAT = "pidock.tree_manifest.state/1"
# What a regular file's SHA-256 is trusted by: size, mtime, ctime and inode. ctime changes on every
# write, chmod, chown or rename of the inode and cannot be set from user space, so a file rewritten
# with its size and mtime forged back still fails the match.
_StatKey = tuple[int, int, int, int]


def _stat_key(st: os.stat_result) -> _StatKey:
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


def _load_stat_cache(path: str) -> tuple[dict[bytes, tuple[_StatKey, str]], dict[bytes, tuple[_StatKey, str]]]:
    """The stat caches of an earlier verified copy (source, target): raw path -> (stat key, sha256).

    A missing, unreadable or foreign file is an empty cache: everything is hashed, as without one.
    """
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return {}, {}
    if not isinstance(data, dict) or data.get("format") != _STATE_FORMAT:
        return {}, {}

    def side(name: str) -> dict[bytes, tuple[_StatKey, str]]:
        out: dict[bytes, tuple[_StatKey, str]] = {}
        for key, value in (data.get(name) or {}).items():
            try:
                size, mtime, ctime, ino, digest = value
                out[base64.b64decode(key)] = ((int(size), int(mtime), int(ctime), int(ino)), str(digest))
            except (TypeError, ValueError):
                continue
        return out

    return side("source"), side("target")


def _stat_cache_text(source: dict[bytes, tuple[_StatKey, str]], target: dict[bytes, tuple[_StatKey, str]]) -> str:
    def side(cache: dict[bytes, tuple[_StatKey, str]]) -> dict[str, list[Any]]:
        return {base64.b64encode(raw).decode("ascii"): [*key, digest] for raw, (key, digest) in sorted(cache.items())}

    return json.dumps({"format": _STATE_FORMAT, "source": side(source), "target": side(target)}, sort_keys=True)


def _cached(cache: dict[bytes, tuple[_StatKey, str]] | None, rel: bytes, st: os.stat_result) -> str | None:
    """The cached SHA-256 of ``rel`` when its stat key still matches, else None."""
    if not cache:
        return None
    hit = cache.get(rel)
    return hit[1] if hit is not None and hit[0] == _stat_key(st) else None
