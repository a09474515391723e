"""Unit tests for the pidock.stack.migrate_ledger module."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ansible_collections.pidock.stack.plugins.modules import migrate_ledger
from conftest import ModuleFailed

RESET = ["freeze", "dump", "restore", "delta", "verify", "cutover"]


def _run(run_module, path: Path, check_mode: bool = False, **args):
    return run_module(migrate_ledger.main, {"path": str(path), **args}, check_mode=check_mode)


def test_missing_file_reads_as_empty_and_is_not_created(run_module, tmp_path) -> None:
    ledger = tmp_path / "ledger.json"
    result = _run(run_module, ledger)
    assert result["changed"] is False
    assert result["ledger"] == {"format": 1, "phases": {}}
    assert not ledger.exists()


def test_write_entry_atomic_0600_and_idempotent(run_module, tmp_path) -> None:
    ledger = tmp_path / "ledger.json"
    entry = {"status": "started", "started": "2026-11-22T04:00:00.000000Z", "resumed": False}
    first = _run(run_module, ledger, phase="presync", entry=entry)
    assert first["changed"] is True
    assert json.loads(ledger.read_text())["phases"]["presync"] == entry
    assert ledger.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["ledger.json"]
    assert _run(run_module, ledger, phase="presync", entry=entry)["changed"] is False

    verified = {**entry, "status": "verified", "trees": {"images": {"files": 3}}}
    second = _run(run_module, ledger, phase="presync", entry=verified)
    assert second["changed"] is True
    assert second["ledger"]["phases"]["presync"]["trees"]["images"]["files"] == 3
    assert _run(run_module, ledger)["ledger"] == second["ledger"]


def test_check_mode_predicts_and_writes_nothing(run_module, tmp_path) -> None:
    ledger = tmp_path / "ledger.json"
    result = _run(run_module, ledger, check_mode=True, phase="freeze", entry={"status": "started"})
    assert result["changed"] is True
    assert result["ledger"]["phases"]["freeze"] == {"status": "started"}
    assert not ledger.exists()


def test_clear_with_note_keeps_earlier_phases(run_module, tmp_path) -> None:
    ledger = tmp_path / "ledger.json"
    for phase in ("presync", "freeze", "dump"):
        _run(run_module, ledger, phase=phase, entry={"status": "verified"})
    result = _run(run_module, ledger, clear=RESET, note={"reason": "restore failed"})
    assert result["changed"] is True
    assert result["cleared"] == ["freeze", "dump"]
    data = json.loads(ledger.read_text())
    assert list(data["phases"]) == ["presync"]
    assert data["rollbacks"][0]["reason"] == "restore failed"
    assert data["rollbacks"][0]["cleared"] == ["freeze", "dump"]
    assert data["rollbacks"][0]["time"].endswith("Z")

    again = _run(run_module, ledger, clear=RESET, note={"reason": "requested"})
    assert again["changed"] is False
    assert again["cleared"] == []
    assert len(json.loads(ledger.read_text())["rollbacks"]) == 1


def test_diff_mode_shows_before_and_after(run_module, tmp_path) -> None:
    ledger = tmp_path / "ledger.json"
    _run(run_module, ledger, phase="presync", entry={"status": "started"})
    result = run_module(
        migrate_ledger.main,
        {"path": str(ledger), "phase": "presync", "entry": {"status": "verified"}, "_ansible_diff": True},
    )
    assert '"started"' in result["diff"]["before"]
    assert '"verified"' in result["diff"]["after"]


@pytest.mark.parametrize("content", ["[1, 2]", "{not json", '{"phases": []}'])
def test_a_damaged_ledger_fails_loudly(run_module, tmp_path, content: str) -> None:
    ledger = tmp_path / "ledger.json"
    ledger.write_text(content)
    with pytest.raises(ModuleFailed, match="cannot read the ledger"):
        _run(run_module, ledger, phase="presync", entry={"status": "started"})
    assert ledger.read_text() == content


def test_missing_directory_fails_naming_the_path(run_module, tmp_path) -> None:
    with pytest.raises(ModuleFailed, match="directory does not exist"):
        _run(run_module, tmp_path / "nope" / "ledger.json", phase="presync", entry={"status": "started"})


def test_check_mode_predicts_a_write_into_a_directory_the_run_would_make(run_module, tmp_path) -> None:
    ledger = tmp_path / "nope" / "ledger.json"
    result = _run(run_module, ledger, check_mode=True, phase="presync", entry={"status": "started"})
    assert result["changed"] is True
    assert result["ledger"]["phases"]["presync"] == {"status": "started"}
    assert not ledger.parent.exists()


def test_phase_requires_entry(run_module, tmp_path) -> None:
    with pytest.raises(ModuleFailed, match=r"phase|entry"):
        _run(run_module, tmp_path / "ledger.json", phase="presync")


def test_entries_end_one_phase_and_start_the_next_in_one_write(run_module, tmp_path) -> None:
    ledger = tmp_path / "ledger.json"
    _run(run_module, ledger, phase="freeze", entry={"status": "started"})
    result = _run(
        run_module,
        ledger,
        phase="freeze",
        entry={"status": "verified"},
        entries={"catchup": {"status": "started", "resumed": False}},
    )
    assert result["changed"] is True
    assert json.loads(ledger.read_text())["phases"] == {
        "freeze": {"status": "verified"},
        "catchup": {"status": "started", "resumed": False},
    }
    # entries alone write too; an entry that is not an object fails naming the phase.
    assert _run(run_module, ledger, entries={"delta": {"status": "started"}})["changed"] is True
    with pytest.raises(ModuleFailed, match="the entry of verify is not an object"):
        _run(run_module, ledger, entries={"verify": "started"})


def test_a_run_whose_guard_put_the_bare_metal_back_records_nothing(run_module, tmp_path) -> None:
    """With the freeze guard's token: written under its lock, refused once that guard undid or while
    another run's guard watches; an older run's ended guard does not matter."""
    ledger = tmp_path / "ledger.json"
    guard = tmp_path / "guard.json"
    entry = {"status": "verified"}
    args = {"phase": "verify", "entry": entry, "guard_dir": str(tmp_path), "guard_token": "mine"}

    guard.write_text(json.dumps({"token": "older", "status": "undone", "outcome": {"at": "x", "why": "y"}}))
    assert _run(run_module, ledger, **args)["changed"] is True

    guard.write_text(json.dumps({"token": "mine", "status": "armed"}))
    assert _run(run_module, ledger, **(args | {"entry": {"status": "verified", "n": 2}}))["changed"] is True

    guard.write_text(json.dumps({"token": "mine", "status": "undone", "outcome": {"at": "T", "why": "silent 301 s"}}))
    refused = r"ledger not written: the host put the bare metal back at T \(silent 301 s\)"
    with pytest.raises(ModuleFailed, match=refused):
        _run(run_module, ledger, **(args | {"entry": {"status": "verified", "n": 3}}))

    guard.write_text(json.dumps({"token": "another", "status": "switching"}))
    with pytest.raises(ModuleFailed, match="another run of the migration guards this host now"):
        _run(run_module, ledger, **(args | {"entry": {"status": "verified", "n": 4}}))
    assert json.loads(ledger.read_text())["phases"]["verify"] == {"status": "verified", "n": 2}


def test_the_freeze_write_lets_the_jobs_started_ahead_begin(run_module, tmp_path) -> None:
    """start_file: go once the ledger is written (one round trip for both); never when the guard
    refused the write, never in check mode. The job's own reader (_start_signal) sees go."""
    from ansible_collections.pidock.stack.plugins.module_utils._start_signal import wait_for_start

    ledger = tmp_path / "ledger.json"
    start = tmp_path / "frozen.start.abc"
    args = {"phase": "freeze", "entry": {"status": "verified"}, "start_file": str(start)}

    predicted = _run(run_module, ledger, check_mode=True, **args)
    assert predicted["changed"] is True and "start_file_written" not in predicted
    assert not start.exists() and not ledger.exists()

    guard = tmp_path / "guard.json"
    guard.write_text(json.dumps({"token": "mine", "status": "undone", "outcome": {"at": "T", "why": "silent"}}))
    with pytest.raises(ModuleFailed, match="ledger not written"):
        _run(run_module, ledger, guard_dir=str(tmp_path), guard_token="mine", **args)
    assert not start.exists()

    guard.write_text(json.dumps({"token": "mine", "status": "armed"}))
    done = _run(run_module, ledger, guard_dir=str(tmp_path), guard_token="mine", **args)
    assert done["start_file_written"] == str(start)
    assert json.loads(ledger.read_text())["phases"]["freeze"] == {"status": "verified"}
    assert start.read_text() == "go\n" and start.stat().st_mode & 0o777 == 0o600
    assert wait_for_start(str(start), 0.1)[0] is True
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frozen.start.abc", "guard.json", "guard.lock", "ledger.json"]
    # Again (a resumed run): the ledger is unchanged, the word is given again all the same.
    again = _run(run_module, ledger, guard_dir=str(tmp_path), guard_token="mine", **args)
    assert again["changed"] is True and start.read_text() == "go\n"
