# Copyright: (c) 2026, pidock.stack maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The phase ledger of a pidock.stack migration: read, change and write it.

Shared by the migrate_ledger module (the role's phase boundaries) and the freeze guard
(_migrate_guard.py), which clears the frozen phases itself when it puts the bare metal back.

Private to pidock.stack: names and signatures may change without notice.
"""

from __future__ import annotations

import json
from typing import Any

from ansible_collections.pidock.stack.plugins.module_utils._atomic import write_atomic

FORMAT = 1


def read_ledger(path: str) -> tuple[dict[str, Any], str | None]:
    """The ledger at ``path`` and its text; a missing file is an empty ledger."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        return {"format": FORMAT, "phases": {}}, None
    data = json.loads(text)
    if not isinstance(data, dict) or not isinstance(data.get("phases", {}), dict):
        raise ValueError("not a ledger (expected an object with a 'phases' object)")
    data.setdefault("format", FORMAT)
    data.setdefault("phases", {})
    return data, text


def apply_ledger(
    ledger: dict[str, Any],
    *,
    phase: str | None,
    entry: dict[str, Any] | None,
    clear: list[str],
    entries: dict[str, Any] | None = None,
    note: dict[str, Any] | None,
    note_key: str,
    now: str,
) -> tuple[dict[str, Any], list[str]]:
    """A new ledger with ``clear`` removed, ``phase`` set to ``entry`` (then each of ``entries``) and
    ``note`` appended."""
    phases = dict(ledger["phases"])
    cleared = [name for name in clear if name in phases]
    for name in cleared:
        del phases[name]
    if phase is not None and entry is not None:
        phases[phase] = entry
    for name, value in (entries or {}).items():
        if not isinstance(value, dict):
            raise ValueError(f"the entry of {name} is not an object")
        phases[name] = value
    result = {**ledger, "phases": phases}
    changes_something = phases != ledger["phases"]
    if note is not None and (changes_something or cleared):
        stamped = {"time": now, **note} if "time" not in note else dict(note)
        if cleared and "cleared" not in stamped:
            stamped["cleared"] = cleared
        result[note_key] = [*ledger.get(note_key, []), stamped]
    return result, cleared


def ledger_text(ledger: dict[str, Any]) -> str:
    """The file's text: sorted keys, two-space indents, one trailing newline."""
    return json.dumps(ledger, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_ledger(path: str, text: str) -> None:
    """Replace the ledger atomically, 0600."""
    write_atomic(path, text, 0o600)
