# Copyright: pidock.stack maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Lookup pidock.stack.controller_run: who this ansible-playbook run is, and whether another one still runs."""

from __future__ import annotations

DOCUMENTATION = r"""
name: controller_run
version_added: 0.1.0
author: pidock.stack maintainers (@pidock)
short_description: This ansible-playbook run's identity on the controller, or whether a run named by a lock still lives
description:
  - Without terms, returns this run - the controller's host name, the process id of the C(ansible-playbook)
    process and a C(token) made of both and the process's start time (unique for the run, the same in every task
    of it).
  - With terms, each term is a lock holder as P(pidock.stack.release#module) records it (a dict with C(host),
    C(pid) and C(token)), and the lookup says whether that run is known to be gone - C(dead) is true only when the
    holder was taken on this controller and its process no longer runs (or its pid now belongs to a process
    started later). A run on another controller is never judged dead.
  - The P(pidock.stack.swarm#role) role takes the stack's lock with this identity and takes over at once a lock
    left by a run of the same controller that was killed (a dropped link, an interrupted terminal), so the next
    run goes on with no manual step; a lock held by a live run, or by another controller, is respected.
options:
  _terms:
    description: Lock holders to judge (dicts with C(host), C(pid), C(token)). None - this run's identity.
    type: list
    elements: dict
    required: false
notes:
  - The process start time is read from C(/proc) (Linux controllers). Elsewhere only the pid is checked.
"""

EXAMPLES = r"""
- name: This run
  ansible.builtin.set_fact:
    run: "{{ lookup('pidock.stack.controller_run') }}"

- name: Is the lock's holder gone?
  ansible.builtin.debug:
    msg: "{{ lookup('pidock.stack.controller_run', holder) }}"
"""

RETURN = r"""
_raw:
  description:
    - Without terms, one dict - C(host), C(pid) and C(token) of this run.
    - With terms, one dict per term - C(token), C(here) (taken on this controller), C(dead) (gone for sure).
  type: list
  elements: dict
"""

import os
import socket
from typing import Any

from ansible.plugins.lookup import LookupBase


def _cmdline(pid: int) -> bytes | None:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read()
    except OSError:
        return None


def _stat(pid: int) -> list[str]:
    """The fields of /proc/<pid>/stat from field 3 (state) on; empty when the process is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            text = handle.read().decode("ascii", "replace")
    except OSError:
        return []
    # The command name (field 2) may hold spaces and parentheses: split after its closing one.
    return text[text.rfind(")") + 2 :].split()


def _started(pid: int) -> str:
    """The process's start time in clock ticks since boot (field 22), "" when unknown."""
    fields = _stat(pid)
    return fields[19] if len(fields) > 19 else ""


def _parent(pid: int) -> int:
    """The parent's pid (field 4), 0 when unknown."""
    fields = _stat(pid)
    return int(fields[1]) if len(fields) > 1 else 0


def run_process(pid: int | None = None) -> int:
    """The ansible-playbook process of a task: Ansible's workers are forks of it with the same command
    line, so the topmost ancestor with this process's command line."""
    pid = os.getpid() if pid is None else pid
    own = _cmdline(pid)
    if own is None:
        return os.getppid()
    while True:
        parent = _parent(pid)
        if parent <= 1 or _cmdline(parent) != own:
            return pid
        pid = parent


def identity(pid: int | None = None) -> dict[str, Any]:
    main = run_process(pid)
    host = socket.gethostname()
    return {"host": host, "pid": main, "token": f"{host}:{main}:{_started(main) or 'na'}"}


def judge(holder: Any, host: str | None = None) -> dict[str, Any]:
    """Whether the run that took a lock is gone for sure (only a run of this controller can be judged)."""
    holder = holder if isinstance(holder, dict) else {}
    token = str(holder.get("token") or "")
    here = bool(holder) and str(holder.get("host") or "") == (host or socket.gethostname())
    dead = False
    if here:
        try:
            pid = int(holder.get("pid") or 0)
        except (TypeError, ValueError):
            pid = 0
        parts = token.rsplit(":", 2)
        started = parts[2] if len(parts) == 3 and parts[2] != "na" else ""
        if pid <= 0:
            dead = False  # nothing to judge by
        elif not _alive(pid):
            dead = True
        elif started and _started(pid) and _started(pid) != started:
            dead = True  # the pid was reused by a later process
    return {"token": token, "here": here, "dead": dead}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class LookupModule(LookupBase):
    def run(self, terms: list[Any], variables: dict[str, Any] | None = None, **kwargs: Any) -> list[dict[str, Any]]:
        self.set_options(var_options=variables, direct=kwargs)
        if not terms:
            return [identity()]
        return [judge(term) for term in terms]
