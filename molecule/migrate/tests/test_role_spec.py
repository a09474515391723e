"""pidock.stack.migrate's defaults and argument_specs agree (names, defaults), so neither drifts."""

from __future__ import annotations

from pathlib import Path

import yaml

_ROLE = Path(__file__).resolve().parents[3] / "roles" / "migrate"


def _load(rel: str) -> dict:
    return yaml.safe_load((_ROLE / rel).read_text(encoding="utf-8"))


def test_every_default_is_specified_with_the_same_default():
    defaults = _load("defaults/main.yml")
    for entry, spec in _load("meta/argument_specs.yml")["argument_specs"].items():
        options = spec["options"]
        assert set(options) == set(defaults), entry
        for name, option in options.items():
            assert option.get("default") == defaults[name], name
            assert option.get("description"), name


def test_internal_names_stay_internal():
    assert all(name.startswith("migrate_") for name in _load("defaults/main.yml"))
    assert all(name.startswith("_migrate_") for name in _load("vars/main.yml"))
