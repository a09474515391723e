"""Tasks that run on the controller (delegate_to: localhost) never use become: under a play's
`become: true` they would need sudo on the controller. The migration plan report is private."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
FILES = sorted(
    p.relative_to(ROOT).as_posix() for p in [*ROOT.glob("roles/*/tasks/**/*.yml"), *ROOT.glob("playbooks/*.yml")]
)


def _tasks(items: Any, inherited: dict[str, Any]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    for task in items or []:
        if not isinstance(task, dict):
            continue
        here = {**inherited, **{k: task[k] for k in ("delegate_to", "become") if k in task}}
        if "hosts" in task:  # a play: its tasks
            for section in ("pre_tasks", "tasks", "post_tasks", "handlers"):
                yield from _tasks(task.get(section), {k: task[k] for k in ("become",) if k in task})
            continue
        sections = [s for s in ("block", "rescue", "always") if s in task]
        if sections:
            for section in sections:
                yield from _tasks(task[section], here)
        else:
            yield task, here


@pytest.mark.parametrize("path", FILES)
def test_controller_tasks_do_not_become(path: str) -> None:
    for task, effective in _tasks(yaml.safe_load((ROOT / path).read_text()), {}):
        if effective.get("delegate_to") == "localhost":
            where = f"{path}: {task.get('name')}"
            assert effective.get("become") is False, f"{where} runs on the controller without become: false"


def test_the_plan_report_is_private() -> None:
    tasks = list(_tasks(yaml.safe_load((ROOT / "roles/migrate/tasks/plan_run.yml").read_text()), {}))
    report = [t for t, _path in tasks if "report" in str(t.get("name", "")).lower() and "ansible.builtin.copy" in t]
    directory = [t for t, _path in tasks if "report directory" in str(t.get("name", "")).lower()]
    assert report and directory
    assert all(t["ansible.builtin.copy"]["mode"] == "0600" for t in report)
    assert all(t["ansible.builtin.file"]["mode"] == "0700" for t in directory)
