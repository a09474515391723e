"""Shared fixtures for the plugins' unit tests.

`run_module(main, args, check_mode=False)` runs a module's main() with the given arguments and
returns its result dict; a module that calls fail_json raises ModuleFailed carrying the result.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args
from ansible_collections.pidock.stack.plugins.module_utils import _progress
from ansible_collections.pidock.stack.plugins.modules import tree_manifest


class ModuleExited(Exception):
    """exit_json was called."""

    def __init__(self, result: dict[str, Any]) -> None:
        super().__init__(result)
        self.result = result


class ModuleFailed(Exception):
    """fail_json was called."""

    def __init__(self, result: dict[str, Any]) -> None:
        super().__init__(result.get("msg"))
        self.result = result


def _exit_json(self: basic.AnsibleModule, **kwargs: Any) -> None:
    kwargs.setdefault("changed", False)
    raise ModuleExited(kwargs)


def _fail_json(self: basic.AnsibleModule, msg: str, **kwargs: Any) -> None:
    kwargs["failed"] = True
    kwargs["msg"] = msg
    raise ModuleFailed(kwargs)


RunModule = Callable[..., dict[str, Any]]


@pytest.fixture
def run_module(monkeypatch: pytest.MonkeyPatch) -> RunModule:
    monkeypatch.setattr(basic.AnsibleModule, "exit_json", _exit_json)
    monkeypatch.setattr(basic.AnsibleModule, "fail_json", _fail_json)

    def _run(main: Callable[[], None], args: dict[str, Any], check_mode: bool = False) -> dict[str, Any]:
        full = dict(args)
        if check_mode:
            full["_ansible_check_mode"] = True
        with patch_module_args(full):
            try:
                main()
            except ModuleExited as done:
                return done.result
        raise AssertionError("module returned without calling exit_json or fail_json")

    return _run


@pytest.fixture
def written(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Every progress record written from then on (the file is still written)."""
    records: list[dict[str, Any]] = []
    real = _progress.write_atomic

    def recording(path: str, data: str, mode: int = 0o644) -> None:
        records.append(json.loads(data))
        real(path, data, mode)

    monkeypatch.setattr(_progress, "write_atomic", recording)
    return records


@pytest.fixture
def progress(written: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Every progress record tree_manifest writes, with the meter rewriting the file at every clock look."""
    monkeypatch.setattr(tree_manifest, "_PROGRESS_INTERVAL", 0.0)
    return written
