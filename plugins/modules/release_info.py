#!/usr/bin/python
# Copyright: pidock.stack maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module pidock.stack.release_info: read a compose stack's releases, history and what it serves."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: release_info
short_description: Read the releases, history, journal and served release of a pidock compose stack
version_added: 0.2.0
description:
  - Lists the release directories of a stack (oldest first, with outcome and the C(current) and
    C(previous) flags), the activation history, the newest transaction of the switch journal
    (C(journal.jsonl)) and who holds the stack's lock.
  - With O(health_url), also what the front door serves (the release key of its health answer),
    the truth a summary should report, whatever C(current) says.
  - Changes nothing.
options:
  root:
    description: The stack root, for example C(/opt/pidock/stacks/inventory).
    type: path
    required: true
  health_url:
    description: The front door's health URL; empty skips asking it.
    type: str
    default: ""
  health_release_key:
    description: JSON field of the health answer naming the release's version.
    type: str
    default: release
  health_validate_certs:
    description: Validate the front door's TLS certificate.
    type: bool
    default: false
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: posix
author:
  - pidock.stack maintainers (@pidock)
"""

EXAMPLES = r"""
- name: What does the stack serve?
  pidock.stack.release_info:
    root: /opt/pidock/stacks/inventory
    health_url: https://127.0.0.1/health
  register: releases
"""

RETURN = r"""
releases:
  description: Every release, oldest first, with C(current) and C(previous) flags.
  returned: always
  type: list
  elements: dict
current:
  description: Release C(current) points to (empty when none).
  returned: always
  type: str
previous:
  description: Release a rollback to V(previous) would go back to (empty when none).
  returned: always
  type: str
history:
  description: Activations, oldest first.
  returned: always
  type: list
  elements: dict
served:
  description: Version the front door reports (null when not asked or not answering 200).
  returned: always
  type: str
served_release:
  description: The release id whose version the front door reports (the current one when several share it).
  returned: always
  type: str
journal:
  description: The newest transaction (txn, kind, from, to, last_step, committed, outcome, open).
  returned: always
  type: dict
lock_holder:
  description: The note of the process holding the stack's lock, or null when it is free.
  returned: always
  type: dict
"""

import os
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.pidock.stack.plugins.module_utils._release import (
    ReleaseError,
    current_release,
    previous_release,
    read_history,
    release_summaries,
)
from ansible_collections.pidock.stack.plugins.module_utils._txn import (
    Journal,
    http_probe,
    last_transaction,
    lock_is_free,
    read_holder,
)


def journal_summary(root: str) -> dict[str, Any] | None:
    state = last_transaction(Journal(root).records())
    if state is None:
        return None
    begin = state["begin"]
    return {
        "txn": state["txn"],
        "kind": begin.get("kind"),
        "from": begin.get("from"),
        "to": begin.get("to"),
        "last_step": state["last_step"],
        "committed": state["committed"],
        "outcome": (state["end"] or {}).get("outcome"),
        "open": state["end"] is None,
    }


def served_by_front(params: dict[str, Any]) -> str | None:
    if not params["health_url"] or not params["health_release_key"]:
        return None
    status, parsed, _text = http_probe(params["health_url"], params["health_validate_certs"], 5.0)
    if status == 200 and isinstance(parsed, dict) and parsed.get(params["health_release_key"]) is not None:
        return str(parsed[params["health_release_key"]])
    return None


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "root": {"type": "path", "required": True},
            "health_url": {"type": "str", "default": ""},
            "health_release_key": {"type": "str", "default": "release", "no_log": False},
            "health_validate_certs": {"type": "bool", "default": False},
        },
        supports_check_mode=True,
    )
    root = module.params["root"]
    try:
        releases = release_summaries(root)
        current = current_release(root) or ""
        served = served_by_front(module.params)
        matching = [r["id"] for r in releases if served is not None and r["version"] == served]
        served_release = current if current in matching else (matching[-1] if matching else "")
        result = {
            "changed": False,
            "releases": releases,
            "current": current,
            "previous": previous_release(root, current=current or None) or "",
            "history": read_history(root),
            "served": served,
            "served_release": served_release,
            "journal": journal_summary(root) if os.path.isdir(root) else None,
            "lock_holder": None if lock_is_free(root) else (read_holder(os.path.join(root, "deploy.lock")) or {}),
        }
    except (ReleaseError, OSError) as exc:
        module.fail_json(msg=f"reading the releases under {root} failed: {exc}")
    module.exit_json(**result)


if __name__ == "__main__":
    main()
