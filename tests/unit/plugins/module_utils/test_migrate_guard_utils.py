"""Unit tests for _migrate_guard: the freeze guard's pure decisions, its files and its acts."""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from ansible_collections.pidock.stack.plugins.module_utils import _migrate_guard as g
from fake_time import FakeTime

T0 = 1_795_932_000.0  # 2026-11-29T06:00:00Z
TOKEN = "run-1"
FROZEN = ["freeze", "catchup", "dump", "restore", "delta", "verify", "cutover"]


class FakeRunner:
    """Records each command and answers with ``rc`` and ``err``."""

    def __init__(self, rc: int = 0, err: str = "") -> None:
        self.rc = rc
        self.err = err
        self.calls: list[list[str]] = []

    def __call__(self, argv: Sequence[str]) -> tuple[int, str, str]:
        self.calls.append(list(argv))
        return self.rc, "", self.err


def _phases(**statuses: str) -> dict[str, Any]:
    return {"phases": {name: {"status": status} for name, status in statuses.items()}}


# --- pure decisions -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ledger", "phase"),
    [
        ({}, None),
        (_phases(), None),
        (_phases(presync="started"), None),
        (_phases(presync="verified", freeze="started"), "freeze"),
        (_phases(freeze="verified", catchup="started"), "catchup"),
        (_phases(freeze="verified", dump="started", restore="started"), "restore"),
        (_phases(freeze="verified", verify="verified", cutover="started"), "cutover"),
        (_phases(freeze="verified", dump="verified"), None),
    ],
    ids=["no-phases", "empty", "not-a-frozen-phase", "freeze", "catchup", "last-started", "cutover", "all-verified"],
)
def test_current_phase(ledger: dict[str, Any], phase: str | None) -> None:
    assert g.current_phase(ledger) == phase


@pytest.mark.parametrize(
    ("ledger", "frozen"),
    [
        ({}, False),
        (_phases(presync="verified"), False),
        (_phases(freeze="started"), True),
        (_phases(freeze="verified", dump="started"), True),
        (_phases(freeze="failed"), False),
        (_phases(freeze="verified", cutover="started"), True),
        (_phases(freeze="verified", cutover="verified"), False),
    ],
    ids=["empty", "before-freeze", "freeze-started", "freeze-verified", "freeze-failed", "cutover-runs", "cut-over"],
)
def test_is_frozen(ledger: dict[str, Any], frozen: bool) -> None:
    assert g.is_frozen(ledger) is frozen


ESTIMATES = {"dump_seconds": 100, "restore_seconds": 50, "delta_seconds": 20, "presync_seconds": 40}


@pytest.mark.parametrize(
    ("guard", "phase", "limit"),
    [
        ({"timeout": 300, "slack": 3, "estimates": ESTIMATES}, "dump", 600),
        ({"timeout": 300, "slack": 3, "estimates": ESTIMATES}, "restore", 450),
        ({"timeout": 300, "slack": 3, "estimates": {"delta_seconds": 60, "presync_seconds": 10}}, "delta", 480),
        ({"timeout": 300, "slack": 3, "estimates": ESTIMATES}, "delta", 420),  # verify may run too: its 40 s
        ({"timeout": 300, "slack": 3, "estimates": ESTIMATES}, "verify", 420),
        ({"timeout": 300, "slack": 3, "estimates": ESTIMATES}, "catchup", 420),  # delta and verify may run
        ({"timeout": 300, "slack": 3, "estimates": ESTIMATES}, "freeze", 300),
        ({"timeout": 300, "slack": 3, "estimates": ESTIMATES}, "cutover", 300),
        ({"timeout": 300, "slack": 3, "estimates": ESTIMATES}, None, 300),
        ({"timeout": 300, "slack": 3, "estimates": {}}, "dump", 300),
        ({"timeout": 300, "slack": 3}, "dump", 300),
        ({"timeout": 300, "slack": 3, "estimates": None}, "dump", 300),
        ({"timeout": 300, "slack": 3, "estimates": {"dump_seconds": None}}, "dump", 300),
        ({"timeout": 300, "estimates": ESTIMATES}, "dump", 300),  # no slack: 0
        ({"timeout": 60.5, "slack": 0.5, "estimates": {"dump_seconds": "10"}}, "dump", 65.5),
    ],
    ids=[
        "dump",
        "restore",
        "delta",
        "delta-takes-verifys-larger-estimate",
        "verify-reads-presync",
        "catchup-held",
        "freeze",
        "cutover",
        "no-phase",
        "empty-estimates",
        "no-estimates",
        "estimates-none",
        "estimate-none",
        "no-slack",
        "floats-and-strings",
    ],
)
def test_silence_limit(guard: dict[str, Any], phase: str | None, limit: float) -> None:
    assert g.silence_limit(guard, phase) == limit


