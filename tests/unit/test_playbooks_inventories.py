"""The playbooks parse against the default inventory (what `ansible-playbook playbooks/deploy.yml
-l pi` meets first), and the shipped inventories load without a vault password: the pi group is
there and its secrets stay encrypted."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOKS = ["provision", "deploy", "rollback", "migrate", "migrate_rollback", "site"]
BIN = Path(os.environ.get("VIRTUAL_ENV", ROOT / ".venv")) / "bin"

pytestmark = pytest.mark.skipif(
    not (BIN / "ansible-playbook").exists() and shutil.which("ansible-playbook") is None,
    reason="ansible-playbook not installed",
)


def _tool(name: str) -> str:
    local = BIN / name
    return str(local) if local.exists() else name


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"))
    return subprocess.run(list(argv), cwd=ROOT, env=env, capture_output=True, text=True, check=False)


@pytest.mark.parametrize("name", PLAYBOOKS)
def test_playbook_parses_with_the_default_inventory(name: str) -> None:
    done = _run(_tool("ansible-playbook"), f"playbooks/{name}.yml", "-l", "pi", "--syntax-check")
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(("inventory", "host"), [("production", "inventory-pi"), ("demo", "demo-pi")])
def test_inventory_loads_without_the_vault_password(inventory: str, host: str) -> None:
    done = _run(_tool("ansible-inventory"), "-i", f"inventories/{inventory}", "--list")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert host in data["pi"]["hosts"]
    hostvars = data["_meta"]["hostvars"][host]
    assert hostvars["compose_project"] == "inventory"
    assert hostvars["tls_stack_name"] == hostvars["compose_project"]
    for key, value in hostvars.items():
        if key.startswith("vault_"):
            assert isinstance(value, dict) and "__ansible_vault" in value, f"{key} is not Vault-encrypted"
