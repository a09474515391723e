# Copyright: (c) 2026, pidock.stack maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Progress of long work on a managed host, kept in a small JSON file that a poller reads.

A module that copies or hashes gigabytes (tree_manifest with its ``progress_file`` option) feeds a
ProgressMeter from its byte loops; the pidock.stack.async_progress action reads the file between two
async_status looks and prints one line per look, rendered by progress_line. The file is rewritten
atomically (_atomic.write_atomic: a temporary file in the same directory, mode 0600, renamed over
it) at most once per interval, and at every phase change and at the end.

A record holds: ``phase``; ``files_done``, ``files_total``, ``bytes_done``, ``bytes_total`` (the
totals None while unknown, as during a scan); ``elapsed`` (seconds since the phase began);
``rate`` (bytes read per second over the phase, None before any); ``eta`` (seconds left, None when
unknown); ``done`` (the work is over).

Work that is not measured in bytes and files (rows of tables, for migrate_subscription_wait) adds two
optional keys, present only when the phase set them: ``count_unit`` (a plural noun such as ``rows``: then
``bytes_done``, ``bytes_total`` and ``rate`` count that unit, shown as ``120,000 of 500,000 rows`` and
``8,200 rows/s``) and ``item_unit`` (a singular noun such as ``table``, shown as ``2 of 5 tables``, instead
of ``file``). The byte key names stay so that a reader that knows no units still finds its counts.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from ansible_collections.pidock.stack.plugins.module_utils._atomic import write_atomic

# The phases tree_manifest goes through: walking a tree, copying (hashing on the way), flushing the file
# systems, hashing a tree, reading a copy (or the compare_to tree) back to compare it.
PHASES = ("scan", "copy", "sync", "hash", "verify")

# advance() looks at the clock only every _CHECK_CALLS calls or once _CHECK_BYTES were added since it last
# looked: a walk calls it per entry, the byte loops per 1 MiB chunk.
_CHECK_CALLS = 64
_CHECK_BYTES = 1024 * 1024


