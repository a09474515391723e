"""Unit tests for the migrate role's host-reading filters (units, secrets, volumes, tree record)."""

from __future__ import annotations

import subprocess
import time
from typing import Any

import pytest
from ansible_collections.pidock.stack.plugins.filter.migrate_host import (
    FilterModule,
    migrate_downtime,
    migrate_next_phase,
    migrate_phase_report,
    migrate_refreeze,
    migrate_secret_conflicts,
    migrate_start_wait,
    migrate_tree_record,
    migrate_units_killed,
    migrate_units_state,
    migrate_volume_labels,
    migrate_volume_paths,
)


def _block(load: str, enabled: str = "enabled", active: str = "active", unit: str = "x.service") -> str:
    return f"Id={unit}\nLoadState={load}\nUnitFileState={enabled}\nActiveState={active}\n"


UNITS = ["inventory.service", "nginx.service", "cloudflared.service"]


@pytest.mark.parametrize(
    ("stdout", "expected"),
    [
        (
            "\n".join(
                [_block("loaded"), _block("loaded", "disabled", "inactive"), _block("not-found", "", "inactive")]
            ),
            [
                {"name": "inventory.service", "enabled": True, "active": True},
                {"name": "nginx.service", "enabled": False, "active": False},
            ],
        ),
        (
            "\n".join(
                [
                    _block("loaded", "enabled", "activating"),
                    _block("loaded", "static", "reloading"),
                    _block("loaded", "masked", "failed"),
                ]
            ),
            [
                {"name": "inventory.service", "enabled": True, "active": True},
                {"name": "nginx.service", "enabled": False, "active": True},
                {"name": "cloudflared.service", "enabled": False, "active": False},
            ],
        ),
        ("\n".join([_block("not-found")] * 3), []),
        # A value holding '=' keeps it; blank lines with spaces still separate blocks.
        (
            "Id=a=b\nLoadState=loaded\nUnitFileState=enabled\nActiveState=active\n \n"
            + _block("not-found")
            + "\n"
            + _block("not-found"),
            [{"name": "inventory.service", "enabled": True, "active": True}],
        ),
    ],
    ids=["mixed", "transitional-states", "none-installed", "odd-lines"],
)
def test_units_state(stdout: str, expected: list[dict[str, Any]]) -> None:
    assert migrate_units_state(stdout, UNITS) == expected


def test_units_state_refuses_a_block_count_that_does_not_match() -> None:
    with pytest.raises(ValueError, match="2 block"):
        migrate_units_state("\n".join([_block("loaded"), _block("loaded")]), UNITS)


def test_units_state_of_no_units_is_empty() -> None:
    # `systemctl show` with no unit prints the manager's own properties: nothing to read.
    assert migrate_units_state("Version=257\n", []) == []


@pytest.mark.parametrize(
    ("stdout", "names", "killed"),
    [
        # systemd prints the properties in its own order, not the order asked.
        ("Result=timeout\nId=inventory.service\n", ["inventory.service"], ["inventory.service"]),
        ("Id=inventory.service\nResult=success\n", ["inventory.service"], []),
        (
            "Id=a.service\nResult=success\n\nId=b.service\nResult=timeout\n\nId=c.service\nResult=exit-code\n",
            ["a.service", "b.service", "c.service"],
            ["b.service"],
        ),
        # A unit that is not installed answers Result=success: never named.
        ("Id=gone.service\nResult=success\n", ["gone.service"], []),
        ("", [], []),
    ],
    ids=["killed", "stopped-in-time", "one-of-three", "not-installed", "no-units"],
)
def test_units_killed(stdout: str, names: list[str], killed: list[str]) -> None:
    assert migrate_units_killed(stdout, names) == killed


def test_units_killed_refuses_a_block_count_that_does_not_match() -> None:
    with pytest.raises(ValueError, match="1 block"):
        migrate_units_killed("Id=a.service\nResult=timeout\n", ["a.service", "b.service"])


@pytest.mark.parametrize(
    ("found", "declared", "conflicts"),
    [
        ({"POSTGRES_PASSWORD": "pw"}, {}, []),
        ({"POSTGRES_PASSWORD": "pw"}, None, []),
        ({"POSTGRES_PASSWORD": "pw"}, {"POSTGRES_PASSWORD": "pw"}, []),
        ({"POSTGRES_PASSWORD": "pw"}, {"POSTGRES_PASSWORD": "other"}, ["POSTGRES_PASSWORD"]),
        ({"B": "1", "A": "2"}, {"A": "x", "B": "y", "C": "z"}, ["A", "B"]),
        ({"PORT": "5432"}, {"PORT": 5432}, []),
        ({"K": ""}, {"K": "v"}, ["K"]),
    ],
    ids=["undeclared", "none", "equal", "differs", "sorted", "number-as-string", "empty-vs-set"],
)
def test_secret_conflicts(found: dict[str, Any], declared: Any, conflicts: list[str]) -> None:
    assert migrate_secret_conflicts(found, declared) == conflicts


