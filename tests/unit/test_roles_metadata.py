"""Every role's defaults, argument_specs and README tables agree.

- every public variable in defaults/main.yml is declared in the main entry point's spec, with the
  same default (so `ansible-doc`/README and the role's behaviour cannot drift);
- every spec option with a default is in defaults/main.yml;
- every public variable carries the role prefix and a description;
- every role has a README.md whose generated reference is current (scripts/role_docs.py --check),
  with no Ansible markup left in it;
- every role's min_ansible_version is the lower bound of meta/runtime.yml's requires_ansible.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ROLES = sorted(p.parent.parent.name for p in ROOT.glob("roles/*/meta/argument_specs.yml"))


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8")) or {}


def _main_options(role: str) -> dict[str, Any]:
    specs = _yaml(ROOT / "roles" / role / "meta" / "argument_specs.yml")["argument_specs"]
    return specs["main"].get("options", {}) or {}


def _defaults(role: str) -> dict[str, Any]:
    path = ROOT / "roles" / role / "defaults" / "main.yml"
    return _yaml(path) if path.exists() else {}


def _prefix(role: str) -> str:
    return role.replace("-", "_") + "_"


@pytest.mark.parametrize("role", ROLES)
def test_every_default_is_declared_with_the_same_default(role: str) -> None:
    options = _main_options(role)
    for name, value in _defaults(role).items():
        assert name in options, f"roles/{role}: default {name} is not in argument_specs main"
        assert "default" in options[name] or options[name].get("required"), (
            f"roles/{role}: {name} has a default in defaults/main.yml but none in argument_specs"
        )
        if "default" in options[name]:
            assert options[name]["default"] == value, f"roles/{role}: {name} defaults disagree"


@pytest.mark.parametrize("role", ROLES)
def test_every_spec_default_is_in_defaults(role: str) -> None:
    defaults = _defaults(role)
    for name, opt in _main_options(role).items():
        if opt and "default" in opt:
            assert name in defaults, f"roles/{role}: {name} has a spec default but is missing from defaults/main.yml"


@pytest.mark.parametrize("role", ROLES)
def test_public_variables_are_prefixed_and_described(role: str) -> None:
    specs = _yaml(ROOT / "roles" / role / "meta" / "argument_specs.yml")["argument_specs"]
    for entry, spec in specs.items():
        assert spec.get("short_description"), f"roles/{role}: entry point {entry} has no short_description"
        for name, opt in (spec.get("options") or {}).items():
            assert name.startswith(_prefix(role)), f"roles/{role}: {name} lacks the {_prefix(role)} prefix"
            assert (opt or {}).get("description"), f"roles/{role}: {name} has no description"


@pytest.mark.skipif(not ROLES, reason="no roles yet")
def test_readme_tables_match_argument_specs() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "role_docs.py"), "--check"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("role", ROLES)
def test_role_readme_has_no_ansible_markup(role: str) -> None:
    text = (ROOT / "roles" / role / "README.md").read_text(encoding="utf-8")
    leaks = re.findall(r"\b(?:RV|[CIBMOPVEUL])\([^)]*\)", text)
    assert not leaks, f"roles/{role}/README.md: ansible-doc markup left: {leaks[:5]}"


@pytest.mark.parametrize("role", ROLES)
def test_min_ansible_version_matches_runtime(role: str) -> None:
    requires = _yaml(ROOT / "meta" / "runtime.yml")["requires_ansible"]
    lower = re.search(r">=\s*(\d+\.\d+)", requires)
    assert lower, requires
    meta = _yaml(ROOT / "roles" / role / "meta" / "main.yml")["galaxy_info"]
    assert str(meta["min_ansible_version"]) == lower.group(1), (
        f"roles/{role}: min_ansible_version {meta['min_ansible_version']} but meta/runtime.yml says {requires}"
    )
