"""Unit tests for _txn: the deploy switch as one host-side transaction (journal, replay, lock, truth)."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from ansible_collections.pidock.stack.plugins.module_utils import _release, _txn
from fake_host import FakeHost


class Died(BaseException):
    """The transaction's process was killed at a step (nothing after it ran)."""


def _settings(root: Path, **over: Any) -> _txn.Settings:
    params = {
        "root": str(root),
        "project": "inventory",
        "health_url": "https://127.0.0.1/health",
        "health_release_key": "release",
        "health_timeout": 30,
        "lock_timeout": 0,
    }
    params.update(over)
    return _txn.Settings(params)


def _switch(host: FakeHost, die_at: str | None = None, **over: Any) -> _txn.Switch:
    sw = _txn.Switch(
        _settings(host.root, **over),
        runner=host.run,
        prober=host.probe,
        clock=host.clock,
        sleep=host.sleep,
        events=lambda project, since: None,
    )
    if die_at:

        def hook(step: str) -> None:
            if step == die_at:
                raise Died(step)

        sw._pause_hook = hook  # type: ignore[method-assign]
    return sw


def _audit(root: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (root / "audit.log").read_text().splitlines()]


def _history(root: Path) -> list[str]:
    return [h["release"] for h in json.loads((root / "history.json").read_text())]


@pytest.fixture
def stack(tmp_path: Path) -> tuple[FakeHost, str, str]:
    """v1 (green) deployed and serving; v2 (blue) staged."""
    host = FakeHost(tmp_path)
    v1 = host.release("v1", "green")
    assert _switch(host).switch(v1, "deploy")["outcome"] == "success"
    v2 = host.release("v2", "blue")
    return host, v1, v2


def assert_consistent(host: FakeHost, release_id: str, version: str) -> None:
    """nginx, current, history.json and the last audit line name the same release; no journal open."""
    assert host.served() == version
    assert _release.current_release(str(host.root)) == release_id
    assert _history(host.root)[-1] == release_id
    last = _audit(host.root)[-1]
    assert last["served"] == version and last["served_release"] == release_id
    state = _txn.last_transaction(_txn.Journal(str(host.root)).records())
    assert state is not None and state["end"] is not None
    assert _txn.lock_is_free(str(host.root))


def test_first_deploy_then_blue_green(stack) -> None:
    host, _v1, v2 = stack
    result = _switch(host).switch(v2, "deploy")
    assert result["outcome"] == "success" and result["served"] == "v2"
    assert_consistent(host, v2, "v2")
    assert "app-green" not in host.containers and "app-blue" in host.containers
    assert host.created["postgres"] == 1 and host.created["nginx"] == 1
    assert result["plan"]["beside"] == ["app-blue"] and result["plan"]["retire"] == ["app-green"]
    steps = [r["step"] for r in _txn.Journal(str(host.root)).records() if r.get("event") == "step"][-8:]
    assert steps == ["start_beside", "wait_healthy", "front_config", "reload", "gate", "record", "drain", "retire"]
    assert _audit(host.root)[-1]["outcome"] == "success"
    # What came after the gate (record, drain, retire) is not downtime: the result says how long it took.
    assert 0 <= result["since_gate_s"] <= result["durations"]["total_s"]
    # ... and when the gate passed, on the host's clock.
    assert abs(host.clock() - result["since_gate_s"] - result["gate_passed_at"]) < 5


def test_first_switch_reads_the_config_once_and_asks_the_front_only_once_it_runs(tmp_path: Path) -> None:
    # The migration's cutover: nothing serves on the front door before the first release starts.
    host = FakeHost(tmp_path)
    v1 = host.release("v1", "green")
    probes: list[int] = []  # how many docker calls had been made at each probe
    real_probe = host.probe

    def probe(url: str, validate: bool, timeout: float) -> tuple[int, Any, str]:
        probes.append(len(host.calls))
        return real_probe(url, validate, timeout)

    host.probe = probe  # type: ignore[method-assign]
    result = _switch(host).switch(v1, "deploy")
    assert result["outcome"] == "success"
    configs = [c for c in host.calls if c[-4:] == ["config", "--format", "json", "--no-interpolate"]]
    assert len(configs) == 1, configs
    # No probe before the release started (a refused front door is asked again for about a second).
    up = next(i for i, c in enumerate(host.calls) if "up" in c)
    assert probes and min(probes) > up, (probes, up)


