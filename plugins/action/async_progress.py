# Copyright: (c) 2026, pidock.stack maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""pidock.stack.async_progress: wait for an async job, printing its progress file while it runs.

The documentation is plugins/modules/async_progress.py. Each look runs ansible.builtin.async_status for
the job; while the job runs, ansible.builtin.slurp reads the progress file the module writes
(module_utils/_progress.py) and one line is printed, once an interval has passed since the last
one (looks come every poll seconds, the interval by default). Once the job finished, the module's own result
is returned, the job's status file is cleaned up and the progress file removed.
Decisions live in the pure functions below (strip_async_keys, job_result, parse_record, next_line,
first_line_at, timeout_message); the action only runs modules, sleeps and prints.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from ansible.errors import AnsibleActionFail, AnsibleError
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display
from ansible_collections.pidock.stack.plugins.module_utils._progress import duration_text, progress_line

display = Display()

# What async_status adds to a finished job's result; the rest is what the module returned.
ASYNC_KEYS = frozenset({"ansible_job_id", "started", "finished", "results_file", "erased"})
MIN_INTERVAL = 0.5
MIN_POLL = 0.2

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


def parse_record(slurped: dict[str, Any] | None) -> dict[str, Any] | None:
    """The progress record in a slurp result; None when the file is missing, partial or not a record."""
    if not isinstance(slurped, dict) or slurped.get("failed") or not isinstance(slurped.get("content"), str):
        return None
    try:
        record = json.loads(base64.b64decode(slurped["content"], validate=True).decode("utf-8"))
    except ValueError:  # bad base64, bad UTF-8 and bad JSON are all ValueErrors
        return None
    return record if isinstance(record, dict) else None


def next_line(record: dict[str, Any] | None, label: str | None, host: str) -> str:
    """The line printed for one look at a running job: ``[host] label: <progress line>``."""
    prefix = f"[{host}] {label}: " if label else f"[{host}] "
    if record is None:
        return f"{prefix}running, no progress reported yet"
    return prefix + progress_line(record)


def first_line_at(started: float, interval: float, poll: float) -> float:
    """When the first line is due: at the first look when each look is an interval apart, else one
    interval after the start (a job that ends sooner prints nothing)."""
    return started if poll >= interval else started + interval


def timeout_message(jid: str, timeout: float, last_line: str | None) -> str:
    """The failure message when the job still runs after ``timeout`` seconds."""
    last = f"; last progress: {last_line}" if last_line else ""
    return (
        f"async job {jid} still running after {duration_text(timeout)} (timeout); it was left running, "
        f"its status and progress files in place{last}"
    )


class ActionModule(ActionBase):
    """Poll an async job until it finishes, printing a progress line every interval; return the module's result."""

    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(ARGUMENT_SPEC)
    _supports_check_mode = True  # async_status, slurp and the cleanups behave the same in check mode
    _supports_async = False

    # The clock and the sleep, replaced in unit tests.
    _clock: Callable[[], float] = staticmethod(time.monotonic)
    _sleep: Callable[[float], None] = staticmethod(time.sleep)

    def run(self, tmp: str | None = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        del tmp
        task_vars = task_vars or {}
        _validation, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        jid, path, label = args["jid"], args["progress_file"], args["label"]
        interval, timeout = args["interval"], args["timeout"]
        poll = interval if args["poll"] is None else args["poll"]
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
        due = first_line_at(started, interval, poll)
        lines: list[str] = []
        line: str | None = None
        record: dict[str, Any] | None = None
        while True:
            status = self._async_status(jid, "status", async_dir, task_vars)
            if status.get("finished"):
                break
            if status.get("failed"):  # async_status itself failed: the job may still run, leave it be
                result.update(
                    failed=True,
                    msg=f"async_status of job {jid} failed: {status.get('msg', 'no message')}",
                    progress_lines=lines,
                    elapsed=round(self._clock() - started, 1),
                )
                return result
            if self._clock() >= due:
                if args["heartbeat"]:
                    self._touch(args["heartbeat"], task_vars)
                if path:
                    record = parse_record(self._slurp(path, task_vars)) or record
                line = next_line(record, label, host)
                display.display(line)
                lines.append(line)
                due += interval * max(1, int((self._clock() - due) // interval) + 1)
            remaining = deadline - self._clock()
            if remaining <= 0:
                result.update(
                    failed=True,
                    msg=timeout_message(jid, timeout, line),
                    ansible_job_id=jid,
                    progress_lines=lines,
                    elapsed=round(self._clock() - started, 1),
                )
                return result
            self._sleep(min(poll, remaining))

        result.update(job_result(status, jid))
        result["progress_lines"] = lines
        result["elapsed"] = round(self._clock() - started, 1)
        self._clean_up(jid, path, async_dir, task_vars)
        return result

    # -- the modules the action runs ----------------------------------------------------------

    def _async_dir(self) -> str:
        """The async job directory on the host, as ansible.builtin.async_status's own action finds it."""
        return self._remote_expand_user(self.get_shell_option("async_dir", default="~/.ansible_async"))

    def _async_status(self, jid: str, mode: str, async_dir: str, task_vars: dict[str, Any]) -> dict[str, Any]:
        return self._execute_module(
            module_name="ansible.builtin.async_status",
            module_args={"jid": jid, "mode": mode, "_async_dir": async_dir},
            task_vars=task_vars,
        )

    def _slurp(self, path: str, task_vars: dict[str, Any]) -> dict[str, Any] | None:
        """The slurp result of the progress file; None when reading it failed (a look without progress)."""
        try:
            return self._execute_module(
                module_name="ansible.builtin.slurp", module_args={"src": path}, task_vars=task_vars
            )
        except AnsibleError as exc:
            display.vvv(f"async_progress: cannot read {path}: {exc}")
            return None

    def _touch(self, path: str, task_vars: dict[str, Any]) -> None:
        """A sign of life for a watcher on the host (the heartbeat option); a failure is only logged."""
        try:
            done = self._execute_module(
                module_name="ansible.builtin.file", module_args={"path": path, "state": "touch"}, task_vars=task_vars
            )
        except AnsibleError as exc:
            display.vvv(f"async_progress: cannot touch {path}: {exc}")
            return
        if done.get("failed"):
            display.vvv(f"async_progress: cannot touch {path}: {done.get('msg', 'no message')}")

    @contextmanager
    def _outside_check_mode(self) -> Iterator[None]:
        """Run a module for real in check mode too: the progress file is removed as async_status's cleanup
        removes the job's status file, so a check run leaves nothing behind."""
        check = self._task.check_mode
        self._task.check_mode = False
        try:
            yield
        finally:
            self._task.check_mode = check

    def _clean_up(self, jid: str, path: str | None, async_dir: str, task_vars: dict[str, Any]) -> None:
        """Remove the job's status file and the progress file; a failure is a warning, never a failed task."""
        problems: list[str] = []
        try:
            done = self._async_status(jid, "cleanup", async_dir, task_vars)
            if done.get("failed"):
                problems.append(f"async job {jid} status file: {done.get('msg', 'no message')}")
        except AnsibleError as exc:
            problems.append(f"async job {jid} status file: {exc}")
        if path:
            try:
                with self._outside_check_mode():
                    done = self._execute_module(
                        module_name="ansible.builtin.file",
                        module_args={"path": path, "state": "absent"},
                        task_vars=task_vars,
                    )
                if done.get("failed"):
                    problems.append(f"progress file {path}: {done.get('msg', 'no message')}")
            except AnsibleError as exc:
                problems.append(f"progress file {path}: {exc}")
        for problem in problems:
            display.warning(f"async_progress could not remove the {problem}")
