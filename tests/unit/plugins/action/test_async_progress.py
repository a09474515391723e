"""Unit tests for the pidock.stack.async_progress action: its pure decisions, and its loop against a fake host."""

from __future__ import annotations

from typing import Any

import pytest
from ansible.errors import AnsibleActionFail, AnsibleConnectionFailure
from ansible.playbook.task import Task
from ansible_collections.pidock.stack.plugins.action import async_progress as ap
from fake_time import FakeTime

MiB = 1024 * 1024
JID = "j123456789.4242"
PROGRESS = "/var/tmp/p.json"
HEARTBEAT = "/var/lib/pidock-migrate/guard.heartbeat"


def _record(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "phase": "copy",
        "files_done": 3120,
        "files_total": 8000,
        "bytes_done": 412 * MiB,
        "bytes_total": 1126 * MiB,
        "elapsed": 8.5,
        "rate": 48.2 * MiB,
        "eta": 15,
        "done": False,
    }
    return {**base, **fields}


MODULE_RESULT = {"changed": True, "equal": True, "copy": {"files_copied": 3}, "msg": "copied", "secret": "s3cr3t"}
# What the job's status file holds once it finished (async_wrapper writes the module's result).
FINISHED = {**MODULE_RESULT, "_ansible_parsed": True}


# -- the pure functions ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (FINISHED, {**MODULE_RESULT, "_ansible_parsed": True}),
        ({"finished": 1, "started": 1, "changed": 1, "failed": 0}, {"changed": True, "failed": False}),
        ({"failed": True, "msg": "boom", "finished": True, "erased": "/x"}, {"failed": True, "msg": "boom"}),
        ({"results_file": "/x", "stdout": "out", "rc": 0}, {"stdout": "out", "rc": 0}),  # the module's stdout stays
        ({}, {}),
    ],
    ids=["module-result", "ints-become-bools", "failure", "stdout-is-the-modules", "empty"],
)
def test_strip_async_keys(status: dict[str, Any], expected: dict[str, Any]) -> None:
    assert ap.strip_async_keys(status) == expected


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ({"finished": True, "failed": True, "msg": "disk full"}, {"failed": True, "msg": "disk full"}),
        ({"finished": True, "failed": True}, {"failed": True, "msg": f"async job {JID} failed"}),
        ({"finished": True, "changed": False}, {"changed": False}),
    ],
    ids=["module-msg", "failure-without-msg", "success"],
)
def test_job_result(status: dict[str, Any], expected: dict[str, Any]) -> None:
    assert ap.job_result(status, JID) == expected


@pytest.mark.parametrize(
    ("progress", "expected"),
    [
        (_record(), _record()),
        (None, None),  # missing, partial or not an object: async_wait returns null
        ({}, None),
        ([1, 2], None),
        ("copy", None),
    ],
    ids=["record", "none", "empty", "a-list", "a-string"],
)
def test_parse_record(progress: Any, expected: dict[str, Any] | None) -> None:
    assert ap.parse_record(progress) == expected


@pytest.mark.parametrize(
    ("due", "now", "interval", "expected"),
    [(110.0, 110.0, 10.0, 120.0), (110.0, 111.5, 10.0, 120.0), (110.0, 135.0, 10.0, 140.0), (0.5, 0.5, 0.5, 1.0)],
    ids=["on-time", "a-little-late", "a-backlog-is-skipped", "half-a-second"],
)
def test_next_due(due: float, now: float, interval: float, expected: float) -> None:
    assert ap.next_due(due, now, interval) == expected


@pytest.mark.parametrize(
    ("record", "label", "line"),
    [
        (
            _record(),
            "images",
            "[pi1] images: copy   412 MiB of 1.1 GiB (36%), 3,120 of 8,000 files, 48.2 MiB/s, 15 s left",
        ),
        (_record(), None, "[pi1] copy   412 MiB of 1.1 GiB (36%), 3,120 of 8,000 files, 48.2 MiB/s, 15 s left"),
        (None, "images", "[pi1] images: running, no progress reported yet"),
        (None, "", "[pi1] running, no progress reported yet"),
        (
            _record(phase="scan", files_total=None, bytes_total=None, rate=None, eta=None),
            "ml",
            "[pi1] ml: scan   3,120 files, 412 MiB so far, time left unknown",
        ),
    ],
)
def test_next_line(record: dict[str, Any] | None, label: str | None, line: str) -> None:
    assert ap.next_line(record, label, "pi1") == line


