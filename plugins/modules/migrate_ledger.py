#!/usr/bin/python
# Copyright: (c) 2026, pidock.stack maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: migrate_ledger
short_description: Read and update the phase ledger of a pidock.stack migration
version_added: 0.2.0
description:
  - The ledger is a small JSON file on the migrated host that records, per phase, whether it was C(started) or
    C(verified), when, and what the phase measured. The pidock.stack.migrate role reads it to skip verified phases
    and resume an interrupted one.
  - One module call reads the file, applies the change and writes it back atomically (temporary file in the same
    directory, fsync, rename), mode C(0600), so a phase boundary costs one round trip to the host.
  - Without O(phase) and O(clear) the ledger is only read.
author:
  - pidock.stack maintainers (@pidock)
options:
  path:
    description:
      - The ledger file. A missing file reads as an empty ledger; its directory must exist to write (check mode
        predicts the write without it).
    type: path
    required: true
  phase:
    description: The phase whose entry O(entry) replaces.
    type: str
  entry:
    description:
      - The new entry of O(phase) (for example C(status), C(started), C(verified) and what the phase recorded).
      - Replaces the whole previous entry.
    type: dict
  entries:
    description:
      - More phases' new entries, phase name to entry, written in the same call after O(phase) (the end of one phase
        and the start of the next cost one round trip).
    type: dict
    default: {}
  clear:
    description:
      - Phases whose entries are removed (a rollback clears the phases from the freeze on).
      - Applied before O(phase)/O(entry).
    type: list
    elements: str
    default: []
  note:
    description:
      - An event appended to the list O(note_key) of the ledger, for example why a rollback happened.
      - C(time) is added (UTC) when the note has none. Written only when something else changes or O(clear) names a
        recorded phase, so a rollback that finds nothing to clear leaves the file alone.
    type: dict
  note_key:
    description: Top-level list that O(note) is appended to.
    type: str
    default: rollbacks
  guard_dir:
    description:
      - The work directory of the freeze guard (M(pidock.stack.migrate_guard)). With O(guard_token), the change is
        made under the guard's lock, and refused when the guard this run armed has put the bare metal back, or
        another run's guard watches the host now. A slow controller that comes back after the guard acted records
        nothing more.
    type: path
  guard_token:
    description: The token this run armed the guard with.
    type: str
  start_file:
    description:
      - A start file that jobs started ahead wait for (the migrate role's catch-up jobs, started before the freeze).
        Once the ledger is written, C(go) is written into it (whole, through a temporary file renamed over it, mode
        C(0600)), so that the freeze's end and the jobs' start cost one round trip. Not written when the guard
        refused the change, nor in check mode.
    type: path
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Nothing is written; C(changed) and RV(ledger) show what would be.
  diff_mode:
    support: full
    details: Shows the ledger text before and after.
  platform:
    platforms: posix
notes:
  - The file holds timings, counts, digests and unit names, never secrets.
"""

EXAMPLES = r"""
- name: Read the ledger
  pidock.stack.migrate_ledger:
    path: /var/lib/pidock-migrate/ledger.json
  register: ledger

- name: Record presync as started
  pidock.stack.migrate_ledger:
    path: /var/lib/pidock-migrate/ledger.json
    phase: presync
    entry: {status: started, started: "2026-11-22T04:00:00.000000Z", resumed: false}

- name: Clear the phases from freeze on and say why
  pidock.stack.migrate_ledger:
    path: /var/lib/pidock-migrate/ledger.json
    clear: [freeze, dump, restore, delta, verify, cutover]
    note: {reason: "restore failed: extension vector is not available"}
"""

RETURN = r"""
ledger:
  description: The ledger after the change (as it would be in check mode).
  returned: always
  type: dict
  sample: {"format": 1, "phases": {"presync": {"status": "verified", "started": "2026-11-22T04:00:00.000000Z"}}}
cleared:
  description: The phases of O(clear) that had an entry and were removed.
  returned: always
  type: list
  elements: str
start_file_written:
  description: The start file that now says C(go) (O(start_file)).
  returned: when O(start_file) was given, outside check mode
  type: str
  sample: /var/lib/pidock-migrate/frozen.start.k3x9
"""

import os
from datetime import datetime, timezone
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.pidock.stack.plugins.module_utils._ledger import apply_ledger as _apply
from ansible_collections.pidock.stack.plugins.module_utils._ledger import ledger_text as _text
from ansible_collections.pidock.stack.plugins.module_utils._ledger import read_ledger as _read
from ansible_collections.pidock.stack.plugins.module_utils._ledger import write_ledger as _write
from ansible_collections.pidock.stack.plugins.module_utils._migrate_guard import GuardLock, ledger_refusal, read_guard
from ansible_collections.pidock.stack.plugins.module_utils._start_signal import give_word


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "phase": {"type": "str"},
            "entry": {"type": "dict"},
            "clear": {"type": "list", "elements": "str", "default": []},
            "entries": {"type": "dict", "default": {}},
            "note": {"type": "dict"},
            "note_key": {"type": "str", "default": "rollbacks", "no_log": False},
            "guard_dir": {"type": "path"},
            "guard_token": {"type": "str", "no_log": False},
            "start_file": {"type": "path"},
        },
        required_together=[("phase", "entry"), ("guard_dir", "guard_token")],
        supports_check_mode=True,
    )
    params = module.params
    guard_dir = params["guard_dir"]
    if guard_dir and os.path.isdir(guard_dir):
        # Under the guard's lock: the guard clears the ledger under it too, so the two never interleave.
        with GuardLock(guard_dir):
            refusal = ledger_refusal(read_guard(guard_dir), params["guard_token"])
            if refusal:
                module.fail_json(msg=f"ledger not written: {refusal}")
            result = _change(module, params)
    else:
        result = _change(module, params)
    if params["start_file"] and not module.check_mode:
        try:
            give_word(params["start_file"])
        except OSError as exc:
            module.fail_json(msg=f"the ledger was written, but not the start file {params['start_file']}: {exc}")
        result["changed"] = True
        result["start_file_written"] = params["start_file"]
    module.exit_json(**result)


def _change(module: AnsibleModule, params: dict[str, Any]) -> dict[str, Any]:
    """Read the ledger, apply the change, write it when it changed; the module's result."""
    path: str = params["path"]
    try:
        ledger, before = _read(path)
    except (OSError, ValueError) as exc:
        module.fail_json(msg=f"cannot read the ledger {path}: {exc}")
    # timezone.utc, not datetime.UTC: managed hosts may run Python older than 3.11.
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: UP017
    try:
        new, cleared = _apply(
            ledger,
            phase=params["phase"],
            entry=params["entry"],
            clear=params["clear"],
            entries=params["entries"],
            note=params["note"],
            note_key=params["note_key"],
            now=now,
        )
    except ValueError as exc:
        module.fail_json(msg=f"cannot update the ledger {path}: {exc}")
    writing = params["phase"] is not None or bool(params["clear"]) or bool(params["entries"])
    after = _text(new)
    changed = writing and after != (before if before is not None else "")
    # In check mode the run has not made its work directory yet: the write is predicted all the same.
    if changed and not module.check_mode and not os.path.isdir(os.path.dirname(path) or "."):
        module.fail_json(msg=f"cannot write the ledger {path}: its directory does not exist")
    if changed and not module.check_mode:
        try:
            _write(path, after)
        except OSError as exc:
            module.fail_json(msg=f"cannot write the ledger {path}: {exc}")
    result: dict[str, Any] = {"changed": changed, "ledger": new, "cleared": cleared}
    if module._diff and changed:
        result["diff"] = {"before_header": path, "after_header": path, "before": before or "", "after": after}
    return result


if __name__ == "__main__":
    main()
