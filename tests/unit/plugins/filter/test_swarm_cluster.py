"""Unit tests for plugins/filter/swarm_cluster.py: who leads, who joins, what is refused."""

from __future__ import annotations

from typing import Any

import pytest
from ansible_collections.pidock.stack.plugins.filter.swarm_cluster import FilterModule, swarm_cluster_plan

NEW: dict[str, Any] = {"LocalNodeState": "inactive", "ControlAvailable": False}


def _mgr(cluster: str = "c1") -> dict[str, Any]:
    return {"LocalNodeState": "active", "ControlAvailable": True, "Cluster": {"ID": cluster}}


WORKER_IN = {"LocalNodeState": "active", "ControlAvailable": False}


def _nodes(*spec: tuple[str, str, dict[str, Any]], state: str = "present") -> dict[str, Any]:
    return {h: {"role": r, "state": state, "swarm": s} for h, r, s in spec}


PLANS = [
    # (nodes, leader, init)
    (_nodes(("m1", "manager", NEW), ("w1", "worker", NEW)), "m1", True),
    (_nodes(("m1", "manager", _mgr()), ("w1", "worker", WORKER_IN)), "m1", False),
    # The first manager was rebuilt: the one still in control leads, nobody re-initialises.
    (_nodes(("m1", "manager", NEW), ("m2", "manager", _mgr()), ("m3", "manager", _mgr())), "m2", False),
    (_nodes(("m1", "manager", {"LocalNodeState": "locked"})), "m1", False),
]


@pytest.mark.parametrize(("nodes", "leader", "init"), PLANS)
def test_plan(nodes: dict[str, Any], leader: str, init: bool) -> None:
    plan = swarm_cluster_plan(nodes)
    assert (plan["errors"], plan["leader"], plan["init"]) == ([], leader, init)


def test_no_manager_is_refused() -> None:
    plan = swarm_cluster_plan(_nodes(("w1", "worker", NEW)))
    assert plan["errors"] == ["swarm_managers_group: no manager among the play's hosts; a swarm needs at least one"]


def test_even_managers_refused_unless_allowed_then_warned() -> None:
    nodes = _nodes(("m1", "manager", NEW), ("m2", "manager", NEW))
    refused = swarm_cluster_plan(nodes)
    assert len(refused["errors"]) == 1 and "2 managers" in refused["errors"][0]
    assert "swarm_allow_even_managers" in refused["errors"][0] and "quorum" in refused["errors"][0]
    allowed = swarm_cluster_plan(nodes, True)
    assert allowed["errors"] == [] and "quorum" in allowed["warnings"][0]


def test_leaving_managers_do_not_count() -> None:
    nodes = _nodes(("m1", "manager", _mgr()), ("m2", "manager", _mgr()), ("m3", "manager", _mgr()))
    nodes["m3"]["state"] = "absent"
    assert "2 managers" in swarm_cluster_plan(nodes)["errors"][0]


def test_two_swarms_are_refused() -> None:
    plan = swarm_cluster_plan(
        _nodes(("m1", "manager", _mgr("aaa")), ("m2", "manager", _mgr("bbb")), ("m3", "manager", NEW))
    )
    assert "different swarms" in plan["errors"][0]


def test_registered() -> None:
    assert FilterModule().filters() == {"swarm_cluster_plan": swarm_cluster_plan}
