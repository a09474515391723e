"""Unit tests for molecule/swarm/files/probe.py against a local HTTP server: the rate it holds,
what counts as a failure, and that a kept-alive connection closed by the server is not one."""

from __future__ import annotations

import argparse
import http.server
import importlib.util
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

_PATH = Path(__file__).resolve().parents[3] / "molecule" / "swarm" / "files" / "probe.py"
_spec = importlib.util.spec_from_file_location("swarm_probe", _PATH)
assert _spec and _spec.loader
probe = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(probe)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    plan: ClassVar[dict[str, Any]] = {}

    def do_GET(self) -> None:
        with self.plan["lock"]:
            self.plan["n"] += 1
            n = self.plan["n"]
        status = 500 if n in self.plan["fail"] else 200
        body = json.dumps({"release": "v2" if n > self.plan["switch"] else "v1"}).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        if n % self.plan["close_every"] == 0:
            # Drop the kept-alive connection after answering, as a server does after keepalive_requests.
            self.close_connection = True

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[tuple[str, dict[str, Any]]]:
    plan: dict[str, Any] = {"n": 0, "fail": set(), "switch": 10**9, "close_every": 10**9, "lock": threading.Lock()}
    handler = type("H", (_Handler,), {"plan": plan})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/health", plan
    httpd.shutdown()
    httpd.server_close()


def _run(url: str, tmp_path: Path, seconds: float = 1.5, rate: float = 40) -> dict[str, Any]:
    args = argparse.Namespace(
        url=url,
        rate=rate,
        workers=4,
        timeout=2.0,
        max_seconds=seconds,
        stop_file=str(tmp_path / "stop"),
        ready_file=str(tmp_path / "ready"),
        out="",
    )
    return probe.Probe(args).run()


def test_holds_the_rate_and_reports_releases_in_order(server: Any, tmp_path: Path) -> None:
    url, plan = server
    plan["switch"] = 20
    got = _run(url, tmp_path)
    assert got["failed"] == 0 and got["ok"] == got["requests"]
    assert got["rate"] >= 30, got
    assert got["releases"] == ["v1", "v2"]
    assert (tmp_path / "ready").exists()


def test_a_bad_status_is_a_failure(server: Any, tmp_path: Path) -> None:
    url, plan = server
    plan["fail"] = {5, 6, 7}
    got = _run(url, tmp_path)
    assert got["failed"] == 3, got
    assert got["errors"][0].split(" ", 1)[1].startswith("RuntimeError: HTTP 500")
    # Three failures in a row at 40/s: about 3 slots (75 ms) of errors until the next success.
    assert 0.03 < got["error_seconds"] < 0.3, got


def test_a_connection_closed_while_idle_is_reopened_not_failed(server: Any, tmp_path: Path) -> None:
    url, plan = server
    plan["close_every"] = 3
    got = _run(url, tmp_path)
    assert got["failed"] == 0, got
    assert got["requests"] >= 40


def test_nothing_listening_fails_every_request(tmp_path: Path) -> None:
    got = _run("http://127.0.0.1:9/health", tmp_path, seconds=0.5, rate=20)
    assert got["requests"] > 0 and got["failed"] == got["requests"]
    assert got["error_seconds"] >= 0.4, got
    assert not (tmp_path / "ready").exists()
