"""migrate_subscription_wait: the pure decisions table by table, main() against a faked psql and clock, and (where
Docker and the stack's PostgreSQL image are available) a real subscription between two databases of one server."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from ansible.module_utils import basic
from ansible_collections.pidock.stack.plugins.action.async_progress import next_line
from ansible_collections.pidock.stack.plugins.module_utils._progress import progress_line
from ansible_collections.pidock.stack.plugins.modules import migrate_subscription_wait as msw
from conftest import ModuleFailed, RunModule
from fake_time import FakeTime

PSQL = ["docker", "exec", "-i", "inventory-postgres-1", "psql", "-X", "-U", "postgres"]


def _doc(*tables: tuple[str, str, int | None], found: bool = True, sync_errors: int | None = 0, enabled: Any = True):
    """A look as the server prints it: tables as (name, state, copied)."""
    return {
        "found": found,
        "enabled": enabled if found else None,
        "sync_errors": sync_errors if found else None,
        "tables": [{"name": name, "state": state, "copied": copied} for name, state, copied in tables],
    }


def _look(*tables: tuple[str, str, int | None], sync_errors: int | None = 0) -> dict[str, Any]:
    return msw.parse_look(json.dumps(_doc(*tables, sync_errors=sync_errors)))


# -- the pure functions ---------------------------------------------------------------------------------------


def test_psql_argv_appends_safe_options_and_reads_the_script_from_stdin() -> None:
    assert msw.psql_argv(PSQL, "inventory_db", "pidock 'migrate'") == [
        *PSQL,
        "-X",
        "-A",
        "-t",
        "-q",
        "-v",
        "ON_ERROR_STOP=1",
        "-v",
        "pidock_subscription=pidock 'migrate'",  # a psql variable, quoted by psql as :'pidock_subscription'
        "-d",
        "inventory_db",
        "-f",
        "-",
    ]


def test_the_script_names_each_optional_view_only_by_version() -> None:
    # The views a server may lack appear only inside string literals the version picks between.
    assert ":'pidock_subscription'" in msw.LOOK_SQL
    for view, version in (("pg_stat_progress_copy", "140000"), ("pg_stat_subscription_stats", "150000")):
        before, _view, after = msw.LOOK_SQL.partition(view)
        assert version in before and "\\gset" in after
        assert view not in msw.LOOK_SQL.split("\\gset")[1]


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        pytest.param(
            _doc(("public.a", "r", None), ("public.b", "d", 1200)),
            {
                "found": True,
                "enabled": True,
                "sync_errors": 0,
                "tables": [
                    {"name": "public.a", "state": "r", "copied": None},
                    {"name": "public.b", "state": "d", "copied": 1200},
                ],
            },
            id="tables",
        ),
        pytest.param(
            _doc(found=False), {"found": False, "enabled": None, "sync_errors": None, "tables": []}, id="missing"
        ),
        pytest.param(
            _doc(("public.a", "i", None), sync_errors=None, enabled="t"),
            {
                "found": True,
                "enabled": None,
                "sync_errors": None,
                "tables": [{"name": "public.a", "state": "i", "copied": None}],
            },
            id="before-15-and-odd-enabled",
        ),
    ],
)
def test_parse_look(doc: dict[str, Any], expected: dict[str, Any]) -> None:
    assert msw.parse_look(json.dumps(doc) + "\n") == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "psql did not print one JSON document"),
        ("NOTICE: x\n", "psql did not print one JSON document"),
        ("[]", "not a look at a subscription"),
        ('{"found": 1, "tables": []}', "not a look at a subscription"),
        ('{"found": true}', "not a look at a subscription"),
        ('{"found": true, "tables": ["public.a"]}', "a table of the look is 'public.a'"),
        ('{"found": true, "tables": [{"name": "public.a", "state": "rr"}]}', "table public.a: state is 'rr'"),
        ('{"found": true, "tables": [{"name": "public.a", "state": null}]}', "table public.a: state is None"),
        (
            '{"found": true, "tables": [{"name": "public.a", "state": "d", "copied": -1}]}',
            "public.a copied is -1, not a count",
        ),
        (
            '{"found": true, "tables": [{"name": "public.a", "state": "d", "copied": 1.5}]}',
            "public.a copied is 1.5, not a count",
        ),
        ('{"found": true, "tables": [], "sync_errors": true}', "sync_errors is True, not a count"),
    ],
)
def test_parse_look_refuses(text: str, message: str) -> None:
    with pytest.raises(ValueError) as exc:
        msw.parse_look(text)
    assert message in str(exc.value)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({}, {}),
        ({"public.a": 10, "public.b": "20", "public.c": 3.7}, {"public.a": 10, "public.b": 20, "public.c": 3}),
        ({"public.a": -1}, {"public.a": 0}),  # reltuples -1: never analysed
        ({"public.a": "1e6"}, {"public.a": 1_000_000}),
    ],
)
def test_table_rows_map(raw: dict[str, Any], expected: dict[str, int]) -> None:
    assert msw.table_rows_map(raw) == expected


@pytest.mark.parametrize("value", [True, None, "many", [1], float("inf")])
def test_table_rows_map_refuses(value: Any) -> None:
    with pytest.raises(ValueError, match=r"table_rows: public\.a is .*, not a number of rows"):
        msw.table_rows_map({"public.a": value})


ROWS = {"public.a": 100, "public.b": 200, "public.c": 300, "public.d": 400, "public.gone": 1000}

# (tables as (name, state, copied), expected (ready, rows_done, rows_total, done))
SUMMARIES = [
    pytest.param([("public.a", "r", None), ("public.b", "r", None)], (2, 300, 300, True), id="all-ready"),
    pytest.param(
        [("public.a", "r", None), ("public.b", "s", None), ("public.c", "f", None), ("public.d", "d", 150)],
        (1, 750, 1000, False),
        id="copied-states-count-their-estimate",
    ),
    pytest.param(
        [("public.a", "i", None), ("public.b", "d", None), ("public.c", "d", 10)], (0, 10, 600, False), id="copying"
    ),
    pytest.param(
        [("public.a", "r", 5), ("public.new", "d", 7), ("public.other", "r", None)],
        (2, 107, 100, False),
        id="unknown-tables-count-what-is-copied",
    ),
    pytest.param([("public.d", "d", 900)], (0, 900, 400, False), id="more-than-estimated"),
    pytest.param([], (0, 0, 0, True), id="no-tables-is-done"),
]


@pytest.mark.parametrize(("tables", "expected"), SUMMARIES)
def test_summarize(tables: list[tuple[str, str, int | None]], expected: tuple[int, int, int, bool]) -> None:
    summary = msw.summarize(_look(*tables, sync_errors=2), ROWS)
    assert (summary["ready"], summary["rows_done"], summary["rows_total"], summary["done"]) == expected
    assert summary["tables"] == len(tables)
    assert summary["states"] == {name: state for name, state, _copied in tables}
    assert summary["sync_errors"] == 2


@pytest.mark.parametrize(
    ("tables", "sync_errors", "enabled", "timeout", "message"),
    [
        pytest.param(
            [("public.a", "r", None), ("public.c", "i", None), ("public.b", "d", 5)],
            3,
            True,
            3600,
            "subscription sub in database db: 2 of 3 tables not ready after 1 h 00 min (timeout): "
            "public.b (d: copying data), public.c (i: initializing); sync errors: 3",
            id="each-table-with-its-state",
        ),
        pytest.param(
            [("public.a", "s", None)],
            None,
            True,
            90,
            "subscription sub in database db: 1 of 1 tables not ready after 1 min 30 s (timeout): "
            "public.a (s: synchronized); sync errors: unknown (before PostgreSQL 15)",
            id="before-15",
        ),
        pytest.param(
            [("public.a", "x", None)],
            0,
            False,
            5,
            "subscription sub in database db: 1 of 1 tables not ready after 5 s (timeout): "
            "public.a (x: unknown state); sync errors: 0; the subscription is disabled",
            id="disabled-and-an-unknown-state",
        ),
    ],
)
def test_timeout_message(
    tables: list[tuple[str, str, int | None]], sync_errors: int | None, enabled: bool, timeout: int, message: str
) -> None:
    summary = msw.summarize(_look(*tables, sync_errors=sync_errors), {})
    assert msw.timeout_message("sub", "db", timeout, summary, enabled) == message


# -- main() against a faked psql and clock ---------------------------------------------------------------------


class Server(FakeTime):
    """Answers each look with the next answer (a document, or an (rc, out, err) tuple); the clock moves only
    when the module sleeps."""

    def __init__(self, answers: list[Any]) -> None:
        super().__init__()
        self.answers = list(answers)
        self.calls: list[tuple[list[str], Any]] = []
        self.looked_at: list[float] = []

    def run_command(self, module: basic.AnsibleModule, argv: list[str], **kwargs: Any) -> tuple[int, str, str]:
        self.calls.append((argv, kwargs.get("data")))
        self.looked_at.append(self.now - 1000.0)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        return answer if isinstance(answer, tuple) else (0, json.dumps(answer) + "\n", "")


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch):
    def _install(*answers: Any) -> Server:
        fake = Server(list(answers))

        def run_command(self: basic.AnsibleModule, argv: list[str], **kwargs: Any) -> tuple[int, str, str]:
            return fake.run_command(self, argv, **kwargs)

        monkeypatch.setattr(basic.AnsibleModule, "run_command", run_command)
        monkeypatch.setattr(msw, "_clock", fake.clock)
        monkeypatch.setattr(msw, "_sleep", fake.sleep)
        return fake

    return _install


def _args(**over: Any) -> dict[str, Any]:
    return {"psql": PSQL, "database": "inventory_db", "subscription": "pidock_migrate", **over}


def test_waits_until_every_table_is_ready(run_module: RunModule, server) -> None:
    fake = server(
        _doc(("public.a", "r", None), ("public.b", "d", 50)),
        _doc(("public.a", "r", None), ("public.b", "s", None)),
        _doc(("public.a", "r", None), ("public.b", "r", None)),
    )
    res = run_module(msw.main, _args(table_rows={"public.a": 10, "public.b": 90, "public.x": 5}, interval=2))
    assert res == {
        "changed": False,
        "tables": 2,
        "ready": 2,
        "rows_done": 100,
        "rows_total": 100,
        "seconds": 4.0,
        "states": {"public.a": "r", "public.b": "r"},
        "sync_errors": 0,
    }
    assert fake.sleeps == [2, 2]
    assert [data for _argv, data in fake.calls] == [msw.LOOK_SQL] * 3  # one psql call per look, fed the script
    assert fake.calls[0][0] == msw.psql_argv(PSQL, "inventory_db", "pidock_migrate")


def test_ready_at_the_first_look_does_not_sleep(run_module: RunModule, server) -> None:
    fake = server(_doc(("public.a", "r", None)))
    res = run_module(msw.main, _args())
    assert (res["ready"], res["tables"], res["rows_total"], res["seconds"]) == (1, 1, 0, 0.0)
    assert fake.sleeps == []


@pytest.mark.parametrize(
    ("timeout", "interval", "looks", "sleeps"),
    [
        pytest.param(3, 1.0, [0, 1, 2, 3], [1, 1, 1], id="looks-until-the-deadline"),
        pytest.param(2, 1.5, [0, 1.5, 2], [1.5, 0.5], id="last-sleep-ends-at-the-deadline"),
        pytest.param(0, 1.0, [0], [], id="zero-looks-once"),
    ],
)
def test_timeout_names_the_tables_not_ready(
    run_module: RunModule, server, timeout: int, interval: float, looks: list[float], sleeps: list[float]
) -> None:
    fake = server(_doc(("public.a", "r", None), ("public.b", "d", 40), ("public.c", "i", None), sync_errors=4))
    with pytest.raises(ModuleFailed) as exc:
        run_module(msw.main, _args(timeout=timeout, interval=interval, table_rows={"public.a": 60, "public.b": 100}))
    result = exc.value.result
    assert result["msg"] == (
        f"subscription pidock_migrate in database inventory_db: 2 of 3 tables not ready after {timeout} s (timeout): "
        "public.b (d: copying data), public.c (i: initializing); sync errors: 4"
    )
    assert (result["ready"], result["rows_done"], result["rows_total"], result["sync_errors"]) == (1, 100, 160, 4)
    assert result["seconds"] == timeout
    assert fake.looked_at == looks
    assert fake.sleeps == sleeps


def test_a_missing_subscription_fails_at_once(run_module: RunModule, server) -> None:
    fake = server(_doc(found=False))
    with pytest.raises(ModuleFailed) as exc:
        run_module(msw.main, _args(timeout=600))
    assert exc.value.result["msg"] == "subscription pidock_migrate does not exist in database inventory_db"
    assert len(fake.calls) == 1 and fake.sleeps == []


def test_a_subscription_that_disappears_while_waiting_fails(run_module: RunModule, server) -> None:
    fake = server(_doc(("public.a", "d", None)), _doc(found=False))
    with pytest.raises(ModuleFailed, match="subscription pidock_migrate does not exist"):
        run_module(msw.main, _args())
    assert len(fake.calls) == 2


def test_check_mode_looks_once_and_never_waits(run_module: RunModule, server, tmp_path: Path) -> None:
    fake = server(_doc(("public.a", "r", None), ("public.b", "d", 30)))
    progress = tmp_path / "p.json"
    res = run_module(
        msw.main, _args(table_rows={"public.a": 10, "public.b": 90}, progress_file=str(progress)), check_mode=True
    )
    assert res["changed"] is False
    assert (res["tables"], res["ready"], res["rows_done"], res["rows_total"]) == (2, 1, 40, 100)
    assert len(fake.calls) == 1 and fake.sleeps == []
    record = json.loads(progress.read_text())
    assert progress_line(record) == "copy   40 of 100 rows (40%), 1 of 2 tables, done"


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        pytest.param(
            (2, "", "psql: error: connection to server failed\n"),
            "reading subscription pidock_migrate in database inventory_db failed (rc=2): psql: error: connection",
            id="psql-fails",
        ),
        pytest.param(
            (0, "", ""),
            "reading subscription pidock_migrate in database inventory_db: psql did not print one JSON document",
            id="nothing-printed",
        ),
        pytest.param({"found": True}, "not a look at a subscription", id="odd-json"),
    ],
)
def test_psql_failures(run_module: RunModule, server, answer: Any, message: str) -> None:
    server(answer)
    with pytest.raises(ModuleFailed) as exc:
        run_module(msw.main, _args())
    assert message in exc.value.result["msg"]


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"psql": []}, "psql: the command that runs psql must not be empty"),
        ({"database": "-h evil"}, "database: '-h evil' is not a database name"),
        ({"subscription": ""}, "subscription: the name must not be empty"),
        ({"interval": 0}, "interval must be more than 0 seconds"),
        ({"timeout": -1}, "timeout must not be negative"),
        ({"table_rows": {"public.a": "many"}}, "table_rows: public.a is 'many', not a number of rows"),
        ({"progress_file": "/nonexistent-dir/p.json"}, "progress_file directory /nonexistent-dir does not exist"),
    ],
)
def test_bad_arguments_fail_before_any_look(run_module: RunModule, server, over: dict[str, Any], message: str) -> None:
    fake = server(_doc())
    with pytest.raises(ModuleFailed) as exc:
        run_module(msw.main, _args(**over))
    assert message in exc.value.result["msg"]
    assert fake.calls == []


TABLE_ROWS = {"public.a": 41_000, "public.b": 60_000, "public.c": 150_000, "public.d": 149_000, "public.e": 100_000}


def test_progress_file_for_async_progress(
    run_module: RunModule, server, written: list[dict[str, Any]], tmp_path: Path
) -> None:
    fake = server(
        # t=0: a was copied before the wait began (done, not speed)
        _doc(("public.a", "r", None), ("public.b", "d", 0), ("public.c", "i", None), ("public.d", "i", None),
             ("public.e", "i", None)),
        # t=5
        _doc(("public.a", "r", None), ("public.b", "d", 40_000), ("public.c", "i", None), ("public.d", "i", None),
             ("public.e", "i", None)),
        # t=10
        _doc(("public.a", "r", None), ("public.b", "r", None), ("public.c", "d", 22_000), ("public.d", "i", None),
             ("public.e", "i", None)),
        # t=15
        _doc(("public.a", "r", None), ("public.b", "r", None), ("public.c", "r", None), ("public.d", "r", None),
             ("public.e", "r", None)),
    )  # fmt: skip
    progress = tmp_path / "progress.json"
    res = run_module(msw.main, _args(table_rows=TABLE_ROWS, interval=5, progress_file=str(progress)))
    assert (res["ready"], res["rows_done"], res["rows_total"], res["seconds"]) == (5, 500_000, 500_000, 15.0)
    assert fake.sleeps == [5, 5, 5]

    # The phase, one record per look, then the end.
    lines = [progress_line(record) for record in written]
    assert lines == [
        "copy   0 of 500,000 rows (0%), 0 of 5 tables, time left unknown",
        "copy   41,000 of 500,000 rows (8%), 1 of 5 tables, time left unknown",
        "copy   81,000 of 500,000 rows (16%), 1 of 5 tables, 8,000 rows/s, 53 s left",
        "copy   123,000 of 500,000 rows (24%), 2 of 5 tables, 8,200 rows/s, 46 s left",
        "copy   500,000 of 500,000 rows (100%), 5 of 5 tables, 30,600 rows/s, 0 s left",
        "copy   500,000 of 500,000 rows (100%), 5 of 5 tables, 30,600 rows/s, done",
    ]
    assert {(r["count_unit"], r["item_unit"], r["phase"]) for r in written} == {("rows", "table", "copy")}
    # As async_progress prints the look at t=10.
    assert next_line(written[3], "initial copy", "pi") == (
        "[pi] initial copy: copy   123,000 of 500,000 rows (24%), 2 of 5 tables, 8,200 rows/s, 46 s left"
    )
    assert json.loads(progress.read_text()) == written[-1]
    assert stat.S_IMODE(progress.stat().st_mode) == 0o600


def test_progress_without_row_estimates_counts_rows_so_far(
    run_module: RunModule, server, written: list[dict[str, Any]], tmp_path: Path
) -> None:
    server(
        _doc(("public.a", "r", None), ("public.b", "d", 0)),
        _doc(("public.a", "r", None), ("public.b", "d", 5_000)),
        _doc(("public.a", "r", None), ("public.b", "r", None)),
    )
    run_module(msw.main, _args(interval=2, progress_file=str(tmp_path / "p.json")))
    assert progress_line(written[2]) == "copy   1 of 2 tables, 5,000 rows so far, 2,500 rows/s, 2 s left"
    assert written[2]["bytes_total"] is None


def test_timeout_leaves_the_progress_file_not_done(
    run_module: RunModule, server, written: list[dict[str, Any]], tmp_path: Path
) -> None:
    server(_doc(("public.a", "d", 10)))
    with pytest.raises(ModuleFailed, match="timeout"):
        run_module(msw.main, _args(timeout=2, progress_file=str(tmp_path / "p.json")))
    assert written[-1]["done"] is False


# -- against a real PostgreSQL ------------------------------------------------------------------------------------

IMAGE = "local/postgres:17-pgvector"
# The publisher's tables; the subscriber gets the same definitions, empty.
SCHEMA_SQL = """
CREATE TABLE items (id int PRIMARY KEY, pad text);
CREATE TABLE tags (id int PRIMARY KEY);
CREATE SCHEMA "Odd";
CREATE TABLE "Odd"."Case" (id int PRIMARY KEY);
"""
SOURCE_ROWS = {"public.items": 200_000, "public.tags": 50, "Odd.Case": 0}
SOURCE_SQL = """
INSERT INTO items SELECT g, repeat('x', 100) FROM generate_series(1, 200000) g;
INSERT INTO tags SELECT generate_series(1, 50);
CREATE PUBLICATION pub FOR ALL TABLES;
-- Made here, not by CREATE SUBSCRIPTION: a subscription to a database of its own server cannot create its slot.
SELECT pg_create_logical_replication_slot('sub', 'pgoutput');
"""


def _docker_image_present() -> bool:
    if not shutil.which("docker"):
        return False
    return subprocess.run(["docker", "image", "inspect", IMAGE], capture_output=True, check=False).returncode == 0


@pytest.fixture(scope="module")
def subscriber():
    """A PostgreSQL 17 server with wal_level=logical, a database src publishing three tables and an empty
    database dst with the same tables; yields the psql command (without a database) and a function that creates
    the subscription sub in dst."""
    if not _docker_image_present():
        pytest.skip(f"needs a Docker engine with {IMAGE} (make setup)")
    name = f"pidock-unit-subwait-{uuid.uuid4().hex[:8]}"
    subprocess.run(
        ["docker", "run", "-d", "--rm", "--name", name, "-e", "POSTGRES_PASSWORD=unit", "-e", "POSTGRES_USER=unit",
         "-e", "POSTGRES_DB=src", IMAGE, "postgres", "-c", "wal_level=logical"],
        check=True,
        capture_output=True,
    )  # fmt: skip
    psql = ["docker", "exec", "-i", name, "psql", "-X", "-U", "unit"]

    def run(database: str, sql: str) -> None:
        subprocess.run(
            [*psql, "-q", "-v", "ON_ERROR_STOP=1", "-d", database],
            input=sql,
            text=True,
            check=True,
            capture_output=True,
        )

    def subscribe() -> None:
        run(
            "dst",
            "CREATE SUBSCRIPTION sub CONNECTION 'host=/var/run/postgresql dbname=src user=unit' PUBLICATION pub"
            " WITH (create_slot = false, slot_name = 'sub')",
        )

    try:
        for _attempt in range(240):  # the entrypoint initialises with a temporary server first, see its log
            logs = subprocess.run(["docker", "logs", name], capture_output=True, text=True, check=False)
            if (
                "database initialised" in logs.stdout + logs.stderr
                and subprocess.run(["docker", "exec", name, "pg_isready", "-q", "-U", "unit"], check=False).returncode
                == 0
            ):
                break
            time.sleep(0.5)
        run("src", SCHEMA_SQL + SOURCE_SQL)
        run("postgres", "CREATE DATABASE dst")
        run("dst", SCHEMA_SQL)
        yield psql, subscribe
    finally:
        subprocess.run(["docker", "rm", "-f", "-v", name], capture_output=True, check=False)


def test_a_real_subscription_between_two_databases(run_module: RunModule, subscriber, tmp_path: Path) -> None:
    psql, subscribe = subscriber
    args = {"psql": psql, "database": "dst", "subscription": "sub", "table_rows": SOURCE_ROWS, "interval": 0.2}
    with pytest.raises(ModuleFailed, match="subscription sub does not exist in database dst"):
        run_module(msw.main, args)
    with pytest.raises(ModuleFailed, match="subscription sub does not exist in database src"):
        run_module(msw.main, {**args, "database": "src"})  # a subscription belongs to one database

    subscribe()
    looked = run_module(msw.main, args, check_mode=True)
    assert looked["tables"] == 3 and set(looked["states"]) == set(SOURCE_ROWS)
    assert looked["rows_total"] == 200_050 and looked["sync_errors"] == 0

    progress = tmp_path / "copy.json"
    res = run_module(msw.main, {**args, "timeout": 120, "progress_file": str(progress)})
    assert res["states"] == dict.fromkeys(SOURCE_ROWS, "r")
    assert (res["tables"], res["ready"], res["rows_done"], res["rows_total"]) == (3, 3, 200_050, 200_050)
    assert res["sync_errors"] == 0
    line = progress_line(json.loads(progress.read_text()))
    assert line.startswith("copy   200,050 of 200,050 rows (100%), 3 of 3 tables, ") and line.endswith(", done")
    assert os.stat(progress).st_mode & 0o777 == 0o600
