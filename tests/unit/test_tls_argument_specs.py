"""roles/tls: defaults/main.yml and meta/argument_specs.yml describe the same variables."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

_ROLE = Path(__file__).resolve().parents[2] / "roles" / "tls"
_TYPES: dict[str, type | tuple[type, ...]] = {"str": str, "path": str, "int": int, "bool": bool, "list": list}


def _load(relative: str) -> dict[str, Any]:
    with (_ROLE / relative).open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


DEFAULTS = _load("defaults/main.yml")
OPTIONS = _load("meta/argument_specs.yml")["argument_specs"]["main"]["options"]


def test_same_variables() -> None:
    assert sorted(DEFAULTS) == sorted(OPTIONS)


def test_public_names_only() -> None:
    assert all(name.startswith("tls_") and not name.startswith("_") for name in DEFAULTS)


@pytest.mark.parametrize("name", sorted(OPTIONS))
def test_option_is_described_and_typed(name: str) -> None:
    spec = OPTIONS[name]
    assert spec.get("description"), f"{name} has no description"
    assert spec.get("type") in _TYPES, f"{name} has no known type"


@pytest.mark.parametrize("name", sorted(DEFAULTS))
def test_default_agrees(name: str) -> None:
    spec = OPTIONS[name]
    value = DEFAULTS[name]
    assert spec.get("default") == value, f"{name}: spec default {spec.get('default')!r} != {value!r}"
    assert isinstance(value, _TYPES[spec["type"]]), f"{name}: default {value!r} is not {spec['type']}"
    if "choices" in spec:
        assert value in spec["choices"], f"{name}: default {value!r} not in {spec['choices']}"


def test_modes_each_have_a_task_file() -> None:
    for mode in OPTIONS["tls_mode"]["choices"]:
        assert (_ROLE / "tasks" / f"{mode}.yml").is_file(), mode
