# Copyright: pidock.stack maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the pidock.stack.swarm role: plan the cluster from the inventory and `docker info`.

swarm_cluster_plan(nodes, allow_even) -> {errors, warnings, leader, init, cluster_id}

`nodes` maps each host of the play to {role: manager|worker, state: present|absent,
swarm: <docker info .Swarm>}. The leader is the manager that initialises the swarm or hands out
join tokens: a manager already in control of a swarm, else the first manager.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _active(info: Mapping[str, Any]) -> bool:
    return str(info.get("LocalNodeState", "inactive")) in ("active", "locked")


def swarm_cluster_plan(nodes: Mapping[str, Mapping[str, Any]], allow_even: bool = False) -> dict[str, Any]:
    errors: list[str] = []
    warnings: list[str] = []
    managers = [h for h, n in nodes.items() if n.get("role") == "manager" and n.get("state", "present") == "present"]
    if not managers:
        errors.append("swarm_managers_group: no manager among the play's hosts; a swarm needs at least one")
        return {"errors": errors, "warnings": warnings, "leader": "", "init": False, "cluster_id": ""}
    if len(managers) % 2 == 0:
        text = (
            f"swarm_managers_group: {len(managers)} managers ({', '.join(managers)}); an even number tolerates no "
            f"more manager failures than {len(managers) - 1} (quorum needs a majority): use an odd number"
        )
        if allow_even:
            warnings.append(text)
        else:
            errors.append(text + ", or set swarm_allow_even_managers: true while growing")
    clusters: dict[str, list[str]] = {}
    for host, node in nodes.items():
        info = node.get("swarm") or {}
        cluster = str((info.get("Cluster") or {}).get("ID", "")) if info.get("ControlAvailable") else ""
        if cluster:
            clusters.setdefault(cluster, []).append(host)
    if len(clusters) > 1:
        errors.append(
            "swarm_managers_group: the managers belong to different swarms ("
            + "; ".join(f"{cid[:12]}: {', '.join(hosts)}" for cid, hosts in sorted(clusters.items()))
            + "); make the odd ones leave first (swarm_state: absent)"
        )
    in_control = [h for h in managers if (nodes[h].get("swarm") or {}).get("ControlAvailable")]
    leader = in_control[0] if in_control else managers[0]
    return {
        "errors": errors,
        "warnings": warnings,
        "leader": leader,
        "init": not _active(nodes[leader].get("swarm") or {}),
        "cluster_id": next(iter(clusters), ""),
    }


class FilterModule:
    """pidock.stack swarm cluster filters."""

    def filters(self) -> dict[str, Any]:
        return {"swarm_cluster_plan": swarm_cluster_plan}