def _rec(txn: str, event: str, epoch: float, **more: Any) -> dict[str, Any]:
    """A journal record as _txn.Journal.append writes it."""
    return {"time": g.utc(epoch), "epoch": epoch, "txn": txn, "event": event, **more}


NEW = T0 + 20  # a switch begun after the fence
OLD_COMMITTED = [_rec("a", "begin", T0 - 600), _rec("a", "step", T0 - 599), _rec("a", "commit", T0 - 598)]
OLD_UNDONE = [_rec("a", "begin", T0 - 600), _rec("a", "undo", T0 - 599)]
NEW_COMMITTED = [_rec("b", "begin", NEW), _rec("b", "step", NEW + 1, step="gate"), _rec("b", "commit", NEW + 5)]


@pytest.mark.parametrize(
    ("records", "lock_free", "state"),
    [
        ([], False, "running"),
        ([_rec("b", "begin", NEW), _rec("b", "commit", NEW + 5)], False, "running"),
        ([], True, "none"),
        (OLD_COMMITTED, True, "none"),
        (NEW_COMMITTED, True, "served"),
        ([_rec("b", "begin", NEW), _rec("b", "commit", NEW + 5), _rec("b", "end", NEW + 9)], True, "served"),
        ([_rec("b", "begin", NEW), _rec("b", "undo", NEW + 5), _rec("b", "end", NEW + 9)], True, "undone"),
        ([_rec("b", "begin", NEW), _rec("b", "end", NEW + 9, outcome="failed")], True, "undone"),
        ([_rec("b", "begin", NEW), _rec("b", "step", NEW + 1, step="wait_healthy")], True, "undone"),
        ([*OLD_COMMITTED, _rec("b", "begin", NEW)], True, "undone"),
        ([*OLD_UNDONE, *NEW_COMMITTED], True, "served"),
        ([_rec("b", "begin", T0 - 0.5), _rec("b", "commit", T0 + 1)], True, "served"),
        ([_rec("b", "begin", T0 - 2), _rec("b", "commit", T0 + 1)], True, "none"),
    ],
    ids=[
        "lock-held",
        "lock-held-after-commit",
        "no-journal",
        "older-than-since",
        "committed",
        "committed-and-ended",
        "undone",
        "ended-without-commit",
        "died-before-commit",
        "old-served-new-died",
        "old-undone-new-served",
        "a-second-early-counts",
        "begun-before-since",
    ],
)
def test_switch_state(records: list[dict[str, Any]], lock_free: bool, state: str) -> None:
    assert g.switch_state(records, lock_free, since=T0) == state


ARMED = {"status": "armed", "timeout": 300, "slack": 3, "estimates": {"dump_seconds": 100}}
SWITCHING = {**ARMED, "status": "switching"}
IN_CATCHUP = _phases(freeze="verified", catchup="started")
IN_DUMP = _phases(freeze="verified", dump="started")
IN_CUTOVER = _phases(freeze="verified", cutover="started")
CUT_OVER = _phases(freeze="verified", cutover="verified")
NOTHING_FROZEN = "the controller was silent for 400 s, but nothing is frozen"
SILENT_IN_CUTOVER = "the controller was silent for 400 s in phase cutover (limit 300 s)"


