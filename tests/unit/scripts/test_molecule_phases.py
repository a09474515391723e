"""scripts/molecule_phases.py: seconds per Molecule action from stamped logs."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location(
    "molecule_phases", Path(__file__).resolve().parents[3] / "scripts" / "molecule_phases.py"
)
mp = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(mp)


def _log(*pairs):
    return [f"{t} {text}\n" for t, text in pairs]


CASES = [
    (
        "plain sequence, last action ends at the last stamped line",
        _log(
            ("10:00:00", "INFO     [s > create] Executing"),
            ("10:00:30", "INFO     [s > create] Executed: Successful"),
            ("10:00:30", "INFO     [s > converge] Executing"),
            ("10:02:00", "INFO     [s > destroy] Executing"),
            ("10:02:10", "INFO     Molecule executed 1 scenario (1 successful)"),
        ),
        {"create": 30, "converge": 90, "destroy": 10},
    ),
    (
        "an action that runs twice is summed",
        _log(
            ("10:00:00", "INFO     [s > verify] Executing"),
            ("10:00:20", "INFO     [s > side_effect] Executing"),
            ("10:00:50", "INFO     [s > verify] Executing"),
            ("10:01:00", "done"),
        ),
        {"verify": 30, "side_effect": 30},
    ),
    (
        "the clock passes midnight",
        _log(
            ("23:59:50", "INFO     [s > converge] Executing"),
            ("00:00:20", "INFO     [s > verify] Executing"),
            ("00:00:25", "end"),
        ),
        {"converge": 30, "verify": 5},
    ),
    (
        "unstamped lines and 'Executing Testinfra' lines are not actions",
        [
            "no stamp here\n",
            "10:00:00 INFO     [s > verify] Executing\n",
            "10:00:01 INFO     [s > verify] Executing Testinfra tests found in x/...\n",
            "10:00:09 end\n",
        ],
        {"verify": 9},
    ),
    ("an empty log", [], {}),
]


@pytest.mark.parametrize(("lines", "want"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_phases(lines, want):
    assert mp.phases(lines) == want


def test_table_puts_unknown_actions_under_other(tmp_path, capsys):
    (tmp_path / "a.log").write_text(
        "".join(
            _log(
                ("10:00:00", "[a > dependency] Executing"),
                ("10:00:04", "[a > converge] Executing"),
                ("10:00:10", "end"),
            )
        )
    )
    assert mp.main(["--dir", str(tmp_path), "a", "missing"]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("a ")).split()
    assert row[0] == "a" and row[4] == "6" and row[-1] == "4"
