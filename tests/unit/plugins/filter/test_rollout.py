"""Unit tests for the rollout summary filters (playbooks/tasks/record.yml and summary.yml)."""

from __future__ import annotations

from typing import Any

import pytest
from ansible_collections.pidock.stack.plugins.filter.rollout import (
    FilterModule,
    rollout_bad,
    rollout_lines,
    rollout_note,
)


@pytest.mark.parametrize(
    ("switch", "note"),
    [
        (None, ""),
        ("text", ""),
        ({}, ""),
        ({"in_place": [], "durations": {"total_s": 3}}, ""),
        (
            {"in_place": ["postgres"], "durations": {"total_s": 9, "interruption_s": 3.214}},
            "recreated in place: postgres (interruption 3.21 s)",
        ),
        (
            {"in_place": ["postgres", "redis"], "durations": {"interruption_s": 0}},
            "recreated in place: postgres, redis (interruption 0.00 s)",
        ),
        ({"in_place": ["postgres"], "durations": {"total_s": 9}}, "in place, not applied: postgres"),
        ({"in_place": ["postgres"], "durations": None}, "in place, not applied: postgres"),
    ],
    ids=["none", "string", "empty", "nothing-in-place", "one", "two-zero", "not-applied", "no-durations"],
)
def test_rollout_note(switch: Any, note: str) -> None:
    assert rollout_note(switch) == note


class HostVars(dict):
    """Like Ansible's hostvars: a host without the variable raises KeyError."""


HOSTVARS = HostVars(
    {
        "pi-1": {
            "__pidock_result": {
                "outcome": "deployed",
                "release": "v2-abc",
                "version": "v2",
                "message": "",
                "note": "recreated in place: postgres (interruption 2.00 s)",
            }
        },
        "pi-2": {
            "__pidock_result": {
                "outcome": "rolled_back",
                "release": "v1-def",
                "version": "v1",
                "message": "Deploy: failed its health gate",
            }
        },
        "pi-3": {},
        "pi-4": {"__pidock_result": {"outcome": "unchanged\n", "release": "", "version": ""}},
        "pi-5": {"__pidock_result": "garbage"},
    }
)


def test_rollout_lines_one_per_host_in_order() -> None:
    assert rollout_lines(HOSTVARS, ["pi-1", "pi-2", "pi-3", "pi-4", "pi-5", "gone"]) == [
        "pi-1: deployed - release v2-abc (v2); recreated in place: postgres (interruption 2.00 s)",
        "pi-2: rolled_back - release v1-def (v1); Deploy: failed its health gate",
        "pi-3: failed; no outcome recorded (unreachable?)",
        "pi-4: unchanged",
        "pi-5: failed; no outcome recorded (unreachable?)",
        "gone: failed; no outcome recorded (unreachable?)",
    ]


@pytest.mark.parametrize(
    ("hosts", "good", "bad"),
    [
        (["pi-1", "pi-4"], ["deployed", "unchanged"], []),
        (["pi-1", "pi-2"], ["deployed", "unchanged"], ["pi-2 rolled_back"]),
        (["pi-2"], ["rolled_back"], []),
        (["pi-3", "pi-5"], ["deployed"], ["pi-3 failed", "pi-5 failed"]),
        ([], ["deployed"], []),
    ],
    ids=["all-good", "one-rolled-back", "rollback-playbook", "unreachable", "no-hosts"],
)
def test_rollout_bad(hosts: list[str], good: list[str], bad: list[str]) -> None:
    assert rollout_bad(HOSTVARS, hosts, good) == bad


def test_filters_are_registered() -> None:
    assert set(FilterModule().filters()) == {"rollout_note", "rollout_lines", "rollout_bad"}
