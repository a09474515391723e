"""roles/docker: defaults/main.yml and meta/argument_specs.yml must not drift apart."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

ROLE = Path(__file__).resolve().parents[4] / "roles" / "docker"
DEFAULTS = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
SPEC = yaml.safe_load((ROLE / "meta" / "argument_specs.yml").read_text())["argument_specs"]["main"]["options"]
TYPES = {"str": str, "path": str, "bool": bool, "list": list, "dict": dict, "int": int}


def test_same_variables():
    assert set(DEFAULTS) == set(SPEC), {
        "only in defaults": sorted(set(DEFAULTS) - set(SPEC)),
        "only in argument_specs": sorted(set(SPEC) - set(DEFAULTS)),
    }


def test_public_names_only():
    assert all(name.startswith("docker_") for name in DEFAULTS)


@pytest.mark.parametrize("name", sorted(SPEC))
def test_spec_entry_complete_and_default_matches(name):
    entry = SPEC[name]
    assert entry.get("description"), f"{name} has no description"
    assert entry["type"] in TYPES, f"{name}: unexpected type {entry['type']}"
    assert "default" in entry, f"{name}: no default in argument_specs"
    assert entry["default"] == DEFAULTS[name], f"{name}: default differs from defaults/main.yml"
    assert isinstance(DEFAULTS[name], TYPES[entry["type"]]), f"{name}: default is not a {entry['type']}"
    if "choices" in entry:
        assert DEFAULTS[name] in entry["choices"], f"{name}: default not among choices"
    if entry["type"] == "list":
        assert "elements" in entry, f"{name}: list without elements"


def test_internal_vars_are_underscored():
    for vars_file in (ROLE / "vars").glob("*.yml"):
        data = yaml.safe_load(vars_file.read_text()) or {}
        bad = [k for k in data if not k.startswith("_docker_")]
        assert not bad, f"{vars_file.name}: {bad}"
