#!/usr/bin/python
# Copyright: (c) 2026, pidock.stack maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: async_wait
short_description: Wait on the host for an async job, up to a time, and read its progress file
version_added: 0.1.0
description:
  - Looks at an async job's status file on the host every O(poll) seconds, for at most O(wait) seconds, and returns
    as soon as the job finished (with the job's result) or once the time is up (with the last progress record).
  - One module run replaces a run of C(ansible.builtin.async_status) per look plus a C(ansible.builtin.slurp) of the
    progress file per line. It is the step of M(pidock.stack.async_progress) (an action), which prints a
    progress line between two runs. Each module run costs the host a Python start; looking from inside one run
    costs it a file read.
  - A job counts as finished as C(ansible.builtin.async_status) counts it - its status file holds JSON without
    C(started). A status file that is empty or not JSON yet is a job that runs.
author:
  - pidock.stack maintainers (@pidock)
options:
  jid:
    description: The job's id (C(ansible_job_id) of the task started with C(async) and C(poll=0)).
    type: str
    required: true
  async_dir:
    description: The directory of the async status files on the host, as the connection's shell option names it.
    type: path
    required: true
  wait:
    description: The most seconds to wait for the job to finish. V(0) looks once.
    type: float
    default: 0
  poll:
    description: Seconds between two looks at the status file while waiting.
    type: float
    default: 0.05
  progress_file:
    description: A progress file the job writes (JSON); its last record is returned in RV(progress).
    type: path
  heartbeat:
    description:
      - A file touched once when the module starts - a sign of life of the controller for a watcher on the host
        (the migration's freeze guard). A failure to touch it is reported in RV(heartbeat_error), never fatal.
    type: path
  cleanup:
    description:
      - Once the job finished, remove its status file and O(progress_file), as C(ansible.builtin.async_status)
        V(mode=cleanup) would. The job's own bookkeeping goes in check mode too, as the job ran in check mode.
    type: bool
    default: false
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: none
notes:
  - A status file that does not exist fails the module (C(could not find job)), as C(ansible.builtin.async_status)
    does.
"""

EXAMPLES = r"""
- name: Start a long copy
  pidock.stack.tree_manifest:
    path: /var/lib/inventory/images
    copy_to: /var/lib/docker/volumes/inventory_images/_data
    progress_file: /var/tmp/copy.progress
  async: 3600
  poll: 0
  register: copy_job

- name: Wait up to ten seconds for it, reading its progress
  pidock.stack.async_wait:
    jid: "{{ copy_job.ansible_job_id }}"
    async_dir: /root/.ansible_async
    wait: 10
    progress_file: /var/tmp/copy.progress
  register: look
"""

RETURN = r"""
finished:
  description: Whether the job finished.
  returned: success
  type: bool
job:
  description: The job's result as its status file holds it, once it finished (empty before).
  returned: success
  type: dict
progress:
  description: The last record of O(progress_file); null when there is none or it is not a JSON object yet.
  returned: success
  type: dict
waited:
  description: Seconds the module waited.
  returned: success
  type: float
cleanup_problems:
  description: What could not be removed with O(cleanup) (a warning for the caller, never a failure).
  returned: success
  type: list
  elements: str
heartbeat_error:
  description: Why O(heartbeat) could not be touched; empty when it was.
  returned: success
  type: str
"""

import json
import os
import time
from typing import Any

from ansible.module_utils.basic import AnsibleModule


def read_status(path: str) -> tuple[bool, dict[str, Any]]:
    """(finished, result) from a job's status file, as async_status reads it; OSError when it is missing."""
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    try:
        data = json.loads(text)
    except ValueError:
        return False, {}  # not written yet (or half): the job runs
    if not isinstance(data, dict) or "started" in data:
        return False, {}
    return True, data


def read_progress(path: str | None) -> dict[str, Any] | None:
    """The progress file's record; None when missing, partial or not an object."""
    if not path:
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            record = json.loads(handle.read())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def touch(path: str) -> str:
    """Touch the heartbeat file; the error text, or '' when it worked."""
    try:
        with open(path, "a", encoding="utf-8"):
            pass
        os.utime(path, None)
    except OSError as exc:
        return str(exc)
    return ""


def remove(paths: list[str]) -> list[str]:
    problems = []
    for path in paths:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            problems.append(f"{path}: {exc}")
    return problems


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "jid": {"type": "str", "required": True},
            "async_dir": {"type": "path", "required": True},
            "wait": {"type": "float", "default": 0},
            "poll": {"type": "float", "default": 0.05},
            "progress_file": {"type": "path"},
            "heartbeat": {"type": "path"},
            "cleanup": {"type": "bool", "default": False},
        },
        supports_check_mode=True,
    )
    params = module.params
    jid = params["jid"]
    if not jid or os.sep in jid or jid in (".", ".."):
        module.fail_json(msg=f"jid: {jid!r} is not a job id")
    if params["wait"] < 0 or params["poll"] <= 0:
        module.fail_json(msg="wait must be 0 or more and poll more than 0 seconds")
    status_path = os.path.join(params["async_dir"], jid)
    heartbeat_error = touch(params["heartbeat"]) if params["heartbeat"] else ""
    began = time.monotonic()
    deadline = began + params["wait"]
    while True:
        try:
            finished, job = read_status(status_path)
        except OSError:
            module.fail_json(msg="could not find job", ansible_job_id=jid, results_file=status_path)
        if finished or time.monotonic() >= deadline:
            break
        time.sleep(min(params["poll"], max(0.0, deadline - time.monotonic())))
    progress = read_progress(params["progress_file"])
    problems: list[str] = []
    if finished and params["cleanup"]:
        problems = remove([status_path] + ([params["progress_file"]] if params["progress_file"] else []))
    module.exit_json(
        changed=False,
        finished=finished,
        job=job,
        progress=progress,
        waited=round(time.monotonic() - began, 3),
        cleanup_problems=problems,
        heartbeat_error=heartbeat_error,
    )


if __name__ == "__main__":
    main()