@pytest.mark.parametrize(
    ("guard", "ledger", "silent", "switch", "expected"),
    [
        ({**ARMED, "status": "disarmed"}, IN_CATCHUP, 999, "none", ("exit", "the guard is disarmed")),
        ({**ARMED, "status": "undone"}, IN_CATCHUP, 999, "none", ("exit", "the guard is undone")),
        ({}, IN_CATCHUP, 999, "none", ("exit", "the guard is None")),
        (SWITCHING, IN_CATCHUP, 1, "served", ("served", "the stack's switch passed its gate: the stack serves")),
        (ARMED, IN_CATCHUP, 299, "none", ("wait", "")),
        (ARMED, IN_DUMP, 599, "none", ("wait", "")),
        (SWITCHING, IN_CATCHUP, 299, "none", ("wait", "")),
        (ARMED, _phases(presync="verified"), 400, "none", ("exit", NOTHING_FROZEN)),
        (ARMED, CUT_OVER, 400, "none", ("exit", NOTHING_FROZEN)),
        (SWITCHING, IN_CATCHUP, 4000, "running", ("wait", "")),
        (
            ARMED,
            IN_CATCHUP,
            300,
            "none",
            ("undo", "the controller was silent for 300 s in phase catchup (limit 300 s)"),
        ),
        (ARMED, IN_DUMP, 601, "none", ("undo", "the controller was silent for 601 s in phase dump (limit 600 s)")),
        (
            ARMED,
            _phases(freeze="verified"),
            400,
            "none",
            ("undo", "the controller was silent for 400 s after the freeze (limit 300 s)"),
        ),
        (SWITCHING, IN_CUTOVER, 400, "none", ("undo", f"{SILENT_IN_CUTOVER}; the stack's switch never began")),
        (SWITCHING, IN_CUTOVER, 400, "undone", ("undo", f"{SILENT_IN_CUTOVER}; the stack's switch was undone")),
    ],
    ids=[
        "disarmed",
        "ended",
        "no-status",
        "switching-served-before-silence",
        "armed-not-silent",
        "dump-slack",
        "switching-not-silent",
        "silent-before-freeze",
        "silent-after-cutover",
        "switching-switch-runs",
        "armed-silent-at-the-limit",
        "armed-silent-in-dump",
        "armed-silent-between-phases",
        "switching-switch-never-began",
        "switching-switch-undone",
    ],
)
def test_decide(
    guard: dict[str, Any], ledger: dict[str, Any], silent: float, switch: str, expected: tuple[str, str]
) -> None:
    assert g.decide(guard, ledger, now=T0 + silent, last_sign=T0, switch=switch) == expected


@pytest.mark.parametrize(
    ("recorded", "units"),
    [
        (
            [{"name": "app.service", "active": True}, {"name": "worker.service", "active": False}, {"name": "nginx"}],
            ["app.service", "nginx"],
        ),
        ([{"name": "b", "enabled": True, "active": True}, {"name": "a", "active": True}], ["b", "a"]),
        ([{"name": "a", "active": False}], []),
        ([], []),
        (None, ["fallback.service"]),
        ("app.service", ["fallback.service"]),
        ({"name": "app.service"}, ["fallback.service"]),
        ([{"name": "app.service"}, "worker.service"], ["fallback.service"]),
        ([{"active": True}], ["fallback.service"]),
        ([{"name": ""}], ["fallback.service"]),
    ],
    ids=[
        "active-only",
        "in-order",
        "none-active",
        "empty-record",
        "no-record",
        "a-string",
        "an-object",
        "a-bad-item",
        "no-name",
        "empty-name",
    ],
)
def test_units_to_start(recorded: Any, units: list[str]) -> None:
    assert g.units_to_start(recorded, ("fallback.service",)) == units


# --- files on disk --------------------------------------------------------------------------------


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """The work directory: a ledger in catchup (with phases before the freeze and an earlier note),
    units.json, both last written at T0 - 100."""
    directory = tmp_path / "work"
    directory.mkdir()
    ledger = {
        "format": 1,
        "phases": {
            "presync": {"status": "verified"},
            "replicate": {"status": "verified"},
            "prestart": {"status": "verified"},
            "freeze": {"status": "verified"},
            "catchup": {"status": "started"},
        },
        "rollbacks": [{"time": "2026-11-28T06:00:00Z", "reason": "requested"}],
    }
    (directory / "ledger.json").write_text(json.dumps(ledger))
    units = [
        {"name": "app.service", "enabled": True, "active": True},
        {"name": "worker.service", "enabled": True, "active": False},
        {"name": "nginx.service", "enabled": True, "active": True},
    ]
    (directory / "units.json").write_text(json.dumps(units))
    for name in ("ledger.json", "units.json"):
        _age(directory / name, T0 - 100)
    return directory


def _age(path: Path, epoch: float) -> None:
    os.utime(path, (epoch, epoch))


def _settings(work: Path, token: str = TOKEN, **over: Any) -> dict[str, Any]:
    settings = {
        "token": token,
        "timeout": 300.0,
        "slack": 3.0,
        "estimates": {},
        "ledger": str(work / "ledger.json"),
        "clear": FROZEN,
        "clear_switching": ["prestart"],
        "units_file": str(work / "units.json"),
        "units": ["fallback.service"],
        "compose_root": "",
    }
    return {**settings, **over}