@pytest.mark.parametrize(
    ("timeout", "last", "message"),
    [
        (
            7200,
            "[pi1] images: copy   412 MiB",
            f"async job {JID} still running after 2 h 00 min (timeout); it was left running, its status and "
            "progress files in place; last progress: [pi1] images: copy   412 MiB",
        ),
        (
            30,
            None,
            f"async job {JID} still running after 30 s (timeout); it was left running, its status and progress "
            "files in place",
        ),
    ],
)
def test_timeout_message(timeout: float, last: str | None, message: str) -> None:
    assert ap.timeout_message(JID, timeout, last) == message


# -- the loop against a fake host -------------------------------------------------------------------


class FakeHost:
    """pidock.stack.async_wait on a host whose job finishes at ``finish_at`` (seconds after the start) with
    ``job``, its progress file holding the record of ``progress`` last written by then. Each look moves
    the fake clock as the module's wait would; the calls are recorded with the check mode they ran in."""

    def __init__(
        self,
        clock: FakeTime,
        finish_at: float | None,
        job: dict[str, Any] | None = None,
        progress: list[tuple[float, Any]] | None = None,
    ) -> None:
        self.clock = clock
        self.start = clock.now
        self.finish_at = finish_at
        self.job = dict(FINISHED if job is None else job)
        self.progress = progress or []
        self.calls: list[tuple[str, dict[str, Any], bool]] = []
        self.fail: dict[str, Any] | Exception | None = None
        self.extra: dict[str, Any] = {}
        self.action: ap.ActionModule | None = None

    def __call__(self, module_name: str, module_args: dict[str, Any], task_vars: dict[str, Any]) -> dict[str, Any]:
        assert self.action is not None
        assert module_name == "pidock.stack.async_wait", module_name
        self.calls.append((module_name, dict(module_args), bool(self.action._task.check_mode)))
        if isinstance(self.fail, Exception):
            raise self.fail
        if self.fail is not None:
            return dict(self.fail)
        now = self.clock.now - self.start
        wait = module_args["wait"]
        finished = self.finish_at is not None and self.finish_at <= now + wait
        self.clock.now += max(0.0, self.finish_at - now) if finished else wait
        at = self.clock.now - self.start
        written = [record for when, record in self.progress if when <= at]
        answer = {
            "changed": False,
            "finished": finished,
            "job": self.job if finished else {},
            "progress": written[-1] if written else None,
            "cleanup_problems": [],
            "heartbeat_error": "",
        }
        answer.update(self.extra)
        return answer

    def waits(self) -> list[float]:
        return [args["wait"] for _name, args, _check in self.calls]


