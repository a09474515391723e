"""Unit tests for the pidock.stack.migrate_guard module."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from ansible_collections.pidock.stack.plugins.module_utils import _migrate_guard
from ansible_collections.pidock.stack.plugins.modules import migrate_guard
from conftest import ModuleFailed

TOKEN = "run-1"


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """The work directory, with a ledger frozen in catchup written a while ago."""
    directory = tmp_path / "work"
    directory.mkdir()
    ledger = {"format": 1, "phases": {"freeze": {"status": "verified"}, "catchup": {"status": "started"}}}
    (directory / "ledger.json").write_text(json.dumps(ledger))
    os.utime(directory / "ledger.json", (1_000_000, 1_000_000))
    return directory


@pytest.fixture
def systemctl(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The commands the module runs (the module imported run_command: it is replaced in its namespace)."""
    calls: list[list[str]] = []

    def run(argv: Sequence[str]) -> tuple[int, str, str]:
        calls.append(list(argv))
        return 0, "", ""

    monkeypatch.setattr(migrate_guard, "run_command", run)
    return calls


def _run(run_module, work: Path, check_mode: bool = False, **args: Any) -> dict[str, Any]:
    return run_module(migrate_guard.main, {"path": str(work), **args}, check_mode=check_mode)


def _arm(run_module, work: Path, token: str = TOKEN, check_mode: bool = False, **args: Any) -> dict[str, Any]:
    args.setdefault("compose_root", str(work / "stack"))
    return _run(run_module, work, check_mode, token=token, ledger=str(work / "ledger.json"), **args)


def _undone(work: Path) -> dict[str, Any]:
    """A guard that put the bare metal back (its record as the watcher leaves it)."""
    outcome = {"action": "undone", "why": "the controller was silent for 301 s", "at": "2026-11-29T06:05:01Z"}
    guard = {"token": TOKEN, "status": "undone", "outcome": outcome, "ledger": str(work / "ledger.json")}
    _migrate_guard.write_guard(str(work), guard)
    return outcome


def test_arm_writes_the_guard_0600(run_module, work: Path) -> None:
    result = _arm(run_module, work, timeout=120, estimates={"dump_seconds": 30})
    assert result["changed"] is True
    assert result["previous"] is None and result["outcome"] == {}
    guard = json.loads((work / "guard.json").read_text())
    assert result["guard"] == guard
    assert guard["status"] == "armed" and guard["token"] == TOKEN
    assert guard["timeout"] == 120.0 and guard["slack"] == 3.0 and guard["estimates"] == {"dump_seconds": 30}
    assert guard["clear"] == ["freeze", "catchup", "dump", "restore", "delta", "verify", "cutover"]
    assert guard["units_file"] == "" and guard["compose_root"] == str(work / "stack")
    assert (work / "guard.json").stat().st_mode & 0o777 == 0o600


def test_arm_again_with_the_same_token_is_not_a_change(run_module, work: Path) -> None:
    first = _arm(run_module, work)
    again = _arm(run_module, work)
    assert again["changed"] is False
    assert again["previous"] == "armed"
    assert again["guard"]["armed_at"] == first["guard"]["armed_at"]
    assert again["guard"]["touched_at"] >= first["guard"]["touched_at"]
    assert _arm(run_module, work, token="run-2")["changed"] is True


def test_check_mode_predicts_and_writes_nothing(run_module, work: Path) -> None:
    result = _arm(run_module, work, check_mode=True)
    assert result["changed"] is True
    assert result["guard"] == {} and result["previous"] is None
    assert sorted(p.name for p in work.iterdir()) == ["ledger.json"]

    _arm(run_module, work)
    before = (work / "guard.json").read_text()
    assert _arm(run_module, work, check_mode=True)["changed"] is False
    assert _arm(run_module, work, token="run-2", check_mode=True)["changed"] is True
    assert _run(run_module, work, check_mode=True, state="switching", token=TOKEN)["changed"] is True
    assert _run(run_module, work, check_mode=True, state="disarmed")["changed"] is True
    assert (work / "guard.json").read_text() == before


def test_switching_fences_then_stops_the_units(run_module, work: Path, systemctl: list[list[str]]) -> None:
    _arm(run_module, work)
    marker = work / "stack-serving"
    result = _run(
        run_module,
        work,
        state="switching",
        token=TOKEN,
        stop_units=["app.service", "nginx.service"],
        serving_marker=str(marker),
    )
    assert result["changed"] is True
    assert result["previous"] == "armed"
    assert result["guard"]["status"] == "switching"
    assert systemctl == [["systemctl", "stop", "app.service", "nginx.service"]]
    assert marker.exists()
    # Again without units: the guard already switches, nothing changes.
    assert _run(run_module, work, state="switching", token=TOKEN)["changed"] is False