def _ledger(work: Path) -> dict[str, Any]:
    return json.loads((work / "ledger.json").read_text())


def test_arm_writes_a_new_guard_0600(work: Path) -> None:
    guard, replaced, changed = g.arm(str(work), _settings(work), T0)
    assert changed is True and replaced is None
    assert guard == {**_settings(work), "status": "armed", "armed_at": T0, "touched_at": T0, "switching_at": None}
    assert g.read_guard(str(work)) == guard
    assert (work / "guard.json").stat().st_mode & 0o777 == 0o600
    assert (work / "guard.lock").stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("status", ["armed", "switching"])
def test_arm_with_the_same_token_is_a_sign_of_life(work: Path, status: str) -> None:
    g.arm(str(work), _settings(work), T0)
    if status == "switching":
        g.to_switching(str(work), TOKEN, T0 + 10, [], "", FakeRunner())
    guard, replaced, changed = g.arm(str(work), _settings(work, timeout=1.0), T0 + 50)
    assert changed is False and replaced is None
    assert guard["status"] == status
    assert guard["touched_at"] == T0 + 50
    assert guard["armed_at"] == T0
    assert guard["timeout"] == 300.0  # the armed settings stay
    assert g.read_guard(str(work)) == guard


def test_arm_with_another_token_replaces_the_guard(work: Path) -> None:
    old, _replaced, _changed = g.arm(str(work), _settings(work), T0)
    guard, replaced, changed = g.arm(str(work), _settings(work, token="run-2"), T0 + 50)
    assert changed is True
    assert replaced == old
    assert guard["token"] == "run-2" and guard["status"] == "armed" and guard["armed_at"] == T0 + 50


def test_arm_after_the_guard_ended_arms_afresh(work: Path) -> None:
    g.arm(str(work), _settings(work), T0)
    g.disarm(str(work), T0 + 10)
    guard, replaced, changed = g.arm(str(work), _settings(work), T0 + 50)
    assert changed is True
    assert replaced is not None and replaced["status"] == "disarmed"
    assert guard["status"] == "armed" and guard["armed_at"] == T0 + 50


@pytest.mark.parametrize(
    ("content", "guard"),
    [(None, None), ("{not json", None), ("[1]", None), ('{"status": "armed"}', {"status": "armed"})],
    ids=["missing", "damaged", "not-an-object", "object"],
)
def test_read_guard(tmp_path: Path, content: str | None, guard: dict[str, Any] | None) -> None:
    if content is not None:
        (tmp_path / "guard.json").write_text(content)
    assert g.read_guard(str(tmp_path)) == guard


def test_last_sign_is_the_newest_of_heartbeat_ledger_and_touch(work: Path) -> None:
    guard = {"ledger": str(work / "ledger.json"), "touched_at": T0 - 200}
    assert g.last_sign(str(work), guard) == T0 - 100  # the ledger
    (work / "guard.heartbeat").touch()
    _age(work / "guard.heartbeat", T0 - 10)
    assert g.last_sign(str(work), guard) == T0 - 10
    assert g.last_sign(str(work), {**guard, "touched_at": T0}) == T0
    assert g.last_sign(str(work / "nothing"), {}) == 0.0


def test_to_switching_fences_stops_the_units_and_touches_the_marker(work: Path) -> None:
    g.arm(str(work), _settings(work), T0)
    run = FakeRunner()
    marker = work / "stack-serving"
    guard, changed = g.to_switching(str(work), TOKEN, T0 + 10, ["app.service", "nginx.service"], str(marker), run)
    assert changed is True
    assert guard["status"] == "switching"
    assert guard["switching_at"] == T0 + 10 and guard["touched_at"] == T0 + 10
    assert g.read_guard(str(work)) == guard
    assert run.calls == [["systemctl", "stop", "app.service", "nginx.service"]]
    assert marker.exists()

    again, changed = g.to_switching(str(work), TOKEN, T0 + 20, ["app.service"], str(marker), run)
    assert changed is False
    assert again["switching_at"] == T0 + 10
    assert run.calls[-1] == ["systemctl", "stop", "app.service"]  # stopping again is harmless


def test_to_switching_without_units_runs_nothing(work: Path) -> None:
    g.arm(str(work), _settings(work), T0)
    run = FakeRunner()
    guard, changed = g.to_switching(str(work), TOKEN, T0 + 10, [], "", run)
    assert changed is True and guard["status"] == "switching"
    assert run.calls == []
    assert sorted(p.name for p in work.iterdir()) == ["guard.json", "guard.lock", "ledger.json", "units.json"]


