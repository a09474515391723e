#!/usr/bin/python
# Copyright: (c) 2026, pidock.stack maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: migrate_guard
short_description: The freeze guard of a pidock.stack migration, which puts the bare metal back when the controller dies
version_added: 0.2.0
description:
  - From the freeze to the switch to the stack, nothing serves the app, and the steps in between are Ansible tasks. The
    guard is a process on the migrated host, started at the freeze (O(state=armed) with O(watch=true), as an async
    job), that puts the bare metal back by itself when the controller goes silent there, for example when the SSH
    link to a Pi drops.
  - Signs of life are the ledger file's mtime (each phase boundary writes it), C(guard.heartbeat)'s mtime (touched by
    M(pidock.stack.async_progress) with its C(heartbeat) option) and each call of this module. The guard allows
    O(timeout) seconds of silence, plus O(slack) times the plan's estimate (O(estimates)) in the phases whose longest
    step gives no heartbeat (dump, restore, delta, verify).
  - Past that, while the ledger says the bare metal is frozen, the guard clears the ledger from the freeze on (O(clear),
    with a note under C(rollbacks)) and starts the bare-metal units that ran before the freeze (O(units_file), else
    O(units)). The next run of the migration freezes afresh; nothing the bare metal writes from then on is lost.
  - O(state=switching) is the fence before the switch. Under the guard's lock it moves the guard from C(armed) to
    C(switching), then stops O(stop_units) and touches O(serving_marker). It fails, changing nothing, when the guard
    already put the bare metal back. In C(switching) a silent controller leaves the decision to the stack's own switch
    (M(pidock.stack.compose_switch), a transaction on the host under O(compose_root)). While that runs, the guard waits.
    Once it has committed, the stack serves and the guard ends as C(served). If it was undone or never began, the
    guard puts the bare metal back as above.
  - O(state=disarmed) ends the guard, whichever run armed it. A run takes the guard over this way before it reads
    the ledger, and ends it once the stack serves or the run stops before the freeze's phases.
  - The guard's files (C(guard.json), C(guard.lock), C(guard.heartbeat)) live in O(path), mode 0600.
author:
  - pidock.stack maintainers (@pidock)
options:
  path:
    description: The migration's work directory. It must exist, except with O(state=disarmed) (no guard then).
    type: path
    required: true
  state:
    description:
      - V(armed) arms the guard for O(token), or, for the token already armed, counts as a sign of life.
      - V(switching) is the fence before the switch (see above).
      - V(disarmed) ends the guard.
    type: str
    choices: [armed, switching, disarmed]
    default: armed
  token:
    description: The run that arms the guard (any unique string). Required with V(armed) and V(switching).
    type: str
  watch:
    description:
      - With O(state=armed), stay and watch until the guard ends, then return its outcome. Run it as an async job
        (C(async), C(poll=0)). The job outlives the controller.
    type: bool
    default: false
  poll:
    description: Seconds between two looks of the watcher.
    type: float
    default: 0.5
  timeout:
    description: Seconds of silence from the controller the guard allows in any phase.
    type: float
    default: 300
  slack:
    description: How many times the plan's estimate of a phase is added to O(timeout) in that phase.
    type: float
    default: 3
  estimates:
    description: The plan's estimate (C(dump_seconds), C(restore_seconds), C(delta_seconds), C(presync_seconds)).
    type: dict
    default: {}
  ledger:
    description: The migration's ledger file. Required with O(state=armed).
    type: path
  clear:
    description: The phases whose ledger entries the guard removes when it puts the bare metal back.
    type: list
    elements: str
    default: [freeze, catchup, dump, restore, delta, verify, cutover]
  clear_switching:
    description: Phases also removed when the guard puts the bare metal back after the switch was undone.
    type: list
    elements: str
    default: [prestart]
  units_file:
    description: The record of the bare-metal units before the freeze (a JSON list of C(name), C(enabled), C(active)).
    type: path
  units:
    description: The units started when O(units_file) is missing or unreadable.
    type: list
    elements: str
    default: []
  compose_root:
    description:
      - The stack's root, where its switch keeps its journal and lock. Required with O(state=armed).
    type: path
  stop_units:
    description: With O(state=switching), the bare-metal units stopped once the guard is C(switching).
    type: list
    elements: str
    default: []
  serving_marker:
    description: With O(state=switching), the file touched after O(stop_units) stopped.
    type: path
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Nothing is written, stopped or watched; C(changed) says whether a real run would change the guard.
  diff_mode:
    support: none
  platform:
    platforms: posix
notes:
  - The guard file holds unit names, paths, times and the plan's estimate, never secrets.
seealso:
  - module: pidock.stack.migrate_ledger
  - module: pidock.stack.compose_switch
"""

EXAMPLES = r"""
- name: Arm the guard and watch (outlives the controller)
  pidock.stack.migrate_guard:
    path: /var/lib/pidock-migrate
    token: "{{ run_token }}"
    watch: true
    ledger: /var/lib/pidock-migrate/ledger.json
    units_file: /var/lib/pidock-migrate/units.json
    compose_root: /opt/pidock/stacks/inventory
  async: 86400
  poll: 0
  register: guard_job

