#!/usr/bin/python3
"""Probe a front door at a steady rate with a few keep-alive connections, until a stop file appears.

Requests are scheduled at --rate per second (one slot every 1/rate s) and sent by --workers
threads, each over its own persistent HTTPS connection: no TLS handshake per request, and one
slow answer does not hold back the next slot. A connection the server closed while idle (what
every HTTP client retries) is reopened and the request sent once more; any other error, a
timeout or a status other than 200 counts as a failed request.

Writes one JSON object: requests, ok, failed, seconds, rate (requests sent per second),
error_seconds (the time during which the latest answer was a failure: from a failure to the
next success, summed), failed_window_s (first to last failure), longest_gap_s (between two
successful answers), releases (in order of first appearance) and the first errors.
--ready-file is created after the first successful answer. Only ever talks to the URL given
(loopback in the tests); bounded in time.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import ssl
import threading
import time
from typing import Any
from urllib.parse import urlsplit

# Raised when a kept-alive connection was closed by the server before it answered.
_STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError, ssl.SSLEOFError)


class Probe:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.url = urlsplit(args.url)
        self.context = ssl._create_unverified_context()  # self-signed test certificate, loopback only
        self.lock = threading.Lock()
        self.start = time.monotonic()
        self.slot = 0
        self.ok = self.failed = 0
        self.first_fail: float | None = None
        self.last_fail: float | None = None
        self.last_ok = self.start
        self.longest = 0.0
        self.releases: list[str] = []
        self.errors: list[str] = []
        self.ready = False
        self.failing_since: float | None = None
        self.error_time = 0.0

    def stopped(self) -> bool:
        return time.monotonic() - self.start >= self.args.max_seconds or os.path.exists(self.args.stop_file)

    def connect(self) -> http.client.HTTPConnection:
        if self.url.scheme == "https":
            return http.client.HTTPSConnection(
                self.url.hostname, self.url.port or 443, timeout=self.args.timeout, context=self.context
            )
        return http.client.HTTPConnection(self.url.hostname, self.url.port or 80, timeout=self.args.timeout)

    def next_slot(self) -> float:
        """The next slot at most one second in the past: slots a slow server made the workers miss
        are dropped (they lower the rate measured) rather than sent in a burst."""
        with self.lock:
            late = int((time.monotonic() - self.start - 1.0) * self.args.rate)
            self.slot = max(self.slot, late)
            at = self.start + self.slot / self.args.rate
            self.slot += 1
        return at

    def get(self, conn: http.client.HTTPConnection | None) -> tuple[http.client.HTTPConnection, int, bytes]:
        reused = conn is not None
        if conn is None:
            conn = self.connect()
        try:
            conn.request("GET", self.url.path or "/")
            resp = conn.getresponse()
            return conn, resp.status, resp.read()
        except _STALE:
            conn.close()
            if not reused:
                raise
        conn = self.connect()
        conn.request("GET", self.url.path or "/")
        resp = conn.getresponse()
        return conn, resp.status, resp.read()

    def record(self, release: str | None, error: str | None) -> None:
        now = time.monotonic()
        with self.lock:
            if error is None:
                if self.failing_since is not None:
                    self.error_time += now - self.failing_since
                    self.failing_since = None
                self.ok += 1
                self.longest = max(self.longest, now - self.last_ok)
                self.last_ok = now
                if release not in self.releases:
                    self.releases.append(str(release))
                if not self.ready and self.args.ready_file:
                    self.ready = True
                    with open(self.args.ready_file, "w", encoding="utf-8") as handle:
                        handle.write("ready\n")
            else:
                self.failed += 1
                if self.failing_since is None:
                    self.failing_since = now
                self.first_fail = now if self.first_fail is None else self.first_fail
                self.last_fail = now
                if len(self.errors) < 8:
                    self.errors.append(f"{now - self.start:.2f}s {error}")

    def worker(self) -> None:
        conn: http.client.HTTPConnection | None = None
        while not self.stopped():
            at = self.next_slot()
            wait = at - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            try:
                conn, status, body = self.get(conn)
                if status != 200:
                    raise RuntimeError(f"HTTP {status}: {body[:120]!r}")
                self.record(json.loads(body).get("release", "?"), None)
            except Exception as exc:  # every failure counts, whatever it is
                if conn is not None:
                    conn.close()
                conn = None
                self.record(None, f"{type(exc).__name__}: {exc}")
        if conn is not None:
            conn.close()

    def run(self) -> dict[str, Any]:
        threads = [threading.Thread(target=self.worker, daemon=True) for _ in range(self.args.workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(self.args.max_seconds + self.args.timeout * 3)
        seconds = time.monotonic() - self.start
        with self.lock:
            # Slots taken by workers that stopped before sending do not count as sent.
            sent = self.ok + self.failed
            rate = sent / seconds if seconds else 0.0
            self.longest = max(self.longest, time.monotonic() - self.last_ok)
            if self.failing_since is not None:
                self.error_time += time.monotonic() - self.failing_since
            return {
                "requests": sent,
                "ok": self.ok,
                "failed": self.failed,
                "seconds": round(seconds, 1),
                "rate": round(rate, 1),
                "error_seconds": round(self.error_time, 2),
                "failed_window_s": round(self.last_fail - self.first_fail, 2) if self.first_fail is not None else 0.0,
                "longest_gap_s": round(self.longest, 3),
                "releases": self.releases,
                "errors": self.errors,
            }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default="https://127.0.0.1/health")
    parser.add_argument("--rate", type=float, default=30.0)
    parser.add_argument("--workers", type=int, default=6)
    parser.add_argument("--timeout", type=float, default=5.0)
    parser.add_argument("--max-seconds", type=float, default=300.0)
    parser.add_argument("--stop-file", default="/root/probe.stop")
    parser.add_argument("--ready-file", default="")
    parser.add_argument("--out", default="")
    args = parser.parse_args()
    text = json.dumps(Probe(args).run())
    if args.out:
        tmp = args.out + ".tmp"
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")
        os.replace(tmp, args.out)
    print(text)


if __name__ == "__main__":
    main()
