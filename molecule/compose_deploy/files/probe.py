#!/usr/bin/python3
"""Probe the stack's front door at a fixed rate until a stop file appears (or a time limit).

Up to --workers requests are in flight, so a slow answer does not lower the rate sent.

Prints one JSON line: requests, failed, longest_gap_s (between two successful answers), the
three longest gaps with when each began (seconds since the start), releases seen (in order of
first appearance) and the first few errors.
Only ever talks to the URL given (loopback in the tests); bounded in time and count.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import ssl
import threading
import time
from urllib.parse import urlsplit


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default="https://127.0.0.1/health")
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--max-seconds", type=float, default=300.0)
    parser.add_argument("--stop-file", default="/root/probe.stop")
    parser.add_argument("--out", default="")
    # Requests in flight at most: a slow answer (a loaded host) does not lower the rate sent.
    parser.add_argument("--workers", type=int, default=8)
    args = parser.parse_args()
    url = urlsplit(args.url)
    context = ssl._create_unverified_context()  # self-signed test certificate, loopback only
    interval = 1.0 / args.rate
    start = time.monotonic()
    lock = threading.Lock()
    stats = {"sent": 0, "failed": 0, "longest": 0.0, "last_ok": start}
    releases: list[str] = []
    errors: list[str] = []
    gaps: list[tuple[float, float]] = []  # (length, began at), the longest three

    def request() -> None:
        try:
            if url.scheme == "https":
                conn = http.client.HTTPSConnection(url.hostname, url.port or 443, timeout=5, context=context)
            else:
                conn = http.client.HTTPConnection(url.hostname, url.port or 80, timeout=5)
            conn.request("GET", url.path or "/")
            resp = conn.getresponse()
            body = resp.read()
            conn.close()
            if resp.status != 200:
                # The body says who failed (the app's own 503 names its database error).
                raise RuntimeError(f"HTTP {resp.status}: {body[:160]!r}")
            release = json.loads(body).get("release", "?")
            with lock:
                if release not in releases:
                    releases.append(release)
                done = time.monotonic()
                gap = done - stats["last_ok"]
                stats["longest"] = max(stats["longest"], gap)
                if gap > 0.5:
                    gaps.append((gap, stats["last_ok"] - start))
                    gaps.sort(reverse=True)
                    del gaps[3:]
                stats["last_ok"] = max(stats["last_ok"], done)
        except Exception as exc:  # every failure counts, whatever it is
            with lock:
                stats["failed"] += 1
                if len(errors) < 5:
                    errors.append(f"{time.monotonic() - start:.2f}s {type(exc).__name__}: {exc}")

    def worker(index: int) -> None:
        # Worker i sends ticks i, i + workers, i + 2 * workers, ... of the fixed schedule.
        tick = index
        while True:
            due = start + tick * interval
            now = time.monotonic()
            if due - start >= args.max_seconds or os.path.exists(args.stop_file):
                return
            if now < due:
                time.sleep(due - now)
                if os.path.exists(args.stop_file):
                    return
            with lock:
                stats["sent"] += 1
            request()
            tick += args.workers

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(max(1, args.workers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stats["longest"] = max(stats["longest"], time.monotonic() - stats["last_ok"])
    result = {"requests": stats["sent"], "failed": stats["failed"], "longest_gap_s": round(stats["longest"], 3),
              "gaps": [[round(length, 2), round(began, 1)] for length, began in gaps],
              "releases": releases, "seconds": round(time.monotonic() - start, 1), "errors": errors}
    text = json.dumps(result)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