def test_to_switching_after_the_guard_undid_fails_and_changes_nothing(work: Path) -> None:
    g.arm(str(work), _settings(work), T0)
    action, outcome = g.look(str(work), TOKEN, T0 + 301, FakeRunner())
    assert action == "undo" and outcome is not None
    before = (work / "guard.json").read_text()
    run = FakeRunner()
    marker = work / "stack-serving"
    with pytest.raises(g.GuardError, match="the host put the bare metal back at 2026-11-29T06:05:01Z") as err:
        g.to_switching(str(work), TOKEN, T0 + 400, ["app.service"], str(marker), run)
    assert outcome["why"] in str(err.value)
    assert "Run the migration again" in str(err.value)
    assert run.calls == [] and not marker.exists()
    assert (work / "guard.json").read_text() == before


@pytest.mark.parametrize(
    ("token", "end", "message"),
    [
        ("run-2", False, "no freeze guard armed by this run"),
        (TOKEN, True, "the freeze guard is disarmed, not armed"),
    ],
    ids=["another-token", "disarmed"],
)
def test_to_switching_refuses(work: Path, token: str, end: bool, message: str) -> None:
    g.arm(str(work), _settings(work), T0)
    if end:
        g.disarm(str(work), T0 + 5)
    run = FakeRunner()
    with pytest.raises(g.GuardError, match=message):
        g.to_switching(str(work), token, T0 + 10, ["app.service"], "", run)
    assert run.calls == []
    assert g.read_guard(str(work))["status"] == ("disarmed" if end else "armed")


def test_to_switching_without_a_guard_fails(work: Path) -> None:
    with pytest.raises(g.GuardError, match="no freeze guard armed by this run"):
        g.to_switching(str(work), TOKEN, T0, ["app.service"], "", FakeRunner())


def test_to_switching_fails_when_the_stop_fails(work: Path) -> None:
    g.arm(str(work), _settings(work), T0)
    run = FakeRunner(rc=5, err="Failed to stop app.service: Unit app.service not loaded.\n")
    marker = work / "stack-serving"
    with pytest.raises(
        g.GuardError, match=r"systemctl stop app.service failed \(rc 5\): Failed to stop .* not loaded\.$"
    ):
        g.to_switching(str(work), TOKEN, T0 + 10, ["app.service"], str(marker), run)
    assert not marker.exists()
    # The fence was crossed: the guard stays switching (a silent controller is then undone).
    assert g.read_guard(str(work))["status"] == "switching"


def test_disarm_without_a_guard(work: Path) -> None:
    assert g.disarm(str(work), T0) == (None, None, False)
    assert not (work / "guard.json").exists()


def test_disarm_ends_an_armed_guard_once(work: Path) -> None:
    g.arm(str(work), _settings(work), T0)
    guard, before, changed = g.disarm(str(work), T0 + 10)
    assert (before, changed) == ("armed", True)
    assert guard is not None and guard["status"] == "disarmed" and guard["disarmed_at"] == T0 + 10
    assert g.read_guard(str(work)) == guard

    again, before, changed = g.disarm(str(work), T0 + 20)
    assert (before, changed) == ("disarmed", False)
    assert again == guard


def test_disarm_keeps_the_outcome_of_a_guard_that_undid(work: Path) -> None:
    g.arm(str(work), _settings(work), T0)
    _action, outcome = g.look(str(work), TOKEN, T0 + 301, FakeRunner())
    guard, before, changed = g.disarm(str(work), T0 + 400)
    assert (before, changed) == ("undone", True)
    assert guard is not None and guard["status"] == "disarmed"
    assert guard["outcome"] == outcome


# --- look and undo --------------------------------------------------------------------------------


