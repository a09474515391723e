"""tree_rsync: the command line, rsync's output read as changes and progress, and failures - against a fake
rsync that prints what a real one prints (itemize lines ended by newlines, progress2 records by carriage
returns)."""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path

import pytest
from ansible_collections.pidock.stack.plugins.module_utils._rsync import is_change, parse_progress, split_records
from ansible_collections.pidock.stack.plugins.modules import tree_rsync
from conftest import ModuleFailed

_FAKE = """#!{python}
import json, os, sys, time
with open({args!r}, "w") as out:
    json.dump(sys.argv[1:], out)
script = json.load(open({script!r}))
for piece in script["out"]:
    sys.stdout.write(piece)
    sys.stdout.flush()
    time.sleep(script.get("pause", 0))
sys.stderr.write(script.get("err", ""))
sys.exit(script.get("rc", 0))
"""

_PUSH = [
    ".d..t...... ./\n",
    "      1,048,576  25%    9.50MB/s    0:00:00 (xfr#1, to-chk=3/4)\r",
    ">f+++++++++ a.jpg\n",
    "      4,194,304 100%   10.00MB/s    0:00:00 (xfr#2, to-chk=0/4)\r",
    "hf+++++++++ b.jpg => a.jpg\n",
    "*deleting   old.jpg\n",
    "\n",
]


@pytest.fixture
def fake_rsync(tmp_path: Path):
    def make(out: list[str], rc: int = 0, err: str = "", pause: float = 0.0) -> tuple[str, Path]:
        script = tmp_path / "script.json"
        script.write_text(json.dumps({"out": out, "rc": rc, "err": err, "pause": pause}))
        args = tmp_path / "args.json"
        exe = tmp_path / "rsync"
        exe.write_text(_FAKE.format(python=sys.executable, args=str(args), script=str(script)))
        exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
        return str(exe), args

    return make


def _args(tmp_path: Path, exe: str, **extra) -> dict:
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    return {"src": str(src), "dest": "root@10.0.0.7:vol/_data", "executable": exe, **extra}


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            "      1,048,576  25%    9.50MB/s    0:00:00 (xfr#1, to-chk=3/4)",
            {"bytes": 1048576, "percent": 25, "left": 3, "total": 4},
        ),
        ("  0   0%    0.00kB/s    0:00:00 (xfr#0, ir-chk=10/20)", {"bytes": 0, "percent": 0, "left": 10, "total": 20}),
        ("  12.345.678  50%  1,00MB/s    0:00:12", {"bytes": 12345678, "percent": 50}),
        (">f+++++++++ a.jpg", None),
        ("sent 1,234 bytes  received 35 bytes", None),
    ],
    ids=["to-chk", "ir-chk", "no-counts", "itemize", "summary"],
)
def test_parse_progress(line, expected) -> None:
    assert parse_progress(line) == expected


@pytest.mark.parametrize(
    ("line", "change"),
    [
        (">f+++++++++ a.jpg", True),
        (">f.st...... a.jpg", True),
        ("cd+++++++++ 2026/", True),
        ("cL+++++++++ l -> b/f", True),
        ("hf+++++++++ b.jpg => a.jpg", True),
        ("*deleting   old.jpg", True),
        (".d..t...... ./", False),
        (".d..t...... sub/", True),
        ("      1,048,576  25%    9.50MB/s    0:00:00 (xfr#1, to-chk=3/4)", False),
        ("sending incremental file list", False),
    ],
)
def test_is_change(line, change) -> None:
    assert is_change(line) is change


def test_split_records_keeps_the_unfinished_rest() -> None:
    lines, rest = split_records(b"a\n  12  5%\r>f+++ x\n\npart")
    assert lines == ["a", "  12  5%", ">f+++ x"]
    assert rest == b"part"


