#!/usr/bin/env python3
"""Render the documentation of every module, filter, lookup and role entry point of pidock.stack with
ansible-doc; fail when one does not render or ansible-doc prints anything on stderr (it only
warns, "Unable to parse documentation", and carries on, so a broken doc would otherwise pass).

The list of plugins comes from the files (plugins/modules/*.py, every filter that a FilterModule
in plugins/filter/ returns, roles/*/meta/argument_specs.yml), not from ansible-doc's own listing,
which leaves out what it cannot parse.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PREFIX = "pidock.stack."


def _collections_path() -> Path:
    """Where pidock.stack resolves: the real ansible_collections parent when the checkout already
    sits at .../ansible_collections/pidock/stack (ansible-doc does not find roles through the
    collections/ symlink then), otherwise the checkout's collections/ symlink."""
    if ROOT.parent.name == "pidock" and ROOT.parent.parent.name == "ansible_collections":
        return ROOT.parents[2]
    return ROOT / "collections"


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    env = dict(
        os.environ,
        ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
        ANSIBLE_COLLECTIONS_PATH=str(_collections_path()),
        ANSIBLE_NOCOLOR="1",
    )
    return subprocess.run(["ansible-doc", *argv], cwd=ROOT, env=env, capture_output=True, text=True, check=False)


def _filters() -> list[str]:
    """Filter names straight from the FilterModule classes (imported from the checkout)."""
    sys.path.insert(0, str(_collections_path()))
    import importlib

    names: list[str] = []
    for path in sorted((ROOT / "plugins" / "filter").glob("*.py")):
        module = importlib.import_module(f"ansible_collections.pidock.stack.plugins.filter.{path.stem}")
        names += list(module.FilterModule().filters())
    return sorted(names)


def _problems(kind: str, names: list[str]) -> dict[str, str]:
    """ansible-doc for NAMES of one KIND in one call: {name: problem} for those that do not render.

    A failing call or any stderr is pinned on a plugin by asking for each one alone.
    """
    done = _run("-t", kind, "--json", *(PREFIX + n for n in names))
    if len(names) > 1 and (done.returncode != 0 or done.stderr.strip()):
        found: dict[str, str] = {}
        for name in names:
            found.update(_problems(kind, [name]))
        return found
    if done.returncode != 0:
        return {names[0]: f"exit {done.returncode}\n{done.stderr.strip()}"}
    if done.stderr.strip():
        return {names[0]: f"stderr\n{done.stderr.strip()}"}
    try:
        data = json.loads(done.stdout)
    except json.JSONDecodeError:
        data = {}
    problems: dict[str, str] = {}
    for name in names:
        doc = data.get(PREFIX + name) or {}
        if not (doc.get("doc") or doc.get("entry_points")):
            problems[name] = "no documentation"
    return problems


def main() -> int:
    targets: dict[str, list[str]] = {
        "module": [p.stem for p in sorted((ROOT / "plugins" / "modules").glob("*.py"))],
        "filter": _filters(),
        "lookup": [p.stem for p in sorted((ROOT / "plugins" / "lookup").glob("*.py"))],
        "role": [p.parent.parent.name for p in sorted(ROOT.glob("roles/*/meta/argument_specs.yml"))],
    }
    total = failed = 0
    for kind, names in targets.items():
        if not names:
            continue
        problems = _problems(kind, names)
        for name in names:
            total += 1
            if name in problems:
                failed += 1
                print(f"FAIL {kind} {PREFIX}{name}: {problems[name]}", file=sys.stderr)
            else:
                print(f"ok   {kind} {PREFIX}{name}")
    print(f"ansible-doc: {total - failed} of {total} render")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
