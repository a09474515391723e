"""Unit tests for the pidock.stack.async_progress action: its pure decisions, and its loop against a fake host."""

from __future__ import annotations

import base64
import json
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


def _slurped(content: bytes) -> dict[str, Any]:
    return {"content": base64.b64encode(content).decode("ascii"), "encoding": "base64", "source": PROGRESS}


RUNNING = {"started": True, "finished": False, "ansible_job_id": JID, "results_file": f"/root/.ansible_async/{JID}"}
MODULE_RESULT = {"changed": True, "equal": True, "copy": {"files_copied": 3}, "msg": "copied", "secret": "s3cr3t"}
FINISHED = {**MODULE_RESULT, "finished": True, "ansible_job_id": JID, "_ansible_parsed": True}


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
    ("slurped", "expected"),
    [
        (_slurped(json.dumps(_record()).encode()), _record()),
        ({"failed": True, "msg": f"file not found: {PROGRESS}"}, None),
        (None, None),
        (_slurped(b'{"phase": "copy", "bytes_do'), None),  # partial
        (_slurped(b"[1, 2]"), None),
        (_slurped(b"\xff\xfe"), None),
        ({"content": "not base64!"}, None),
        ({"content": 42}, None),
    ],
    ids=["record", "missing", "no-result", "partial", "not-an-object", "not-utf8", "bad-base64", "no-content"],
)
def test_parse_record(slurped: dict[str, Any] | None, expected: dict[str, Any] | None) -> None:
    assert ap.parse_record(slurped) == expected


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
    """Answers the modules the action runs from scripts, and records each call (with the check mode it ran in)."""

    def __init__(self, statuses: list[dict[str, Any]], slurps: list[Any] | None = None) -> None:
        self.statuses = list(statuses)
        self.slurps = list(slurps or [])
        self.calls: list[tuple[str, dict[str, Any], bool]] = []
        self.cleanup: dict[str, Any] | Exception = {"ansible_job_id": JID, "erased": f"/root/.ansible_async/{JID}"}
        self.remove: dict[str, Any] | Exception = {"changed": True, "path": PROGRESS, "state": "absent"}
        self.touch: dict[str, Any] | Exception = {"changed": True, "path": HEARTBEAT, "state": "file"}
        self.action: ap.ActionModule | None = None

    def __call__(self, module_name: str, module_args: dict[str, Any], task_vars: dict[str, Any]) -> dict[str, Any]:
        assert self.action is not None
        self.calls.append((module_name, dict(module_args), bool(self.action._task.check_mode)))
        if module_name == "ansible.builtin.async_status" and module_args["mode"] == "status":
            return dict(self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0])
        if module_name == "ansible.builtin.async_status":
            return _answer(self.cleanup)
        if module_name == "ansible.builtin.slurp":
            return _answer(self.slurps.pop(0) if self.slurps else {"failed": True, "msg": "file not found"})
        if module_name == "ansible.builtin.file" and module_args.get("state") == "touch":
            return _answer(self.touch)
        if module_name == "ansible.builtin.file":
            return _answer(self.remove)
        raise AssertionError(f"unexpected module {module_name}")

    def names(self) -> list[str]:
        return [
            f"{name.rsplit('.', 1)[-1]}:{args.get('mode', args.get('state', ''))}"
            for name, args, _check_mode in self.calls
        ]


def _answer(value: Any) -> dict[str, Any]:
    if isinstance(value, Exception):
        raise value
    return dict(value)