def test_push_reports_changes_bytes_and_its_command(run_module, fake_rsync, tmp_path) -> None:
    exe, args = fake_rsync(_PUSH)
    result = run_module(
        tree_rsync.main,
        _args(tmp_path, exe, rsh="ssh -i key", chown="1000:1000", options=["--archive", "--delete"]),
    )
    assert result["changed"] is True
    assert result["changes"] == 3
    assert result["itemized"] == [">f+++++++++ a.jpg", "hf+++++++++ b.jpg => a.jpg", "*deleting   old.jpg"]
    assert result["bytes"] == 4194304 and result["files_total"] == 4
    assert json.loads(args.read_text()) == [
        "--archive",
        "--delete",
        "--itemize-changes",
        "--info=progress2",
        "--no-inc-recursive",
        "--chown=1000:1000",
        "--rsh=ssh -i key",
        f"{tmp_path}/src/",
        "root@10.0.0.7:vol/_data/",
    ]


def test_nothing_to_do_is_unchanged(run_module, fake_rsync, tmp_path) -> None:
    exe, _args_file = fake_rsync([".d..t...... ./\n", "  0 100%  0.00kB/s  0:00:00 (xfr#0, to-chk=0/4)\r"])
    result = run_module(tree_rsync.main, _args(tmp_path, exe))
    assert result["changed"] is False and result["changes"] == 0


def test_check_mode_runs_a_dry_run_and_reports_no_bytes(run_module, fake_rsync, tmp_path) -> None:
    exe, args = fake_rsync(_PUSH)
    result = run_module(tree_rsync.main, _args(tmp_path, exe), check_mode=True)
    assert result["changed"] is True and result["bytes"] == 0
    assert "--dry-run" in json.loads(args.read_text())


def test_progress_file_records_files_bytes_and_the_estimate(run_module, fake_rsync, tmp_path, written) -> None:
    out = [
        "  1,000,000  10%  1.00MB/s  0:00:09 (xfr#1, to-chk=9/10)\r",
        "  5,000,000  50%  1.00MB/s  0:00:05 (xfr#5, to-chk=5/10)\r",
        ">f+++++++++ a\n",
    ]
    exe, _args_file = fake_rsync(out, pause=0.05)
    progress = tmp_path / "p.json"
    run_module(tree_rsync.main, _args(tmp_path, exe, progress_file=str(progress), progress_interval=0.0))
    mid = [r for r in written if r["bytes_done"] == 5000000 and not r["done"]]
    assert mid, written
    assert mid[-1]["files_done"] == 5 and mid[-1]["files_total"] == 10
    assert mid[-1]["bytes_total"] == 10000000 and mid[-1]["phase"] == "copy"
    assert written[-1]["done"] is True
    assert oct(progress.stat().st_mode & 0o777) == "0o600"


@pytest.mark.parametrize(
    ("rc", "err", "message"),
    [
        (24, 'file has vanished: "/src/x.jpg"\n', 'exit code 24: file has vanished: "/src/x.jpg"'),
        (255, "Permission denied (publickey).\nrsync: connection unexpectedly closed", "exit code 255: Permission"),
        (12, "", "exit code 12: no error output"),
    ],
    ids=["vanished", "ssh-refused", "silent"],
)
def test_failure_names_the_exit_code_and_the_error(run_module, fake_rsync, tmp_path, rc, err, message) -> None:
    exe, _args_file = fake_rsync([">f+++++++++ a.jpg\n"], rc=rc, err=err)
    with pytest.raises(ModuleFailed, match="rsync failed") as failed:
        run_module(tree_rsync.main, _args(tmp_path, exe))
    assert message in failed.value.result["msg"]
    assert failed.value.result["rc"] == rc and failed.value.result["changes"] == 1


def test_missing_source_or_program_fails_loudly(run_module, fake_rsync, tmp_path) -> None:
    with pytest.raises(ModuleFailed, match="is not a directory"):
        run_module(tree_rsync.main, {"src": str(tmp_path / "nope"), "dest": "/x"})
    with pytest.raises(ModuleFailed, match="cannot run /nonexistent/rsync"):
        run_module(tree_rsync.main, _args(tmp_path, "/nonexistent/rsync"))
