"""Unit tests for plugins/filter/failure.py, and the rule that rescues only print failures through it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from ansible_collections.pidock.stack.plugins.filter.failure import HIDDEN, FilterModule, failure_text

ROOT = Path(__file__).resolve().parents[4]
# What a failing `no_log: true` command task leaves in ansible_failed_result (captured from ansible-core 2.19).
NO_LOG_RESULT = {
    "changed": True,
    "stdout": "TOPSECRET-out",
    "stderr": "TOPSECRET-err",
    "rc": 3,
    "cmd": ["sh", "-c", "echo TOPSECRET"],
    "failed": True,
    "msg": "non-zero return code",
    "invocation": {"module_args": {"argv": ["sh", "-c", "echo TOPSECRET"]}},
    "_ansible_no_log": True,
}


@pytest.mark.parametrize(
    ("result", "args", "expected"),
    [
        (NO_LOG_RESULT, (), HIDDEN),
        (NO_LOG_RESULT, (600, ["msg"]), HIDDEN),
        ({"censored": "the output has been hidden", "failed": True}, (), HIDDEN),
        (
            {"msg": "non-zero return code", "stderr": "pg_dump: error", "stdout": ""},
            (),
            "non-zero return code pg_dump: error",
        ),
        ({"msg": "boom", "stderr": "detail"}, (600, ["msg"]), "boom"),
        ({"msg": "x" * 700}, (600,), "x" * 597 + "..."),
        ({}, (), "unknown error"),
        (None, (), "unknown error"),
    ],
)
def test_failure_text(result, args, expected) -> None:
    assert failure_text(result, *args) == expected


def test_no_log_output_never_comes_through() -> None:
    assert "TOPSECRET" not in failure_text(NO_LOG_RESULT, 10_000, ["msg", "stderr", "stdout", "cmd", "invocation"])


def test_registered() -> None:
    assert FilterModule().filters()["failure_text"] is failure_text


_DIRECT = re.compile(r"ansible_failed_result\s*\.\s*(?:msg|stdout|stderr)|ansible_failed_result\[")


@pytest.mark.parametrize(
    "path",
    sorted(p.relative_to(ROOT).as_posix() for p in [*ROOT.glob("roles/*/tasks/*.yml"), *ROOT.glob("playbooks/*.yml")]),
)
def test_rescues_print_failures_only_through_failure_text(path: str) -> None:
    """A rescue that prints ansible_failed_result.stdout/stderr/msg leaks a no_log task's output."""
    assert not _DIRECT.findall((ROOT / path).read_text()), path


def test_a_failed_loop_says_what_each_failed_item_said() -> None:
    loop = {
        "msg": "One or more items failed",
        "failed": True,
        "results": [
            {"item": "images", "failed": False, "msg": "fine"},
            {"item": "ml_cache", "failed": True, "msg": "copy of ml_cache failed: 3 entries changed"},
            {"item": "secret", "failed": True, "msg": "TOPSECRET", "_ansible_no_log": True},
            "junk",
        ],
    }
    assert failure_text(loop, 600, ["msg"]) == (
        f"One or more items failed; copy of ml_cache failed: 3 entries changed; {HIDDEN}"
    )
    assert failure_text(loop, 40, ["msg"]).endswith("...")
