#!/usr/bin/python
# Copyright: (c) 2026, pidock.stack maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import json
import time
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.pidock.stack.plugins.module_utils._swarm import swarm_stack_status

DOCUMENTATION = r"""
---
module: swarm_stack_wait
short_description: Wait until a Docker Swarm stack has converged, and report how
version_added: 0.2.0
description:
  - Polls C(docker service inspect) and C(docker stack ps) on a manager until no service of the stack has an
    update in flight and every service runs as many tasks as it wants, or until O(timeout).
  - Reports each service's update state, running and desired tasks and the nodes they run on, and the outcome
    of the deploy as C(pidock.stack.deploy) words it; C(rolled_back) when Swarm rolled a service back itself
    (update_config failure_action rollback), C(failed) when an update paused or the stack did not settle,
    else C(deployed).
  - Read-only.
author:
  - pidock.stack maintainers
options:
  name:
    description: Stack name.
    type: str
    required: true
  services:
    description: Service names of the stack without the stack prefix.
    type: list
    elements: str
    required: true
  timeout:
    description: Seconds to wait for the stack to settle.
    type: int
    default: 300
  interval:
    description: Seconds between two looks.
    type: float
    default: 2
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Wait for the inventory stack
  pidock.stack.swarm_stack_wait:
    name: inventory
    services: [app, postgres, nginx]
    timeout: 300
"""

RETURN = r"""
settled:
  description: Whether the stack settled before the timeout.
  type: bool
  returned: always
outcome:
  description: deployed, rolled_back or failed.
  type: str
  returned: always
services:
  description: Per service (with the stack prefix) update_state, message, running, desired, nodes.
  type: dict
  returned: always
waited:
  description: Seconds waited.
  type: float
  returned: always
"""


def _look(module: AnsibleModule, stack: str, names: list[str]) -> dict[str, Any]:
    rc, out, _err = module.run_command(["docker", "service", "inspect", *[f"{stack}_{n}" for n in names]])
    services = json.loads(out) if rc == 0 else []
    rc, out, _err = module.run_command(["docker", "stack", "ps", stack, "--no-trunc", "--format", "{{json .}}"])
    tasks = [json.loads(line) for line in out.splitlines() if line.strip()] if rc == 0 else []
    return swarm_stack_status(services, tasks)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "name": {"type": "str", "required": True},
            "services": {"type": "list", "elements": "str", "required": True},
            "timeout": {"type": "int", "default": 300},
            "interval": {"type": "float", "default": 2},
        },
        supports_check_mode=True,
    )
    start = time.monotonic()
    while True:
        status = _look(module, module.params["name"], module.params["services"])
        waited = round(time.monotonic() - start, 1)
        if status["settled"] or waited >= module.params["timeout"]:
            break
        time.sleep(module.params["interval"])
    if not status["settled"]:
        status["outcome"] = "rolled_back" if status["outcome"] == "rolled_back" else "failed"
    module.exit_json(changed=False, waited=waited, **status)


if __name__ == "__main__":
    main()
