"""The migrate role's first preflight task refuses values argument_specs cannot express, by name.

Runs the role's preflight (include_role tasks_from) on the controller itself, with one bad value
at a time: the play must fail at the first task, naming the variable and the rule.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

PLAY = """
- hosts: localhost
  gather_facts: false
  connection: local
  tasks:
    - ansible.builtin.include_role:
        name: pidock.stack.migrate
        tasks_from: preflight
"""

CASES = [
    ("migrate_restore_maintenance_work_mem", "256 MB", "a PostgreSQL memory size"),
    ("migrate_restore_maintenance_work_mem", "256MB; DROP", "a PostgreSQL memory size"),
    ("migrate_restore_maintenance_work_mem", "0MB", "a PostgreSQL memory size"),
    ("migrate_reverse_wal_keep", "1 GB", "a PostgreSQL size"),
    ("migrate_reverse_wal_keep", "1GB'; DROP", "a PostgreSQL size"),
    ("migrate_reverse_wal_keep", "-1", "a PostgreSQL size"),
    ("migrate_plan_space_margin", 11, "between 0 and 10"),
    ("migrate_stack_ports", [80, 70000], "TCP ports (1-65535)"),
    ("migrate_replication_ssl_root_cert", "certs/ca.pem", "empty or an absolute path on the source host"),
]


def _preflight(tmp_path: Path, settings: dict) -> tuple[int, str]:
    play = tmp_path / "play.yml"
    play.write_text(PLAY, encoding="utf-8")
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    env["ANSIBLE_COLLECTIONS_PATH"] = str(ROOT / "collections")
    playbook = str(Path(sys.executable).parent / "ansible-playbook")
    done = subprocess.run(
        [playbook, "-i", "localhost,", str(play), "-e", json.dumps(settings)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return done.returncode, " ".join((done.stdout + done.stderr).split())


@pytest.mark.parametrize(("name", "value", "rule"), CASES, ids=[f"{c[0]}={c[1]}" for c in CASES])
def test_preflight_refuses_by_name(tmp_path: Path, name: str, value: object, rule: str) -> None:
    rc, out = _preflight(tmp_path, {name: value})
    assert rc == 2, out[-3000:]
    assert f"{name} must be {rule}" in out, out[-3000:]
    # refused at the first task of the role (only the include itself counts as ok): nothing else ran
    assert re.search(r"localhost\s*:\s*ok=1\s+changed=0\s+unreachable=0\s+failed=1", out), out[-3000:]


@pytest.mark.parametrize(
    ("phases", "refused"),
    [(["plan", "presync", "replicate", "prestart"], "prestart"), (["presync", "freeze", "dump"], "freeze, dump")],
    ids=["prestart", "freeze-dump"],
)
def test_preflight_refuses_phases_a_separate_target_cannot_run_yet(tmp_path: Path, phases: list, refused: str) -> None:
    """A separate target host: plan, presync and replicate are built; the rest is refused before anything changes."""
    rc, out = _preflight(tmp_path, {"migrate_target_host": "new-pi", "migrate_phases": phases})
    assert rc == 2, out[-3000:]
    built = "migrate_target_host=new-pi is a separate target host: plan, presync, replicate are built"
    assert built in out, out[-3000:]
    assert f"{refused} work in place only so far" in out, out[-3000:]
