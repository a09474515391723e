"""Unit tests for the way back by replication's filters: ready, started, and how a rollback carries."""

from __future__ import annotations

import pytest
from ansible_collections.pidock.stack.plugins.filter.migrate_reverse import (
    FilterModule,
    migrate_reverse_carry,
    migrate_reverse_ready,
    migrate_reverse_started,
)

_NAME = "pidock_reverse"


def test_filters_are_registered() -> None:
    assert set(FilterModule().filters()) == {
        "migrate_reverse_ready",
        "migrate_reverse_started",
        "migrate_reverse_carry",
    }


@pytest.mark.parametrize(
    ("enabled", "wal_level", "ready", "why"),
    [
        (True, "logical\n", True, ""),
        (True, "replica", False, "wal_level=replica"),
        (True, "", False, "wal_level=?"),
        (False, "logical", False, "migrate_reverse_replication is false"),
    ],
    ids=["logical", "replica", "unknown", "off"],
)
def test_ready(enabled, wal_level, ready, why) -> None:
    got = migrate_reverse_ready(enabled, wal_level)
    assert got["ready"] is ready
    assert why in got["why"] and (got["why"] == "") is ready


def _slot(active: bool = True, wal_status: str | None = "reserved", name: str = _NAME) -> dict:
    return {
        "name": name,
        "plugin": "pgoutput",
        "active": active,
        "confirmed_flush_lsn": "0/1",
        "wal_status": wal_status,
    }


@pytest.mark.parametrize(
    ("slots", "host", "state", "why"),
    [
        ([_slot()], "172.18.0.2", "streaming", ""),
        (
            [_slot(active=False)],
            "172.18.0.2",
            "not streaming",
            "did not stream from the stack's slot pidock_reverse at 172.18.0.2 within 60 s",
        ),
        ([_slot(name="other")], "172.18.0.2", "not streaming", "has no slot pidock_reverse"),
        ([], "172.18.0.2", "not streaming", "has no slot"),
        (None, "172.18.0.2", "not streaming", "has no slot"),
        ([_slot()], "", "not streaming", "no address"),
    ],
    ids=["active", "inactive", "other slot only", "no slots", "nothing read", "no address"],
)
def test_started(slots, host, state, why) -> None:
    got = migrate_reverse_started(slots, _NAME, host, 60)
    assert got["state"] == state and why in got["why"]
    assert got["host"] == host and got["slot"] == _NAME


_STREAMING = {"state": "streaming", "why": "", "host": "172.18.0.2", "slot": _NAME}
_SUB = {"name": _NAME, "enabled": True, "received_lsn": "0/5", "latest_end_lsn": "0/5", "tables_not_ready": 0}


@pytest.mark.parametrize(
    ("reverse", "subs", "slots", "drift", "method", "why"),
    [
        (_STREAMING, [_SUB], [_slot()], [], "replication", ""),
        (_STREAMING, [_SUB], [_slot(wal_status=None)], [], "replication", ""),
        (None, [_SUB], [_slot()], [], "dump", "started no way back"),
        ({"state": "none", "why": ""}, [_SUB], [_slot()], [], "dump", "started no way back"),
        ({"state": "not streaming", "why": "the bare metal did not stream"}, [], [], [], "dump", "did not stream"),
        (
            {"state": "ended", "ended": "2026-11-29T10:00:00.000000Z"},
            [],
            [],
            [],
            "dump",
            "ended (migrate_finish) at 2026",
        ),
        (
            _STREAMING,
            [_SUB],
            [_slot()],
            ["table public.items: column note was added"],
            "dump",
            "schema changed in the stack",
        ),
        (_STREAMING, [], [_slot()], [], "dump", "no subscription pidock_reverse"),
        (_STREAMING, [{**_SUB, "name": "other"}], [_slot()], [], "dump", "no subscription"),
        (_STREAMING, [{**_SUB, "enabled": False}], [_slot()], [], "dump", "is disabled"),
        (_STREAMING, [_SUB], [], [], "dump", "has no slot pidock_reverse"),
        (_STREAMING, [_SUB], [_slot(wal_status="lost")], [], "dump", "was lost"),
        (_STREAMING, [_SUB], [_slot(active=False)], [], "dump", "does not stream"),
        (_STREAMING, [{**_SUB, "received_lsn": None}], [_slot()], [], "dump", "does not stream"),
        # The checks come in this order: the schema before the objects.
        (_STREAMING, [], [], ["sequence public.x_seq was added"], "dump", "schema changed"),
    ],
    ids=[
        "streams",
        "old server without wal_status",
        "no record",
        "cutover without it",
        "never streamed",
        "finished",
        "ddl in the stack",
        "subscription gone",
        "other subscription only",
        "subscription disabled",
        "slot gone",
        "slot lost",
        "slot inactive",
        "worker not running",
        "schema first",
    ],
)
def test_carry(reverse, subs, slots, drift, method, why) -> None:
    got = migrate_reverse_carry(reverse, subs, slots, drift, _NAME)
    assert got["method"] == method
    assert why in got["why"] and (got["why"] == "") == (method == "replication")


def test_started_names_a_failed_subscribe() -> None:
    error = (
        'ERROR:  could not connect to the publisher: connection to server at "172.18.0.2", port 5432 failed\nDETAIL: x'
    )
    got = migrate_reverse_started([_slot()], _NAME, "172.18.0.2", 60, error)
    assert got["state"] == "not streaming"
    assert got["why"] == "the bare metal could not subscribe: " + error.splitlines()[0]
    assert migrate_reverse_started([_slot()], _NAME, "172.18.0.2", 60, "  \n")["state"] == "streaming"
    assert len(migrate_reverse_started([], _NAME, "h", 60, "x" * 1000)["why"]) < 400