def test_look_undoes_after_the_silence(work: Path) -> None:
    g.arm(str(work), _settings(work), T0)
    (work / "guard.heartbeat").touch()
    _age(work / "guard.heartbeat", T0 - 50)
    run = FakeRunner()
    assert g.look(str(work), TOKEN, T0 + 299, run) == ("wait", None)

    action, outcome = g.look(str(work), TOKEN, T0 + 301, run)
    why = "the controller was silent for 301 s in phase catchup (limit 300 s)"
    assert action == "undo"
    assert outcome == {
        "action": "undone",
        "why": why,
        "at": "2026-11-29T06:05:01Z",
        "cleared": ["freeze", "catchup"],
        "units_started": ["app.service", "nginx.service"],
        "units_error": "",
    }
    ledger = _ledger(work)
    assert list(ledger["phases"]) == ["prestart", "presync", "replicate"]
    assert ledger["rollbacks"][0]["reason"] == "requested"
    assert ledger["rollbacks"][1] == {
        "time": "2026-11-29T06:05:01Z",
        "reason": f"the host put the bare metal back: {why}",
        "by": "guard",
        "guard_status": "armed",
        "cleared": ["freeze", "catchup"],
    }
    assert (work / "ledger.json").stat().st_mode & 0o777 == 0o600
    assert run.calls == [["systemctl", "start", "app.service", "nginx.service"]]
    assert not (work / "units.json").exists()
    guard = g.read_guard(str(work))
    assert guard is not None
    assert guard["status"] == "undone" and guard["outcome"] == outcome and guard["ended_at"] == T0 + 301


def test_a_heartbeat_postpones_the_undo(work: Path) -> None:
    g.arm(str(work), _settings(work), T0)
    (work / "guard.heartbeat").touch()
    _age(work / "guard.heartbeat", T0 + 200)
    run = FakeRunner()
    assert g.look(str(work), TOKEN, T0 + 301, run) == ("wait", None)
    assert g.look(str(work), TOKEN, T0 + 500, run)[0] == "undo"


def test_a_failing_start_keeps_units_json_and_says_why(work: Path) -> None:
    g.arm(str(work), _settings(work), T0)
    run = FakeRunner(rc=1, err="Job for app.service failed because the control process exited.\n")
    action, outcome = g.look(str(work), TOKEN, T0 + 301, run)
    assert action == "undo" and outcome is not None
    assert outcome["units_started"] == []
    assert outcome["units_error"] == (
        "systemctl start app.service nginx.service failed (rc 1): "
        "Job for app.service failed because the control process exited."
    )
    assert (work / "units.json").exists()
    assert outcome["cleared"] == ["freeze", "catchup"]  # the ledger is cleared all the same
    assert "freeze" not in _ledger(work)["phases"]
    assert g.read_guard(str(work))["status"] == "undone"


@pytest.mark.parametrize(
    ("units_json", "started"),
    [(None, ["fallback.service"]), ("{torn", ["fallback.service"]), ("[]", [])],
    ids=["missing", "unreadable", "nothing-ran"],
)
def test_undo_without_a_usable_units_json(work: Path, units_json: str | None, started: list[str]) -> None:
    if units_json is None:
        (work / "units.json").unlink()
    else:
        (work / "units.json").write_text(units_json)
    g.arm(str(work), _settings(work), T0)
    run = FakeRunner()
    _action, outcome = g.look(str(work), TOKEN, T0 + 301, run)
    assert outcome is not None and outcome["units_started"] == started
    assert run.calls == ([["systemctl", "start", *started]] if started else [])


def test_undo_after_switching_also_clears_prestart(work: Path) -> None:
    ledger = _ledger(work)
    ledger["phases"].update(catchup={"status": "verified"}, cutover={"status": "started"})
    (work / "ledger.json").write_text(json.dumps(ledger))
    _age(work / "ledger.json", T0 - 100)
    g.arm(str(work), _settings(work), T0)
    g.to_switching(str(work), TOKEN, T0 + 10, [], "", FakeRunner())
    run = FakeRunner()
    assert g.look(str(work), TOKEN, T0 + 309, run) == ("wait", None)

    action, outcome = g.look(str(work), TOKEN, T0 + 311, run)
    assert action == "undo" and outcome is not None
    assert outcome["why"] == (
        "the controller was silent for 301 s in phase cutover (limit 300 s); the stack's switch never began"
    )
    assert outcome["cleared"] == ["freeze", "catchup", "cutover", "prestart"]
    ledger = _ledger(work)
    assert list(ledger["phases"]) == ["presync", "replicate"]
    assert ledger["rollbacks"][-1]["guard_status"] == "switching"
    assert run.calls == [["systemctl", "start", "app.service", "nginx.service"]]


def test_undo_of_a_cleared_ledger_writes_no_note(work: Path) -> None:
    """Nothing to clear: no note, and the file is not even rewritten."""
    (work / "ledger.json").write_text(g.ledger_text({"format": 1, "phases": {"presync": {"status": "verified"}}}))
    _age(work / "ledger.json", T0 - 100)
    guard = {**_settings(work), "status": "armed"}
    outcome = g.undo(str(work), guard, "test", T0, FakeRunner())
    assert outcome["cleared"] == []
    assert "rollbacks" not in _ledger(work)
    assert (work / "ledger.json").stat().st_mtime == T0 - 100