@pytest.mark.parametrize(
    ("volumes", "project", "keys"),
    [
        (["inventory_images", "inventory_ml_cache", "inventory_pgdata"], "inventory", ["images", "ml_cache", "pgdata"]),
        (["shop_images", "data", "shopinventory_pgdata"], "shop", ["images", "data", "shopinventory_pgdata"]),
        (["a.b_x", "a_b_x", "ab_x"], "a.b", ["x", "a_b_x", "ab_x"]),
    ],
    ids=["prefixed", "partly-prefixed", "project-with-dot-is-literal"],
)
def test_volume_labels(volumes: list[str], project: str, keys: list[str]) -> None:
    labels = migrate_volume_labels(volumes, ["images", "ml_cache", "pgdata"], project)
    assert [labels[v]["com.docker.compose.volume"] for v in volumes] == keys
    assert {labels[v]["com.docker.compose.project"] for v in volumes} == {project}
    assert [labels[v]["io.pidock.migrate.volume"] for v in volumes] == ["images", "ml_cache", "pgdata"]


def test_volume_labels_need_a_role_per_volume() -> None:
    with pytest.raises(ValueError, match="2 volume"):
        migrate_volume_labels(["a", "b"], ["images"], "p")


@pytest.mark.parametrize(
    ("lines", "made", "paths"),
    [
        (["v1=/var/lib/docker/volumes/v1/_data"], None, {"v1": "/var/lib/docker/volumes/v1/_data"}),
        (
            ["v1=/d/v1", "Error response from daemon: get v2: no such volume"],
            [{"volume": {"Name": "v2", "Mountpoint": "/d/v2"}}, {"skipped": True}, {"volume": {"Name": "v3"}}],
            {"v1": "/d/v1", "v2": "/d/v2"},
        ),
        ([], [{"volume": None}, "junk"], {}),
        (["odd=path=with=equals"], [], {"odd": "path=with=equals"}),
    ],
    ids=["existing", "created-and-errors", "nothing", "equals-in-path"],
)
def test_volume_paths(lines: list[str], made: Any, paths: dict[str, str]) -> None:
    assert migrate_volume_paths(lines, made) == paths


TREES = [{"name": "images", "volume": "inv_images"}, {"name": "ml_cache", "volume": "inv_ml"}]
RESULT = {
    "digest": "abc",
    "counts": {"file": 3},
    "total_bytes": 120,
    "copy": {"files_copied": 2, "bytes_copied": 80, "hashes_reused": 1},
    "seconds": 1.5,
}


def test_tree_record_from_the_manifest_loop() -> None:
    copied = [{"item": {"name": "ml_cache"}, "skipped": True}, {"item": {"name": "images"}, **RESULT}]
    record = migrate_tree_record(TREES, "manifest", {"inv_images": "/d/i"}, {}, copied)
    assert record["images"] == {
        "volume": "inv_images",
        "path": "/d/i",
        "digest": "abc",
        "files": 3,
        "bytes": 120,
        "copied_files": 2,
        "copied_bytes": 80,
        "hashes_reused": 1,
        "seconds": 1.5,
    }
    # No volume yet (check mode): an empty entry, not an error.
    assert record["ml_cache"] == {
        "volume": "inv_ml",
        "path": "",
        "digest": "",
        "files": 0,
        "bytes": 0,
        "copied_files": None,
        "copied_bytes": None,
        "hashes_reused": None,
        "seconds": None,
    }


def test_tree_record_from_rsync_results() -> None:
    rsynced = {"ml_cache": {"digest": "d2", "counts": {"file": 9}, "total_bytes": 7}}
    record = migrate_tree_record(TREES, "rsync", {"inv_ml": "/d/m"}, rsynced, [{"item": {"name": "images"}, **RESULT}])
    assert (record["ml_cache"]["digest"], record["ml_cache"]["files"], record["ml_cache"]["path"]) == ("d2", 9, "/d/m")
    assert record["images"]["digest"] == "", "rsync ignores the manifest loop's results"


