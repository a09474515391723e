"""pidock.stack.controller_run: a run's identity, and which lock holders are gone for sure."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest
from ansible_collections.pidock.stack.plugins.lookup import controller_run as cr


def test_identity_is_stable_and_names_this_host() -> None:
    first, second = cr.identity(), cr.identity()
    assert first == second
    assert first["host"] == socket.gethostname()
    host, pid, started = first["token"].rsplit(":", 2)
    assert (host, int(pid)) == (first["host"], first["pid"])
    assert started == cr._started(first["pid"]) != ""


def test_a_fork_with_the_same_command_line_names_its_parent() -> None:
    """Ansible's workers are forks of ansible-playbook: the run is the topmost process with its command line."""
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the fork
        os.close(read)
        os.write(write, str(cr.run_process()).encode())
        os._exit(0)
    os.close(write)
    got = int(os.read(read, 64).decode())
    os.waitpid(child, 0)
    assert got == cr.run_process()


def _gone_pid() -> int:
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    )
    return int(done.stdout)


def _holder(pid: int, started: str | None = None, host: str | None = None) -> dict:
    host = host or socket.gethostname()
    started = cr._started(pid) if started is None else started
    return {"host": host, "pid": pid, "token": f"{host}:{pid}:{started or 'na'}"}


JUDGED = [
    # (holder, here, dead)
    (lambda: _holder(os.getpid()), True, False),
    (lambda: _holder(_gone_pid(), started="12345"), True, True),
    # The pid runs, but it is a later process than the one that took the lock.
    (lambda: _holder(os.getpid(), started="1"), True, True),
    # Another controller's run is never judged.
    (lambda: _holder(_gone_pid(), started="1", host="elsewhere.example"), False, False),
    # Nothing to judge by.
    (lambda: {"host": socket.gethostname(), "pid": 0, "token": "x"}, True, False),
    (lambda: None, False, False),
]


@pytest.mark.parametrize(("make", "here", "dead"), JUDGED)
def test_judge(make, here: bool, dead: bool) -> None:
    got = cr.judge(make())
    assert (got["here"], got["dead"]) == (here, dead), got


def test_lookup_returns_identity_or_one_judgement_per_term() -> None:
    lookup = cr.LookupModule()
    assert lookup.run([], variables={}) == [cr.identity()]
    gone = _holder(_gone_pid(), started="7")
    assert lookup.run([gone, _holder(os.getpid())], variables={}) == [
        {"token": gone["token"], "here": True, "dead": True},
        {"token": _holder(os.getpid())["token"], "here": True, "dead": False},
    ]
