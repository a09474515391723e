#!/usr/bin/python
# Copyright: (c) 2026, pidock.stack maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: swarm_stack_wait
short_description: Wait until a Docker Swarm stack has converged, and report how
version_added: 0.2.0
description:
  - Polls C(docker service inspect) and C(docker stack ps) on a Swarm manager every O(interval) seconds until no
    service of the stack has an update in flight and every service runs as many tasks as it wants, or until
    O(timeout).
  - Reports each service's update state, running and desired tasks, the nodes they run on and the spec it runs
    (its C(pidock.spec) label), and the outcome - V(rolled_back) when Swarm rolled a service back itself
    (C(update_config) with C(failure_action) V(rollback)), V(failed) when an update paused or the stack did not
    settle in time, else V(deployed).
  - With O(expected), the outcome is read from what each service runs, not from its last update alone - a service
    running the spec a run deployed is V(deployed) even when its last update was a rollback (Swarm rolled back
    I(to) it), one running another spec after a rollback is V(rolled_back).
  - Without O(services) it reads every service of the stack; the C(stack) and C(rollback) entry points do so
    first, to learn which stored release serves after a run that was cut short.
  - The P(pidock.stack.swarm#role) role's C(stack) entry point calls it after C(docker stack deploy).
  - Reads only; never changes the stack. The same logic is available as the
    P(pidock.stack.swarm_stack_status#filter) filter.
author:
  - pidock.stack maintainers (@pidock)
options:
  name:
    description: The stack's name.
    type: str
    required: true
  services:
    description:
      - The stack's service names, without the stack prefix.
      - Empty - every service of the stack (none when the stack does not exist).
    type: list
    elements: str
    default: []
  expected:
    description:
      - Per service (without the stack prefix), the C(pidock.spec) label of the stack file just deployed.
    type: dict
    default: {}
  timeout:
    description: Seconds to wait for the stack to settle.
    type: int
    default: 300
  interval:
    description: Seconds between two looks.
    type: float
    default: 2
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: The module only reads, so it polls and reports the same way in check mode.
  diff_mode:
    support: none
  platform:
    platforms: posix
    details: Runs the C(docker) CLI on a manager node of the swarm.
requirements:
  - The C(docker) command line client on the target, talking to a Swarm manager.
"""

EXAMPLES = r"""
- name: Wait for the inventory stack
  pidock.stack.swarm_stack_wait:
    name: inventory
    services: [app, postgres, nginx]
    timeout: 300
  register: wait

- name: Fail unless the release is deployed
  ansible.builtin.assert:
    that: wait.outcome == 'deployed'
"""

RETURN = r"""
settled:
  description: Whether the stack settled before O(timeout).
  type: bool
  returned: always
outcome:
  description: V(deployed), V(rolled_back) or V(failed).
  type: str
  returned: always
  sample: deployed
services:
  description:
    - Per service, named with the stack prefix - C(update_state) (V(none) when there was no update), C(message),
      C(running), C(desired) (V(global) for a global service) and C(nodes).
  type: dict
  returned: always
  sample: {"inventory_app": {"update_state": "completed", "message": "update completed", "running": 2, "desired": 2,
           "nodes": ["m1", "w1"], "spec": "3f1c0d9e2b7a4c55"}}
specs:
  description:
    - Per service (without the stack prefix), the C(pidock.spec) label of the spec it runs (empty when unlabelled).
  type: dict
  returned: always
  sample: {"app": "3f1c0d9e2b7a4c55", "nginx": "9a0b1c2d3e4f5a6b"}
waited:
  description: Seconds waited.
  type: float
  returned: always
  sample: 14.2
"""

import json
import time
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.pidock.stack.plugins.module_utils._swarm import swarm_stack_status


def _names(module: AnsibleModule, stack: str) -> list[str]:
    """Every service of the stack, without its prefix."""
    argv = ["docker", "service", "ls", "--filter", f"label=com.docker.stack.namespace={stack}", "--format", "{{.Name}}"]
    rc, out, err = module.run_command(argv)
    if rc != 0:
        module.fail_json(msg=f"docker service ls failed: {err.strip()}", rc=rc)
    return sorted(line.strip()[len(stack) + 1 :] for line in out.splitlines() if line.strip().startswith(f"{stack}_"))


def _look(module: AnsibleModule, stack: str, names: list[str], expected: dict[str, str]) -> dict[str, Any]:
    services: list[dict[str, Any]] = []
    if names:
        rc, out, _err = module.run_command(["docker", "service", "inspect", *[f"{stack}_{n}" for n in names]])
        services = json.loads(out) if rc == 0 and out.strip() else []
        if rc != 0:
            # One missing service fails the whole inspect: look at them one by one.
            for name in names:
                rc, out, _err = module.run_command(["docker", "service", "inspect", f"{stack}_{name}"])
                services.extend(json.loads(out) if rc == 0 and out.strip() else [])
    rc, out, _err = module.run_command(["docker", "stack", "ps", stack, "--no-trunc", "--format", "{{json .}}"])
    tasks = [json.loads(line) for line in out.splitlines() if line.strip()] if rc == 0 else []
    status = swarm_stack_status(services, tasks, {f"{stack}_{k}": str(v) for k, v in expected.items()})
    prefix = f"{stack}_"
    status["specs"] = {
        name[len(prefix) :] if name.startswith(prefix) else name: svc["spec"]
        for name, svc in status["services"].items()
        if svc["update_state"] != "missing"
    }
    return status


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "name": {"type": "str", "required": True},
            "services": {"type": "list", "elements": "str", "default": []},
            "expected": {"type": "dict", "default": {}},
            "timeout": {"type": "int", "default": 300},
            "interval": {"type": "float", "default": 2},
        },
        supports_check_mode=True,
    )
    start = time.monotonic()
    stack = module.params["name"]
    names = module.params["services"] or _names(module, stack)
    while True:
        status = _look(module, stack, names, module.params["expected"])
        waited = round(time.monotonic() - start, 1)
        if status["settled"] or waited >= module.params["timeout"]:
            break
        time.sleep(module.params["interval"])
    if not status["settled"]:
        status["outcome"] = "rolled_back" if status["outcome"] == "rolled_back" else "failed"
    module.exit_json(changed=False, waited=waited, **status)


if __name__ == "__main__":
    main()
