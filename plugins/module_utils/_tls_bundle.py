# Copyright: (c) 2026, pidock.stack maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A stack's live TLS files (privkey.pem, fullchain.pem, ca.pem, .pidock-tls.json): names, reads, plans.

Shared by pidock.stack.tls_bundle_info (read) and pidock.stack.tls_bundle (write). Pure functions
apart from _read_bundle; the write goes through _atomic.write_atomic.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

# The file of each part of the bundle, in the stack's TLS directory.
_FILES = {"privkey": "privkey.pem", "fullchain": "fullchain.pem", "ca": "ca.pem", "record": ".pidock-tls.json"}


@dataclass(frozen=True)
class _Have:
    """A file as it is on disk (content None: absent)."""

    content: bytes | None
    uid: int = -1
    gid: int = -1
    mode: int = -1


@dataclass(frozen=True)
class _Want:
    """A file as it should be (content None: absent)."""

    content: bytes | None
    uid: int = 0
    gid: int = 0
    mode: int = 0o644


def _path(directory: str, part: str) -> str:
    return os.path.join(directory, _FILES[part])


def _read(path: str) -> _Have:
    try:
        with open(path, "rb") as handle:
            st = os.fstat(handle.fileno())
            return _Have(handle.read(), st.st_uid, st.st_gid, st.st_mode & 0o7777)
    except FileNotFoundError:
        return _Have(None)


def _read_bundle(directory: str) -> dict[str, _Have]:
    return {part: _read(_path(directory, part)) for part in _FILES}


def _text(have: _Have) -> str:
    return (have.content or b"").decode("utf-8", "replace")


def _record(have: _Have) -> dict[str, Any]:
    """The parsed .pidock-tls.json; {} when absent or unreadable (then the role treats the files as unknown)."""
    try:
        data = json.loads(_text(have) or "{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _pem(text: str) -> bytes | None:
    """A PEM part as the live file holds it: trimmed, one final newline; '' means no file."""
    text = text.strip()
    return (text + "\n").encode() if text else None


def _record_bytes(record: dict[str, Any]) -> bytes:
    return (json.dumps(record, indent=4, sort_keys=True) + "\n").encode()


def _plan(have: dict[str, _Have], want: dict[str, _Want]) -> list[tuple[str, str]]:
    """(part, action) for every part that differs: write (content), attributes (owner/mode), remove."""
    actions = []
    for part, w in want.items():
        h = have.get(part, _Have(None))
        if w.content is None:
            if h.content is not None:
                actions.append((part, "remove"))
        elif h.content != w.content:
            actions.append((part, "write"))
        elif (h.uid, h.gid, h.mode) != (w.uid, w.gid, w.mode):
            actions.append((part, "attributes"))
    return actions
