# Copyright: (c) 2026, pidock.stack maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""rsync run for the tree_rsync module: its output streamed as it comes, read as itemized changes and as
``--info=progress2`` records that feed a ProgressMeter (the file pidock.stack.async_progress prints from).

Output records end with a newline (itemize lines) or a carriage return (progress records), so the stream is
split on both. Errors go to a temporary file, never a pipe nobody reads while stdout streams.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
import time
from typing import Any

from ansible_collections.pidock.stack.plugins.module_utils._progress import ProgressMeter

ITEMIZED_KEEP = 200
# "  1,234,567  45%   12.34MB/s    0:00:05 (xfr#12, to-chk=34/100)"; the parenthesis is absent on some lines.
_PROGRESS = re.compile(
    r"^\s*(?P<bytes>[\d,.]+)\s+(?P<pct>\d+)%\s+\S+\s+\d+:\d{2}:\d{2}"
    r"(?:\s+\(xfr#(?P<xfr>\d+),\s+(?:to|ir)-chk=(?P<left>\d+)/(?P<total>\d+)\))?"
)
# An itemize line: YXcstpoguax and the name, or "*deleting name"; the root directory's own time is not a change.
_ITEM = re.compile(r"^(?:[<>ch.*][fdLDS][.+?a-zA-Z ]{9,10} |\*deleting )")
_ROOT_TIME = re.compile(r"^\.d[.a-zA-Z ]{9,10} \./$")


def rsync_argv(params: dict[str, Any], check_mode: bool) -> list[str]:
    """The rsync command line: the caller's options, then what the module reads (changes, progress)."""
    argv = [params["executable"], *params["options"], "--itemize-changes", "--info=progress2", "--no-inc-recursive"]
    if check_mode:
        argv.append("--dry-run")
    if params.get("chown"):
        argv.append(f"--chown={params['chown']}")
    if params.get("rsh"):
        argv.append(f"--rsh={params['rsh']}")
    return [*argv, params["src"].rstrip("/") + "/", params["dest"].rstrip("/") + "/"]


def parse_progress(line: str) -> dict[str, int] | None:
    """One ``--info=progress2`` record: bytes so far, percent, and (when given) the entries left and in all."""
    found = _PROGRESS.match(line)
    if not found:
        return None
    record = {"bytes": int(re.sub(r"[,.]", "", found["bytes"])), "percent": int(found["pct"])}
    if found["total"] is not None:
        record["left"] = int(found["left"])
        record["total"] = int(found["total"])
    return record


def is_change(line: str) -> bool:
    """Whether an output line is an itemized change (not progress, not the root directory's time)."""
    return bool(_ITEM.match(line)) and not _ROOT_TIME.match(line)


def split_records(buffer: bytes) -> tuple[list[str], bytes]:
    """Complete records of rsync's output (ended by a newline or, for progress, a carriage return) and the rest."""
    parts = re.split(rb"[\r\n]", buffer)
    rest = parts.pop()
    return [p.decode("utf-8", "surrogateescape") for p in parts if p.strip()], rest


class Transfer:
    """What rsync reported so far, and the progress record kept from it."""

    def __init__(self, meter: ProgressMeter) -> None:
        self.meter = meter
        self.changes = 0
        self.itemized: list[str] = []
        self.bytes = 0
        self.files_total = 0

    def feed(self, line: str) -> None:
        progress = parse_progress(line)
        if progress is not None:
            self.bytes = progress["bytes"]
            if "total" in progress:
                self.files_total = progress["total"]
            bytes_total = progress["bytes"] * 100 // progress["percent"] if progress["percent"] else None
            self.meter.totals(self.files_total or None, bytes_total)
            done = self.files_total - progress.get("left", self.files_total) if self.files_total else 0
            self.meter.set(done, progress["bytes"])
            return
        if is_change(line):
            self.changes += 1
            if len(self.itemized) < ITEMIZED_KEEP:
                self.itemized.append(line)


def run(argv: list[str], meter: ProgressMeter) -> tuple[int, str, Transfer, float]:
    """Run rsync, feeding ``meter`` as it reports; (exit code, error output, what it reported, seconds).

    Raises OSError when the program cannot be started.
    """
    transfer = Transfer(meter)
    meter.phase("copy")
    started = time.monotonic()
    env = dict(os.environ, LC_ALL="C")
    with tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=errors, env=env)
        rest = b""
        if proc.stdout is not None:
            while True:
                chunk = os.read(proc.stdout.fileno(), 65536)
                if not chunk:
                    break
                lines, rest = split_records(rest + chunk)
                for line in lines:
                    transfer.feed(line)
            proc.stdout.close()
        if rest.strip():
            transfer.feed(rest.decode("utf-8", "surrogateescape"))
        rc = proc.wait()
        errors.seek(0)
        err = errors.read().decode("utf-8", "replace")
    meter.finish()
    return rc, err, transfer, round(time.monotonic() - started, 2)
