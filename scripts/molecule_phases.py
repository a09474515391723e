#!/usr/bin/env python3
"""Where each Molecule scenario spent its time, per action, from the runner's stamped logs.

scripts/molecule-all.sh prefixes every line of a scenario's log with the wall clock (HH:MM:SS).
Molecule announces each action with ``[<scenario> > <action>] Executing``; an action lasts until
the next announcement or until the log's last stamped line. An action that runs twice (``verify``
before and after ``side_effect``) is summed.

    python3 scripts/molecule_phases.py --dir .cache/molecule compose_deploy migrate
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

STAMP = re.compile(r"^(\d\d):(\d\d):(\d\d) ")
ACTION = re.compile(r"\[(?P<scenario>[\w.-]+) > (?P<action>[\w-]+)\] Executing\s*$")
# Columns in the order Molecule runs them; anything else is summed under "other".
COLUMNS = ("create", "prepare", "check", "converge", "idempotence", "side_effect", "verify", "destroy")


def _seconds(match: re.Match) -> int:
    h, m, s = (int(g) for g in match.groups())
    return h * 3600 + m * 60 + s


def phases(lines) -> dict[str, int]:
    """Seconds per action for one stamped log; the clock may pass midnight once or more."""
    totals: dict[str, int] = {}
    current = None
    start = last = None
    day = 0
    for line in lines:
        m = STAMP.match(line)
        if not m:
            continue
        t = _seconds(m) + day
        if last is not None and t < last:
            day += 86400
            t += 86400
        last = t
        a = ACTION.search(line)
        if a:
            if current is not None:
                totals[current] = totals.get(current, 0) + t - start
            current, start = a.group("action"), t
    if current is not None and last is not None:
        totals[current] = totals.get(current, 0) + last - start
    return totals


def table(rows: dict[str, dict[str, int]]) -> str:
    head = ["scenario", *COLUMNS, "other"]
    out = ["  ".join(f"{h:>11}" if i else f"{h:<22}" for i, h in enumerate(head))]
    for name, totals in rows.items():
        other = sum(v for k, v in totals.items() if k not in COLUMNS)
        cells = [str(totals[c]) if c in totals else "-" for c in COLUMNS] + [str(other) if other else "-"]
        out.append("  ".join([f"{name:<22}", *(f"{c:>11}" for c in cells)]))
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", default=".cache/molecule", help="directory of <scenario>.log files")
    ap.add_argument("scenarios", nargs="+")
    args = ap.parse_args(argv)
    rows = {}
    for s in args.scenarios:
        path = Path(args.dir) / f"{s}.log"
        if path.is_file():
            with path.open(encoding="utf-8", errors="replace") as fh:
                rows[s] = phases(fh)
    if not rows:
        return 0
    print("\nseconds per Molecule action (from the stamped logs)")
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