def test_a_front_this_release_starts_is_not_reloaded(tmp_path: Path) -> None:
    # The migration's cutover: the release before ran the app without the front; the front starts
    # now with the live config, which the switch leaves unchanged. A reload would be two docker
    # execs of pure downtime.
    host = FakeHost(tmp_path)
    first = host.release("v1", "green", front=None)
    # (no front door to gate on yet: the app's own health only)
    assert _switch(host, health_url="").switch(first, "deploy")["outcome"] == "success"
    with_front = host.release("v1", "green")
    before = len(host.calls)
    result = _switch(host).switch(with_front, "deploy")
    assert result["outcome"] == "success" and result["served"] == "v1"
    assert result["plan"]["beside"] == ["nginx"]
    assert not any(c[-2:] == ["-s", "reload"] for c in host.calls[before:])
    # A front that ran before is reloaded as ever (its workers hold the old release's config).
    v2 = host.release("v2", "blue")
    before = len(host.calls)
    assert _switch(host).switch(v2, "deploy")["outcome"] == "success"
    assert any(c[-2:] == ["-s", "reload"] for c in host.calls[before:])


def test_same_release_again_is_unchanged(stack) -> None:
    host, v1, _ = stack
    before = len(host.calls)
    result = _switch(host).switch(v1, "deploy")
    assert result == {**result, "changed": False, "outcome": "unchanged"}
    assert not any(c[-2:] == ["-s", "reload"] for c in host.calls[before:])


def test_broken_release_is_undone_exactly(stack) -> None:
    host, v1, _ = stack
    v3 = host.release("v3", "blue", broken=True)
    result = _switch(host).switch(v3, "deploy")
    assert result["outcome"] == "rolled_back" and result["served"] == "v1"
    assert "boom" in result["error"]
    assert "since_gate_s" not in result and "gate_passed_at" not in result  # the new release never passed its gate
    assert_consistent(host, v1, "v1")
    assert "app-blue" not in host.containers
    assert _release.read_release(str(host.root), v3)["outcome"] == "failed"
    assert _audit(host.root)[-1]["rolled_back_to"] == v1


def test_nginx_t_failure_keeps_the_old_config(stack) -> None:
    host, _v1, v2 = stack
    host.nginx_t_fails = True
    result = _switch(host).switch(v2, "deploy")
    host.nginx_t_fails = False
    assert result["outcome"] == "failed" or result["outcome"] == "rolled_back"
    assert host.served() == "v1"
    assert "v1" in (host.root / "front" / "conf.d" / "default.conf").read_text()


# The process dies before a step: everything earlier ran, nothing after. The next transaction
# finishes (committed: record and later) or undoes (anything earlier), and a plain deploy converges.
@pytest.mark.parametrize(
    ("step", "action", "serves"),
    [
        ("start_beside", "undo", "v1"),
        ("wait_healthy", "undo", "v1"),
        ("front_config", "undo", "v1"),
        ("reload", "undo", "v1"),
        ("gate", "undo", "v1"),
        ("record", "undo", "v1"),
        ("retire", "finish", "v2"),
    ],
)
def test_death_at_each_forward_step_is_replayed(stack, step: str, action: str, serves: str) -> None:
    host, v1, v2 = stack
    with pytest.raises(Died):
        _switch(host, die_at=step).switch(v2, "deploy")
    recovered = _switch(host).recover()
    assert recovered is not None and recovered["recovered"]["action"] == action
    assert recovered["recovered"]["after_step"] == step
    expected = v1 if serves == "v1" else v2
    assert_consistent(host, expected, serves)
    assert _txn.replay_action(_txn.last_transaction(_txn.Journal(str(host.root)).records())) == "nothing"
    # the very next plain deploy converges
    again = _switch(host).switch(v2, "deploy")
    assert again["outcome"] in ("success", "unchanged")
    assert_consistent(host, v2, "v2")
    assert "app-green" not in host.containers
    assert host.created["postgres"] == 1


@pytest.mark.parametrize(
    "step", ["undo_front", "undo_reload", "undo_start", "undo_gate", "undo_drain", "undo_retire", "undo_record"]
)
def test_death_during_a_failing_releases_rollback(stack, step: str) -> None:
    host, v1, _ = stack
    v3 = host.release("v3", "blue", reports="v2.9")  # healthy, but the front door names another version
    with pytest.raises(Died):
        _switch(host, die_at=step).switch(v3, "deploy")
    recovered = _switch(host).recover()
    assert recovered["outcome"] == "rolled_back"
    assert_consistent(host, v1, "v1")
    assert "app-blue" not in host.containers


