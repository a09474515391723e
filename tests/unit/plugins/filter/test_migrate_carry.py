"""migrate_inverse_id_map / migrate_carry_db_sql / migrate_carry_report: the rollback's decisions."""

from __future__ import annotations

from typing import Any

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.pidock.stack.plugins.filter import migrate_carry as f

INVERSE_CASES = [
    ("presync's catch-all", {"*": "1000"}, 998, {"*": 998}),
    ("empty map", {}, "998", {"*": 998}),
    ("none", None, 0, {"*": 0}),
    ("explicit ids inverted", {"998": 1000, "0": 0, "*": 1000}, 998, {"1000": 998, "0": 0, "*": 998}),
    ("integer keys", {998: "1000"}, 998, {"1000": 998, "*": 998}),
    ("key with blanks", {" 5 ": 7}, 1, {"7": 5, "*": 1}),
]


@pytest.mark.parametrize(("name", "forward", "owner", "expected"), INVERSE_CASES, ids=[c[0] for c in INVERSE_CASES])
def test_inverse_id_map(name: str, forward: Any, owner: Any, expected: dict[str, int]) -> None:
    assert f.migrate_inverse_id_map(forward, owner) == expected


INVERSE_REFUSED = [
    ("not one-to-one", {"998": 1000, "999": 1000}, 1, "both map to 1000"),
    ("value not a number", {"998": "app"}, 1, "not a number"),
    ("key not a number", {"app": 1000}, 1, "is not a number or '*'"),
    ("owner not a number", {"*": 1000}, "inventory", "the owner 'inventory' is not a number"),
    ("owner missing", {"*": 1000}, None, "is not a number"),
]


@pytest.mark.parametrize(("name", "forward", "owner", "message"), INVERSE_REFUSED, ids=[c[0] for c in INVERSE_REFUSED])
def test_inverse_id_map_refuses(name: str, forward: Any, owner: Any, message: str) -> None:
    with pytest.raises(AnsibleFilterError, match=message.replace("*", r"\*")):
        f.migrate_inverse_id_map(forward, owner)


RENAME = 'ALTER DATABASE :"db" RENAME TO :"keep";'
DROP_DB = 'DROP DATABASE IF EXISTS :"db" WITH (FORCE);'
DROP_KEEP = 'DROP DATABASE IF EXISTS :"keep" WITH (FORCE);'
BACK = 'ALTER DATABASE :"keep" RENAME TO :"db";'

DB_CASES = [
    # step, databases present now, SQL to run
    ("first run moves the freeze-time database aside", "prepare", ["db"], [RENAME]),
    ("re-run after a death mid-restore drops the partial copy", "prepare", ["db", "keep"], [DROP_DB]),
    ("re-run after a death between rename and restore", "prepare", ["keep"], []),
    ("undo after a failed restore", "undo", ["db", "keep"], [DROP_DB, BACK]),
    ("undo when the restore had not started", "undo", ["keep"], [DROP_DB, BACK]),
    ("undo before anything was moved", "undo", ["db"], []),
    ("undo with nothing at all", "undo", [], []),
    ("finish drops the freeze-time database", "finish", ["db", "keep"], [DROP_KEEP]),
    ("finish again (already dropped)", "finish", ["db"], []),
    ("finish never drops the only database", "finish", ["keep"], []),
]


@pytest.mark.parametrize(("name", "step", "present", "expected"), DB_CASES, ids=[c[0] for c in DB_CASES])
def test_carry_db_sql(name: str, step: str, present: list[str], expected: list[str]) -> None:
    assert f.migrate_carry_db_sql(present, step) == expected


@pytest.mark.parametrize(
    ("present", "step", "message"),
    [
        ([], "prepare", "no database to roll back to"),
        (["db"], "swap", "step must be one of prepare, undo, finish"),
        (["db", "other"], "prepare", "unexpected database names"),
    ],
)
def test_carry_db_sql_refuses(present: list[str], step: str, message: str) -> None:
    with pytest.raises(AnsibleFilterError, match=message):
        f.migrate_carry_db_sql(present, step)


def test_carry_db_sql_with_real_names() -> None:
    assert f.migrate_carry_db_sql(["inventory_db"], "prepare", "inventory_db", "inventory_db_before_rollback") == [
        RENAME
    ]


CHANGES = {
    "changed": True,
    "tables": [
        {"table": "public.images", "change": "changed", "rows_before": 300, "rows_after": 300},
        {"table": "public.items", "change": "changed", "rows_before": 11989, "rows_after": 11990},
        {"table": "public.notes", "change": "added", "rows_before": 0, "rows_after": 2},
        {"table": "public.old", "change": "dropped", "rows_before": 5, "rows_after": 0},
    ],
    "sequences": [{"sequence": "public.items_id_seq", "before": 12239, "after": 12241}],
}
TREES = [
    {"item": {"name": "images"}, "copy": {"files_copied": 2, "bytes_copied": 4096, "removed": 1, "links": 0}},
    {
        "item": [{"name": "ml_cache"}, {"stat": {}}],
        "copy": {"files_copied": 0, "bytes_copied": 0, "removed": 0, "links": 0},
    },
]

REPORT_CASES = [
    (
        "rows, files, bytes and downtime",
        CHANGES,
        TREES,
        ("2026-11-27T20:00:00.000000Z", "2026-11-27T20:00:41.250000Z"),
        {"rows_added": 3, "rows_removed": 5, "files": 2, "bytes": 4096, "removed": 1, "downtime_seconds": 41.2},
    ),
    (
        "nothing written since the cutover",
        {"changed": False, "tables": [], "sequences": []},
        [{"item": {"name": "images"}, "copy": {}}],
        ("2026-11-27T20:00:00.000000Z", "2026-11-27T20:00:10.000000Z"),
        {"rows_added": 0, "rows_removed": 0, "files": 0, "bytes": 0, "removed": 0, "downtime_seconds": 10.0},
    ),
    (
        "no times (discard or check mode)",
        CHANGES,
        [],
        (None, None),
        {"rows_added": 3, "files": 0, "downtime_seconds": None},
    ),
    (
        "unparsable time",
        {},
        None,
        ("yesterday", "2026-11-27T20:00:10.000000Z"),
        {"rows_added": 0, "downtime_seconds": None},
    ),
]


@pytest.mark.parametrize(
    ("name", "changes", "trees", "times", "expected"), REPORT_CASES, ids=[c[0] for c in REPORT_CASES]
)
def test_carry_report(name: str, changes: Any, trees: Any, times: tuple[Any, Any], expected: dict[str, Any]) -> None:
    report = f.migrate_carry_report(changes, trees, *times)
    assert {k: report[k] for k in expected} == expected


def test_carry_report_lines_name_every_table_and_tree() -> None:
    lines = f.migrate_carry_report(CHANGES, TREES, "2026-11-27T20:00:00.000000Z", "2026-11-27T20:01:00.000000Z")[
        "lines"
    ]
    assert "public.items: changed, rows 11989 -> 11990" in lines
    assert "public.notes: added, rows 0 -> 2" in lines
    assert "images: 2 files (4096 bytes) copied, 0 links made, 1 removed" in lines
    assert "ml_cache: 0 files (0 bytes) copied, 0 links made, 0 removed" in lines
    assert lines[-1] == "downtime (stack frozen -> bare metal answering): 60.0 s"
    assert f.migrate_carry_report({}, [])["lines"] == ["database: no table changed since the cutover"]
