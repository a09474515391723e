"""A clock for the tests of code that waits: it moves only when the code under test sleeps."""

from __future__ import annotations


class FakeTime:
    """``clock()`` reads the time; ``sleep(s)`` notes the request in ``sleeps`` and moves the time on by ``s``."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
