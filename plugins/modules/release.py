#!/usr/bin/python
# Copyright: pidock.stack maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module pidock.stack.release: immutable release directories of a compose stack."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: release
short_description: Manage the immutable release directories of a pidock compose stack
version_added: 0.1.0
description:
  - Owns C(<root>/releases/<release_id>/), the C(current) symlink, the activation history, the
    deploy lock and the audit log of one stack.
  - A release directory holds the files of one deploy (compose file, C(.env), nginx config,
    certificate fingerprint) and C(release.json) with id, time, version label, image IDs and
    digests, config hash and outcome. Only the outcome may change after creation.
  - The release id is derived from the version label and the config hash, so creating the same
    configuration again is a no-op.
options:
  root:
    description: The stack root, for example C(/opt/pidock/stacks/inventory).
    type: path
    required: true
  operation:
    description:
      - V(create) writes a new release directory (no-op when it exists).
      - V(list) returns every release with its outcome; V(history) the activations.
      - V(activate) switches C(current) atomically (rename of a temporary symlink).
      - V(set_outcome) records V(success), V(failed), V(rolled_back), V(pending) or V(interrupted) (a run cut short
        left it pending and it never served).
      - V(prune) keeps the O(keep) newest releases plus the current and previous ones.
      - V(lock) and V(unlock) take and give back the deploy lock; V(audit) appends a JSON line
        to C(<root>/audit.log).
    type: str
    required: true
    choices: [create, list, history, activate, set_outcome, prune, lock, unlock, audit]
  version:
    description: Version label of the release (V(create)).
    type: str
  config_hash:
    description:
      - Hash of the whole configuration (V(create)). Computed from O(files) and O(images) when
        omitted.
    type: str
  files:
    description: Files of the release (V(create)), given as content.
    type: list
    elements: dict
    suboptions:
      name:
        description: Plain file name inside the release directory.
        type: str
        required: true
      content:
        description: File content.
        type: str
        required: true
      mode:
        description: Octal mode string.
        type: str
        default: "0644"
  src_dir:
    description:
      - Directory whose plain files become the release's files (V(create)); used instead of
        O(files). Files named C(.env) or C(*.key) get mode 0600.
    type: path
  images:
    description:
      - Resolved images per service (service name to a dict with C(image), C(id), C(digests)).
    type: dict
    default: {}
  extra:
    description: Further metadata stored in C(release.json) under C(extra).
    type: dict
    default: {}
  release_id:
    description:
      - Release to activate or to set the outcome of. V(previous) means the newest activated
        release other than the current one that did not fail.
    type: str
  outcome:
    description: Outcome to record (V(set_outcome)).
    type: str
    choices: [pending, success, failed, rolled_back, interrupted]
  note:
    description: Free text stored with the outcome or the activation.
    type: str
    default: ""
  keep:
    description: Number of newest releases V(prune) keeps (current and previous are always kept).
    type: int
    default: 5
  owner:
    description: Who takes the lock (V(lock)).
    type: str
    default: ansible
  host:
    description: Controller host name recorded in the lock.
    type: str
    default: ""
  pid:
    description: Controller process id recorded in the lock.
    type: int
    default: 0
  token:
    description: Unique token of this run; V(unlock) only removes a lock carrying it.
    type: str
  stale_after:
    description: A lock older than this many seconds is taken over, with a warning.
    type: int
    default: 1800
  take_over:
    description:
      - Token of a lock holder the caller knows is gone (its controller process died, see
        P(pidock.stack.controller_run#lookup)). A lock carrying it is taken over at once, with a warning; any
        other lock is left to O(stale_after).
    type: str
    default: ""
  entry:
    description: The audit record (V(audit)); C(time) is added.
    type: dict
    default: {}
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Every operation computes and returns what it would do without writing.
  diff_mode:
    support: partial
    details: V(activate) and V(set_outcome) return before/after.
  platform:
    platforms: posix
author:
  - pidock.stack maintainers (@pidock)
"""

EXAMPLES = r"""
- name: Create the release
  pidock.stack.release:
    root: /opt/pidock/stacks/inventory
    operation: create
    version: v2
    config_hash: "{{ __compose_config_hash }}"
    src_dir: /opt/pidock/stacks/inventory/staging
    images: {app: {image: "local/inventory-app:latest", id: "sha256:..."}}

- name: Switch current after the health gate
  pidock.stack.release:
    root: /opt/pidock/stacks/inventory
    operation: activate
    release_id: v2-0123456789ab

- name: Keep five releases
  pidock.stack.release:
    root: /opt/pidock/stacks/inventory
    operation: prune
    keep: 5
"""

RETURN = r"""
release_id:
  description: The release created, activated or updated.
  returned: create, activate, set_outcome
  type: str
  sample: v2-0123456789ab
path:
  description: The release directory.
  returned: create
  type: str
release:
  description: Content of the release's release.json (as it is or would be).
  returned: create, set_outcome
  type: dict
releases:
  description: Every release, oldest first, with C(current) and C(previous) flags.
  returned: list, history, prune
  type: list
  elements: dict
current:
  description: Release C(current) points to (after the operation).
  returned: always
  type: str
previous:
  description: Release a rollback to V(previous) would go back to.
  returned: always
  type: str
history:
  description: Activations, oldest first.
  returned: history
  type: list
  elements: dict
kept:
  description: Releases kept by V(prune).
  returned: prune
  type: list
  elements: str
removed:
  description: Releases removed (or that would be) by V(prune).
  returned: prune
  type: list
  elements: str
images_needed:
  description: Image IDs the kept releases still need; never remove these.
  returned: prune
  type: list
  elements: str
images_unneeded:
  description: Image IDs only removed releases used.
  returned: prune
  type: list
  elements: str
holder:
  description: The lock holder found (V(lock), V(unlock)).
  returned: lock, unlock
  type: dict
"""

import os
import stat
import time
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.pidock.stack.plugins.module_utils._release import (
    AUDIT_FILE,
    LOCK_FILE,
    OUTCOMES,
    ReleaseError,
    activate,
    audit_entry,
    build_metadata,
    check_file_name,
    config_hash_of,
    current_release,
    describe_holder,
    list_releases,
    lock_decision,
    plan_prune,
    previous_release,
    read_history,
    read_json,
    read_release,
    release_id_for,
    release_path,
    release_summaries,
    remove_release,
    try_create_lock,
    with_outcome,
    write_json_atomic,
    write_release,
)

_SECRET_SUFFIXES = (".env", ".key")


def _gather_files(module: AnsibleModule) -> dict[str, tuple[str, int]]:
    files: dict[str, tuple[str, int]] = {}
    if module.params["files"]:
        for item in module.params["files"]:
            files[check_file_name(item["name"])] = (item["content"], int(item["mode"], 8))
        return files
    src = module.params["src_dir"]
    if not src:
        return files
    if not os.path.isdir(src):
        raise ReleaseError(f"src_dir {src} does not exist")
    for name in sorted(os.listdir(src)):
        path = os.path.join(src, name)
        if not stat.S_ISREG(os.lstat(path).st_mode):
            continue
        with open(path, encoding="utf-8") as handle:
            mode = 0o600 if name.endswith(_SECRET_SUFFIXES) else 0o644
            files[check_file_name(name)] = (handle.read(), mode)
    return files


def _resolve_id(module: AnsibleModule, root: str) -> str:
    wanted = module.params["release_id"]
    if not wanted:
        raise ReleaseError(f"release_id is required for {module.params['operation']}")
    if wanted == "previous":
        found = previous_release(root)
        if not found:
            raise ReleaseError("there is no previous release to go back to")
        return found
    if read_release(root, wanted) is None:
        known = ", ".join(m["id"] for m in list_releases(root)) or "none"
        raise ReleaseError(f"release {wanted!r} does not exist under {root} (known: {known})")
    return wanted


def op_create(module: AnsibleModule, root: str, now: float) -> dict[str, Any]:
    version = module.params["version"]
    if not version:
        raise ReleaseError("version is required for create")
    config_hash = module.params["config_hash"]
    files: dict[str, tuple[str, int]] | None = None
    if not config_hash:
        files = _gather_files(module)
        config_hash = config_hash_of({k: v[0] for k, v in files.items()}, module.params["images"])
    release_id = release_id_for(version, config_hash)
    path = release_path(root, release_id)
    existing = read_release(root, release_id)
    if existing is not None:
        return {"changed": False, "release_id": release_id, "path": path, "release": existing}
    if files is None and not module.check_mode:
        files = _gather_files(module)
    names = list(files) if files is not None else [i["name"] for i in module.params["files"] or []]
    meta = build_metadata(release_id, version, config_hash, names, module.params["images"], module.params["extra"], now)
    if not module.check_mode:
        if not files:
            raise ReleaseError("create needs files or src_dir with at least one file")
        write_release(root, release_id, files, meta)
    return {"changed": True, "release_id": release_id, "path": path, "release": meta}


def op_activate(module: AnsibleModule, root: str, now: float) -> dict[str, Any]:
    release_id = _resolve_id(module, root)
    before = current_release(root)
    changed = before != release_id
    if changed and not module.check_mode:
        activate(root, release_id, now, module.params["note"])
    return {
        "changed": changed,
        "release_id": release_id,
        "replaced": before,
        "diff": {"before": f"current -> {before}\n", "after": f"current -> {release_id}\n"},
    }


def op_set_outcome(module: AnsibleModule, root: str, now: float) -> dict[str, Any]:
    release_id = _resolve_id(module, root)
    outcome = module.params["outcome"]
    if not outcome:
        raise ReleaseError("outcome is required for set_outcome")
    meta = read_release(root, release_id) or {}
    changed = meta.get("outcome") != outcome or meta.get("outcome_message", "") != module.params["note"]
    updated = with_outcome(meta, outcome, module.params["note"], now) if changed else meta
    if changed and not module.check_mode:
        write_json_atomic(os.path.join(release_path(root, release_id), "release.json"), updated)
    return {
        "changed": changed,
        "release_id": release_id,
        "release": updated,
        "diff": {"before": f"outcome: {meta.get('outcome')}\n", "after": f"outcome: {outcome}\n"},
    }


def op_prune(module: AnsibleModule, root: str, now: float) -> dict[str, Any]:
    releases = list_releases(root)
    current = current_release(root)
    previous = previous_release(root, current=current)
    kept, removed, needed, unneeded = plan_prune(releases, module.params["keep"], [current, previous])
    if not module.check_mode:
        for release_id in removed:
            remove_release(root, release_id)
    return {
        "changed": bool(removed),
        "kept": kept,
        "removed": removed,
        "images_needed": needed,
        "images_unneeded": unneeded,
        "releases": (
            release_summaries(root) if module.check_mode else [r for r in release_summaries(root) if r["id"] in kept]
        ),
    }


def op_lock(module: AnsibleModule, root: str, now: float) -> dict[str, Any]:
    token = module.params["token"]
    if not token:
        raise ReleaseError("token is required for lock and unlock")
    path = os.path.join(root, LOCK_FILE)
    info = {
        "owner": module.params["owner"],
        "host": module.params["host"],
        "pid": module.params["pid"],
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
        "epoch": now,
        "token": token,
    }
    holder = read_json(path)
    decision = lock_decision(holder, token, module.params["stale_after"], now, module.params["take_over"] or "")
    if decision == "ours":
        return {"changed": False, "holder": holder}
    if decision == "held":
        module.fail_json(
            msg=f"Stack at {root} is locked by {describe_holder(holder, now)}: another deploy is running. "
            f"Wait for it, or remove {path} if that run is dead (it is taken over after "
            f"{module.params['stale_after']}s).",
            holder=holder,
        )
    if decision == "stale":
        module.warn(f"Taking over a stale deploy lock held by {describe_holder(holder, now)}")
    if decision == "dead":
        module.warn(f"Taking over the deploy lock of a run that no longer runs: {describe_holder(holder, now)}")
    if not module.check_mode:
        os.makedirs(root, mode=0o755, exist_ok=True)
        if decision in ("stale", "dead"):
            # Rename the stale lock away first so two takers cannot both win.
            stale = f"{path}.stale-{os.getpid()}"
            try:
                os.rename(path, stale)
                os.unlink(stale)
            except FileNotFoundError:
                pass
        if not try_create_lock(path, info):
            winner = read_json(path) or {}
            module.fail_json(msg=f"Stack at {root} is locked by {describe_holder(winner, now)}", holder=winner)
    return {"changed": True, "holder": info, "taken_over": holder if decision in ("stale", "dead") else None}


def op_unlock(module: AnsibleModule, root: str, now: float) -> dict[str, Any]:
    token = module.params["token"]
    if not token:
        raise ReleaseError("token is required for lock and unlock")
    path = os.path.join(root, LOCK_FILE)
    holder = read_json(path)
    if holder is None:
        return {"changed": False, "holder": None}
    if holder.get("token") != token:
        module.warn(f"Not removing a deploy lock this run does not hold: {describe_holder(holder, now)}")
        return {"changed": False, "holder": holder}
    if not module.check_mode:
        os.unlink(path)
    return {"changed": True, "holder": holder}


def op_audit(module: AnsibleModule, root: str, now: float) -> dict[str, Any]:
    line = audit_entry(module.params["entry"], now)
    if not module.check_mode:
        os.makedirs(root, mode=0o755, exist_ok=True)
        fd = os.open(os.path.join(root, AUDIT_FILE), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
        with os.fdopen(fd, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")
    return {"changed": True, "line": line}


def op_list(module: AnsibleModule, root: str, now: float) -> dict[str, Any]:
    return {"changed": False, "releases": release_summaries(root)}


def op_history(module: AnsibleModule, root: str, now: float) -> dict[str, Any]:
    return {"changed": False, "history": read_history(root), "releases": release_summaries(root)}


_OPERATIONS = {
    "create": op_create,
    "list": op_list,
    "history": op_history,
    "activate": op_activate,
    "set_outcome": op_set_outcome,
    "prune": op_prune,
    "lock": op_lock,
    "unlock": op_unlock,
    "audit": op_audit,
}


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "root": {"type": "path", "required": True},
            "operation": {"type": "str", "required": True, "choices": list(_OPERATIONS)},
            "version": {"type": "str"},
            "config_hash": {"type": "str"},
            "files": {
                "type": "list",
                "elements": "dict",
                "no_log": True,
                "options": {
                    "name": {"type": "str", "required": True},
                    "content": {"type": "str", "required": True, "no_log": True},
                    "mode": {"type": "str", "default": "0644"},
                },
            },
            "src_dir": {"type": "path"},
            "images": {"type": "dict", "default": {}},
            "extra": {"type": "dict", "default": {}},
            "release_id": {"type": "str"},
            "outcome": {"type": "str", "choices": list(OUTCOMES)},
            "note": {"type": "str", "default": ""},
            "keep": {"type": "int", "default": 5},
            "owner": {"type": "str", "default": "ansible"},
            "host": {"type": "str", "default": ""},
            "pid": {"type": "int", "default": 0},
            "token": {"type": "str", "no_log": False},
            "stale_after": {"type": "int", "default": 1800},
            "take_over": {"type": "str", "default": ""},
            "entry": {"type": "dict", "default": {}},
        },
        mutually_exclusive=[("files", "src_dir")],
        required_if=[
            ("operation", "create", ("version",)),
            ("operation", "set_outcome", ("release_id", "outcome")),
            ("operation", "activate", ("release_id",)),
            ("operation", "lock", ("token",)),
            ("operation", "unlock", ("token",)),
        ],
        supports_check_mode=True,
    )
    root = module.params["root"]
    now = time.time()
    try:
        result = _OPERATIONS[module.params["operation"]](module, root, now)
        current = current_release(root)
        if module.check_mode and module.params["operation"] == "activate" and result.get("changed"):
            current = result["release_id"]
        result.setdefault("current", current)
        result.setdefault("previous", previous_release(root, current=current))
    except ReleaseError as exc:
        module.fail_json(msg=str(exc))
    except OSError as exc:
        module.fail_json(msg=f"{module.params['operation']} under {root} failed: {exc}")
    module.exit_json(**result)


if __name__ == "__main__":
    main()