@pytest.fixture
def shown(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """What the action prints: lines and warnings."""
    out: dict[str, list[str]] = {"lines": [], "warnings": []}
    monkeypatch.setattr(ap.display, "display", lambda msg, *a, **k: out["lines"].append(msg))
    monkeypatch.setattr(ap.display, "warning", lambda msg, *a, **k: out["warnings"].append(msg))
    return out


def _action(host: FakeHost, clock: FakeTime, args: dict[str, Any], check_mode: bool = False) -> ap.ActionModule:
    task = Task()
    task.args = args
    task.check_mode = check_mode
    connection = type("Connection", (), {"_shell": type("Shell", (), {"tmpdir": "/tmp/ansible-tmp-x"})()})()
    action = ap.ActionModule(task, connection, None, None, None)
    action._load_name = "pidock.stack.async_progress"
    action._execute_module = host  # type: ignore[method-assign]
    action._clock = clock.clock  # type: ignore[method-assign]
    action._sleep = clock.sleep  # type: ignore[method-assign]
    action.get_shell_option = lambda option, default=None: "~/.ansible_async"  # type: ignore[method-assign]
    action._remote_expand_user = lambda path, **kw: path.replace("~", "/root")  # type: ignore[method-assign]
    host.action = action
    return action


def _run(action: ap.ActionModule) -> dict[str, Any]:
    return action.run(task_vars={"inventory_hostname": "pi1"})


ARGS = {"jid": JID, "progress_file": PROGRESS, "interval": 10, "timeout": 7200, "label": "images"}


def test_prints_a_line_per_look_and_returns_the_modules_result(shown: dict[str, list[str]]) -> None:
    host = FakeHost(
        [RUNNING, RUNNING, FINISHED],
        [
            _slurped(json.dumps(_record(bytes_done=100 * MiB, eta=60)).encode()),
            _slurped(json.dumps(_record()).encode()),
        ],
    )
    clock = FakeTime()
    result = _run(_action(host, clock, dict(ARGS)))

    lines = [
        "[pi1] images: copy   100 MiB of 1.1 GiB (8%), 3,120 of 8,000 files, 48.2 MiB/s, 1 min 00 s left",
        "[pi1] images: copy   412 MiB of 1.1 GiB (36%), 3,120 of 8,000 files, 48.2 MiB/s, 15 s left",
    ]
    assert shown["lines"] == lines
    assert result == {**MODULE_RESULT, "_ansible_parsed": True, "progress_lines": lines, "elapsed": 20.0}
    assert clock.sleeps == [10, 10]
    assert host.names() == [
        "async_status:status",
        "slurp:",
        "async_status:status",
        "slurp:",
        "async_status:status",
        "async_status:cleanup",
        "file:absent",
    ]
    status_args = host.calls[0][1]
    assert status_args == {"jid": JID, "mode": "status", "_async_dir": "/root/.ansible_async"}
    assert host.calls[1][1] == {"src": PROGRESS}
    assert host.calls[-1][1] == {"path": PROGRESS, "state": "absent"}
    assert not any("s3cr3t" in line for line in shown["lines"] + shown["warnings"])  # never the result


def test_a_job_done_at_the_first_look_prints_nothing(shown: dict[str, list[str]]) -> None:
    host = FakeHost([FINISHED])
    result = _run(_action(host, FakeTime(), dict(ARGS)))
    assert result["progress_lines"] == [] == shown["lines"]
    assert result["elapsed"] == 0.0
    assert host.names() == ["async_status:status", "async_status:cleanup", "file:absent"]


def test_a_missing_or_partial_file_is_a_look_without_new_progress(shown: dict[str, list[str]]) -> None:
    host = FakeHost(
        [RUNNING, RUNNING, RUNNING, FINISHED],
        [
            {"failed": True, "msg": f"file not found: {PROGRESS}"},
            _slurped(json.dumps(_record()).encode()),
            _slurped(b'{"phase": "ver'),  # the last good record stays
        ],
    )
    _run(_action(host, FakeTime(), dict(ARGS)))
    assert shown["lines"] == [
        "[pi1] images: running, no progress reported yet",
        "[pi1] images: copy   412 MiB of 1.1 GiB (36%), 3,120 of 8,000 files, 48.2 MiB/s, 15 s left",
        "[pi1] images: copy   412 MiB of 1.1 GiB (36%), 3,120 of 8,000 files, 48.2 MiB/s, 15 s left",
    ]


def test_a_slurp_that_raises_is_a_look_without_progress(shown: dict[str, list[str]]) -> None:
    host = FakeHost([RUNNING, FINISHED], [AnsibleConnectionFailure("reset by peer")])
    result = _run(_action(host, FakeTime(), dict(ARGS)))
    assert shown["lines"] == ["[pi1] images: running, no progress reported yet"]
    assert result["changed"] is True


@pytest.mark.parametrize(
    ("module", "msg"),
    [
        ({"failed": True, "msg": "copy of /src to /dst failed: No space left on device", "copy": {}}, None),
        ({"failed": 1}, f"async job {JID} failed"),
    ],
    ids=["module-msg", "no-msg"],
)
def test_a_failed_job_fails_with_its_message_and_is_cleaned_up(
    shown: dict[str, list[str]], module: dict[str, Any], msg: str | None
) -> None:
    host = FakeHost([RUNNING, {**module, "finished": True, "ansible_job_id": JID}], [])
    result = _run(_action(host, FakeTime(), dict(ARGS)))
    assert result["failed"] is True
    assert result["msg"] == (msg or module["msg"])
    assert "finished" not in result and "ansible_job_id" not in result
    assert host.names()[-2:] == ["async_status:cleanup", "file:absent"]


def test_timeout_fails_naming_the_job_and_the_last_line(shown: dict[str, list[str]]) -> None:
    host = FakeHost([RUNNING], [_slurped(json.dumps(_record()).encode())])
    clock = FakeTime()
    result = _run(_action(host, clock, {**ARGS, "interval": 10, "timeout": 25}))

    last = "[pi1] images: copy   412 MiB of 1.1 GiB (36%), 3,120 of 8,000 files, 48.2 MiB/s, 15 s left"
    assert clock.sleeps == [10, 10, 5]  # the last sleep ends at the deadline
    assert result["failed"] is True
    assert JID in result["msg"] and result["msg"].endswith(f"last progress: {last}")
    assert result["ansible_job_id"] == JID
    assert len(result["progress_lines"]) == 3  # at 0, 10 and 20 s; the look at the deadline (25 s) is not due
    assert result["elapsed"] == 25.0
    assert "cleanup" not in " ".join(host.names()) and "file:absent" not in host.names()  # the job still runs


def test_async_status_failing_is_not_a_finished_job(shown: dict[str, list[str]]) -> None:
    host = FakeHost([{"failed": True, "msg": "async_status exploded"}])
    result = _run(_action(host, FakeTime(), dict(ARGS)))
    assert result["failed"] is True
    assert result["msg"] == f"async_status of job {JID} failed: async_status exploded"
    assert host.names() == ["async_status:status"]  # nothing cleaned up: the job may still run


def test_failed_cleanups_warn_but_never_fail_the_task(shown: dict[str, list[str]]) -> None:
    host = FakeHost([FINISHED])
    host.cleanup = AnsibleConnectionFailure("gone")
    host.remove = {"failed": True, "msg": "rmtree failed: Operation not permitted"}
    result = _run(_action(host, FakeTime(), dict(ARGS)))
    assert "failed" not in result
    assert shown["warnings"] == [
        f"async_progress could not remove the async job {JID} status file: gone",
        f"async_progress could not remove the progress file {PROGRESS}: rmtree failed: Operation not permitted",
    ]


def test_without_a_progress_file_it_only_waits(shown: dict[str, list[str]]) -> None:
    host = FakeHost([RUNNING, FINISHED])
    _run(_action(host, FakeTime(), {"jid": JID}))
    assert shown["lines"] == ["[pi1] running, no progress reported yet"]
    assert host.names() == ["async_status:status", "async_status:status", "async_status:cleanup"]


def test_check_mode_waits_the_same_and_still_removes_the_progress_file(shown: dict[str, list[str]]) -> None:
    host = FakeHost([RUNNING, FINISHED], [_slurped(json.dumps(_record()).encode())])
    action = _action(host, FakeTime(), dict(ARGS), check_mode=True)
    assert action._supports_check_mode is True
    result = _run(action)
    assert result["changed"] is True
    assert [(name.rsplit(".", 1)[-1], check) for name, _args, check in host.calls] == [
        ("async_status", True),
        ("slurp", True),
        ("async_status", True),
        ("async_status", True),  # cleanup: async_status removes the status file in check mode too
        ("file", False),  # the progress file is the job's bookkeeping: removed for real
    ]
    assert action._task.check_mode is True  # restored


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"jid": JID, "interval": 0.2}, "interval must be at least 0.5 seconds"),
        ({"jid": JID, "timeout": 0}, "timeout must be more than 0 seconds"),
        ({"progress_file": PROGRESS}, "missing required arguments: jid"),
        ({"jid": JID, "interval": "soon"}, "interval"),
        ({"jid": JID, "poll": 0.1}, "poll must be at least 0.2 seconds"),
        ({"jid": JID, "every": 3}, "Invalid options"),
    ],
)
def test_bad_arguments(shown: dict[str, list[str]], args: dict[str, Any], message: str) -> None:
    host = FakeHost([FINISHED])
    with pytest.raises(AnsibleActionFail, match=message):
        _run(_action(host, FakeTime(), args))
    assert host.calls == []