def test_manual_rollback_success_and_failure(stack) -> None:
    host, v1, v2 = stack
    assert _switch(host).switch(v2, "deploy")["outcome"] == "success"
    result = _switch(host).switch(v1, "rollback")
    assert result["outcome"] == "success"
    assert_consistent(host, v1, "v1")
    assert _release.read_release(str(host.root), v2)["outcome"] == "rolled_back"
    # a rollback whose gate fails leaves the stack on the release it started from, with an audit line
    v0 = host.release("v0", "blue", broken=True)
    failed = _switch(host).switch(v0, "rollback")
    assert failed["outcome"] == "failed" and failed["served"] == "v1"
    assert_consistent(host, v1, "v1")
    assert _audit(host.root)[-1]["action"] == "rollback" and _audit(host.root)[-1]["outcome"] == "failed"


@pytest.mark.parametrize("step", ["start_beside", "reload", "gate", "retire"])
def test_death_during_a_manual_rollback(stack, step: str) -> None:
    host, v1, v2 = stack
    _switch(host).switch(v2, "deploy")
    with pytest.raises(Died):
        _switch(host, die_at=step).switch(v1, "rollback")
    _switch(host).recover()
    if step == "retire":
        assert_consistent(host, v1, "v1")
    else:
        assert_consistent(host, v2, "v2")
    assert _switch(host).switch(v1, "rollback")["outcome"] in ("success", "unchanged")
    assert_consistent(host, v1, "v1")


def test_stateful_change_planned_applied_once_after_the_gate(stack) -> None:
    host, v1, _ = stack
    db = {"image": "pg:17", "volumes": [{"type": "volume", "source": "pgdata"}], "healthcheck": {"test": ["x"]}}
    v2 = host.release("v2b", "blue", db=db)
    plan_only = _switch(host).compose_config(v2)
    plan = _txn.release_plan(_switch(host).compose_config(v1), plan_only)
    assert [i["service"] for i in plan["in_place"]] == ["postgres"]
    assert "pgdata" in plan["in_place"][0]["why"] and plan["in_place"][0]["changed"] == ["healthcheck"]
    assert "IN PLACE" in _txn.plan_text(plan)
    host.replace_seconds = 7.0
    result = _switch(host).switch(v2, "deploy")
    assert result["outcome"] == "success"
    assert host.created["postgres"] == 2
    # The interruption starts when the old container is stopped, not when the new one exists.
    assert result["durations"]["interruption_s"] >= 7.0
    assert _audit(host.root)[-1]["in_place"] == ["postgres"]
    assert _audit(host.root)[-1]["durations"]["interruption_s"] == result["durations"]["interruption_s"]


def test_stateful_change_in_a_failing_release_never_touches_it(stack) -> None:
    host, _v1, _ = stack
    db = {"image": "pg:18", "volumes": [{"type": "volume", "source": "pgdata"}]}
    v3 = host.release("v3", "blue", broken=True, db=db)
    result = _switch(host).switch(v3, "deploy")
    assert result["outcome"] == "rolled_back"
    assert host.created["postgres"] == 1
    assert host.containers["postgres"]["spec"]["image"] == "pg:17"


# --- journal, replay, truth -----------------------------------------------------------------------


def test_torn_last_journal_line_is_skipped(tmp_path: Path) -> None:
    journal = _txn.Journal(str(tmp_path))
    journal.append({"txn": "t1", "event": "begin", "to": "b", "from": "a"})
    journal.append({"txn": "t1", "event": "step", "step": "gate"})
    with open(journal.path, "a", encoding="utf-8") as handle:
        handle.write('{"txn": "t1", "event": "com')
    state = _txn.last_transaction(journal.records())
    assert state["last_step"] == "gate" and not state["committed"] and state["end"] is None
    assert _txn.replay_action(state) == "undo"


@pytest.mark.parametrize(
    ("events", "action"),
    [
        ([], "nothing"),
        ([("begin", None)], "undo"),
        ([("begin", None), ("step", "gate")], "undo"),
        ([("begin", None), ("step", "record"), ("commit", None)], "finish"),
        ([("begin", None), ("step", "record"), ("commit", None), ("step", "retire")], "finish"),
        ([("begin", None), ("undo", None), ("step", "undo_front")], "undo"),
        ([("begin", None), ("end", None)], "nothing"),
    ],
)
def test_replay_action(events, action) -> None:
    records = [{"txn": "t", "event": e, **({"step": s} if s else {})} for e, s in events]
    assert _txn.replay_action(_txn.last_transaction(records)) == action


