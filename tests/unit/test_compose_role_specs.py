"""roles/compose: defaults/main.yml and meta/argument_specs.yml agree, and every entry point has a spec."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

ROLE = Path(__file__).resolve().parents[2] / "roles" / "compose"
DEFAULTS = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
SPECS = yaml.safe_load((ROLE / "meta" / "argument_specs.yml").read_text())["argument_specs"]
_TYPES = {"str": str, "int": int, "bool": bool, "dict": dict, "list": list}


def test_every_default_is_specified_in_main() -> None:
    options = SPECS["main"]["options"]
    assert set(DEFAULTS) <= set(options), sorted(set(DEFAULTS) - set(options))


def test_main_specifies_nothing_without_a_default() -> None:
    assert set(SPECS["main"]["options"]) == set(DEFAULTS)


@pytest.mark.parametrize("name", sorted(DEFAULTS))
def test_defaults_and_specs_agree(name: str) -> None:
    option = SPECS["main"]["options"][name]
    assert option.get("description"), f"{name} needs a description"
    if option.get("required"):
        assert "default" not in option
        return
    assert option["default"] == DEFAULTS[name], name
    if not (isinstance(DEFAULTS[name], str) and "{{" in DEFAULTS[name]):
        assert isinstance(DEFAULTS[name], _TYPES[option["type"]]), name
    if "choices" in option:
        assert DEFAULTS[name] in option["choices"]


@pytest.mark.parametrize("entry", ["main", "rollback", "list"])
def test_entry_points_have_specs_and_task_files(entry: str) -> None:
    assert SPECS[entry]["short_description"]
    assert (ROLE / "tasks" / f"{entry}.yml").is_file()
    for name, option in SPECS[entry]["options"].items():
        if name in DEFAULTS and not option.get("required"):
            assert option["default"] == DEFAULTS[name], (entry, name)


def test_public_variables_are_prefixed() -> None:
    assert all(name.startswith("compose_") for name in DEFAULTS)
    internal = yaml.safe_load((ROLE / "vars" / "main.yml").read_text())
    assert all(name.startswith("_compose_") for name in internal)
