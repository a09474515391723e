"""migrate_dumps: dumps 0600 while they exist, retired after a verified cutover, gone after keep_days."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from ansible_collections.pidock.stack.plugins.modules import migrate_dumps
from conftest import ModuleFailed, RunModule

FILES = ["inventory_db.dump", "globals.sql", "SHA256SUMS"]
NOW = "20261127T120000Z"


def _setup(tmp_path: Path, modes: tuple[int, ...] = (0o600, 0o644, 0o640), old: list[str] = ()) -> dict[str, Any]:
    dump, retired = tmp_path / "dump", tmp_path / "retired"
    dump.mkdir()
    for name, mode in zip(FILES, modes, strict=True):
        (dump / name).write_text(name)
        os.chmod(dump / name, mode)
    (dump / "baseline.source.json").write_text("{}")
    for stamp in old:
        (retired / stamp).mkdir(parents=True)
        (retired / stamp / "globals.sql").write_text("old")
    return {
        "path": str(dump),
        "files": FILES,
        "retired_dir": str(retired),
        "tmpfiles": str(tmp_path / "pidock.conf"),
        "now": NOW,
    }


CASES = [
    # (name, extra args, old retired dirs, expected files left in dump, retired?, removed dirs left)
    ("protect only", {}, [], FILES, False, []),
    ("retire, keep 3 days", {"retire": True}, [], [], True, []),
    ("retire, keep 0 days removes now", {"retire": True, "keep_days": 0}, [], [], False, []),
    (
        "older retirements pruned, younger kept",
        {"retire": True, "keep_days": 3},
        ["20261120T000000Z", "20261125T000000Z"],
        [],
        True,
        ["20261125T000000Z"],
    ),
    ("pruning without retiring", {"keep_days": 1}, ["20261120T000000Z"], FILES, False, []),
]


@pytest.mark.parametrize(("name", "args", "old", "left", "retired", "kept"), CASES, ids=[c[0] for c in CASES])
def test_table(
    tmp_path: Path,
    run_module: RunModule,
    name: str,
    args: dict[str, Any],
    old: list[str],
    left: list[str],
    retired: bool,
    kept: list[str],
) -> None:
    params = {**_setup(tmp_path, old=old), **args}
    before = sorted(p.name for p in (tmp_path / "dump").iterdir())
    checked = run_module(migrate_dumps.main, params, check_mode=True)
    assert sorted(p.name for p in (tmp_path / "dump").iterdir()) == before  # check mode touches nothing
    result = run_module(migrate_dumps.main, params)
    assert result["changed"] is True and checked["changed"] is True
    assert sorted(p.name for p in (tmp_path / "dump").iterdir()) == sorted([*left, "baseline.source.json"])
    for file in left:
        assert (tmp_path / "dump" / file).stat().st_mode & 0o777 == 0o600
    stamps = sorted(p.name for p in (tmp_path / "retired").iterdir()) if (tmp_path / "retired").exists() else []
    assert stamps == sorted([*kept, *([NOW] if retired else [])])
    if retired:
        assert sorted(p.name for p in (tmp_path / "retired" / NOW).iterdir()) == sorted(FILES)
        assert (tmp_path / "retired").stat().st_mode & 0o777 == 0o700
    if params.get("keep_days", 3) > 0:
        assert (
            f"{params['retired_dir']} 0700 root root {params.get('keep_days', 3)}d"
            in (tmp_path / "pidock.conf").read_text()
        )
    again = run_module(migrate_dumps.main, params)
    assert again["changed"] is False, again


def test_symlink_instead_of_a_dump_is_refused(tmp_path: Path, run_module: RunModule) -> None:
    params = _setup(tmp_path)
    os.unlink(tmp_path / "dump" / "globals.sql")
    os.symlink("/etc/passwd", tmp_path / "dump" / "globals.sql")
    with pytest.raises(ModuleFailed, match="not a regular file"):
        run_module(migrate_dumps.main, params)


def test_names_must_be_plain(tmp_path: Path, run_module: RunModule) -> None:
    params = {**_setup(tmp_path), "files": ["../x"]}
    with pytest.raises(ModuleFailed, match="is not a file name"):
        run_module(migrate_dumps.main, params)


SUM_A = "a" * 64
SUM_B = "0123456789abcdef" * 4


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"{SUM_A}  inventory_db.dump\n{SUM_B}  globals.sql\n", {"inventory_db.dump": SUM_A, "globals.sql": SUM_B}),
        (f"{SUM_A} *inventory_db.dump\n\n", {"inventory_db.dump": SUM_A}),
        (f"{SUM_A}  globals.sql", {"globals.sql": SUM_A}),
    ],
    ids=["two-files", "binary-marker-blank-line", "no-final-newline"],
)
def test_sums_give_each_files_digest_and_size(tmp_path: Path, run_module: RunModule, text: str, expected) -> None:
    params = _setup(tmp_path)
    (tmp_path / "dump" / "SHA256SUMS").write_text(text)
    result = run_module(migrate_dumps.main, {**params, "sums": "SHA256SUMS"})
    assert {name: f["sha256"] for name, f in result["files"].items()} == expected
    for name, found in result["files"].items():
        assert found["bytes"] == (tmp_path / "dump" / name).stat().st_size


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "lists no files"),
        ("--baseline--\n", "line 1 is not"),
        (f"{SUM_A[:-1]}  globals.sql\n", "line 1 is not"),
        (f"{SUM_A}  ../etc/passwd\n", "line 1 is not"),
        (f"{SUM_A}  globals.sql\n{SUM_A}  missing.dump\n", "missing.dump"),
    ],
    ids=["empty", "sentinel", "short-digest", "path", "missing-file"],
)
def test_bad_sums_fail_naming_the_problem(tmp_path: Path, run_module: RunModule, text: str, message: str) -> None:
    params = _setup(tmp_path)
    (tmp_path / "dump" / "SHA256SUMS").write_text(text)
    with pytest.raises(ModuleFailed) as failed:
        run_module(migrate_dumps.main, {**params, "sums": "SHA256SUMS"})
    assert message in failed.value.result["msg"]