@pytest.mark.parametrize(
    ("intended", "served", "outcome"),
    [
        ("success", "v2", "success"),
        ("success", "v1", "failed"),  # the run expected v2; the front door says otherwise
        ("success", None, "failed"),
        ("rolled_back", "v1", "rolled_back"),
        ("rolled_back", "v2", "failed"),
        ("rolled_back", None, "failed"),
        ("failed", "v1", "failed"),
    ],
)
def test_outcome_is_what_the_front_door_serves(intended, served, outcome) -> None:
    begin = {"to_version": "v2", "from": "v1-x", "from_version": "v1"}
    assert _txn.truth(intended, served, begin, can_see=True) == outcome


def test_summary_names_what_is_served_when_it_differs(stack) -> None:
    host, _v1, v2 = stack
    sw = _switch(host)
    host.nginx_t_fails = False
    sw.gate = lambda version: {"status": 200, "served": version, "seconds": 0.1}  # type: ignore[method-assign]
    sw.reload_front = lambda: None  # type: ignore[method-assign]  # the reload silently did nothing
    result = sw.switch(v2, "deploy")
    assert result["outcome"] == "failed" and result["served"] != "v2"
    assert _audit(host.root)[-1]["outcome"] == "failed"
    assert _audit(host.root)[-1]["served"] == result["served"]


# --- lock -----------------------------------------------------------------------------------------


def _hold(root: str, ready, release) -> None:
    lock = _txn.HostLock(root)
    lock.acquire(0, {"owner": "child", "pid": os.getpid()})
    ready.set()
    release.wait(30)


def test_lock_belongs_to_the_live_process_and_dies_with_it(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    ready, release = ctx.Event(), ctx.Event()
    child = ctx.Process(target=_hold, args=(str(tmp_path), ready, release))
    child.start()
    assert ready.wait(10)
    assert not _txn.lock_is_free(str(tmp_path))
    with pytest.raises(_txn.LockBusy) as busy:
        _txn.HostLock(str(tmp_path)).acquire(0.3, {"owner": "me"})
    assert busy.value.holder["owner"] == "child" and "child" in str(busy.value)
    os.kill(child.pid, signal.SIGKILL)
    child.join(10)
    with _txn.HostLock(str(tmp_path)) as lock:
        assert lock.acquire(0, {"owner": "me"}) < 1
        assert _txn.read_holder(lock.path)["owner"] == "me"
    assert _txn.read_holder(str(tmp_path / "deploy.lock")) is None


def _race(root: str, start, results) -> None:
    start.wait(10)
    lock = _txn.HostLock(root)
    try:
        lock.acquire(0, {"pid": os.getpid()})
        results.put("won")
        time.sleep(1.0)
    except _txn.LockBusy:
        results.put("busy")


def test_concurrent_takers_exactly_one_wins(tmp_path: Path) -> None:
    (tmp_path / "deploy.lock").write_text('{"owner": "dead", "epoch": 0}')  # a stale note from a dead run
    ctx = multiprocessing.get_context("fork")
    start, results = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_race, args=(str(tmp_path), start, results)) for _ in range(4)]
    for proc in procs:
        proc.start()
    start.set()
    outcomes = sorted(results.get(timeout=20) for _ in procs)
    for proc in procs:
        proc.join(10)
    assert outcomes == ["busy", "busy", "busy", "won"]


@pytest.mark.parametrize("content", ["", "{", "null", "[1, 2]", '{"owner": "x"'])
def test_empty_or_unparsable_lock_file_blocks_nothing(tmp_path: Path, content: str) -> None:
    (tmp_path / "deploy.lock").write_text(content)
    assert _txn.read_holder(str(tmp_path / "deploy.lock")) is None
    with _txn.HostLock(str(tmp_path)) as lock:
        lock.acquire(0, {"owner": "me"})


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"lock_timeout": -1}, "lock_timeout must be 0 or more"),
        ({"health_timeout": 0}, "health_timeout must be at least 5"),
        ({"health_timeout": -30}, "health_timeout must be at least 5"),
        ({"cutover": "rolling"}, "cutover must be"),
    ],
)
def test_bad_timeouts_are_refused(tmp_path: Path, over, message) -> None:
    with pytest.raises(_txn.TxnError, match=message):
        _settings(tmp_path, **over)


def test_negative_lock_wait_is_refused(tmp_path: Path) -> None:
    with pytest.raises(_txn.TxnError, match="0 or more"):
        _txn.HostLock(str(tmp_path)).acquire(-1, {})


