"""async_wait: a job's status file read as async_status reads it, waited on from inside one module run."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest
from ansible_collections.pidock.stack.plugins.modules import async_wait
from conftest import ModuleFailed, RunModule

JID = "j42.4242"
RUNNING = json.dumps({"started": 1, "finished": 0, "ansible_job_id": JID})
RESULT = {"changed": True, "msg": "copied", "copy": {"files": 3}}


@pytest.mark.parametrize(
    ("text", "finished", "job"),
    [
        (RUNNING, False, {}),
        ("", False, {}),  # not written yet
        ('{"changed": tr', False, {}),  # half written
        (json.dumps(RESULT), True, RESULT),
        (json.dumps({"failed": True, "msg": "boom"}), True, {"failed": True, "msg": "boom"}),
        ("[1, 2]", False, {}),
    ],
    ids=["running", "empty", "partial", "finished", "failed-job", "not-an-object"],
)
def test_read_status(tmp_path: Path, text: str, finished: bool, job: dict) -> None:
    path = tmp_path / JID
    path.write_text(text)
    assert async_wait.read_status(str(path)) == (finished, job)


def test_read_status_of_a_missing_file_raises(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        async_wait.read_status(str(tmp_path / JID))


@pytest.mark.parametrize(
    ("text", "record"),
    [('{"phase": "copy", "bytes_done": 5}', {"phase": "copy", "bytes_done": 5}), ('{"phase": "co', None), ("[]", None)],
)
def test_read_progress(tmp_path: Path, text: str, record: dict | None) -> None:
    path = tmp_path / "p.json"
    path.write_text(text)
    assert async_wait.read_progress(str(path)) == record
    assert async_wait.read_progress(str(tmp_path / "none.json")) is None
    assert async_wait.read_progress(None) is None


def _args(tmp_path: Path, **more) -> dict:
    return {"jid": JID, "async_dir": str(tmp_path), **more}


def test_returns_at_once_when_the_job_finished_and_cleans_up(run_module: RunModule, tmp_path: Path) -> None:
    (tmp_path / JID).write_text(json.dumps(RESULT))
    progress = tmp_path / "p.json"
    progress.write_text('{"phase": "verify"}')
    res = run_module(async_wait.main, _args(tmp_path, wait=30, progress_file=str(progress), cleanup=True))
    assert res["finished"] is True and res["job"] == RESULT
    assert res["progress"] == {"phase": "verify"}
    assert res["waited"] < 1 and res["changed"] is False
    assert not (tmp_path / JID).exists() and not progress.exists()
    assert res["cleanup_problems"] == []


def test_without_cleanup_the_files_stay(run_module: RunModule, tmp_path: Path) -> None:
    (tmp_path / JID).write_text(json.dumps(RESULT))
    res = run_module(async_wait.main, _args(tmp_path))
    assert res["finished"] is True and (tmp_path / JID).exists()


def test_waits_until_the_time_is_up_for_a_running_job(run_module: RunModule, tmp_path: Path) -> None:
    (tmp_path / JID).write_text(RUNNING)
    began = time.monotonic()
    res = run_module(async_wait.main, _args(tmp_path, wait=0.3, poll=0.05, cleanup=True))
    assert res["finished"] is False and res["job"] == {} and res["progress"] is None
    assert 0.3 <= time.monotonic() - began < 2
    assert (tmp_path / JID).exists()  # a running job's file is never removed


def test_returns_within_a_poll_of_the_jobs_end(run_module: RunModule, tmp_path: Path) -> None:
    status = tmp_path / JID
    status.write_text(RUNNING)

    def finish() -> None:
        time.sleep(0.3)
        tmp = tmp_path / "tmp"
        tmp.write_text(json.dumps(RESULT))
        os.replace(tmp, status)

    writer = threading.Thread(target=finish)
    writer.start()
    began = time.monotonic()
    res = run_module(async_wait.main, _args(tmp_path, wait=20, poll=0.05))
    writer.join()
    assert res["finished"] is True and res["job"] == RESULT
    assert 0.3 <= time.monotonic() - began < 1.5


def test_check_mode_looks_the_same(run_module: RunModule, tmp_path: Path) -> None:
    (tmp_path / JID).write_text(json.dumps(RESULT))
    res = run_module(async_wait.main, _args(tmp_path, cleanup=True), check_mode=True)
    assert res["finished"] is True and not (tmp_path / JID).exists()


def test_a_missing_job_fails_as_async_status_does(run_module: RunModule, tmp_path: Path) -> None:
    with pytest.raises(ModuleFailed) as failed:
        run_module(async_wait.main, _args(tmp_path, wait=5))
    assert failed.value.result["msg"] == "could not find job"


def test_heartbeat_touched_once_and_its_failure_reported(run_module: RunModule, tmp_path: Path) -> None:
    (tmp_path / JID).write_text(json.dumps(RESULT))
    beat = tmp_path / "guard.heartbeat"
    res = run_module(async_wait.main, _args(tmp_path, heartbeat=str(beat)))
    assert beat.exists() and res["heartbeat_error"] == ""
    old = time.time() - 100
    os.utime(beat, (old, old))
    run_module(async_wait.main, _args(tmp_path, heartbeat=str(beat)))
    assert beat.stat().st_mtime > old + 50
    res = run_module(async_wait.main, _args(tmp_path, heartbeat=str(tmp_path / "no" / "dir")))
    assert "No such file or directory" in res["heartbeat_error"]


@pytest.mark.parametrize(
    ("more", "message"),
    [
        ({"jid": "../../etc/passwd"}, "is not a job id"),
        ({"jid": ".."}, "is not a job id"),
        ({"wait": -1}, "wait must be 0 or more"),
        ({"poll": 0}, "poll more than 0"),
    ],
)
def test_bad_arguments(run_module: RunModule, tmp_path: Path, more: dict, message: str) -> None:
    with pytest.raises(ModuleFailed) as failed:
        run_module(async_wait.main, {**_args(tmp_path), **more})
    assert message in failed.value.result["msg"]
