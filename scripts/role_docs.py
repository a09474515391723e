#!/usr/bin/env python3
"""Generate the entry point and variable reference of each role's README from meta/argument_specs.yml.

Every roles/<role>/README.md holds one marker pair:
    <!-- BEGIN argument_specs ROLE -->
    ...generated: every entry point with its description and a variables table...
    <!-- END argument_specs ROLE -->
`role_docs.py` rewrites what stands between them; `role_docs.py --check` exits 1 when a README is
not what the specs say, or lacks the markers (the unit tests run it), so docs and argument_specs
cannot drift. Ansible's documentation markup (C(), O(), V(), ...) becomes Markdown.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
MARKER = re.compile(
    r"(?P<begin><!-- BEGIN argument_specs (?P<role>[\w-]+) -->\n)"
    r"(?P<body>.*?)"
    r"(?P<end><!-- END argument_specs (?P=role) -->)",
    re.S,
)
# Ansible's markup (https://docs.ansible.com/ansible/latest/dev_guide/ansible_markup.html); the
# argument ends at the first ")", as ansible-doc reads it.
_MARKUP = re.compile(r"\b(?P<kind>RV|[CIBMOPVEUL])\((?P<arg>[^)]*)\)")
_HORIZONTAL = re.compile(r"\bHORIZONTALLINE\b")


def markdown(text: str) -> str:
    """Ansible documentation markup to Markdown."""

    def _sub(match: re.Match[str]) -> str:
        kind, arg = match.group("kind"), match.group("arg")
        if kind == "I":
            return f"*{arg}*"
        if kind == "B":
            return f"**{arg}**"
        if kind == "U":
            return f"<{arg}>"
        if kind == "L":
            label, _comma, url = arg.rpartition(",")
            return f"[{label.strip()}]({url.strip()})"
        if kind == "P":
            return "`" + arg.split("#", 1)[0] + "`"
        if kind in ("O", "V", "RV"):
            # O(name=value) and V(value) keep their text; only the markup goes.
            return "`" + arg + "`"
        return "`" + arg + "`"  # C, M, E

    return _HORIZONTAL.sub("---", _MARKUP.sub(_sub, text))


def load_specs(role: str) -> dict[str, Any]:
    path = ROOT / "roles" / role / "meta" / "argument_specs.yml"
    return yaml.safe_load(path.read_text(encoding="utf-8"))["argument_specs"]


def _text(value: Any) -> str:
    if isinstance(value, list):
        value = " ".join(str(v) for v in value)
    return markdown(" ".join(str(value or "").split()))


def _cell(value: Any) -> str:
    return _text(value).replace("|", "\\|")


def _type(opt: dict[str, Any]) -> str:
    kind = opt.get("type", "str")
    if kind == "list" and "elements" in opt:
        kind = f"list of {opt['elements']}"
    if "choices" in opt:
        kind += " (" + ", ".join(f"`{c}`" for c in opt["choices"]) + ")"
    return kind


def _default(opt: dict[str, Any]) -> str:
    if opt.get("required"):
        return "**required**"
    if "default" not in opt:
        return ""
    return "`" + json.dumps(opt["default"], ensure_ascii=False).replace("|", "\\|") + "`"


def _table(options: dict[str, Any]) -> list[str]:
    lines = ["| variable | type | default | description |", "| --- | --- | --- | --- |"]
    for name in sorted(options):
        opt = options[name] or {}
        lines.append(f"| `{name}` | {_cell(_type(opt))} | {_default(opt)} | {_cell(opt.get('description', ''))} |")
    return lines


def render(role: str) -> str:
    """Every entry point of the role: heading, description, variables (main first)."""
    specs = load_specs(role)
    entries = sorted(specs, key=lambda e: (e != "main", e))
    main_options = (specs.get("main") or {}).get("options") or {}
    out: list[str] = []
    for entry in entries:
        spec = specs[entry] or {}
        options = spec.get("options") or {}
        if entry == "main":
            call = f"Use: `roles: [pidock.stack.{role}]` or `include_role: {{name: pidock.stack.{role}}}`."
        else:
            call = f"Use: `include_role: {{name: pidock.stack.{role}, tasks_from: {entry}}}`."
        out += [f"### Entry point `{entry}` — {_text(spec.get('short_description', ''))}", "", call, ""]
        description = spec.get("description") or []
        for paragraph in description if isinstance(description, list) else [description]:
            out += [_text(paragraph), ""]
        if entry != "main" and options and options == main_options:
            out += ["Takes the same variables as `main`.", ""]
        elif options:
            out += [*_table(options), ""]
        else:
            out += ["No variables.", ""]
    return "\n".join(out)


def rewrite(text: str) -> str:
    def _sub(match: re.Match[str]) -> str:
        return match.group("begin") + render(match.group("role")) + match.group("end")

    return MARKER.sub(_sub, text)


def roles() -> list[str]:
    return sorted(p.parent.parent.name for p in ROOT.glob("roles/*/meta/argument_specs.yml"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="exit 1 if a role README is out of date")
    args = parser.parse_args()
    stale = []
    for role in roles():
        readme = ROOT / "roles" / role / "README.md"
        current = readme.read_text(encoding="utf-8") if readme.exists() else ""
        if not MARKER.search(current):
            print(f"{readme}: no <!-- BEGIN/END argument_specs {role} --> markers", file=sys.stderr)
            stale.append(readme)
            continue
        wanted = rewrite(current)
        if current == wanted:
            continue
        if args.check:
            print(f"{readme} is out of date with argument_specs: run `make docs`", file=sys.stderr)
            stale.append(readme)
        else:
            readme.write_text(wanted, encoding="utf-8")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
