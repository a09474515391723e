"""Unit tests for plugins/module_utils/_progress.py: the progress meter and its one-line rendering."""

from __future__ import annotations

import json
import os
import stat
import threading
from pathlib import Path
from typing import Any

import pytest
from ansible_collections.pidock.stack.plugins.module_utils import _progress as p

MiB = 1024 * 1024
GiB = 1024 * MiB


class FakeClock:
    """A clock that moves only when told to, and counts how often it was read."""

    def __init__(self, now: float = 100.0) -> None:
        self.now = now
        self.reads = 0

    def __call__(self) -> float:
        self.reads += 1
        return self.now


def _meter(tmp_path: Path, clock: FakeClock, interval: float = 1.0) -> p.ProgressMeter:
    return p.ProgressMeter(str(tmp_path / "progress.json"), interval=interval, clock=clock)


# (steps, writes after each step): a step is (seconds the clock moves, bytes advanced). The phase write comes first.
THROTTLE = [
    pytest.param([(0.1, MiB), (0.5, MiB), (0.39, MiB)], [1, 1, 1], id="all-within-the-interval"),
    pytest.param([(1.0, MiB), (0.5, MiB), (0.5, MiB)], [2, 2, 3], id="one-per-interval"),
    pytest.param([(5.0, MiB), (0.0, MiB), (0.0, MiB)], [2, 2, 2], id="a-long-pause-writes-once"),
    pytest.param([(0.25, MiB)] * 9, [1, 1, 1, 2, 2, 2, 2, 3, 3], id="steady-small-steps"),
]


@pytest.mark.parametrize(("steps", "writes"), THROTTLE)
def test_writes_at_most_once_per_interval(
    tmp_path: Path, written: list[dict[str, Any]], steps: list[tuple[float, int]], writes: list[int]
) -> None:
    clock = FakeClock()
    meter = _meter(tmp_path, clock)
    meter.phase("copy", 10, 10 * MiB)
    got = []
    for seconds, nbytes in steps:
        clock.now += seconds
        meter.advance(nbytes=nbytes)
        got.append(len(written))
    assert got == writes


def test_phase_change_and_finish_always_write(tmp_path: Path, written: list[dict[str, Any]]) -> None:
    clock = FakeClock()
    meter = _meter(tmp_path, clock, interval=60)
    meter.phase("scan")
    meter.advance(files=1, nbytes=MiB, read=False)
    meter.phase("copy", 1, MiB)
    meter.advance(files=1, nbytes=MiB)
    meter.finish()
    assert [(r["phase"], r["done"]) for r in written] == [("scan", False), ("copy", False), ("copy", True)]
    assert written[-1] | {"elapsed": 0} == {
        "phase": "copy",
        "files_done": 1,
        "files_total": 1,
        "bytes_done": MiB,
        "bytes_total": MiB,
        "elapsed": 0,
        "rate": None,  # no time passed on the fake clock
        "eta": 0.0,
        "done": True,
    }
    assert json.loads((tmp_path / "progress.json").read_text()) == written[-1]


def test_small_steps_read_the_clock_only_now_and_then(tmp_path: Path, written: list[dict[str, Any]]) -> None:
    clock = FakeClock()
    meter = _meter(tmp_path, clock, interval=0)
    meter.phase("scan")
    reads = clock.reads
    for _step in range(640):
        meter.advance(files=1, nbytes=100, read=False)
    assert clock.reads - reads == 640 // p._CHECK_CALLS
    meter.finish()
    assert written[-1]["files_done"] == 640
    assert written[-1]["bytes_done"] == 64000


def test_every_chunk_of_a_mebibyte_reads_the_clock(tmp_path: Path, written: list[dict[str, Any]]) -> None:
    clock = FakeClock()
    meter = _meter(tmp_path, clock, interval=0)
    meter.phase("hash", 1, 4 * MiB)
    for _step in range(4):
        clock.now += 0.5
        meter.advance(nbytes=MiB)
    assert [r["bytes_done"] for r in written] == [0, MiB, 2 * MiB, 3 * MiB, 4 * MiB]