def test_half_a_second_is_the_shortest_interval(shown: dict[str, list[str]]) -> None:
    host = FakeHost([RUNNING, RUNNING, FINISHED])
    clock = FakeTime()
    _run(_action(host, clock, {"jid": JID, "interval": 0.5}))
    assert clock.sleeps == [0.5, 0.5]


@pytest.mark.parametrize(
    ("started", "interval", "poll", "due"),
    [(100.0, 10.0, 10.0, 100.0), (100.0, 10.0, 20.0, 100.0), (100.0, 10.0, 0.5, 110.0), (0.0, 0.5, 0.2, 0.5)],
)
def test_first_line_at(started: float, interval: float, poll: float, due: float) -> None:
    assert ap.first_line_at(started, interval, poll) == due


def test_looks_every_poll_and_prints_every_interval(shown: dict[str, list[str]]) -> None:
    """Looks at 0, 2, ..., 24 s (twelve running looks, then finished); lines at 10 and 20 s only,
    the file read only then; the task ends one poll after the job."""
    host = FakeHost(
        [RUNNING] * 12 + [FINISHED],
        [
            _slurped(json.dumps(_record(bytes_done=100 * MiB, eta=60)).encode()),
            _slurped(json.dumps(_record()).encode()),
        ],
    )
    clock = FakeTime()
    result = _run(_action(host, clock, {**ARGS, "interval": 10, "poll": 2}))
    assert clock.sleeps == [2] * 12
    assert len(shown["lines"]) == 2 and shown["lines"][1].endswith("15 s left")
    assert host.names().count("slurp:") == 2
    assert host.names().count("async_status:status") == 13
    assert result["elapsed"] == 24.0