- name: The fence, then the bare-metal front stops
  pidock.stack.migrate_guard:
    path: /var/lib/pidock-migrate
    state: switching
    token: "{{ run_token }}"
    stop_units: [inventory.service, nginx.service]
    serving_marker: /var/lib/pidock-migrate/stack-serving

- name: End the guard
  pidock.stack.migrate_guard:
    path: /var/lib/pidock-migrate
    state: disarmed
"""

RETURN = r"""
guard:
  description:
    - The guard's record after the call.
    - Its C(status) is V(armed), V(switching), V(undone), V(served) or V(disarmed).
  returned: always
  type: dict
  sample: {"status": "armed", "token": "k3f9", "timeout": 300, "armed_at": 1795932000.1}
previous:
  description: The status before the call (C(null) when there was no guard).
  returned: always
  type: str
  sample: undone
outcome:
  description:
    - What the guard did when it ended (C(action) V(undone), V(served), V(replaced) or V(ended), C(why), C(at),
      for V(undone) C(cleared) and C(units_started), for V(served) C(seen), the time with microseconds).
    - With O(watch), the watcher's outcome. With O(state=disarmed), the outcome of a guard that had ended by itself.
  returned: always
  type: dict
  sample: {"action": "undone", "why": "the controller was silent for 301 s in phase delta (limit 300 s)"}
report:
  description: With O(state=disarmed), one sentence on what an earlier run's guard did (empty when it did nothing).
  returned: when O(state=disarmed)
  type: str
  sample: "An earlier run went silent while the bare metal was frozen: ... At 2026-11-29T06:52:41Z the host put ..."
"""

import os
import time
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.pidock.stack.plugins.module_utils._migrate_guard import (
    GuardError,
    arm,
    disarm,
    outcome_report,
    read_guard,
    run_command,
    switching_refusal,
    to_switching,
    watch,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "state": {"type": "str", "choices": ["armed", "switching", "disarmed"], "default": "armed"},
            "token": {"type": "str", "no_log": False},
            "watch": {"type": "bool", "default": False},
            "poll": {"type": "float", "default": 0.5},
            "timeout": {"type": "float", "default": 300.0},
            "slack": {"type": "float", "default": 3.0},
            "estimates": {"type": "dict", "default": {}},
            "ledger": {"type": "path"},
            "clear": {
                "type": "list",
                "elements": "str",
                "default": ["freeze", "catchup", "dump", "restore", "delta", "verify", "cutover"],
            },
            "clear_switching": {"type": "list", "elements": "str", "default": ["prestart"]},
            "units_file": {"type": "path"},
            "units": {"type": "list", "elements": "str", "default": []},
            "compose_root": {"type": "path"},
            "stop_units": {"type": "list", "elements": "str", "default": []},
            "serving_marker": {"type": "path"},
        },
        required_if=[("state", "armed", ("token", "ledger", "compose_root")), ("state", "switching", ("token",))],
        supports_check_mode=True,
    )
    p = module.params
    path: str = p["path"]
    if not os.path.isdir(path):
        if p["state"] == "disarmed":
            module.exit_json(changed=False, previous=None, guard={}, outcome={}, report="")
        module.fail_json(msg=f"the work directory {path} does not exist")
    if p["timeout"] <= 0 or p["poll"] <= 0 or p["slack"] < 0:
        module.fail_json(msg="timeout and poll must be more than 0, slack 0 or more")
    now = time.time()
    current = read_guard(path)
    before = current.get("status") if current else None
    result: dict[str, Any] = {"changed": False, "previous": before, "outcome": {}}

    if module.check_mode:
        if p["state"] == "disarmed":
            changed = current is not None and before != "disarmed"
        elif p["state"] == "armed":
            changed = current is None or current.get("token") != p["token"] or before not in ("armed", "switching")
        else:
            refusal = switching_refusal(current, p["token"])
            if refusal:
                module.fail_json(msg=refusal, previous=before)
            changed = before != "switching" or bool(p["stop_units"])
        module.exit_json(changed=changed, previous=before, guard=current or {}, outcome={})

    try:
        if p["state"] == "disarmed":
            guard, before, changed = disarm(path, now)
            result.update(changed=changed, previous=before, guard=guard or {})
            result["outcome"] = (guard or {}).get("outcome", {}) if before in ("undone", "served") else {}
            result["report"] = outcome_report(before, result["outcome"])
        elif p["state"] == "switching":
            guard, changed = to_switching(
                path, p["token"], now, p["stop_units"], p["serving_marker"] or "", run_command
            )
            result.update(changed=changed or bool(p["stop_units"]), guard=guard)
        else:
            settings = {
                "token": p["token"],
                "timeout": p["timeout"],
                "slack": p["slack"],
                "estimates": p["estimates"],
                "ledger": p["ledger"],
                "clear": p["clear"],
                "clear_switching": p["clear_switching"],
                "units_file": p["units_file"] or "",
                "units": p["units"],
                "compose_root": p["compose_root"] or "",
            }
            guard, _replaced, changed = arm(path, settings, now)
            result.update(changed=changed, guard=guard)
            if p["watch"]:
                result["outcome"] = watch(path, p["token"], poll=p["poll"])
                result["guard"] = read_guard(path) or {}
    except GuardError as exc:
        module.fail_json(msg=str(exc), previous=before)
    except OSError as exc:
        module.fail_json(msg=f"the freeze guard in {path}: {exc}", previous=before)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
