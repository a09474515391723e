#!/usr/bin/python
# Copyright: (c) 2026, pidock.stack maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: async_progress
short_description: Wait for an async task, printing a progress line every few seconds
version_added: 0.2.0
description:
  - Waits for a task started with C(async) and C(poll=0), like M(ansible.builtin.async_status) in an C(until) loop,
    but prints a line every O(interval) seconds, read from the progress file the task writes.
  - A line names the host, O(label), the phase, the bytes and files done and to do, the rate and the time left; the
    sample of RV(progress_lines) shows two.
  - Each look is one run of M(pidock.stack.async_wait) on the host. It waits there until the job finished or the
    next line is due, looking at the job's status file every O(poll) seconds (a file read, not a module run), and
    returns the job's result or the last record of O(progress_file) (a missing or unreadable file only means no
    progress yet). The first line comes one interval after the start (a job done sooner prints nothing); the task
    returns at most O(poll) seconds after the job ended.
  - Once the job finished, returns the job's own result (what the module returned, without the async bookkeeping
    keys) and fails when the job failed. The same look removed the job's status file and O(progress_file), in
    check mode too (they are the job's own bookkeeping). A removal that fails is a warning, not a failure.
  - Prints progress lines only, never the job's result.
  - M(pidock.stack.tree_manifest) and M(pidock.stack.tree_rsync) (bytes and files) and
    M(pidock.stack.migrate_subscription_wait) (rows and tables) write a progress file with their C(progress_file)
    option.
  - This is an action plugin; it runs M(pidock.stack.async_wait) on the host, one run per line while the job
    runs. Run it with the same C(become) settings as the task it waits for, which owns the job's status file and
    the progress file (mode 0600).
author:
  - pidock.stack maintainers (@pidock)
options:
  jid:
    description: The job id, RV(ansible.builtin.async_status#module:ansible_job_id) of the registered async task.
    type: str
    required: true
  progress_file:
    description:
      - The progress file the job writes on the managed host (a JSON record, see
        O(pidock.stack.tree_manifest#module:progress_file)).
      - Removed once the job finished. Without it, each line only says the job still runs.
    type: str
  interval:
    description: Seconds between two lines. At least V(0.5).
    type: float
    default: 10
  poll:
    description:
      - Seconds between two looks at the job's status file, on the host. At least V(0.02).
    type: float
    default: 0.1
  timeout:
    description:
      - Seconds to wait for the job. When they pass, the task fails naming the job and the last progress line;
        the job is left running and its files in place, so another task can wait again.
    type: float
    default: 3600
  label:
    description: A word printed before each line after the host, such as the name of the tree being copied.
    type: str
  heartbeat:
    description:
      - A file on the managed host touched when each look begins, every O(interval) seconds while the job runs.
      - It is a sign of life for a process that watches the controller, such as the freeze guard of
        M(pidock.stack.migrate_guard). A touch that fails is only logged (C(-vvv)).
      - The look that waits on the host does not touch it again - a controller that dies meanwhile stays silent.
    type: str
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
attributes:
  action:
    support: full
  async:
    support: none
  bypass_host_loop:
    support: none
  check_mode:
    support: full
    details:
      - Waits and prints the same way for a job started in check mode. The job's status file and the progress
        file are removed in check mode too (they are the job's bookkeeping, not managed state).
  diff_mode:
    support: none
  platform:
    platforms: posix
seealso:
  - module: pidock.stack.async_wait
  - module: ansible.builtin.async_status
  - module: pidock.stack.tree_manifest
"""

EXAMPLES = r"""
- name: Copy the images in the background, reporting progress
  pidock.stack.tree_manifest:
    path: /var/lib/inventory/images
    copy_to: /var/lib/docker/volumes/inventory_images/_data
    dest: /var/lib/pidock-migrate/images.source.json
    progress_file: /var/tmp/pidock-images.progress.json
  async: 7200
  poll: 0
  register: job

- name: Wait for the copy, printing progress
  pidock.stack.async_progress:
    jid: "{{ job.ansible_job_id }}"
    progress_file: /var/tmp/pidock-images.progress.json
    interval: 10
    timeout: 7200
    label: images
  register: copied

- name: The copy result is the module's own
  ansible.builtin.debug:
    msg: "{{ copied.copy.bytes_copied }} bytes copied, equal: {{ copied.equal }}"
"""

RETURN = r"""
changed:
  description: Whether the job changed anything (the job's own C(changed)).
  returned: when the job finished
  type: bool
msg:
  description: The job's message; on a timeout, the job id and the last progress line.
  returned: when the job set one, or on a timeout
  type: str
progress_lines:
  description: The lines printed, one per look while the job ran.
  returned: always
  type: list
  elements: str
  sample:
    - "[pi1] images: scan   3,120 files, 1.1 GiB so far, time left unknown"
    - "[pi1] images: copy   412 MiB of 1.1 GiB (36%), 3,120 of 8,000 files, 48.2 MiB/s, 15 s left"
elapsed:
  description: Seconds spent waiting.
  returned: always
  type: float
  sample: 184.2
ansible_job_id:
  description: The job id, to wait again.
  returned: on a timeout
  type: str
"""
