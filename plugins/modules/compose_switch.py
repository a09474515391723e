#!/usr/bin/python
# Copyright: pidock.stack maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module pidock.stack.compose_switch: the cutover of a compose stack as one host-side transaction."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: compose_switch
short_description: Switch a pidock compose stack to a staged release as one transaction on the host
version_added: 0.2.0
description:
  - Takes a release written by M(pidock.stack.release) and, in one process on the host, starts it
    beside what runs, waits until its containers are healthy (driven by C(docker events)), checks
    and reloads nginx onto it, proves it through the front door (the health URL must report the
    release's version), records C(current), C(history.json) and C(audit.log), waits until no nginx
    worker of the replaced configuration still holds requests (at most 15 s), then retires the old
    colour and recreates in place the services that cannot run twice (once, after the gate).
  - When a step before the record fails, it does the exact reverse, back to the release that served;
    with blue/green the failed colour is removed only once the front serves the old release again
    and the workers that proxied to the failed colour have finished.
  - Before each step it appends a line to C(<root>/journal.jsonl). It holds C(flock) on
    C(<root>/deploy.lock) for the whole transaction; the kernel releases it when the process ends.
  - Every call first reads the journal. A transaction whose process died is finished (it passed its
    gate and was being recorded or retired) or undone (anything earlier), before anything else. A
    transaction still running holds the lock, so this call waits for it, up to O(lock_timeout).
  - Run it with C(async) and C(poll) so the transaction finishes on the host even when the
    controller or its SSH link dies.
  - In check mode it returns the release plan (which services start beside, which are recreated in
    place and why) and changes nothing.
options:
  root:
    description: The stack root, for example C(/opt/pidock/stacks/inventory).
    type: path
    required: true
  project:
    description: Compose project name.
    type: str
    required: true
  state:
    description:
      - V(active) makes O(release) the release the front door serves.
      - V(settled) only finishes or undoes what an interrupted transaction left (and waits for a
        running one).
    type: str
    choices: [active, settled]
    default: active
  release:
    description:
      - Release id to switch to (O(state=active)). V(previous) means the release a rollback goes
        back to (the newest activated one other than current that did not fail).
    type: str
  kind:
    description: What the transaction is, for the journal, the audit line and the outcomes.
    type: str
    choices: [deploy, rollback]
    default: deploy
  definition:
    description:
      - The new release's compose file as a dict, used for the plan in check mode when the release
        directory was not written (a check run writes nothing).
    type: dict
  profiles:
    description: Compose profiles to enable.
    type: list
    elements: str
    default: []
  cutover:
    description: V(blue_green) starts the front's upstream beside the old one; V(recreate) recreates in place.
    type: str
    choices: [blue_green, recreate]
    default: blue_green
  front_enabled:
    description: Whether an nginx front is part of the stack (config install, C(nginx -t), reload).
    type: bool
    default: true
  front_name:
    description: Service name of the nginx front.
    type: str
    default: nginx
  front_conf:
    description: The live nginx config file the front reads. Default C(<root>/front/conf.d/default.conf).
    type: path
  health_url:
    description: The front door's health URL; empty skips the front-door gate.
    type: str
    default: ""
  health_release_key:
    description: JSON field of the health answer that names the release's version.
    type: str
    default: release
  health_validate_certs:
    description: Validate the front door's TLS certificate.
    type: bool
    default: false
  health_timeout:
    description: Seconds each wait (containers healthy, front-door gate) may take; at least 5.
    type: int
    default: 180
  lock_timeout:
    description: Seconds to wait for a transaction another live process runs; 0 fails at once.
    type: int
    default: 1800
  rollback_on_failure:
    description: Undo the transaction when a step before the record fails.
    type: bool
    default: true
  owner:
    description: Who runs the transaction (named in the lock note and messages).
    type: str
    default: ansible
  note:
    description: Free text kept in the journal.
    type: str
    default: ""
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Returns the plan and whether a switch or a recovery would happen; takes no lock.
  diff_mode:
    support: full
    details: Before and after name the release served and list the plan.
  platform:
    platforms: posix
author:
  - pidock.stack maintainers (@pidock)
"""

EXAMPLES = r"""
- name: Switch to the staged release (finishes on the host if the controller dies)
  pidock.stack.compose_switch:
    root: /opt/pidock/stacks/inventory
    project: inventory
    release: v2-0123456789ab
    health_url: https://127.0.0.1/health
  async: 1200
  poll: 1

- name: Finish or undo whatever an interrupted run left
  pidock.stack.compose_switch:
    root: /opt/pidock/stacks/inventory
    project: inventory
    state: settled
"""

RETURN = r"""
outcome:
  description: >-
    success, unchanged, rolled_back (a deploy undone: the previous release serves), failed; read
    from what the front door serves after the transaction.
  returned: state=active
  type: str
release:
  description: The release switched to.
  returned: state=active
  type: str
previous:
  description: The release that served before.
  returned: state=active
  type: str
served:
  description: The version the front door reported at the end.
  returned: state=active
  type: str
plan:
  description: beside, in_place (service, changed, why), unchanged and retire lists.
  returned: state=active
  type: dict
recovered:
  description: What was found in the journal and done about it (txn, action, after_step), or null.
  returned: always
  type: dict
pending:
  description: >-
    In check mode, what a real run would do first about the journal: nothing, finish, undo, or wait
    (another run holds the lock).
  returned: check mode
  type: str
noop:
  description: >-
    In check mode with state=active, true when a real run would change nothing: nothing to settle, and
    the release wanted is current and served. The role skips the real run then.
  returned: check mode, state=active
  type: bool
audit:
  description: The audit line written.
  returned: when a transaction ran
  type: dict
durations:
  description: total_s, gate_s and, when services were recreated in place, interruption_s.
  returned: when a transaction ran
  type: dict
since_gate_s:
  description:
    - Seconds between the front door passing the gate (the release serves from then on) and the module's return
      (recording, draining the old workers, retiring the old colour). A caller that measures a downtime ends it
      this long before the task returned.
  returned: when this call's transaction passed its gate
  type: float
  sample: 1.42
gate_passed_at:
  description:
    - When the front door passed the gate, in seconds since the epoch on the host's clock.
  returned: when this call's transaction passed its gate
  type: float
  sample: 1795914020.5
"""

import json
import os
import shutil
import tempfile
import time
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.pidock.stack.plugins.module_utils._release import (
    ReleaseError,
    current_release,
    previous_release,
    read_release,
)
from ansible_collections.pidock.stack.plugins.module_utils._txn import (
    HostLock,
    Journal,
    LockBusy,
    Settings,
    Switch,
    TxnError,
    colour_clash,
    last_transaction,
    lock_is_free,
    plan_text,
    release_plan,
    replay_action,
    utc,
)

ARGUMENT_SPEC: dict[str, Any] = {
    "root": {"type": "path", "required": True},
    "project": {"type": "str", "required": True},
    "state": {"type": "str", "choices": ["active", "settled"], "default": "active"},
    "release": {"type": "str"},
    "kind": {"type": "str", "choices": ["deploy", "rollback"], "default": "deploy"},
    "definition": {"type": "dict"},
    "profiles": {"type": "list", "elements": "str", "default": []},
    "cutover": {"type": "str", "choices": ["blue_green", "recreate"], "default": "blue_green"},
    "front_enabled": {"type": "bool", "default": True},
    "front_name": {"type": "str", "default": "nginx"},
    "front_conf": {"type": "path"},
    "health_url": {"type": "str", "default": ""},
    "health_release_key": {"type": "str", "default": "release", "no_log": False},
    "health_validate_certs": {"type": "bool", "default": False},
    "health_timeout": {"type": "int", "default": 180},
    "lock_timeout": {"type": "int", "default": 1800},
    "rollback_on_failure": {"type": "bool", "default": True},
    "owner": {"type": "str", "default": "ansible"},
    "note": {"type": "str", "default": ""},
}


def _target(params: dict[str, Any], root: str) -> str:
    wanted = params["release"]
    if not wanted:
        raise TxnError("release is required with state=active")
    if wanted == "previous":
        found = previous_release(root)
        if not found:
            raise TxnError("there is no previous release to go back to")
        return found
    if read_release(root, wanted) is None:
        raise TxnError(f"release {wanted!r} does not exist under {root}")
    return wanted


def _check(module: AnsibleModule, switch: Switch, params: dict[str, Any]) -> dict[str, Any]:
    root = params["root"]
    state = last_transaction(Journal(root).records()) if os.path.isdir(root) else None
    pending = replay_action(state) if lock_is_free(root) else "wait"
    result: dict[str, Any] = {"changed": pending in ("finish", "undo"), "recovered": None, "pending": pending}
    if params["state"] == "settled":
        return result
    current = current_release(root) or ""
    wanted = params["release"] or ""
    if wanted == "previous":
        wanted = previous_release(root) or ""
    exists = bool(wanted) and read_release(root, wanted) is not None
    if not exists and params["definition"] is None and (params["kind"] == "rollback" or not wanted):
        raise TxnError(f"release {params['release']!r} does not exist under {root}")
    tmpdir = None
    try:
        if exists:
            after = switch.compose_config(wanted) or {}
        elif params["definition"] is not None:
            tmpdir = tempfile.mkdtemp(prefix="pidock-plan-")  # never under root: check mode writes nothing there
            path = os.path.join(tmpdir, "compose.json")
            with open(path, "w", encoding="utf-8") as handle:
                json.dump(params["definition"], handle)
            after = switch.compose_config(None, path) or {}
        else:
            after = {}
        before = switch.compose_config(current) if current else None
    finally:
        if tmpdir:
            shutil.rmtree(tmpdir, ignore_errors=True)
    plan = release_plan(before, after, params["cutover"])
    if exists:
        current_meta = read_release(root, current) if current else None
        clash = colour_clash(wanted, read_release(root, wanted), current, current_meta, plan)
        if clash:
            raise TxnError(clash)
    served = switch.served()
    version = (read_release(root, wanted) or {}).get("version") if exists else None
    switching = wanted != current or (version is not None and served is not None and served != version)
    # What a real run would find under the lock: nothing to settle, and nothing to switch (the test
    # Switch.switch makes). The role then skips the real (async) run.
    noop = pending == "nothing" and exists and switch.already_there(current, wanted, served, version)
    result.update(
        changed=result["changed"] or switching,
        noop=noop,
        outcome="unchanged" if not switching else "checked",
        release=wanted,
        previous=current,
        served=served,
        plan=plan,
        plan_text=plan_text(plan),
        diff={
            "before": f"current: {current or 'none'} (front door serves {served})\n",
            "after": f"current: {wanted or '?'}\n" + plan_text(plan),
        },
    )
    return result


def _message(result: dict[str, Any]) -> str:
    what = f"{result.get('release')} ({result.get('version')})"
    served = result.get("served")
    if result.get("outcome") == "rolled_back":
        text = (
            f"Release {what} failed its health gate: {result.get('error')}. Rolled back to {result.get('previous')}; "
            f"the front door serves {served}."
        )
        kept = [str(i.get("service")) for i in (result.get("plan") or {}).get("in_place") or []]
        if kept:
            text += f" Not touched (planned in place, after the gate): {', '.join(kept)}."
        return text
    return f"Switch to {what} failed: {result.get('error')}. The front door serves {served}."


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    params = module.params
    root = params["root"]
    try:
        settings = Settings(params)
    except TxnError as exc:
        module.fail_json(msg=str(exc))
    switch = Switch(settings)
    if module.check_mode:
        try:
            module.exit_json(**_check(module, switch, params))
        except (TxnError, ReleaseError, OSError, ValueError) as exc:
            module.fail_json(msg=str(exc))
    os.makedirs(root, mode=0o755, exist_ok=True)
    lock = HostLock(root)
    note = {
        "owner": params["owner"],
        "pid": os.getpid(),
        "kind": params["kind"],
        "release": params["release"] or "(recovery)",
        "since": utc(time.time()),
    }
    try:
        waited = lock.acquire(float(params["lock_timeout"]), note)
    except LockBusy as exc:
        module.fail_json(msg=str(exc), holder=exc.holder)
    except (TxnError, OSError) as exc:
        module.fail_json(msg=f"taking the lock {lock.path} failed: {exc}")
    try:
        recovered = switch.recover()
        if params["state"] == "settled":
            module.exit_json(changed=recovered is not None, recovered=recovered, waited_s=round(waited, 2))
        target = _target(params, root)
        result = switch.switch(target, params["kind"], params["note"])
    except (TxnError, ReleaseError, OSError, ValueError) as exc:
        module.fail_json(msg=f"switch of {root} stopped: {exc}", journal=os.path.join(root, "journal.jsonl"))
    finally:
        lock.release()
    result["recovered"] = recovered
    result["waited_s"] = round(waited, 2)
    if result["outcome"] not in ("success", "unchanged"):
        module.fail_json(msg=_message(result), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
