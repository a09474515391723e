#!/usr/bin/env python3
"""No secret in the logs: a static check of the roles, and a scan of logs for the test secrets.

    secret_leaks.py lint          every role task that handles a secret carries no_log: true
                                  (`make lint` runs it)
    secret_leaks.py scan LOG...   none of the test secrets below appears in the logs (the compose_deploy
                                  scenario scans a deploy at -vvv --diff, migrate its whole run at -v)

Exit status 1 names what leaked (never the value itself).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent

# The secrets the scenarios use, by where they are set (tests/unit/test_secret_leaks.py checks
# that each is still what the scenario sets). A fragment is enough: a partial leak counts.
TEST_SECRETS = {
    "compose_deploy compose_secrets.POSTGRES_PASSWORD": "s3cret-inventory",
    "migrate migrate_test_db_password": "bare-metal-secret",
    "docker_pi docker_proxy_env credentials": "proxy-s3cret",
    "tls_modes tls_ca_key_passphrase": "guard-passphrase-h14",
}

# Variables that hold secret values (key material in the tls role: tests/unit/test_tls_no_log.py).
_SECRET_VARS = re.compile(
    r"\b(?:compose_secrets|__migrate_secrets|tls_ca_key_passphrase|_tls_ca_passphrase|docker_proxy_env)\b"
)
# Modules that print, write or pass on what they are given.
_LEAKY = (
    "template", "copy", "set_fact", "debug", "command", "shell", "slurp", "uri", "lineinfile",
    "openssl_privatekey_pipe", "openssl_privatekey_info", "openssl_csr_pipe", "x509_certificate_pipe",
)
# What may mention a secret variable without its value reaching any output.
_SAFE = re.compile(r"\b\w+\.keys\(\)|\bdocker_proxy_env \| length|\bcompose_secrets \| to_json \| hash\(")


def _tasks(items: Any, inherited_no_log: bool = False) -> Iterator[tuple[dict[str, Any], bool]]:
    for task in items or []:
        if not isinstance(task, dict):
            continue
        no_log = task.get("no_log", inherited_no_log) is True
        sections = [s for s in ("block", "rescue", "always") if s in task]
        if sections:
            for section in sections:
                yield from _tasks(task[section], no_log)
        else:
            yield task, no_log


def lint() -> list[str]:
    problems = []
    for path in sorted(ROOT.glob("roles/*/tasks/*.yml")):
        for task, no_log in _tasks(yaml.safe_load(path.read_text())):
            module = next((k for k in task if "." in k and k.split(".")[-1] in _LEAKY), None)
            if module is None or no_log:
                continue
            args = task[module]
            text = yaml.safe_dump({module: args, "vars": task.get("vars"), "loop": task.get("loop")})
            if module.endswith("template") and isinstance(args, dict):  # what the template renders
                source = path.parent.parent / "templates" / str(args.get("src", ""))
                text += source.read_text() if source.is_file() else ""
            text = _SAFE.sub("", text)
            if _SECRET_VARS.search(text):
                problems.append(f"{path.relative_to(ROOT)}: '{task.get('name')}' handles a secret without no_log: true")
    return problems


def scan(logs: list[str]) -> list[str]:
    problems = []
    for log in logs:
        text = Path(log).read_text(errors="replace")
        for where, secret in TEST_SECRETS.items():
            count = text.count(secret)
            if count:
                problems.append(f"{log}: the test secret of {where} appears {count} time(s)")
    return problems


def main(argv: list[str]) -> int:
    if argv[:1] == ["lint"] and len(argv) == 1:
        problems = lint()
    elif argv[:1] == ["scan"] and len(argv) > 1:
        problems = scan(argv[1:])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
