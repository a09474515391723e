#!/usr/bin/python
# Copyright: (c) 2026, pidock.stack maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: tree_rsync
short_description: Copy a directory tree with rsync, locally or to another host over SSH, reporting progress
version_added: 0.2.0
description:
  - Runs C(rsync) once to make O(dest) a copy of the contents of O(src), with the options the caller chooses
    (O(options)), and reports what changed from rsync's C(--itemize-changes) lines.
  - With O(progress_file), keeps a progress record for M(pidock.stack.async_progress) while rsync runs, read from
    rsync's C(--info=progress2) output - bytes copied, files checked out of the whole tree, the rate and the time
    left - so a task run with C(async) and C(poll=0) prints a line every few seconds. The tree's file count is
    known from the start (C(--no-inc-recursive)); the bytes to do are rsync's estimate from its percentage.
  - In check mode, runs rsync with C(--dry-run) and reports what it would change.
  - Fails with rsync's exit code and the end of its error output when rsync fails (a file vanishing from a live
    tree, exit code 24, included).
author:
  - pidock.stack maintainers (@pidock)
options:
  src:
    description: The directory whose contents are copied (a trailing slash is added).
    type: path
    required: true
  dest:
    description:
      - The directory that becomes the copy, local (V(/var/lib/docker/volumes/x/_data)) or remote through
        O(rsh) (V(root@10.0.0.7:x/_data)). A trailing slash is added.
    type: str
    required: true
  rsh:
    description: The remote shell rsync runs to reach a remote O(dest) (C(--rsh)), for example C(ssh -i key -p 22).
    type: str
  chown:
    description: Owner and group of every copied entry, C(uid:gid) (C(--chown)).
    type: str
  options:
    description:
      - rsync options, for example V([--archive, --hard-links, --numeric-ids, --delete]).
      - The module adds C(--itemize-changes), C(--info=progress2) and C(--no-inc-recursive), and C(--dry-run) in
        check mode.
    type: list
    elements: str
    default: [--archive]
  executable:
    description: The rsync program.
    type: str
    default: rsync
  progress_file:
    description:
      - A JSON progress record, rewritten atomically (mode 0600) at most every O(progress_interval) seconds while
        rsync runs (see M(pidock.stack.async_progress)).
    type: path
  progress_interval:
    description: Seconds between two writes of O(progress_file).
    type: float
    default: 1.0
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: rsync runs with C(--dry-run); RV(changes) and RV(itemized) say what it would change.
  diff_mode:
    support: none
  platform:
    platforms: posix
seealso:
  - module: pidock.stack.tree_manifest
  - module: pidock.stack.async_progress
"""

EXAMPLES = r"""
- name: Push the images to the new host over SSH, in the background
  pidock.stack.tree_rsync:
    src: /var/lib/inventory/images
    dest: root@10.0.0.7:inventory_images/_data
    rsh: ssh -i /var/lib/pidock-migrate/transfer_ed25519 -o BatchMode=yes
    chown: "1000:1000"
    options: [--archive, --hard-links, --numeric-ids, --delete, --partial-dir=.pidock-partial]
    progress_file: /var/lib/pidock-migrate/images.progress.json
  async: 14400
  poll: 0
  register: copy_job

- name: Wait for it, printing its progress
  pidock.stack.async_progress:
    jid: "{{ copy_job.ansible_job_id }}"
    progress_file: /var/lib/pidock-migrate/images.progress.json
    label: images
"""

RETURN = r"""
changes:
  description: The number of entries rsync created, updated or deleted (the root directory's own time not counted).
  returned: always
  type: int
  sample: 3
itemized:
  description: The first 200 of rsync's C(--itemize-changes) lines (the root directory's own time left out).
  returned: always
  type: list
  elements: str
  sample: [">f+++++++++ 2026/11/a.jpg", "*deleting 2026/10/b.jpg"]
bytes:
  description: The bytes rsync reported as transferred (0 in check mode).
  returned: always
  type: int
  sample: 16100000
files_total:
  description: The entries of the source tree rsync checked.
  returned: always
  type: int
  sample: 381
seconds:
  description: How long rsync ran.
  returned: always
  type: float
  sample: 3.2
cmd:
  description: The rsync command line (without the remote shell's arguments).
  returned: always
  type: list
  elements: str
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.pidock.stack.plugins.module_utils._progress import ProgressMeter
from ansible_collections.pidock.stack.plugins.module_utils._rsync import rsync_argv, run


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "src": {"type": "path", "required": True},
            "dest": {"type": "str", "required": True},
            "rsh": {"type": "str"},
            "chown": {"type": "str"},
            "options": {"type": "list", "elements": "str", "default": ["--archive"]},
            "executable": {"type": "str", "default": "rsync"},
            "progress_file": {"type": "path"},
            "progress_interval": {"type": "float", "default": 1.0},
        },
        supports_check_mode=True,
    )
    params = module.params
    if not os.path.isdir(params["src"]):
        module.fail_json(msg=f"src {params['src']} is not a directory")
    meter = ProgressMeter(params["progress_file"], params["progress_interval"])
    argv = rsync_argv(params, module.check_mode)
    try:
        rc, err, transfer, seconds = run(argv, meter)
    except OSError as exc:
        module.fail_json(msg=f"cannot run {argv[0]}: {exc}", cmd=argv)
    if rc != 0:
        module.fail_json(
            msg=f"rsync failed with exit code {rc}: {err.strip()[-2000:] or 'no error output'}",
            rc=rc,
            cmd=argv,
            changes=transfer.changes,
            itemized=transfer.itemized,
        )
    module.exit_json(
        changed=transfer.changes > 0,
        changes=transfer.changes,
        itemized=transfer.itemized,
        bytes=0 if module.check_mode else transfer.bytes,
        files_total=transfer.files_total,
        seconds=seconds,
        cmd=argv,
    )


if __name__ == "__main__":
    main()
