#!/usr/bin/env python3
"""Render each role's variables table from meta/argument_specs.yml into README.md.

README.md holds marker pairs:
    <!-- BEGIN argument_specs ROLE ENTRY -->
    ...generated table...
    <!-- END argument_specs ROLE ENTRY -->
`role_docs.py` rewrites what stands between them; `role_docs.py --check` exits 1 when README.md
is not what the specs say (the unit tests run it), so docs and argument_specs cannot drift.
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
    r"(<!-- BEGIN argument_specs (?P<role>[\w-]+) (?P<entry>[\w-]+) -->\n)"
    r"(?P<body>.*?)"
    r"(<!-- END argument_specs (?P=role) (?P=entry) -->)",
    re.S,
)


def load_specs(role: str) -> dict[str, Any]:
    path = ROOT / "roles" / role / "meta" / "argument_specs.yml"
    return yaml.safe_load(path.read_text(encoding="utf-8"))["argument_specs"]


def _cell(value: Any) -> str:
    text = " ".join(str(value).split())
    return text.replace("|", "\\|")


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


def render(role: str, entry: str) -> str:
    spec = load_specs(role)[entry]
    options: dict[str, Any] = spec.get("options", {}) or {}
    lines = ["| variable | type | default | description |", "| --- | --- | --- | --- |"]
    for name in sorted(options):
        opt = options[name] or {}
        desc = opt.get("description", "")
        if isinstance(desc, list):
            desc = " ".join(desc)
        lines.append(f"| `{name}` | {_cell(_type(opt))} | {_default(opt)} | {_cell(desc)} |")
    return "\n".join(lines) + "\n"


def rewrite(text: str) -> str:
    def _sub(match: re.Match[str]) -> str:
        return match.group(1) + render(match.group("role"), match.group("entry")) + match.group(5)

    return MARKER.sub(_sub, text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="exit 1 if README.md is out of date")
    parser.add_argument("--readme", type=Path, default=ROOT / "README.md")
    args = parser.parse_args()
    current = args.readme.read_text(encoding="utf-8")
    wanted = rewrite(current)
    if args.check:
        if current != wanted:
            print(f"{args.readme} is out of date with argument_specs: run `make docs`", file=sys.stderr)
            return 1
        return 0
    if current != wanted:
        args.readme.write_text(wanted, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
