# Copyright: pidock.stack maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a deployed swarm stack looks like: shared by the swarm_stack filters and swarm_stack_wait."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

_SETTLED = ("completed", "rollback_completed", "paused", "rollback_paused")


SPEC_LABEL = "pidock.spec"


def swarm_spec_hash(service: Mapping[str, Any]) -> str:
    """A short hash of one rendered service of a stack file, its own `pidock.spec` label left out.

    The stack file carries it as a service label (`deploy.labels`), so what Swarm runs can be told
    apart from what a run asked for: after Swarm's own rollback the service's spec is the previous
    one again, and its label says which. A service label changes no task, so adding it restarts
    nothing."""
    body = dict(service)
    deploy = dict(body.get("deploy", {}) or {})
    labels = {k: v for k, v in (deploy.get("labels", {}) or {}).items() if k != SPEC_LABEL}
    if labels:
        deploy["labels"] = labels
    else:
        deploy.pop("labels", None)
    body["deploy"] = deploy
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def swarm_stack_status(
    services: list[Mapping[str, Any]],
    tasks: list[Mapping[str, Any]],
    expected: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """From `docker service inspect` of the stack's services and their tasks (`docker stack ps
    --format json`, one object each): per service its update state, running and desired tasks,
    the nodes they run on and the spec it runs (its `pidock.spec` label); `settled` once no update
    is in flight and every service runs as many tasks as it wants.

    `expected` (service name with the stack prefix -> spec hash, the labels of the stack file a
    run deployed) decides the outcome by what each service runs: a service running its expected
    spec is deployed even when its last update was a rollback (Swarm rolled back *to* it, e.g.
    after an earlier release failed); one that runs another spec after a rollback was rolled back
    by Swarm; one that runs another spec without a rollback was not deployed (failed), as is an
    expected service that does not exist. Without `expected`: rolled_back when any service's last
    update was rolled back, failed when an update paused, else deployed."""
    running: dict[str, list[str]] = {}
    for task in tasks or []:
        if str(task.get("DesiredState", "")).lower() == "running" and str(task.get("CurrentState", "")).startswith(
            "Running"
        ):
            service = str(task.get("Name", "")).split(".", 1)[0]
            running.setdefault(service, []).append(str(task.get("Node", "")))
    expected = dict(expected or {})
    report: dict[str, Any] = {}
    settled = True
    rolled_back = failed = False
    for svc in services or []:
        spec = svc.get("Spec", {}) or {}
        name = spec.get("Name", "?")
        update = svc.get("UpdateStatus") or {}
        state = update.get("State", "")
        mode = spec.get("Mode", {}) or {}
        desired = (mode.get("Replicated") or {}).get("Replicas")
        nodes = sorted(running.get(name, []))
        served = str((spec.get("Labels", {}) or {}).get(SPEC_LABEL, ""))
        message = update.get("Message", "")
        if state and state not in _SETTLED:
            settled = False
        if desired is not None and len(nodes) != desired:
            settled = False
        if "Global" in mode and not nodes:
            settled = False
        if name in expected:
            wanted = expected.pop(name)
            if served == wanted:
                failed = failed or state in ("paused", "rollback_paused")
            elif state == "rollback_paused":
                failed = True
            elif state.startswith("rollback"):
                rolled_back = True
            else:
                failed = True
                message = message or f"runs spec {served or 'unlabelled'}, not the deployed {wanted}"
        elif state == "rollback_completed":
            rolled_back = True
        elif state in ("paused", "rollback_paused"):
            failed = True
        report[name] = {
            "update_state": state or "none",
            "message": message,
            "running": len(nodes),
            "desired": desired if desired is not None else "global",
            "nodes": nodes,
            "spec": served,
        }
    for name in sorted(expected):
        failed = True
        report[name] = {
            "update_state": "missing",
            "message": "the service does not exist",
            "running": 0,
            "desired": 0,
            "nodes": [],
            "spec": "",
        }
    outcome = "rolled_back" if rolled_back else "failed" if failed else "deployed"
    return {"settled": settled, "outcome": outcome, "services": report}