@pytest.fixture
def shown(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """What the action prints: lines, warnings and -vvv messages."""
    out: dict[str, list[str]] = {"lines": [], "warnings": [], "vvv": []}
    monkeypatch.setattr(ap.display, "display", lambda msg, *a, **k: out["lines"].append(msg))
    monkeypatch.setattr(ap.display, "warning", lambda msg, *a, **k: out["warnings"].append(msg))
    monkeypatch.setattr(ap.display, "vvv", lambda msg, *a, **k: out["vvv"].append(msg))
    return out


def _action(host: FakeHost, args: dict[str, Any], check_mode: bool = False) -> ap.ActionModule:
    task = Task()
    task.args = args
    task.check_mode = check_mode
    connection = type("Connection", (), {"_shell": type("Shell", (), {"tmpdir": "/tmp/ansible-tmp-x"})()})()
    action = ap.ActionModule(task, connection, None, None, None)
    action._load_name = "pidock.stack.async_progress"
    action._execute_module = host  # type: ignore[method-assign]
    action._clock = host.clock.clock  # type: ignore[method-assign]
    action.get_shell_option = lambda option, default=None: "~/.ansible_async"  # type: ignore[method-assign]
    action._remote_expand_user = lambda path, **kw: path.replace("~", "/root")  # type: ignore[method-assign]
    host.action = action
    return action


def _run(action: ap.ActionModule) -> dict[str, Any]:
    return action.run(task_vars={"inventory_hostname": "pi1"})


ARGS = {"jid": JID, "progress_file": PROGRESS, "interval": 10, "timeout": 7200, "label": "images"}


def test_one_look_per_line_and_the_modules_result(shown: dict[str, list[str]]) -> None:
    """A job of 24 s, lines every 10 s: three looks (waits of 10, 10 and 10 s, the last cut short by the
    job's end), the first line at 10 s, never the result in a line."""
    clock = FakeTime()
    host = FakeHost(clock, 24, progress=[(5, _record(bytes_done=100 * MiB, eta=60)), (15, _record())])
    result = _run(_action(host, dict(ARGS)))

    lines = [
        "[pi1] images: copy   100 MiB of 1.1 GiB (8%), 3,120 of 8,000 files, 48.2 MiB/s, 1 min 00 s left",
        "[pi1] images: copy   412 MiB of 1.1 GiB (36%), 3,120 of 8,000 files, 48.2 MiB/s, 15 s left",
    ]
    assert shown["lines"] == lines
    assert result == {**MODULE_RESULT, "_ansible_parsed": True, "progress_lines": lines, "elapsed": 24.0}
    assert host.waits() == [10, 10, 10]
    assert host.calls[0][1] == {
        "jid": JID,
        "async_dir": "/root/.ansible_async",
        "wait": 10,
        "poll": 0.1,
        "cleanup": True,
        "progress_file": PROGRESS,
    }
    assert not any("s3cr3t" in line for line in shown["lines"] + shown["warnings"])


def test_a_job_done_within_the_first_interval_prints_nothing(shown: dict[str, list[str]]) -> None:
    host = FakeHost(FakeTime(), 3.2)
    result = _run(_action(host, dict(ARGS)))
    assert result["progress_lines"] == [] == shown["lines"]
    assert result["elapsed"] == 3.2  # the look returned when the job ended, not at the interval's end
    assert len(host.calls) == 1


def test_a_missing_or_partial_file_is_a_look_without_new_progress(shown: dict[str, list[str]]) -> None:
    """No record before 12 s; then one; a partial file later (async_wait returns null) keeps the last."""
    host = FakeHost(FakeTime(), 35, progress=[(12, _record()), (25, None)])
    _run(_action(host, dict(ARGS)))
    assert shown["lines"] == [
        "[pi1] images: running, no progress reported yet",
        "[pi1] images: copy   412 MiB of 1.1 GiB (36%), 3,120 of 8,000 files, 48.2 MiB/s, 15 s left",
        "[pi1] images: copy   412 MiB of 1.1 GiB (36%), 3,120 of 8,000 files, 48.2 MiB/s, 15 s left",
    ]


@pytest.mark.parametrize(
    ("job", "msg"),
    [
        ({"failed": True, "msg": "copy of /src to /dst failed: No space left on device", "copy": {}}, None),
        ({"failed": 1}, f"async job {JID} failed"),
    ],
    ids=["module-msg", "no-msg"],
)
def test_a_failed_job_fails_with_its_message(shown: dict[str, list[str]], job: dict[str, Any], msg: str | None) -> None:
    host = FakeHost(FakeTime(), 12, job=job)
    result = _run(_action(host, dict(ARGS)))
    assert result["failed"] is True
    assert result["msg"] == (msg or job["msg"])
    assert "finished" not in result and "ansible_job_id" not in result
    assert all(args["cleanup"] for _name, args, _check in host.calls)


def test_timeout_fails_naming_the_job_and_the_last_line(shown: dict[str, list[str]]) -> None:
    host = FakeHost(FakeTime(), None, progress=[(0, _record())])
    result = _run(_action(host, {**ARGS, "interval": 10, "timeout": 25}))

    last = "[pi1] images: copy   412 MiB of 1.1 GiB (36%), 3,120 of 8,000 files, 48.2 MiB/s, 15 s left"
    assert host.waits() == [10, 10, 5]  # the last look ends at the deadline
    assert result["failed"] is True
    assert JID in result["msg"] and result["msg"].endswith(f"last progress: {last}")
    assert result["ansible_job_id"] == JID
    assert len(result["progress_lines"]) == 2  # at 10 and 20 s; the deadline (25 s) is not a line
    assert result["elapsed"] == 25.0


@pytest.mark.parametrize(
    "failure",
    [{"failed": True, "msg": "could not find job"}, AnsibleConnectionFailure("reset by peer")],
    ids=["fails", "raises"],
)
def test_a_failing_look_is_not_a_finished_job(shown: dict[str, list[str]], failure: Any) -> None:
    host = FakeHost(FakeTime(), 5)
    host.fail = failure
    result = _run(_action(host, dict(ARGS)))
    assert result["failed"] is True
    assert result["msg"].startswith(f"looking at async job {JID} failed: ")
    assert ("could not find job" in result["msg"]) or ("reset by peer" in result["msg"])
    assert len(host.calls) == 1


def test_failed_cleanups_warn_but_never_fail_the_task(shown: dict[str, list[str]]) -> None:
    host = FakeHost(FakeTime(), 1)
    host.extra = {"cleanup_problems": [f"{PROGRESS}: Operation not permitted"]}
    result = _run(_action(host, dict(ARGS)))
    assert "failed" not in result
    assert shown["warnings"] == [f"async_progress could not remove {PROGRESS}: Operation not permitted"]


def test_without_a_progress_file_it_only_waits(shown: dict[str, list[str]]) -> None:
    host = FakeHost(FakeTime(), 12)
    _run(_action(host, {"jid": JID}))
    assert shown["lines"] == ["[pi1] running, no progress reported yet"]
    assert all("progress_file" not in args for _name, args, _check in host.calls)


def test_check_mode_runs_the_same_look(shown: dict[str, list[str]]) -> None:
    host = FakeHost(FakeTime(), 12, progress=[(1, _record())])
    action = _action(host, dict(ARGS), check_mode=True)
    assert action._supports_check_mode is True
    result = _run(action)
    assert result["changed"] is True
    assert [check for _name, _args, check in host.calls] == [True, True]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"jid": JID, "interval": 0.2}, "interval must be at least 0.5 seconds"),
        ({"jid": JID, "timeout": 0}, "timeout must be more than 0 seconds"),
        ({"progress_file": PROGRESS}, "missing required arguments: jid"),
        ({"jid": JID, "interval": "soon"}, "interval"),
        ({"jid": JID, "poll": 0.01}, "poll must be at least 0.02 seconds"),
        ({"jid": JID, "every": 3}, "Invalid options"),
    ],
)
def test_bad_arguments(shown: dict[str, list[str]], args: dict[str, Any], message: str) -> None:
    host = FakeHost(FakeTime(), 0)
    with pytest.raises(AnsibleActionFail, match=message):
        _run(_action(host, args))
    assert host.calls == []


