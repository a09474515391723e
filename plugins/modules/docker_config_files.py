#!/usr/bin/python
# Copyright: (c) 2026, pidock.stack maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: docker_config_files
short_description: Docker's host configuration files (daemon.json, systemd drop-ins) in one call
version_added: 0.1.0
description:
  - Makes each file of O(files) hold exactly its O(files[].content) with its mode, root-owned, or be absent,
    touching only what differs; missing parent directories are created (C(0755), root).
  - A file with O(files[].validate) is written to a temporary file beside it first, and the command (C(%s) is
    that file) must accept it before it replaces the file; otherwise the module fails with the command's output
    and leaves every file as it was.
  - With O(files[].backup) the previous content is kept beside the file (RV(backup_files)).
  - Each file is replaced atomically, created with its final mode.
  - File contents may carry credentials (a proxy URL), so they are not logged or shown.
author:
  - pidock.stack maintainers (@pidock)
options:
  files:
    description: The files, written in this order.
    type: list
    elements: dict
    required: true
    suboptions:
      path:
        description: The file.
        type: path
        required: true
      content:
        description: What it must hold; null (or O(files[].state=absent)) removes it.
        type: str
      state:
        description: V(present) or V(absent).
        type: str
        choices: [present, absent]
        default: present
      mode:
        description: Its mode, an octal string.
        type: str
        default: "0644"
      validate:
        description: A command that must accept the new content before it replaces the file; C(%s) is a temporary copy.
        type: str
      backup:
        description: Keep the previous content beside the file when it changes.
        type: bool
        default: false
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
    details: Contents may carry credentials; RV(files) names what changed.
  platform:
    platforms: posix
"""

EXAMPLES = r"""
- name: Write daemon.json (validated) and the drop-ins
  pidock.stack.docker_config_files:
    files:
      - path: /etc/docker/daemon.json
        content: "{{ {'log-driver': 'local'} | to_nice_json(indent=2) }}\n"
        validate: dockerd --validate --config-file %s
        backup: true
      - path: /etc/systemd/system/docker.service.d/10-pidock-proxy.conf
        state: absent
"""

RETURN = r"""
files:
  description: The files that changed, each with what was done (V(write), V(mode), V(remove)).
  type: dict
  returned: always
  sample: {/etc/docker/daemon.json: write}
backup_files:
  description: For each file backed up, where its previous content is.
  type: dict
  returned: always
"""

import os
import shlex
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.pidock.stack.plugins.module_utils._atomic import parse_mode, temporary_copy, write_atomic


def _read(path: str) -> tuple[bytes | None, int]:
    try:
        with open(path, "rb") as handle:
            return handle.read(), os.fstat(handle.fileno()).st_mode & 0o7777
    except FileNotFoundError:
        return None, -1


def plan(files: list[dict[str, Any]]) -> list[tuple[dict[str, Any], str]]:
    """(file, action) for every file that differs from what it must be."""
    actions = []
    for f in files:
        have, mode = _read(f["path"])
        want = None if f["state"] == "absent" or f["content"] is None else f["content"].encode("utf-8")
        if want is None:
            if have is not None:
                actions.append((f, "remove"))
        elif have != want:
            actions.append((f, "write"))
        elif mode != f["_mode"] or os.stat(f["path"]).st_uid != 0:
            actions.append((f, "mode"))
    return actions


def _validate(module: AnsibleModule, f: dict[str, Any]) -> None:
    # In the system's temporary directory: the file's own directory may not exist yet (check mode).
    with temporary_copy(f["content"], os.path.basename(f["path"])) as tmp:
        argv = [part.replace("%s", tmp) for part in shlex.split(f["validate"])]
        rc, out, err = module.run_command(argv)
    if rc != 0:
        module.fail_json(
            msg=f"{f['path']} was rejected by `{f['validate']}` (rc {rc}); no file was changed",
            stdout=out,
            stderr=err,
            rc=rc,
        )


def run(module: AnsibleModule) -> dict[str, Any]:
    files = []
    for f in module.params["files"]:
        try:
            files.append({**f, "_mode": parse_mode(f["mode"])})
        except ValueError as exc:
            module.fail_json(msg=f"{f['path']}: {exc}; no file was changed")
    actions = plan(files)
    result: dict[str, Any] = {
        "changed": bool(actions),
        "files": {f["path"]: action for f, action in actions},
        "backup_files": {},
    }
    # Every validation before the first write: a rejected file leaves all of them as they were.
    for f, action in actions:
        if action == "write" and (f.get("validate") or "").strip():
            _validate(module, f)
    if module.check_mode:
        return result
    for f, action in actions:
        path = f["path"]
        if action == "remove":
            os.unlink(path)
            continue
        if action == "write":
            if f["backup"] and os.path.exists(path):
                result["backup_files"][path] = module.backup_local(path)
            os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
            write_atomic(path, f["content"], f["_mode"])
        os.chown(path, 0, 0)
        os.chmod(path, f["_mode"])
    return result


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "files": {
                "type": "list",
                "elements": "dict",
                "required": True,
                "options": {
                    "path": {"type": "path", "required": True},
                    "content": {"type": "str", "no_log": True},
                    "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
                    "mode": {"type": "str", "default": "0644"},
                    "validate": {"type": "str"},
                    "backup": {"type": "bool", "default": False},
                },
            },
        },
        supports_check_mode=True,
    )
    module.exit_json(**run(module))


if __name__ == "__main__":
    main()