def test_switching_after_the_guard_undid_fails_naming_it(run_module, work: Path, systemctl: list[list[str]]) -> None:
    _undone(work)
    with pytest.raises(ModuleFailed, match="the host put the bare metal back at 2026-11-29T06:05:01Z") as failed:
        _run(run_module, work, state="switching", token=TOKEN, stop_units=["app.service"])
    assert failed.value.result["previous"] == "undone"
    assert systemctl == []
    assert json.loads((work / "guard.json").read_text())["status"] == "undone"


def test_switching_fails_when_the_stop_fails(run_module, work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _arm(run_module, work)
    monkeypatch.setattr(migrate_guard, "run_command", lambda argv: (1, "", "Unit app.service not loaded."))
    with pytest.raises(ModuleFailed, match=r"systemctl stop app.service failed \(rc 1\): Unit app.service not loaded"):
        _run(run_module, work, state="switching", token=TOKEN, stop_units=["app.service"])


def test_disarmed_returns_the_outcome_of_a_guard_that_undid(run_module, work: Path) -> None:
    outcome = _undone(work)
    result = _run(run_module, work, state="disarmed")
    assert result["changed"] is True
    assert result["previous"] == "undone"
    assert result["outcome"] == outcome
    assert result["report"].startswith("An earlier run went silent while the bare metal was frozen")
    assert result["guard"]["status"] == "disarmed"

    again = _run(run_module, work, state="disarmed")
    assert again["changed"] is False
    assert again["previous"] == "disarmed" and again["outcome"] == {} and again["report"] == ""


def test_disarmed_ends_an_armed_guard_without_an_outcome(run_module, work: Path) -> None:
    _arm(run_module, work)
    result = _run(run_module, work, state="disarmed")
    assert result["changed"] is True
    assert result["previous"] == "armed" and result["outcome"] == {}


@pytest.mark.parametrize("exists", [True, False], ids=["no-guard", "no-work-dir"])
def test_disarmed_without_a_guard_changes_nothing(run_module, tmp_path: Path, exists: bool) -> None:
    work = tmp_path / "work"
    if exists:
        work.mkdir()
    result = _run(run_module, work, state="disarmed")
    assert result == {"changed": False, "previous": None, "guard": {}, "outcome": {}, "report": ""}
    assert not (work / "guard.json").exists()


@pytest.mark.parametrize("state", ["armed", "switching"])
def test_a_missing_work_dir_fails(run_module, tmp_path: Path, state: str) -> None:
    with pytest.raises(ModuleFailed, match=r"the work directory .*/nope does not exist"):
        _run(
            run_module,
            tmp_path / "nope",
            state=state,
            token=TOKEN,
            ledger=str(tmp_path / "ledger.json"),
            compose_root=str(tmp_path / "stack"),
        )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"state": "armed", "token": TOKEN}, "state is armed but all of the following are missing: ledger"),
        ({"ledger": "/x/ledger.json"}, "state is armed but all of the following are missing: token"),
        ({"state": "switching"}, "state is switching but all of the following are missing: token"),
        (
            {"token": TOKEN, "ledger": "/x/ledger.json", "compose_root": "/x", "timeout": 0},
            "timeout and poll must be more than 0",
        ),
        (
            {"token": TOKEN, "ledger": "/x/ledger.json", "compose_root": "/x", "poll": 0},
            "timeout and poll must be more than 0",
        ),
        ({"token": TOKEN, "ledger": "/x/ledger.json", "compose_root": "/x", "slack": -1}, "slack 0 or more"),
        ({"state": "asleep"}, "value of state must be one of"),
    ],
    ids=["armed-without-ledger", "armed-without-token", "switching-without-token", "timeout", "poll", "slack", "state"],
)
def test_bad_arguments_fail(run_module, work: Path, args: dict[str, Any], message: str) -> None:
    with pytest.raises(ModuleFailed, match=message):
        _run(run_module, work, **args)
    assert not (work / "guard.json").exists()


def test_watch_returns_the_watchers_outcome(run_module, work: Path) -> None:
    """Armed with watch and a tiny timeout over a frozen ledger (no units to start): undone at once."""
    result = _arm(run_module, work, watch=True, timeout=0.01, poll=0.01, clear=["freeze", "catchup"])
    assert result["changed"] is True
    assert result["outcome"]["action"] == "undone"
    assert result["outcome"]["cleared"] == ["freeze", "catchup"]
    assert result["outcome"]["units_started"] == []
    assert result["guard"]["status"] == "undone"
    assert json.loads((work / "ledger.json").read_text())["phases"] == {}


def test_check_mode_predicts_the_fences_refusal(run_module, work: Path) -> None:
    """Check mode fails where the real fence would: a guard that put the bare metal back, or another run's."""
    _undone(work)
    with pytest.raises(ModuleFailed, match="the host put the bare metal back"):
        _run(run_module, work, True, state="switching", token=TOKEN)
    with pytest.raises(ModuleFailed, match="no freeze guard armed by this run"):
        _run(run_module, work, True, state="switching", token="another-run")
