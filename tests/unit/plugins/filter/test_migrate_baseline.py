"""migrate_baseline_diff / migrate_baseline_changes: two baselines of files/baseline.sql compared."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from ansible_collections.pidock.stack.plugins.filter import migrate_plan as f


def _baseline() -> dict[str, Any]:
    return {
        "database": "inventory_db",
        "owner": "inventory",
        "encoding": "UTF8",
        "collate": "C.UTF-8",
        "ctype": "C.UTF-8",
        "settings": [{"role": "", "setting": "search_path=public"}],
        "extensions": [{"name": "vector", "version": "0.8.0"}],
        "tables": [
            {"table": "public.items", "rows": 12000, "checksum": "aa"},
            {"table": "public.images", "rows": 300, "checksum": "bb"},
        ],
        "sequences": [
            {"sequence": "public.items_id_seq", "last_value": 12000, "is_called": True, "behind": False},
        ],
        "probes": [{"table": "public.items", "column": "embedding", "first": [1, 2], "last": [9, 8]}],
    }


def _edit(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        *head, last = path.split(".")
        node: Any = doc
        for key in head:
            node = node[int(key)] if isinstance(node, list) else node[key]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return change


def _drop_table(doc: dict[str, Any]) -> None:
    doc["tables"].pop()


DIFF_CASES = [
    ("equal", lambda d: None, []),
    ("table missing", _drop_table, ["public.images is missing"]),
    (
        "table only in the target",
        lambda d: d["tables"].append({"table": "public.audit", "rows": 1, "checksum": "cc"}),
        ["public.audit is not in the source"],
    ),
    ("row count", _edit("tables.0.rows", 11999), ["public.items has 11999 rows, source 12000"]),
    ("checksum", _edit("tables.1.checksum", "zz"), ["public.images checksum differs"]),
    ("sequence position", _edit("sequences.0.last_value", 1), ["sequence public.items_id_seq is at 1, source 12000"]),
    ("sequence is_called", _edit("sequences.0.is_called", False), ["sequence public.items_id_seq is at 12000"]),
    (
        "sequence behind its column",
        _edit("sequences.0", {**_baseline()["sequences"][0], "behind": True, "column": "id", "column_max": 12001}),
        ["sequence public.items_id_seq (12000) is behind id (max 12001)"],
    ),
    ("probes", _edit("probes.0.first", [2, 1]), ["nearest-neighbour probes differ"]),
    ("settings", _edit("settings", []), ["database settings differ"]),
    ("owner", _edit("owner", "postgres"), ["database owner is postgres, source inventory"]),
    ("collate", _edit("collate", "en_US.UTF-8"), ["database collate is en_US.UTF-8, source C.UTF-8"]),
    ("extensions", _edit("extensions.0.version", "0.7.4"), ["extensions differ"]),
]


@pytest.mark.parametrize(("name", "change", "expected"), DIFF_CASES, ids=[c[0] for c in DIFF_CASES])
def test_baseline_diff(name: str, change: Callable[[dict[str, Any]], None], expected: list[str]) -> None:
    target = copy.deepcopy(_baseline())
    change(target)
    found = f.migrate_baseline_diff(_baseline(), target)
    assert len(found) == len(expected), found
    for fragment, message in zip(expected, found, strict=True):
        assert message.startswith(fragment), (name, found)


def test_settings_absent_equals_empty() -> None:
    source, target = _baseline(), _baseline()
    source["settings"], target["settings"] = None, []
    assert f.migrate_baseline_diff(source, target) == []


def test_changes_since_cutover() -> None:
    after = copy.deepcopy(_baseline())
    after["tables"][0].update(rows=12003, checksum="cc")
    after["tables"].append({"table": "public.audit", "rows": 4, "checksum": "dd"})
    after["sequences"][0]["last_value"] = 12003
    changes = f.migrate_baseline_changes(_baseline(), after)
    assert changes == {
        "changed": True,
        "tables": [
            {"table": "public.audit", "change": "added", "rows_before": 0, "rows_after": 4},
            {"table": "public.items", "change": "changed", "rows_before": 12000, "rows_after": 12003},
        ],
        "sequences": [{"sequence": "public.items_id_seq", "before": 12000, "after": 12003}],
    }
    assert f.migrate_baseline_changes(_baseline(), _baseline()) == {"changed": False, "tables": [], "sequences": []}


def test_an_update_that_keeps_the_row_count_is_a_change() -> None:
    after = copy.deepcopy(_baseline())
    after["tables"][1]["checksum"] = "updated"
    assert f.migrate_baseline_changes(_baseline(), after)["tables"] == [
        {"table": "public.images", "change": "changed", "rows_before": 300, "rows_after": 300}
    ]