def test_look_of_another_runs_guard_does_nothing(work: Path) -> None:
    g.arm(str(work), _settings(work, token="run-2"), T0)
    before = (work / "guard.json").read_text()
    run = FakeRunner()
    assert g.look(str(work), TOKEN, T0 + 999, run) == (
        "exit",
        {"action": "replaced", "why": "another run took the guard over", "at": "2026-11-29T06:16:39Z"},
    )
    assert run.calls == []
    assert (work / "guard.json").read_text() == before
    assert "freeze" in _ledger(work)["phases"]


@pytest.mark.parametrize(
    ("ledger_text", "why"),
    [
        ('{"format": 1, "phases": {"freeze": {"status": "verified"}, "cutover": {"status": "verified"}}}', "frozen"),
        ("{torn", "frozen"),
    ],
    ids=["cut-over", "damaged-ledger"],
)
def test_look_ends_when_nothing_is_frozen(work: Path, ledger_text: str, why: str) -> None:
    (work / "ledger.json").write_text(ledger_text)
    _age(work / "ledger.json", T0 - 100)
    g.arm(str(work), _settings(work), T0)
    run = FakeRunner()
    action, outcome = g.look(str(work), TOKEN, T0 + 400, run)
    assert action == "exit"
    assert outcome == {
        "action": "ended",
        "why": "the controller was silent for 400 s, but nothing is frozen",
        "at": "2026-11-29T06:06:40Z",
    }
    assert run.calls == []
    assert (work / "ledger.json").read_text() == ledger_text
    # Nobody watches any more: the guard says so, and the fence no longer passes.
    assert g.read_guard(str(work))["status"] == "ended"
    with pytest.raises(g.GuardError, match="the freeze guard is ended, not armed"):
        g.to_switching(str(work), TOKEN, T0 + 401, [], "", run)


def test_look_at_a_disarmed_guard_ends(work: Path) -> None:
    g.arm(str(work), _settings(work), T0)
    g.disarm(str(work), T0 + 5)
    action, outcome = g.look(str(work), TOKEN, T0 + 999, FakeRunner())
    assert action == "exit"
    assert outcome is not None and outcome["action"] == "ended" and outcome["why"] == "the guard is disarmed"


# --- the stack's switch, from its journal ----------------------------------------------------------


def _journal(root: Path, *records: dict[str, Any]) -> None:
    with open(root / "journal.jsonl", "a", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, sort_keys=True) + "\n")


@pytest.fixture
def stack(tmp_path: Path) -> Path:
    root = tmp_path / "stack"
    root.mkdir()
    return root


def _switching(work: Path, stack: Path) -> None:
    ledger = _ledger(work)
    ledger["phases"].update(catchup={"status": "verified"}, cutover={"status": "started"})
    (work / "ledger.json").write_text(json.dumps(ledger))
    _age(work / "ledger.json", T0 - 100)
    g.arm(str(work), _settings(work, compose_root=str(stack)), T0)
    g.to_switching(str(work), TOKEN, T0 + 10, [], "", FakeRunner())


@pytest.mark.parametrize(
    ("records", "why"),
    [
        ([_rec("x", "begin", T0 + 20), _rec("x", "undo", T0 + 30), _rec("x", "end", T0 + 40)], "was undone"),
        (OLD_COMMITTED, "never began"),
    ],
    ids=["undone", "only-an-older-switch"],
)
def test_look_undoes_after_a_switch_that_did_not_serve(
    work: Path, stack: Path, records: list[dict[str, Any]], why: str
) -> None:
    _switching(work, stack)
    _journal(stack, *records)
    action, outcome = g.look(str(work), TOKEN, T0 + 311, FakeRunner())
    assert action == "undo" and outcome is not None
    assert outcome["why"].endswith(f"; the stack's switch {why}")


# --- watch ------------------------------------------------------------------------------------------