def test_no_path_is_a_no_op(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_clock() -> float:
        raise AssertionError("the clock was read")

    monkeypatch.chdir(tmp_path)
    meter = p.ProgressMeter(None, interval=0, clock=no_clock)
    meter.phase("copy", 1, MiB)
    for _step in range(1000):
        meter.advance(files=1, nbytes=MiB)
    meter.finish()
    assert list(tmp_path.iterdir()) == []


def test_file_is_private_and_replaced_atomically(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "umask", os.umask)  # restored whatever happens
    old = os.umask(0)
    try:
        clock = FakeClock()
        meter = _meter(tmp_path, clock, interval=0)
        meter.phase("copy", 2, 2 * MiB)
        first = (tmp_path / "progress.json").stat()
        clock.now += 1
        meter.advance(files=1, nbytes=MiB)
    finally:
        os.umask(old)
    path = tmp_path / "progress.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.stat().st_ino != first.st_ino  # a new file renamed over the old one, never rewritten in place
    assert [f.name for f in tmp_path.iterdir()] == ["progress.json"]  # no temporary file left
    assert json.loads(path.read_text())["bytes_done"] == MiB


def test_a_failed_write_never_fails_the_work(tmp_path: Path) -> None:
    meter = p.ProgressMeter(str(tmp_path / "missing" / "progress.json"), interval=0, clock=FakeClock())
    meter.phase("copy", 1, MiB)
    meter.advance(files=1, nbytes=MiB)
    meter.finish()
    assert not (tmp_path / "missing").exists()


# (phase totals, steps of (seconds, files, bytes, read)), expected (rate, eta) after the steps
RATES = [
    pytest.param((10, 100 * MiB), [(2.0, 2, 20 * MiB, True)], (10 * MiB, 8.0), id="bytes-left-at-the-rate"),
    pytest.param((10, 100 * MiB), [(0.0, 0, 0, True)], (None, None), id="nothing-yet"),
    pytest.param((10, 100 * MiB), [(3.0, 0, 0, True)], (None, None), id="time-but-no-bytes"),
    pytest.param(
        (10, 100 * MiB),
        [(0.0, 5, 50 * MiB, False), (1.0, 1, 10 * MiB, True)],
        (10 * MiB, 4.0),
        id="cache-hits-count-as-done-not-as-rate",
    ),
    pytest.param((10, 100 * MiB), [(4.0, 10, 100 * MiB, True)], (25 * MiB, 0.0), id="all-done"),
    pytest.param((4, 0), [(2.0, 1, 0, True)], (None, 6.0), id="empty-files-by-file-rate"),
    pytest.param((None, None), [(2.0, 100, 5 * MiB, False)], (None, None), id="scan-has-no-totals"),
    pytest.param((1, MiB), [(1.0, 0, 2 * MiB, True)], (2 * MiB, 0.0), id="file-grew-while-read"),
]


@pytest.mark.parametrize(("totals", "steps", "expected"), RATES)
def test_rate_and_eta(
    tmp_path: Path,
    written: list[dict[str, Any]],
    totals: tuple[int | None, int | None],
    steps: list[tuple[float, int, int, bool]],
    expected: tuple[float | None, float | None],
) -> None:
    clock = FakeClock()
    meter = _meter(tmp_path, clock, interval=0)
    meter.phase("copy", *totals)
    for seconds, files, nbytes, read in steps:
        clock.now += seconds
        meter.advance(files=files, nbytes=nbytes, read=read)
    record = meter.record()
    assert (record["rate"], record["eta"]) == expected
    assert record["elapsed"] == sum(s[0] for s in steps)


def test_threads_lose_no_count(tmp_path: Path) -> None:
    meter = p.ProgressMeter(str(tmp_path / "progress.json"), interval=0)
    meter.phase("hash", 8 * 500, 8 * 500 * 1000)

    def work() -> None:
        for _step in range(500):
            meter.advance(files=1, nbytes=1000)

    threads = [threading.Thread(target=work) for _thread in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    meter.finish()
    final = json.loads((tmp_path / "progress.json").read_text())
    assert (final["files_done"], final["bytes_done"], final["done"]) == (4000, 4_000_000, True)


@pytest.mark.parametrize(
    ("nbytes", "text"),
    [
        (0, "0 B"),
        (1023, "1023 B"),
        (1024, "1.0 KiB"),
        (1536, "1.5 KiB"),
        (99.94 * 1024, "99.9 KiB"),
        (99.96 * 1024, "100 KiB"),
        (412 * MiB, "412 MiB"),
        (48.2 * MiB, "48.2 MiB"),
        (int(1.1 * GiB), "1.1 GiB"),
        (3000 * GiB, "3000 GiB"),
    ],
)
def test_size_text(nbytes: float, text: str) -> None:
    assert p.size_text(nbytes) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0 s"),
        (0.2, "1 s"),
        (15, "15 s"),
        (59.5, "1 min 00 s"),
        (250, "4 min 10 s"),
        (3599, "59 min 59 s"),
        (3600, "1 h 00 min"),
        (3720, "1 h 02 min"),
        (26 * 3600 + 5 * 60, "26 h 05 min"),
    ],
)
def test_duration_text(seconds: float, text: str) -> None:
    assert p.duration_text(seconds) == text