def test_filters_are_registered() -> None:
    assert set(FilterModule().filters()) == {
        "migrate_units_state",
        "migrate_units_killed",
        "migrate_secret_conflicts",
        "migrate_volume_labels",
        "migrate_volume_paths",
        "migrate_tree_record",
        "migrate_next_phase",
        "migrate_phase_report",
        "migrate_refreeze",
        "migrate_downtime",
        "migrate_start_wait",
    }


@pytest.mark.parametrize(
    ("index", "statuses", "want"),
    [
        (0, {}, "catchup"),
        (0, {"catchup": "verified"}, "delta"),
        (0, {"catchup": "started"}, "catchup"),
        (2, {}, ""),
        (1, {"delta": "verified"}, ""),
        (-1, {}, "freeze"),
    ],
)
def test_next_phase(index, statuses, want):
    ledger = {"phases": {name: {"status": status} for name, status in statuses.items()}}
    assert migrate_next_phase(["freeze", "catchup", "delta"], index, ledger) == want


def _entry(seconds: float, status: str = "verified") -> dict[str, Any]:
    return {
        "status": status,
        "started": "2026-11-29T01:00:00.000000Z",
        "verified": f"2026-11-29T01:00:{seconds:09.6f}Z",
    }


@pytest.mark.parametrize(
    ("phases", "estimate", "lines"),
    [
        (
            {"presync": _entry(9.5), "freeze": _entry(1.25), "cutover": {**_entry(5.0), "downtime_seconds": 21.0}},
            {"presync_seconds": 10, "downtime_seconds": 26, "delta_seconds": 5},
            [
                "presync: 9.5 s (plan: 10 s)",
                "freeze: 1.2 s",
                "cutover: 5.0 s",
                "downtime, freeze to the stack serving: 21.0 s (plan: 26 s)",
            ],
        ),
        ({"delta": _entry(3.0, "started"), "verify": {"status": "verified"}}, {}, []),
        ({}, None, []),
        (
            {"replicate": _entry(40.0), "prestart": _entry(5.0)},
            {"replicate_seconds": 30, "prestart_seconds": 10},
            [
                "replicate: 40.0 s (plan: 30 s)",
                "prestart: 5.0 s (plan: 10 s)",
            ],
        ),
    ],
    ids=["phases and downtime", "unfinished or without times", "empty", "live phases of replicate"],
)
def test_phase_report(phases, estimate, lines):
    assert migrate_phase_report({"phases": phases}, estimate) == lines


_FROZEN = ["freeze", "catchup", "dump", "restore", "delta", "verify", "cutover"]
_WRITERS = ["inventory.service", "inventory-worker.service"]
_ALL_PHASES = ["presync", "replicate", "prestart", "freeze", "catchup", "delta", "verify", "cutover"]


def _ledger(**statuses: str) -> dict[str, Any]:
    return {"phases": {name: {"status": status} for name, status in statuses.items()}}


@pytest.mark.parametrize(
    ("ledger", "lines", "run_phases", "clear", "error"),
    [
        (_ledger(presync="verified"), ["active", "active"], _ALL_PHASES, [], False),
        (_ledger(freeze="started"), ["active", "inactive"], _ALL_PHASES, [], False),
        (_ledger(freeze="verified", cutover="verified"), ["active", "active"], _ALL_PHASES, [], False),
        (_ledger(freeze="verified", catchup="started"), ["inactive", "inactive"], _ALL_PHASES, [], False),
        (_ledger(freeze="verified", catchup="started"), ["failed", "activating"], _ALL_PHASES, [], False),
        (
            _ledger(replicate="verified", freeze="verified", catchup="verified", delta="started"),
            ["inactive", "active"],
            _ALL_PHASES,
            ["freeze", "catchup", "delta"],
            False,
        ),
        (
            _ledger(freeze="verified", verify="verified", cutover="started"),
            ["active"],
            ["cutover"],
            ["freeze", "verify", "cutover"],
            True,
        ),
    ],
    ids=[
        "not-frozen-yet",
        "freeze-not-verified",
        "cut-over",
        "still-frozen",
        "failed-is-not-running",
        "a-writer-runs-again",
        "run-without-freeze-stops",
    ],
)
def test_migrate_refreeze(
    ledger: dict[str, Any], lines: list[str], run_phases: list[str], clear: list[str], error: bool
) -> None:
    found = migrate_refreeze(ledger, lines, _WRITERS, run_phases, _FROZEN)
    assert found["phases"] == clear
    assert bool(found["error"]) is error
    if clear:
        assert found["why"].startswith(_WRITERS[lines.index("active")] + " ran again after the freeze")
        if error:
            assert found["error"].endswith("Run the migration from the freeze on (it freezes again)")
    else:
        assert found == {"phases": [], "why": "", "error": ""}