def test_a_short_job_with_a_short_poll_prints_nothing(shown: dict[str, list[str]]) -> None:
    host = FakeHost([RUNNING, RUNNING, FINISHED])
    clock = FakeTime()
    result = _run(_action(host, clock, {**ARGS, "interval": 10, "poll": 0.5}))
    assert clock.sleeps == [0.5, 0.5]
    assert result["progress_lines"] == [] == shown["lines"]
    assert "slurp:" not in host.names()


def test_a_late_look_prints_one_line_not_a_backlog(shown: dict[str, list[str]]) -> None:
    """A look that comes long after the line was due (a slow connection) prints once, and the
    next line is due an interval later on the same grid."""
    host = FakeHost([RUNNING, RUNNING, RUNNING, FINISHED], [_slurped(json.dumps(_record()).encode())] * 3)
    clock = FakeTime()
    action = _action(host, clock, {**ARGS, "interval": 10, "poll": 25})
    _run(action)
    assert clock.sleeps == [25, 25, 25]
    assert len(shown["lines"]) == 3  # at 0, 25 and 50 s: each look is past the due time once


def test_heartbeat_touches_the_file_each_time_a_line_is_due(shown: dict[str, list[str]]) -> None:
    """Looks every 2 s for 24 s, lines at 10 and 20 s: a touch just before each line's read, none
    at the other looks; none at all without the option."""
    host = FakeHost([RUNNING] * 12 + [FINISHED], [_slurped(json.dumps(_record()).encode())] * 2)
    result = _run(_action(host, FakeTime(), {**ARGS, "interval": 10, "poll": 2, "heartbeat": HEARTBEAT}))
    touches = [args for _name, args, _check in host.calls if args.get("state") == "touch"]
    assert len(result["progress_lines"]) == 2
    assert touches == [{"path": HEARTBEAT, "state": "touch"}] * 2
    assert [n for n in host.names() if n != "async_status:status"] == [
        "file:touch",
        "slurp:",
        "file:touch",
        "slurp:",
        "async_status:cleanup",
        "file:absent",
    ]

    without = FakeHost([RUNNING] * 12 + [FINISHED], [_slurped(json.dumps(_record()).encode())] * 2)
    _run(_action(without, FakeTime(), {**ARGS, "interval": 10, "poll": 2}))
    assert "file:touch" not in without.names()


@pytest.mark.parametrize(
    "answer",
    [AnsibleConnectionFailure("reset by peer"), {"failed": True, "msg": "Permission denied"}],
    ids=["raises", "fails"],
)
def test_a_failing_heartbeat_never_fails_the_task(shown: dict[str, list[str]], answer: Any) -> None:
    host = FakeHost([RUNNING, RUNNING, FINISHED], [_slurped(json.dumps(_record()).encode())] * 2)
    host.touch = answer
    result = _run(_action(host, FakeTime(), {**ARGS, "heartbeat": HEARTBEAT}))
    assert "failed" not in result and result["changed"] is True
    assert len(result["progress_lines"]) == 2 == host.names().count("file:touch")
    assert shown["warnings"] == []
