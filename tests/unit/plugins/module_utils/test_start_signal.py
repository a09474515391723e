"""wait_for_start: go, cancel, a word written late, and the timeout - on a fake clock."""

from __future__ import annotations

from pathlib import Path

import pytest
from ansible_collections.pidock.stack.plugins.module_utils._start_signal import (
    POLL_SECONDS,
    StartTimeout,
    wait_for_start,
)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps = 0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps += 1
        self.now += seconds


@pytest.mark.parametrize(
    ("content", "go"),
    [("go", True), ("go\n", True), ("cancel", False), ("GO", False), ("stop\n", False)],
)
def test_the_word_decides(tmp_path: Path, content: str, go: bool) -> None:
    start = tmp_path / "start"
    start.write_text(content)
    clock = Clock()
    assert wait_for_start(str(start), 5, clock, clock.sleep) == (go, 0.0)
    assert clock.sleeps == 0


@pytest.mark.parametrize("empty_first", [False, True], ids=["missing", "empty-then-written"])
def test_waits_until_the_word_appears(tmp_path: Path, empty_first: bool) -> None:
    start = tmp_path / "start"
    if empty_first:
        start.write_text("")
    clock = Clock()

    def sleep(seconds: float) -> None:
        clock.sleep(seconds)
        if clock.sleeps == 4:
            start.write_text("go")

    go, waited = wait_for_start(str(start), 5, clock, sleep)
    assert go is True and waited == pytest.approx(4 * POLL_SECONDS)


def test_times_out_naming_the_file(tmp_path: Path) -> None:
    clock = Clock()
    with pytest.raises(StartTimeout, match=r"start did not appear within 2 s"):
        wait_for_start(str(tmp_path / "start"), 2, clock, clock.sleep)
    assert clock.now - 100.0 == pytest.approx(2.0, abs=POLL_SECONDS)