def test_half_a_second_is_the_shortest_interval_and_poll_is_passed_on(shown: dict[str, list[str]]) -> None:
    host = FakeHost(FakeTime(), 1.2)
    _run(_action(host, {"jid": JID, "interval": 0.5, "poll": 0.25}))
    assert host.waits() == [0.5, 0.5, 0.5]
    assert {args["poll"] for _name, args, _check in host.calls} == {0.25}


def test_a_late_look_prints_one_line_not_a_backlog(shown: dict[str, list[str]]) -> None:
    """A look that returns long after the line was due (a slow connection) prints once, and the next
    line is due on the same grid."""
    host = FakeHost(FakeTime(), 40)
    action = _action(host, {**ARGS, "interval": 10})
    real = host.__call__

    def slow(module_name: str, module_args: dict[str, Any], task_vars: dict[str, Any]) -> dict[str, Any]:
        answer = real(module_name, module_args, task_vars)
        if len(host.calls) == 1:
            host.clock.now += 15  # the first answer took 15 s more to come back
        return answer

    action._execute_module = slow  # type: ignore[method-assign]
    _run(action)
    # The first look returned at 25 s: one line; the next is due at 30 s (a wait of 5 s), then 40 s.
    assert host.waits() == [10, 5, 10]
    assert len(shown["lines"]) == 2


def test_heartbeat_is_passed_to_each_look_and_its_failure_only_logged(shown: dict[str, list[str]]) -> None:
    host = FakeHost(FakeTime(), 24)
    host.extra = {"heartbeat_error": "Permission denied"}
    result = _run(_action(host, {**ARGS, "heartbeat": HEARTBEAT}))
    assert "failed" not in result and result["changed"] is True
    assert [args.get("heartbeat") for _name, args, _check in host.calls] == [HEARTBEAT] * 3
    assert (
        shown["warnings"] == [] and shown["vvv"] == [f"async_progress: cannot touch {HEARTBEAT}: Permission denied"] * 3
    )

    without = FakeHost(FakeTime(), 24)
    _run(_action(without, dict(ARGS)))
    assert all("heartbeat" not in args for _name, args, _check in without.calls)
