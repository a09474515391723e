"""Unit tests for the pidock.stack.compose_switch and release_info modules, on the fake Docker host."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from ansible_collections.pidock.stack.plugins.module_utils import _release, _txn
from ansible_collections.pidock.stack.plugins.modules import compose_switch, release_info
from conftest import ModuleFailed

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "module_utils"))
from fake_host import FakeHost


@pytest.fixture
def host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeHost:
    fake = FakeHost(tmp_path)

    def make(settings: _txn.Settings) -> _txn.Switch:
        return _txn.Switch(
            settings,
            runner=fake.run,
            prober=fake.probe,
            clock=fake.clock,
            sleep=fake.sleep,
            events=lambda project, since: None,
        )

    monkeypatch.setattr(compose_switch, "Switch", make)
    monkeypatch.setattr(release_info, "http_probe", fake.probe)
    return fake


def _args(host: FakeHost, **over: Any) -> dict[str, Any]:
    args = {
        "root": str(host.root),
        "project": "inventory",
        "health_url": "https://127.0.0.1/health",
        "health_timeout": 30,
        "lock_timeout": 0,
    }
    args.update(over)
    return args


def test_check_real_idempotent(run_module, host) -> None:
    v1 = host.release("v1", "green")
    predicted = run_module(compose_switch.main, _args(host, release=v1), check_mode=True)
    assert predicted["changed"] is True and predicted["plan"]["beside"] == ["app-green", "nginx", "postgres"]
    assert not (host.root / "journal.jsonl").exists() and not (host.root / "current").exists()
    done = run_module(compose_switch.main, _args(host, release=v1))
    assert done["changed"] is True and done["outcome"] == "success" and done["served"] == "v1"
    assert run_module(compose_switch.main, _args(host, release=v1), check_mode=True)["changed"] is False
    again = run_module(compose_switch.main, _args(host, release=v1))
    assert again["changed"] is False and again["outcome"] == "unchanged"


def _stop_front(host: FakeHost) -> None:
    host.loaded_conf = ""  # the front door answers nothing


def _hold_lock(host: FakeHost) -> None:
    note = {"owner": "bob", "pid": 1, "kind": "deploy", "release": "x", "since": "now"}
    _txn.HostLock(str(host.root)).acquire(0, note)


def _dead_txn(host: FakeHost) -> None:
    _txn.Journal(str(host.root)).append({"txn": "dead", "event": "begin", "kind": "deploy", "to": "x", "from": ""})


@pytest.mark.parametrize(
    ("setup", "wanted", "noop"),
    [
        pytest.param(None, "current", True, id="current-and-served"),
        pytest.param(None, "new", False, id="another-release"),
        pytest.param(_stop_front, "current", False, id="front-serves-nothing"),
        pytest.param(_hold_lock, "current", False, id="another-run-holds-the-lock"),
        pytest.param(_dead_txn, "current", False, id="a-dead-transaction-to-settle"),
    ],
)
def test_check_mode_says_when_a_real_run_would_do_nothing(run_module, host, setup, wanted, noop) -> None:
    """The role skips the real (async) switch on noop: it must be true only when nothing would happen."""
    v1 = host.release("v1", "green")
    run_module(compose_switch.main, _args(host, release=v1))
    target = v1 if wanted == "current" else host.release("v2", "blue")
    if setup:
        setup(host)
    assert run_module(compose_switch.main, _args(host, release=target), check_mode=True)["noop"] is noop


def test_check_mode_plan_from_a_definition_names_in_place_services(run_module, host) -> None:
    v1 = host.release("v1", "green")
    run_module(compose_switch.main, _args(host, release=v1))
    definition = json.loads((host.root / "releases" / v1 / "compose.yml").read_text())
    definition["services"]["postgres"]["deploy"] = {"resources": {"limits": {"memory": "1g"}}}
    definition["services"]["app-blue"] = definition["services"].pop("app-green")
    before = sorted(os.listdir(host.root))
    result = run_module(
        compose_switch.main, _args(host, release="v2-000000000000", definition=definition), check_mode=True
    )
    assert [i["service"] for i in result["plan"]["in_place"]] == ["postgres"]
    assert "pgdata" in result["plan"]["in_place"][0]["why"]
    assert "IN PLACE" in result["diff"]["after"] and "postgres" in result["diff"]["after"]
    assert sorted(os.listdir(host.root)) == before


def test_failed_gate_fails_naming_the_rollback(run_module, host) -> None:
    v1 = host.release("v1", "green")
    run_module(compose_switch.main, _args(host, release=v1))
    v2 = host.release("v2", "blue", broken=True)
    with pytest.raises(ModuleFailed) as failed:
        run_module(compose_switch.main, _args(host, release=v2))
    result = failed.value.result
    assert result["outcome"] == "rolled_back" and result["served"] == "v1"
    assert "failed its health gate" in result["msg"] and f"Rolled back to {v1}" in result["msg"]


def test_failed_gate_names_the_in_place_services_it_did_not_touch(run_module, host) -> None:
    v1 = host.release("v1", "green")
    run_module(compose_switch.main, _args(host, release=v1))
    db = {"image": "pg:18", "volumes": [{"type": "volume", "source": "pgdata"}]}
    v2 = host.release("v2", "blue", broken=True, db=db)
    with pytest.raises(ModuleFailed) as failed:
        run_module(compose_switch.main, _args(host, release=v2))
    assert "Not touched (planned in place, after the gate): postgres." in failed.value.result["msg"]
    assert host.created["postgres"] == 1


def test_settled_recovers_a_dead_transaction(run_module, host) -> None:
    v1 = host.release("v1", "green")
    run_module(compose_switch.main, _args(host, release=v1))
    v2 = host.release("v2", "blue")
    journal = _txn.Journal(str(host.root))
    journal.append(
        {
            "txn": "dead",
            "event": "begin",
            "kind": "deploy",
            "to": v2,
            "to_version": "v2",
            "from": v1,
            "from_version": "v1",
            "plan": {"beside": ["app-blue"], "in_place": [], "unchanged": [], "retire": ["app-green"]},
            "started": host.now,
        }
    )
    journal.append({"txn": "dead", "event": "step", "step": "gate"})
    predicted = run_module(compose_switch.main, _args(host, state="settled"), check_mode=True)
    assert predicted == {**predicted, "changed": True, "pending": "undo"}
    result = run_module(compose_switch.main, _args(host, state="settled"))
    assert result["changed"] is True and result["recovered"]["recovered"]["action"] == "undo"
    assert run_module(compose_switch.main, _args(host, state="settled"))["changed"] is False
    assert _release.current_release(str(host.root)) == v1


def test_busy_lock_names_the_holder(run_module, host) -> None:
    lock = _txn.HostLock(str(host.root))
    lock.acquire(0, {"owner": "alice", "pid": 4242, "kind": "deploy", "release": "v9-x", "since": "now"})
    try:
        with pytest.raises(ModuleFailed) as failed:
            run_module(compose_switch.main, _args(host, state="settled", lock_timeout=0))
    finally:
        lock.release()
    assert "alice (pid 4242" in failed.value.result["msg"] and failed.value.result["holder"]["owner"] == "alice"


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"health_timeout": 1}, "health_timeout must be at least 5"),
        ({"lock_timeout": -1}, "lock_timeout must be 0 or more"),
        ({"release": "nope"}, "does not exist"),
        ({"release": "previous"}, "no previous release"),
    ],
)
def test_bad_input_changes_nothing(run_module, host, over, message) -> None:
    with pytest.raises(ModuleFailed, match=message):
        run_module(compose_switch.main, _args(host, **over))
    assert not (host.root / "current").exists()


def test_release_info_reports_what_is_served(run_module, host) -> None:
    v1 = host.release("v1", "green")
    run_module(compose_switch.main, _args(host, release=v1))
    info = run_module(release_info.main, {"root": str(host.root), "health_url": "https://127.0.0.1/health"})
    assert info["current"] == v1 and info["served"] == "v1" and info["served_release"] == v1
    assert info["journal"]["open"] is False and info["journal"]["outcome"] == "success"
    assert info["lock_holder"] is None and info["changed"] is False
    host.loaded_conf = ""  # the front door stops answering: nothing is served, whatever current says
    info = run_module(release_info.main, {"root": str(host.root), "health_url": "https://127.0.0.1/health"})
    assert info["served"] is None and info["served_release"] == "" and info["current"] == v1


def test_check_mode_refuses_a_rollback_to_the_serving_colour(run_module, host) -> None:
    v1 = host.release("v1", "green")
    run_module(compose_switch.main, _args(host, release=v1))
    v2 = host.release("v2", "blue")
    run_module(compose_switch.main, _args(host, release=v2))
    v3 = host.release("v3", "green")
    run_module(compose_switch.main, _args(host, release=v3))
    for check_mode in (True, False):
        with pytest.raises(ModuleFailed) as failed:
            run_module(compose_switch.main, _args(host, release=v1, kind="rollback"), check_mode=check_mode)
        assert "deploy v1's configuration again with deploy.yml" in failed.value.result["msg"]
    assert host.served() == "v3"