def test_wait_for_a_live_transaction_then_take_the_lock(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    ready, release = ctx.Event(), ctx.Event()
    child = ctx.Process(target=_hold, args=(str(tmp_path), ready, release))
    child.start()
    assert ready.wait(10)
    ticks = []

    def sleep(seconds: float) -> None:
        ticks.append(seconds)
        if len(ticks) == 3:
            release.set()
            child.join(10)

    with _txn.HostLock(str(tmp_path)) as lock:
        lock.acquire(60, {"owner": "next"}, sleep=sleep)
    assert len(ticks) >= 3


def test_pause_hook_waits_for_the_test(tmp_path: Path) -> None:
    host = FakeHost(tmp_path)
    sw = _switch(host)
    (tmp_path / _txn.PAUSE_FILE).write_text("gate\n")
    seen = []

    def sleep(seconds: float) -> None:
        seen.append(json.loads((tmp_path / _txn.PAUSED_FILE).read_text()))
        (tmp_path / _txn.PAUSE_FILE).unlink()

    sw.sleep = sleep  # type: ignore[method-assign]
    sw._pause_hook("reload")
    assert not seen
    sw._pause_hook("gate")
    assert seen[0]["step"] == "gate" and seen[0]["pid"] == os.getpid()
    assert not (tmp_path / _txn.PAUSED_FILE).exists()


@pytest.mark.parametrize(
    ("profiles", "expected"),
    [([], ["app", "db"]), (["tools"], ["app", "db", "tools"]), (["tunnel", "tools"], ["app", "db", "tools", "tunnel"])],
)
def test_services_of_disabled_profiles_do_not_run(profiles, expected) -> None:
    config = {
        "services": {
            "app": {},
            "db": {"profiles": []},
            "tools": {"profiles": ["tools"]},
            "tunnel": {"profiles": ["tunnel"]},
        }
    }
    assert sorted(_txn.active_services(config, profiles)["services"]) == expected


def test_old_colour_goes_only_after_the_replaced_workers_finished(stack) -> None:
    """After the reload, nginx workers of the old configuration still hold requests proxied to the
    old colour: the retire waits until the front reports none left."""
    host, _, v2 = stack
    host.workers_after_reload = 3
    start = len(host.calls)
    assert _switch(host).switch(v2, "deploy")["outcome"] == "success"
    calls = host.calls[start:]
    drains = [i for i, c in enumerate(calls) if "sh" in c]
    retire = next(i for i, c in enumerate(calls) if c[-3:] == ["up", "-d", "--remove-orphans"])
    assert len(drains) == 4 and drains[-1] < retire  # 3, 2, 1, then 0
    assert _audit(host.root)[-1]["steps_s"]["drain"] >= 0.3


def test_drain_is_bounded(stack) -> None:
    host, _, v2 = stack
    host.workers_after_reload = 10_000  # a worker that never finishes (a long-lived connection)
    assert _switch(host).switch(v2, "deploy")["outcome"] == "success"
    waited = _audit(host.root)[-1]["steps_s"]["drain"]
    assert _txn.DRAIN_TIMEOUT <= waited < _txn.DRAIN_TIMEOUT + 1


def test_failing_release_is_removed_only_after_the_front_serves_the_old_one_again(stack) -> None:
    """The undo of a blue/green release: front config back, reload, gate on the old version, drain,
    and only then the failed colour's containers go."""
    host, v1, _ = stack
    v3 = host.release("v3", "blue", reports="v2.9")  # healthy, but the front door names another version
    host.workers_after_reload = 2
    result = _switch(host).switch(v3, "deploy")
    assert result["outcome"] == "rolled_back"
    steps = [r["step"] for r in _txn.Journal(str(host.root)).records() if r.get("event") == "step"]
    undo = steps[steps.index("undo_front") :]
    assert undo == ["undo_front", "undo_reload", "undo_start", "undo_gate", "undo_drain", "undo_retire", "undo_record"]
    assert_consistent(host, v1, "v1")
    assert "app-blue" not in host.containers


def test_going_back_to_an_older_release_of_the_serving_colour_is_refused_before_anything_changes(stack) -> None:
    host, v1, v2 = stack  # v1 green serves; v2 blue staged
    assert _switch(host).switch(v2, "deploy")["outcome"] == "success"
    v3 = host.release("v3", "green")
    assert _switch(host).switch(v3, "deploy")["outcome"] == "success"  # green serves again
    before = (list(_txn.Journal(str(host.root)).records()), dict(host.created), host.served())
    with pytest.raises(_txn.TxnError, match=r"release v1-\w+ runs app-green in the colour that serves now"):
        _switch(host).switch(v1, "rollback")
    assert (list(_txn.Journal(str(host.root)).records()), dict(host.created), host.served()) == before
    # The previous release has the other colour: that rollback goes ahead.
    assert _switch(host).switch(v2, "rollback")["outcome"] == "success"
    assert_consistent(host, v2, "v2")


@pytest.mark.parametrize(
    ("target_colour", "current_colour", "cutover", "in_place", "clash"),
    [
        ("green", "green", "blue_green", ["app-green"], True),
        ("green", "green", "blue_green", ["app-green", "postgres"], True),
        ("green", "blue", "blue_green", ["postgres"], False),
        ("green", "green", "blue_green", ["postgres"], False),
        ("green", "green", "recreate", ["app-green"], False),
        (None, "green", "blue_green", ["app-green"], False),
    ],
    ids=["same-colour", "same-colour-and-db", "other-colour", "only-the-db", "recreate-cutover", "no-colour"],
)
def test_colour_clash_table(target_colour, current_colour, cutover, in_place, clash) -> None:
    def meta(colour):
        return {"version": "v1", "extra": {"colour": colour} if colour else {}}

    plan = {"cutover": cutover, "in_place": [{"service": s} for s in in_place]}
    text = _txn.colour_clash("v1-a", meta(target_colour), "v3-b", meta(current_colour), plan)
    assert bool(text) is clash, text
    assert _txn.colour_clash("v1-a", meta("green"), "", None, plan) == ""
    assert _txn.colour_clash("v1-a", meta("green"), "v1-a", meta("green"), plan) == ""


def test_after_an_in_place_change_the_front_must_answer_several_times_in_a_row(stack) -> None:
    """The app's pooled connections fail some requests after the database restarted: one lucky 200
    does not end the interruption, and the outcome is read from the settled front door."""
    host, _v1, _ = stack
    db = {"image": "pg:17", "volumes": [{"type": "volume", "source": "pgdata"}], "healthcheck": {"test": ["y"]}}
    v2 = host.release("v2b", "blue", db=db)
    switch = _switch(host)
    real_wait = switch.wait_healthy

    def wait_then_flap(services):
        took = real_wait(services)
        if services == ["postgres"]:  # from here the front answers 200, 503, 200, 503, then settles
            host.front_script[:] = [200, 503, 200, 503]
        return took

    switch.wait_healthy = wait_then_flap  # type: ignore[method-assign]
    result = switch.switch(v2, "deploy")
    assert result["outcome"] == "success" and result["served"] == "v2b", result
    assert host.front_script == []
    assert _audit(host.root)[-1]["steps_s"]["in_place_gate"] >= 0.75  # three sleeps of 0.25 s at least


def test_a_refused_front_door_is_asked_once_before_a_switch(tmp_path: Path) -> None:
    # The migration's cutover after a rollback: the release is current already (the first cutover
    # made it so) but nothing listens on the front door. Asking again would only wait.
    host = FakeHost(tmp_path)
    v1 = host.release("v1", "green")
    assert _switch(host).switch(v1, "deploy")["outcome"] == "success"
    del host.containers["nginx"]
    host.loaded_conf = ""
    sw = _switch(host)
    assert sw.served() is None and host.now > 0  # the plain question still asks again
    asked: list[str] = []
    real_probe = host.probe

    def probe(url: str, validate: bool, timeout: float) -> tuple[int, Any, str]:
        answer = real_probe(url, validate, timeout)
        asked.append(answer[2])
        return answer

    host.probe = probe  # type: ignore[method-assign]
    result = _switch(host).switch(v1, "deploy")
    assert result["outcome"] == "success" and result["served"] == "v1"
    refused = [a for a in asked if "refused" in a]
    assert len(refused) == 1, asked
    # ... and the front the switch starts again is not reloaded.
    steps = [r["step"] for r in _txn.Journal(str(host.root)).records() if r.get("event") == "step"]
    assert "reload" not in steps[steps.index("start_beside", len(steps) - 8) :], steps[-8:]


def test_served_asks_again_after_one_failed_answer(stack) -> None:
    host, _v1, _ = stack
    host.front_script[:] = [503]
    assert _switch(host).served() == "v1"
    host.front_script[:] = [503] * 4
    assert _switch(host).served() is None