class ProgressMeter:
    """Counts the work of one phase at a time and writes it to ``path`` at most once per ``interval`` seconds.

    With ``path`` None every method returns at once. Safe to call from several threads (the copy and
    hash pools): the counters are updated under a lock. Errors writing the file are ignored; progress
    never fails the work it reports on.
    """

    def __init__(
        self, path: str | bytes | None, interval: float = 1.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.path = None if path is None else os.fsdecode(path)
        self.interval = max(0.0, float(interval))
        self._clock = clock
        self._lock = threading.Lock()
        self._name = ""
        self._files_total: int | None = None
        self._bytes_total: int | None = None
        self._files = 0
        self._bytes = 0
        self._read = 0  # bytes actually read in this phase (the rate); cache hits and scans count as done only
        self._started = 0.0
        self._written = 0.0
        self._calls = 0
        self._pending = 0
        self._done = False
        self._count_unit: str | None = None
        self._item_unit: str | None = None

    def phase(
        self,
        name: str,
        files_total: int | None = None,
        bytes_total: int | None = None,
        *,
        count_unit: str | None = None,
        item_unit: str | None = None,
    ) -> None:
        """Start phase ``name`` (one of PHASES, or the caller's own) with its totals (None: unknown) and write the
        file. ``count_unit`` and ``item_unit`` (see the module docstring) name what the phase counts when it is not
        bytes and files; None keeps bytes and files.
        """
        if self.path is None:
            return
        with self._lock:
            self._name = name
            self._files_total = files_total
            self._bytes_total = bytes_total
            self._count_unit = count_unit or None
            self._item_unit = item_unit or None
            self._files = self._bytes = self._read = self._calls = self._pending = 0
            self._done = False
            self._started = self._clock()
            self._write(self._started)

    def advance(self, files: int = 0, nbytes: int = 0, read: bool = True) -> None:
        """Count ``files`` finished and ``nbytes`` processed; ``read=False`` for work done without reading the
        bytes (a hash taken from a cache, a file seen by a scan), which counts as done but not towards the rate.
        """
        if self.path is None:
            return
        with self._lock:
            self._files += files
            self._bytes += nbytes
            if read:
                self._read += nbytes
            self._calls += 1
            self._pending += nbytes
            if self._calls < _CHECK_CALLS and self._pending < _CHECK_BYTES:
                return
            self._calls = self._pending = 0
            now = self._clock()
            if now - self._written >= self.interval:
                self._write(now)

    def totals(self, files_total: int | None, bytes_total: int | None) -> None:
        """Replace the phase's totals, for work whose size becomes known (or better estimated) as it goes."""
        if self.path is None:
            return
        with self._lock:
            self._files_total = files_total
            self._bytes_total = bytes_total

    def set(self, files_done: int, done: int, read: int | None = None) -> None:
        """Set the phase's counters to absolute values, for work that is looked at rather than done here (a
        server's progress read now and then). ``read`` is the part of ``done`` processed since the phase began,
        the rate's numerator (what was already done when the watch began is done, not speed); None: all of it.
        Writes the file when an interval has passed since the last write.
        """
        if self.path is None:
            return
        with self._lock:
            self._files = files_done
            self._bytes = done
            self._read = max(0, done if read is None else read)
            now = self._clock()
            if now - self._written >= self.interval:
                self._write(now)

    def finish(self) -> None:
        """Mark the work done and write the file (the last phase's counters stay)."""
        if self.path is None:
            return
        with self._lock:
            self._done = True
            self._write(self._clock())

    def record(self, now: float | None = None) -> dict[str, Any]:
        """The current state as written to the file."""
        now = self._clock() if now is None else now
        elapsed = max(0.0, now - self._started)
        rate = self._read / elapsed if elapsed > 0 and self._read > 0 else None
        record: dict[str, Any] = {
            "phase": self._name,
            "files_done": self._files,
            "files_total": self._files_total,
            "bytes_done": self._bytes,
            "bytes_total": self._bytes_total,
            "elapsed": round(elapsed, 3),
            "rate": None if rate is None else round(rate, 1),
            "eta": self._eta(elapsed, rate),
            "done": self._done,
        }
        # Only when set: a byte phase's record stays exactly what readers knew before units existed.
        if self._count_unit:
            record["count_unit"] = self._count_unit
        if self._item_unit:
            record["item_unit"] = self._item_unit
        return record

    def _eta(self, elapsed: float, rate: float | None) -> float | None:
        """Seconds left: bytes left at the phase's byte rate, or (no bytes to do) files left at its file rate."""
        if self._bytes_total:
            left, speed = self._bytes_total - self._bytes, rate
        elif self._files_total is not None:
            left = self._files_total - self._files
            speed = self._files / elapsed if elapsed > 0 and self._files > 0 else None
        else:
            return None
        if left <= 0:
            return 0.0
        return None if not speed else round(left / speed, 1)

    def _write(self, now: float) -> None:
        """Replace the file with the current record (the caller holds the lock); a failed write is skipped."""
        self._written = now
        if self.path is None:
            return
        with contextlib.suppress(OSError):
            write_atomic(self.path, json.dumps(self.record(now), sort_keys=True), 0o600)


def _number(value: Any) -> float | None:
    """A count from a record read back from a file: a non-negative number, else None (unknown)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) and number >= 0 else None


def size_text(nbytes: float) -> str:
    """Bytes as B, KiB, MiB or GiB: three significant digits from 10 up (``48.2 MiB``, ``412 MiB``)."""
    if nbytes < 1024:
        return f"{int(nbytes)} B"
    value, unit = nbytes / 1024, "KiB"
    for bigger in ("MiB", "GiB"):
        if value < 1024:
            break
        value, unit = value / 1024, bigger
    text = f"{value:.1f}"
    if float(text) >= 100:
        text = f"{value:.0f}"
    return f"{text} {unit}"


def duration_text(seconds: float) -> str:
    """Seconds, rounded up, as ``15 s``, ``4 min 05 s`` or ``1 h 02 min``."""
    total = max(0, math.ceil(seconds))
    if total < 60:
        return f"{total} s"
    if total < 3600:
        return f"{total // 60} min {total % 60:02d} s"
    return f"{total // 3600} h {total % 3600 // 60:02d} min"


def _percent(nbytes: float, bytes_total: float, files: float | None, files_total: float | None) -> int:
    """Percent done by bytes, or by files when there are no bytes to do (empty files), never above 100."""
    if bytes_total > 0:
        return min(100, math.floor(nbytes * 100 / bytes_total))
    if files_total:
        return min(100, math.floor((files or 0) * 100 / files_total))
    return 100


def _files_text(count: float, unit: str = "file") -> str:
    """A count of items with their singular unit, made plural unless it is one: ``1 file``, ``5 tables``."""
    return f"{int(count):,} {unit}{'' if int(count) == 1 else 's'}"


def _unit(value: Any) -> str | None:
    """A unit named in a record read back from a file: a non-empty string, else None (the default unit)."""
    return (value.strip() or None) if isinstance(value, str) else None


def count_text(count: float, unit: str) -> str:
    """A count in a plural unit, with thousands separators: ``120,000 rows``; below 10, one decimal (a slow
    rate, ``2.5 rows``), as a rounded-down zero would say nothing moves."""
    return f"{count:.1f} {unit}" if 0 < count < 10 and count != int(count) else f"{round(count):,} {unit}"


def progress_line(record: dict[str, Any]) -> str:
    """One human line for a progress record, e.g.
    ``copy   412 MiB of 1.1 GiB (37%), 3,120 of 8,000 files, 48.2 MiB/s, 15 s left``, or with units
    ``copy   120,000 of 500,000 rows (24%), 2 of 5 tables, 8,200 rows/s, 46 s left``.

    Tolerates records with missing or odd values (a file read back from a host): what is unknown is left out.
    """
    phase = str(record.get("phase") or "work")
    files, files_total = _number(record.get("files_done")), _number(record.get("files_total"))
    nbytes, bytes_total = _number(record.get("bytes_done")), _number(record.get("bytes_total"))
    rate, eta, elapsed = _number(record.get("rate")), _number(record.get("eta")), _number(record.get("elapsed"))
    count_unit, item_unit = _unit(record.get("count_unit")), _unit(record.get("item_unit")) or "file"
    parts: list[str] = []
    if bytes_total is not None:
        done = nbytes or 0.0
        percent = _percent(done, bytes_total, files, files_total)
        if count_unit:
            parts.append(f"{round(done):,} of {count_text(bytes_total, count_unit)} ({percent}%)")
        else:
            parts.append(f"{size_text(done)} of {size_text(bytes_total)} ({percent}%)")
    if files_total is not None:
        parts.append(f"{int(files or 0):,} of {_files_text(files_total, item_unit)}")
    elif files:
        parts.append(_files_text(files, item_unit))
    if bytes_total is None and nbytes:
        parts.append(f"{count_text(nbytes, count_unit) if count_unit else size_text(nbytes)} so far")
    if rate:
        parts.append(f"{count_text(rate, count_unit) if count_unit else size_text(rate)}/s")
    if not parts and elapsed is not None:
        parts.append(f"{duration_text(elapsed)} so far")
    if record.get("done") is True:
        parts.append("done")
    elif eta is not None:
        parts.append(f"{duration_text(eta)} left")
    else:
        parts.append("time left unknown")
    return f"{phase:<6} {', '.join(parts)}"