def _rec(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "phase": "copy",
        "files_done": 3120,
        "files_total": 8000,
        "bytes_done": 412 * MiB,
        "bytes_total": int(1.1 * GiB),
        "elapsed": 8.5,
        "rate": 48.2 * MiB,
        "eta": 15,
        "done": False,
    }
    return {**base, **fields}


LINES = [
    (_rec(), "copy   412 MiB of 1.1 GiB (36%), 3,120 of 8,000 files, 48.2 MiB/s, 15 s left"),
    (_rec(eta=250), "copy   412 MiB of 1.1 GiB (36%), 3,120 of 8,000 files, 48.2 MiB/s, 4 min 10 s left"),
    (_rec(eta=3720), "copy   412 MiB of 1.1 GiB (36%), 3,120 of 8,000 files, 48.2 MiB/s, 1 h 02 min left"),
    (
        _rec(eta=None, rate=None, bytes_done=0, files_done=0),
        "copy   0 B of 1.1 GiB (0%), 0 of 8,000 files, time left unknown",
    ),
    (
        _rec(phase="verify", bytes_done=int(1.1 * GiB), files_done=8000, eta=0, done=True),
        "verify 1.1 GiB of 1.1 GiB (100%), 8,000 of 8,000 files, 48.2 MiB/s, done",
    ),
    (
        _rec(phase="hash", files_done=1, files_total=1, bytes_done=512, bytes_total=512, rate=1024.0, eta=0),
        "hash   512 B of 512 B (100%), 1 of 1 file, 1.0 KiB/s, 0 s left",
    ),
    (
        _rec(phase="scan", files_total=None, bytes_total=None, rate=None, eta=None),
        "scan   3,120 files, 412 MiB so far, time left unknown",
    ),
    (
        _rec(phase="scan", files_done=1, files_total=None, bytes_done=0, bytes_total=None, rate=None, eta=None),
        "scan   1 file, time left unknown",
    ),
    (
        {"phase": "sync", "files_done": 0, "bytes_done": 0, "elapsed": 12.2, "eta": None, "done": False},
        "sync   13 s so far, time left unknown",
    ),
    (
        _rec(bytes_done=2 * GiB, bytes_total=GiB, rate=None, eta=0),
        "copy   2.0 GiB of 1.0 GiB (100%), 3,120 of 8,000 files, 0 s left",  # a file grew while it was copied
    ),
    (
        _rec(files_done=2, files_total=4, bytes_done=0, bytes_total=0, rate=None, eta=2),
        "copy   0 B of 0 B (50%), 2 of 4 files, 2 s left",  # empty files: the percentage goes by files
    ),
    ({}, "work   time left unknown"),
    (
        {"phase": "copy", "bytes_done": "x", "bytes_total": -1, "files_done": True, "rate": float("nan"), "eta": [1]},
        "copy   time left unknown",  # garbage from a host: what is not a count is left out
    ),
]


@pytest.mark.parametrize(("record", "line"), LINES)
def test_progress_line(record: dict[str, Any], line: str) -> None:
    assert p.progress_line(record) == line


def test_progress_line_of_a_written_record(tmp_path: Path) -> None:
    clock = FakeClock()
    meter = _meter(tmp_path, clock, interval=0)
    meter.phase("copy", 8000, int(1.1 * GiB))
    clock.now += 8.5
    meter.advance(files=3120, nbytes=412 * MiB)
    record = json.loads((tmp_path / "progress.json").read_text())
    assert p.progress_line(record) == "copy   412 MiB of 1.1 GiB (36%), 3,120 of 8,000 files, 48.5 MiB/s, 15 s left"


