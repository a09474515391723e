"""roles/tls: every task that handles key material carries no_log: true."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

_TASKS = Path(__file__).resolve().parents[2] / "roles" / "tls" / "tasks"
# Values that hold or produce private keys: module results, slurped files, the staged bundle.
# Paths to key files (_tls_files.privkey, privkey_path) are not key material.
_KEY_MATERIAL = re.compile(
    r"privatekey|(?<!_tls_files\.)privkey(?!_path)|account_key|__tls_read|__tls_provided_raw|__tls_ca_key"
)
_KEY_MODULES = (
    "openssl_privatekey_pipe",
    "openssl_privatekey_info",
    "acme_certificate",
    "tls_bundle_info",
    "tls_bundle",
)


def _tasks(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for task in items or []:
        yield task
        for section in ("block", "rescue", "always"):
            yield from _tasks(task.get(section, []))


def _all_tasks() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted(_TASKS.glob("*.yml")):
        for task in _tasks(yaml.safe_load(path.read_text(encoding="utf-8"))):
            if not any(k in task for k in ("block", "import_tasks", "include_tasks")):
                found.append((f"{path.name}: {task.get('name')}", task))
    return found


def _handles_keys(task: dict[str, Any]) -> bool:
    module = next(k for k in task if "." in k)
    if module.endswith(_KEY_MODULES):
        return True
    if module.endswith(("set_fact", "copy", "slurp")):
        return bool(_KEY_MATERIAL.search(yaml.safe_dump(task[module])))
    return False


@pytest.mark.parametrize(("where", "task"), _all_tasks(), ids=[w for w, _task in _all_tasks()])
def test_key_material_is_never_logged(where: str, task: dict[str, Any]) -> None:
    if _handles_keys(task):
        assert task.get("no_log") is True, f"{where} handles key material without no_log"


def test_the_scan_sees_the_key_tasks() -> None:
    assert sum(_handles_keys(task) for _where, task in _all_tasks()) >= 10
