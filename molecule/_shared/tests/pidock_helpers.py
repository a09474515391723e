"""Assertions shared by the scenarios' testinfra tests.

Everything here runs commands inside a test host through testinfra's ``host`` fixture and
returns parsed results, so a test states the expected state in one line.
"""

from __future__ import annotations

import json
from typing import Any


def run_ok(host: Any, command: str, *args: str) -> str:
    """Run a command in the host; fail the test with its output if it exits non-zero."""
    result = host.run(command, *args)
    shown = command % args if args else command
    assert result.rc == 0, f"{shown!r} failed rc={result.rc}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def http(host: Any, url: str, *, insecure: bool = False, resolve: str | None = None) -> tuple[int, str]:
    """GET a URL with curl from inside the host; return (status, body)."""
    opts = "-sS --max-time 10 -o /root/.pidock-http-body -w '%{http_code}'"
    if insecure:
        opts += " -k"
    if resolve:
        opts += f" --resolve {resolve}"
    status = run_ok(host, f"curl {opts} {url}").strip()
    body = host.file("/root/.pidock-http-body").content_string
    return int(status), body


def http_json(host: Any, url: str, **kwargs: Any) -> tuple[int, dict[str, Any]]:
    status, body = http(host, url, **kwargs)
    return status, json.loads(body)


def docker_inspect(host: Any, name: str) -> dict[str, Any]:
    return json.loads(run_ok(host, "docker inspect %s", name))[0]


def docker_info(host: Any) -> dict[str, Any]:
    return json.loads(run_ok(host, "docker info --format '{{json .}}'"))


def version_tuple(text: str) -> tuple[int, ...]:
    """'2.26.1+ds1-1' -> (2, 26, 1)."""
    core = text.strip().lstrip("v").split("+")[0].split("-")[0]
    return tuple(int(p) for p in core.split(".") if p.isdigit())
