# Copyright: (c) 2026, pidock.stack maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""pidock.stack.async_progress: wait for an async job, printing its progress file while it runs.

The documentation is plugins/modules/async_progress.py. Each look is one run of pidock.stack.async_wait
on the host: it waits there until the job finished or the next line is due (looking at the job's status
file every poll seconds, a file read each), then returns the job's result or the progress file's last
record (module_utils/_progress.py writes it), and a line is printed. Once the job finished, the same run
removed the job's status file and the progress file.
Decisions live in the pure functions below (strip_async_keys, job_result, parse_record, next_line,
next_due, timeout_message); the action only runs the module and prints.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ansible.errors import AnsibleActionFail, AnsibleError
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display
from ansible_collections.pidock.stack.plugins.module_utils._progress import duration_text, progress_line

display = Display()

# What async_status adds to a finished job's result; the rest is what the module returned.
ASYNC_KEYS = frozenset({"ansible_job_id", "started", "finished", "results_file", "erased"})
MIN_INTERVAL = 0.5
MIN_POLL = 0.02
DEFAULT_POLL = 0.1

ARGUMENT_SPEC: dict[str, dict[str, Any]] = {
    "jid": {"type": "str", "required": True},
    "progress_file": {"type": "str"},  # a path on the managed host: not expanded here
    "interval": {"type": "float", "default": 10.0},
    "poll": {"type": "float"},
    "timeout": {"type": "float", "default": 3600.0},
    "label": {"type": "str"},
    "heartbeat": {"type": "str"},  # a path on the managed host
}


def strip_async_keys(result: dict[str, Any]) -> dict[str, Any]:
    """The module's own result in a finished job's async_status result: without the async bookkeeping."""
    own = {key: value for key, value in result.items() if key not in ASYNC_KEYS}
    for key in ("changed", "failed"):
        if key in own:
            own[key] = bool(own[key])
    return own


def job_result(status: dict[str, Any], jid: str) -> dict[str, Any]:
    """What the task returns for a finished job: the module's result; a failure always carries a msg."""
    result = strip_async_keys(status)
    if result.get("failed") and not result.get("msg"):
        result["msg"] = f"async job {jid} failed"
    return result


def parse_record(progress: Any) -> dict[str, Any] | None:
    """The progress record async_wait returned; None when the file was missing, partial or not a record."""
    return progress if isinstance(progress, dict) and progress else None


def next_line(record: dict[str, Any] | None, label: str | None, host: str) -> str:
    """The line printed for one look at a running job: ``[host] label: <progress line>``."""
    prefix = f"[{host}] {label}: " if label else f"[{host}] "
    if record is None:
        return f"{prefix}running, no progress reported yet"
    return prefix + progress_line(record)


def next_due(due: float, now: float, interval: float) -> float:
    """When the line after one due at ``due`` is due, seen at ``now``: the next interval mark after now
    (a late look prints one line, not a backlog)."""
    return due + interval * max(1, int((now - due) // interval) + 1)


def timeout_message(jid: str, timeout: float, last_line: str | None) -> str:
    """The failure message when the job still runs after ``timeout`` seconds."""
    last = f"; last progress: {last_line}" if last_line else ""
    return (
        f"async job {jid} still running after {duration_text(timeout)} (timeout); it was left running, "
        f"its status and progress files in place{last}"
    )


class ActionModule(ActionBase):
    """Wait for an async job on the host, printing a progress line every interval; return the module's result."""

    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(ARGUMENT_SPEC)
    _supports_check_mode = True  # async_wait only reads, and removes the job's own bookkeeping
    _supports_async = False

    # The clock, replaced in unit tests.
    _clock: Callable[[], float] = staticmethod(time.monotonic)

    def run(self, tmp: str | None = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        del tmp
        task_vars = task_vars or {}
        _validation, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        jid, path, label = args["jid"], args["progress_file"], args["label"]
        interval, timeout = args["interval"], args["timeout"]
        poll = DEFAULT_POLL if args["poll"] is None else args["poll"]
        if interval < MIN_INTERVAL:
            raise AnsibleActionFail(f"interval must be at least {MIN_INTERVAL} seconds, not {interval}")
        if poll < MIN_POLL:
            raise AnsibleActionFail(f"poll must be at least {MIN_POLL} seconds, not {poll}")
        if timeout <= 0:
            raise AnsibleActionFail(f"timeout must be more than 0 seconds, not {timeout}")
        host = str(task_vars.get("inventory_hostname", "?"))
        async_dir = self._async_dir()

        started = self._clock()
        deadline = started + timeout
        # The first line one interval after the start: a job done sooner prints nothing.
        due = started + interval
        lines: list[str] = []
        line: str | None = None
        record: dict[str, Any] | None = None
        while True:
            wait = max(0.0, min(due, deadline) - self._clock())
            look = self._look(jid, async_dir, path, args["heartbeat"], wait, poll, task_vars)
            if look.get("failed"):  # the look itself failed: the job may still run, leave it be
                result.update(
                    failed=True,
                    msg=f"looking at async job {jid} failed: {look.get('msg', 'no message')}",
                    progress_lines=lines,
                    elapsed=round(self._clock() - started, 1),
                )
                return result
            if look.get("heartbeat_error"):
                display.vvv(f"async_progress: cannot touch {args['heartbeat']}: {look['heartbeat_error']}")
            if look.get("finished"):
                break
            record = parse_record(look.get("progress")) or record
            now = self._clock()
            if now >= due:
                line = next_line(record, label, host)
                display.display(line)
                lines.append(line)
                due = next_due(due, now, interval)
            if now >= deadline:
                result.update(
                    failed=True,
                    msg=timeout_message(jid, timeout, line),
                    ansible_job_id=jid,
                    progress_lines=lines,
                    elapsed=round(now - started, 1),
                )
                return result

        result.update(job_result(look.get("job") or {}, jid))
        result["progress_lines"] = lines
        result["elapsed"] = round(self._clock() - started, 1)
        for problem in look.get("cleanup_problems") or []:
            display.warning(f"async_progress could not remove {problem}")
        return result

    # -- the module the action runs -------------------------------------------------------------

    def _async_dir(self) -> str:
        """The async job directory on the host, as ansible.builtin.async_status's own action finds it."""
        return self._remote_expand_user(self.get_shell_option("async_dir", default="~/.ansible_async"))

    def _look(
        self,
        jid: str,
        async_dir: str,
        path: str | None,
        heartbeat: str | None,
        wait: float,
        poll: float,
        task_vars: dict[str, Any],
    ) -> dict[str, Any]:
        """One run of pidock.stack.async_wait: waits on the host up to ``wait`` seconds; once the job finished,
        its status file and the progress file are removed by the same run (check mode too: they are the job's
        own bookkeeping)."""
        args: dict[str, Any] = {"jid": jid, "async_dir": async_dir, "wait": wait, "poll": poll, "cleanup": True}
        if path:
            args["progress_file"] = path
        if heartbeat:
            args["heartbeat"] = heartbeat
        try:
            return self._execute_module(module_name="pidock.stack.async_wait", module_args=args, task_vars=task_vars)
        except AnsibleError as exc:
            return {"failed": True, "msg": str(exc)}
