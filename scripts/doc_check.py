#!/usr/bin/env python3
"""Render the documentation of every module, filter and role entry point of pidock.stack with
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


def main() -> int:
    targets: list[tuple[str, str]] = []
    targets += [("module", p.stem) for p in sorted((ROOT / "plugins" / "modules").glob("*.py"))]
    targets += [("filter", name) for name in _filters()]
    targets += [("role", p.parent.parent.name) for p in sorted(ROOT.glob("roles/*/meta/argument_specs.yml"))]
    failed = 0
    for kind, name in targets:
        done = _run("-t", kind, "--json", PREFIX + name)
        problem = ""
        if done.returncode != 0:
            problem = f"exit {done.returncode}"
        elif done.stderr.strip():
            problem = "stderr"
        else:
            try:
                data = json.loads(done.stdout)
            except json.JSONDecodeError:
                data = {}
            doc = (data.get(PREFIX + name) or {})
            if not (doc.get("doc") or doc.get("entry_points")):
                problem = "no documentation"
        if problem:
            failed += 1
            print(f"FAIL {kind} {PREFIX}{name}: {problem}\n{done.stderr.strip()}", file=sys.stderr)
        else:
            print(f"ok   {kind} {PREFIX}{name}")
    print(f"ansible-doc: {len(targets) - failed} of {len(targets)} render")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