def test_watch_undoes_once_the_silence_passes(work: Path) -> None:
    g.arm(str(work), _settings(work), T0)
    clock = FakeTime(T0)
    run = FakeRunner()
    outcome = g.watch(str(work), TOKEN, poll=50, clock=clock.clock, sleep=clock.sleep, run=run)
    assert clock.sleeps == [50] * 6  # looks at 0, 50, ... 300 s: the last one is at the limit
    assert outcome["action"] == "undone"
    assert outcome["why"] == "the controller was silent for 300 s in phase catchup (limit 300 s)"
    assert run.calls == [["systemctl", "start", "app.service", "nginx.service"]]
    assert g.read_guard(str(work))["status"] == "undone"


def test_watch_ends_when_another_call_disarms(work: Path) -> None:
    g.arm(str(work), _settings(work), T0)
    clock = FakeTime(T0)

    def sleep(seconds: float) -> None:
        clock.sleep(seconds)
        if len(clock.sleeps) == 2:
            g.disarm(str(work), clock.now)

    run = FakeRunner()
    outcome = g.watch(str(work), TOKEN, poll=0.5, clock=clock.clock, sleep=sleep, run=run)
    assert outcome == {"action": "ended", "why": "the guard is disarmed", "at": "2026-11-29T06:00:01Z"}
    assert clock.sleeps == [0.5, 0.5]
    assert run.calls == []
    assert "freeze" in _ledger(work)["phases"]


def test_watch_ends_as_served_when_the_switch_commits(work: Path, stack: Path) -> None:
    _switching(work, stack)
    _journal(stack, _rec("x", "begin", T0 + 20), _rec("x", "step", T0 + 21, step="start_beside"))
    clock = FakeTime(T0 + 20)
    held = [os.open(stack / "deploy.lock", os.O_RDWR | os.O_CREAT, 0o644)]
    fcntl.flock(held[0], fcntl.LOCK_EX)  # the switch runs: its process holds the stack's lock

    def release() -> None:
        if held:
            os.close(held.pop())

    def sleep(seconds: float) -> None:
        clock.sleep(seconds)
        if clock.now >= T0 + 1000:  # long past the silence: the switch commits, ends and lets go
            _journal(stack, _rec("x", "commit", clock.now), _rec("x", "end", clock.now, outcome="success"))
            release()

    run = FakeRunner()
    try:
        outcome = g.watch(str(work), TOKEN, poll=100, clock=clock.clock, sleep=sleep, run=run)
    finally:
        release()
    assert outcome == {
        "action": "served",
        "why": "the stack's switch passed its gate: the stack serves",
        "at": "2026-11-29T06:17:00Z",
        "seen": "2026-11-29T06:17:00.000000Z",
    }
    assert len(clock.sleeps) == 10  # it waited while the switch ran, silence or not
    assert run.calls == []
    assert "cutover" in _ledger(work)["phases"]  # nothing cleared
    guard = g.read_guard(str(work))
    assert guard is not None and guard["status"] == "served" and guard["outcome"] == outcome


def test_watch_ends_as_served_at_once_when_the_switch_committed(work: Path, stack: Path) -> None:
    _switching(work, stack)
    _journal(stack, _rec("x", "begin", T0 + 20), _rec("x", "commit", T0 + 25))
    clock = FakeTime(T0 + 30)
    outcome = g.watch(str(work), TOKEN, clock=clock.clock, sleep=clock.sleep, run=FakeRunner())
    assert outcome["action"] == "served"
    assert clock.sleeps == []


@pytest.mark.parametrize(
    ("previous", "outcome", "report"),
    [
        (None, {}, ""),
        ("armed", {"action": "undone", "why": "w", "at": "T"}, ""),
        (
            "undone",
            {"action": "undone", "why": "silent 9 s", "at": "T", "units_started": ["a", "b"], "cleared": ["freeze"]},
            "An earlier run went silent while the bare metal was frozen: silent 9 s. At T the host put the bare metal"
            " back (units started: a, b; ledger cleared: freeze).",
        ),
        (
            "undone",
            {"action": "undone", "why": "w", "at": "T", "units_started": [], "cleared": [], "units_error": "rc 5"},
            "An earlier run went silent while the bare metal was frozen: w. At T the host put the bare metal back"
            " (units started: ; ledger cleared: ). rc 5",
        ),
        (
            "served",
            {"action": "served", "why": "w", "at": "T"},
            "An earlier run went silent while the bare metal was frozen: w. At T the host let the stack serve"
            " (its switch had passed its gate).",
        ),
    ],
    ids=["no-guard", "still-armed", "undone", "undone-units-failed", "served"],
)
def test_outcome_report(previous: str | None, outcome: dict[str, Any], report: str) -> None:
    assert g.outcome_report(previous, outcome) == report