# 2026-11-29T01:00:20.500000Z as seconds since the epoch.
_GATE = 1795914020.5
_FROZE = "2026-11-29T01:00:00.000000Z"


@pytest.mark.parametrize(
    ("args", "want"),
    [
        (
            (_FROZE, None, _GATE, 1795914022.9),
            {"serving_since": "2026-11-29T01:00:20.500000Z", "seconds": 20.5, "source": "gate"},
        ),
        (
            (_FROZE, "2026-11-29T01:00:30.000000Z", _GATE, 1795914040),
            {"serving_since": "2026-11-29T01:00:30.000000Z", "seconds": 30.0, "source": "guard"},
        ),
        (
            (_FROZE, None, None, 1795914022.94),
            {"serving_since": "2026-11-29T01:00:22.940000Z", "seconds": 22.9, "source": "returned"},
        ),
        (
            (_FROZE, "", "", "2026-11-29T01:00:23.000000Z"),
            {"serving_since": "2026-11-29T01:00:23.000000Z", "seconds": 23.0, "source": "returned"},
        ),
        (
            (None, None, _GATE, None),
            {"serving_since": "2026-11-29T01:00:20.500000Z", "seconds": None, "source": "gate"},
        ),
        (
            ("not a time", None, _GATE, None),
            {"serving_since": "2026-11-29T01:00:20.500000Z", "seconds": None, "source": "gate"},
        ),
        ((_FROZE, None, None, None), {"serving_since": "", "seconds": None, "source": ""}),
        ((_FROZE, "garbled", True, None), {"serving_since": "", "seconds": None, "source": ""}),
        # A host clock stepped back between freeze and gate: never a negative downtime.
        (
            (_FROZE, None, _GATE - 60, None),
            {"serving_since": "2026-11-29T00:59:20.500000Z", "seconds": 0.0, "source": "gate"},
        ),
    ],
    ids=[
        "gate",
        "guard first",
        "returned",
        "returned as text",
        "no freeze",
        "bad freeze",
        "nothing known",
        "bad values skipped",
        "clock stepped back",
    ],
)
def test_downtime(args, want):
    assert migrate_downtime(*args) == want


@pytest.mark.parametrize(
    ("word", "rc", "stdout", "ran"),
    [
        ("go\n", 0, "ran\n", True),
        ("go", 0, "ran\n", True),
        ("cancel\n", 0, "cancelled by", False),
        ("GO", 0, "cancelled by", False),
    ],
    ids=["go", "go-no-newline", "cancel", "other-word"],
)
def test_start_wait_runs_only_on_go(tmp_path, word: str, rc: int, stdout: str, ran: bool) -> None:
    start = tmp_path / "start file"  # a space: the path is quoted
    start.write_text(word)
    done = subprocess.run(
        ["bash", "-c", migrate_start_wait(str(start), 5) + " echo ran"], capture_output=True, text=True, check=False
    )
    assert done.returncode == rc and done.stdout.startswith(stdout), done
    assert ("ran" in done.stdout) is ran


def test_start_wait_waits_for_the_word_and_times_out(tmp_path) -> None:
    start = tmp_path / "start"
    proc = subprocess.Popen(
        ["bash", "-c", migrate_start_wait(str(start), 5) + " echo ran"], stdout=subprocess.PIPE, text=True
    )
    time.sleep(0.3)
    assert proc.poll() is None, "it goes on before the file says go"
    start.write_text("go\n")
    assert proc.communicate(timeout=5)[0] == "ran\n"
    late = subprocess.run(
        ["bash", "-c", migrate_start_wait(str(tmp_path / "never"), 0.2) + " echo ran"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert late.returncode == 3 and late.stdout == ""
    assert f"not started, nothing done: {tmp_path}/never did not appear within 0.2 s" in late.stderr


@pytest.mark.parametrize(("path", "timeout"), [("", 5), ("/x", 0), ("/x", -1), ("/x", "nan")])
def test_start_wait_refuses_bad_input(path, timeout) -> None:
    with pytest.raises(ValueError, match="migrate_start_wait needs"):
        migrate_start_wait(path, timeout)
