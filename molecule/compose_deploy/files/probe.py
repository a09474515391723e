#!/usr/bin/python3
"""Probe the stack's front door at a fixed rate until a stop file appears (or a time limit).

Prints one JSON line: requests, failed, longest_gap_s (between two successful answers),
releases seen (in order of first appearance) and the first few errors.
Only ever talks to the URL given (loopback in the tests); bounded in time and count.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import ssl
import time
from urllib.parse import urlsplit


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default="https://127.0.0.1/health")
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--max-seconds", type=float, default=300.0)
    parser.add_argument("--stop-file", default="/root/probe.stop")
    parser.add_argument("--out", default="")
    args = parser.parse_args()
    url = urlsplit(args.url)
    context = ssl._create_unverified_context()  # self-signed test certificate, loopback only
    interval = 1.0 / args.rate
    start = time.monotonic()
    last_ok = start
    longest = 0.0
    sent = failed = 0
    releases: list[str] = []
    errors: list[str] = []
    next_at = start
    while time.monotonic() - start < args.max_seconds and not os.path.exists(args.stop_file):
        now = time.monotonic()
        if now < next_at:
            time.sleep(next_at - now)
        next_at += interval
        sent += 1
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
                raise RuntimeError(f"HTTP {resp.status}")
            release = json.loads(body).get("release", "?")
            if release not in releases:
                releases.append(release)
            done = time.monotonic()
            longest = max(longest, done - last_ok)
            last_ok = done
        except Exception as exc:  # every failure counts, whatever it is
            failed += 1
            if len(errors) < 5:
                errors.append(f"{time.monotonic() - start:.2f}s {type(exc).__name__}: {exc}")
    longest = max(longest, time.monotonic() - last_ok)
    result = {"requests": sent, "failed": failed, "longest_gap_s": round(longest, 3), "releases": releases,
              "seconds": round(time.monotonic() - start, 1), "errors": errors}
    text = json.dumps(result)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
