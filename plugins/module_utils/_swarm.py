# Copyright: pidock.stack maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a deployed swarm stack looks like: shared by the swarm_stack filters and swarm_stack_wait."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_SETTLED = ("completed", "rollback_completed", "paused", "rollback_paused")


def swarm_stack_status(services: list[Mapping[str, Any]], tasks: list[Mapping[str, Any]]) -> dict[str, Any]:
    """From `docker service inspect` of the stack's services and their tasks (`docker stack ps
    --format json`, one object each): per service its update state, running and desired tasks
    and the nodes they run on; `settled` once no update is in flight and every service runs as
    many tasks as it wants; `outcome`: rolled_back when Swarm rolled any service back itself,
    failed when an update paused, else deployed."""
    running: dict[str, list[str]] = {}
    for task in tasks or []:
        if str(task.get("DesiredState", "")).lower() == "running" and str(task.get("CurrentState", "")).startswith(
            "Running"
        ):
            service = str(task.get("Name", "")).split(".", 1)[0]
            running.setdefault(service, []).append(str(task.get("Node", "")))
    report: dict[str, Any] = {}
    settled = True
    outcome = "deployed"
    for svc in services or []:
        spec = svc.get("Spec", {}) or {}
        name = spec.get("Name", "?")
        update = svc.get("UpdateStatus") or {}
        state = update.get("State", "")
        mode = spec.get("Mode", {}) or {}
        desired = (mode.get("Replicated") or {}).get("Replicas")
        nodes = sorted(running.get(name, []))
        if state and state not in _SETTLED:
            settled = False
        if desired is not None and len(nodes) != desired:
            settled = False
        if "Global" in mode and not nodes:
            settled = False
        if state == "rollback_completed":
            outcome = "rolled_back"
        elif state in ("paused", "rollback_paused") and outcome != "rolled_back":
            outcome = "failed"
        report[name] = {
            "update_state": state or "none",
            "message": update.get("Message", ""),
            "running": len(nodes),
            "desired": desired if desired is not None else "global",
            "nodes": nodes,
        }
    return {"settled": settled, "outcome": outcome, "services": report}