# -- counts other than bytes and files: count_unit and item_unit ---------------------------------------------


def _rows(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "phase": "copy",
        "files_done": 2,
        "files_total": 5,
        "bytes_done": 120_000,
        "bytes_total": 500_000,
        "elapsed": 10.0,
        "rate": 8200.0,
        "eta": 46,
        "done": False,
        "count_unit": "rows",
        "item_unit": "table",
    }
    return {**base, **fields}


UNIT_LINES = [
    pytest.param(_rows(), "copy   120,000 of 500,000 rows (24%), 2 of 5 tables, 8,200 rows/s, 46 s left", id="rows"),
    pytest.param(
        _rows(files_done=1, files_total=1, bytes_done=7, bytes_total=7, rate=2.5, eta=0),
        "copy   7 of 7 rows (100%), 1 of 1 table, 2.5 rows/s, 0 s left",
        id="one-table-and-a-slow-rate",
    ),
    pytest.param(
        _rows(bytes_done=500_000, files_done=5, done=True, eta=0),
        "copy   500,000 of 500,000 rows (100%), 5 of 5 tables, 8,200 rows/s, done",
        id="done",
    ),
    pytest.param(
        _rows(bytes_done=12_000, bytes_total=None, eta=None, rate=1234.4),
        "copy   2 of 5 tables, 12,000 rows so far, 1,234 rows/s, time left unknown",
        id="no-row-estimates",
    ),
    pytest.param(
        _rows(bytes_done=0, files_done=0, rate=None, eta=None),
        "copy   0 of 500,000 rows (0%), 0 of 5 tables, time left unknown",
        id="nothing-yet",
    ),
    pytest.param(
        _rows(bytes_done=600_000, rate=0.0, eta=0),
        "copy   600,000 of 500,000 rows (100%), 2 of 5 tables, 0 s left",  # estimates are estimates
        id="more-rows-than-estimated",
    ),
    pytest.param(
        _rows(files_total=None, files_done=1, bytes_total=None, bytes_done=0, rate=None, eta=None),
        "copy   1 table, time left unknown",
        id="one-table-no-total",
    ),
    pytest.param(
        _rec(item_unit="table"),
        "copy   412 MiB of 1.1 GiB (36%), 3,120 of 8,000 tables, 48.2 MiB/s, 15 s left",
        id="items-only",
    ),
    pytest.param(
        _rec(count_unit=5, item_unit=""),
        "copy   412 MiB of 1.1 GiB (36%), 3,120 of 8,000 files, 48.2 MiB/s, 15 s left",
        id="odd-units-are-bytes-and-files",
    ),
    pytest.param(
        _rec(count_unit="  ", item_unit=["table"]),
        "copy   412 MiB of 1.1 GiB (36%), 3,120 of 8,000 files, 48.2 MiB/s, 15 s left",
        id="blank-units-are-bytes-and-files",
    ),
]


@pytest.mark.parametrize(("record", "line"), UNIT_LINES)
def test_progress_line_with_units(record: dict[str, Any], line: str) -> None:
    assert p.progress_line(record) == line


@pytest.mark.parametrize(
    ("count", "text"),
    [
        (0, "0 rows"),
        (1, "1 rows"),  # the unit is written as given: a plural noun, like a unit symbol
        (2.5, "2.5 rows"),
        (9.96, "10.0 rows"),
        (10.4, "10 rows"),
        (8200.0, "8,200 rows"),
        (1_234_567.6, "1,234,568 rows"),
    ],
)
def test_count_text(count: float, text: str) -> None:
    assert p.count_text(count, "rows") == text


@pytest.mark.parametrize(
    ("units", "extra"),
    [
        ({}, {}),
        ({"count_unit": "rows"}, {"count_unit": "rows"}),
        ({"item_unit": "table"}, {"item_unit": "table"}),
        ({"count_unit": "rows", "item_unit": "table"}, {"count_unit": "rows", "item_unit": "table"}),
        ({"count_unit": "", "item_unit": None}, {}),
    ],
    ids=["none", "count", "item", "both", "empty-is-none"],
)
def test_units_are_in_the_record_only_when_set(
    tmp_path: Path, written: list[dict[str, Any]], units: dict[str, Any], extra: dict[str, Any]
) -> None:
    meter = _meter(tmp_path, FakeClock(), interval=0)
    meter.phase("copy", 5, 500, **units)
    keys = {"phase", "files_done", "files_total", "bytes_done", "bytes_total", "elapsed", "rate", "eta", "done"}
    assert set(written[-1]) == keys | set(extra)
    assert {key: written[-1][key] for key in extra} == extra
    meter.phase("verify", 1, 1)  # a later phase without units drops them
    assert set(written[-1]) == keys


# (phase totals, steps of (seconds, files_done, done, read)), expected (files_done, done, rate, eta) after the steps
SETS = [
    pytest.param((5, 500), [(10.0, 2, 120, None)], (2, 120, 12.0, 31.7), id="read-none-is-all-of-done"),
    pytest.param(
        (5, 500_000),
        [(0.0, 1, 41_000, 0), (10.0, 2, 123_000, 82_000)],
        (2, 123_000, 8200.0, 46.0),
        id="watch-began-late",
    ),
    pytest.param((5, 500), [(0.0, 1, 100, 0), (4.0, 1, 100, 0)], (1, 100, None, None), id="nothing-moved-since"),
    pytest.param(
        (5, 500), [(2.0, 1, 100, 100), (2.0, 1, 50, -50)], (1, 50, None, None), id="went-back-clamps-the-rate"
    ),
    pytest.param((5, 500), [(5.0, 5, 500, 500)], (5, 500, 100.0, 0.0), id="all-done"),
    pytest.param((4, None), [(2.0, 1, 3000, 3000)], (1, 3000, 1500.0, 6.0), id="no-row-total-eta-by-tables"),
    pytest.param(
        (5, 500), [(1.0, 1, 100, None), (1.0, 3, 300, None), (1.0, 2, 200, None)], (2, 200, 66.7, 4.5), id="absolute"
    ),
]


@pytest.mark.parametrize(("totals", "steps", "expected"), SETS)
def test_set_counters(
    tmp_path: Path,
    written: list[dict[str, Any]],
    totals: tuple[int | None, int | None],
    steps: list[tuple[float, int, int, int | None]],
    expected: tuple[int, int, float | None, float | None],
) -> None:
    clock = FakeClock()
    meter = _meter(tmp_path, clock, interval=0)
    meter.phase("copy", *totals, count_unit="rows", item_unit="table")
    for seconds, files, done, read in steps:
        clock.now += seconds
        meter.set(files, done, read=read)
    record = meter.record()
    assert (record["files_done"], record["bytes_done"], record["rate"], record["eta"]) == expected
    assert written[-1] == record  # with interval 0 every set writes


@pytest.mark.parametrize(
    ("steps", "writes"),
    [
        pytest.param([0.5, 0.4, 0.2, 0.5, 0.5], [1, 1, 2, 2, 3], id="one-per-interval"),
        pytest.param([3.0, 0.0, 1.0], [2, 2, 3], id="each-look-a-second-apart"),
    ],
)
def test_set_writes_at_most_once_per_interval(
    tmp_path: Path, written: list[dict[str, Any]], steps: list[float], writes: list[int]
) -> None:
    clock = FakeClock()
    meter = _meter(tmp_path, clock, interval=1.0)
    meter.phase("copy", 5, 500, count_unit="rows", item_unit="table")
    got = []
    for number, seconds in enumerate(steps, start=1):
        clock.now += seconds
        meter.set(0, number * 10)
        got.append(len(written))
    assert got == writes


def test_set_without_path_is_a_no_op() -> None:
    def no_clock() -> float:
        raise AssertionError("the clock was read")

    meter = p.ProgressMeter(None, interval=0, clock=no_clock)
    meter.phase("copy", 1, 1, count_unit="rows", item_unit="table")
    meter.set(1, 1)
    meter.finish()


def test_progress_line_of_a_written_record_with_units(tmp_path: Path) -> None:
    clock = FakeClock()
    meter = _meter(tmp_path, clock, interval=0)
    meter.phase("copy", 5, 500_000, count_unit="rows", item_unit="table")
    meter.set(1, 41_000, read=0)  # already copied when the watch began
    clock.now += 10
    meter.set(2, 123_000, read=82_000)
    record = json.loads((tmp_path / "progress.json").read_text())
    assert p.progress_line(record) == "copy   123,000 of 500,000 rows (24%), 2 of 5 tables, 8,200 rows/s, 46 s left"
