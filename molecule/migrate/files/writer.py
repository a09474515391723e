"""Write to the app through its front door at a fixed rate until a stop file appears (or a limit).

Even ticks insert a row (POST /notes, body writer-<n>), odd ticks upload a file (POST
/uploads/writer-<n>.bin, 4 KiB of random bytes). One note is written first, before the schedule
(the app creates its table on first use: that DDL must happen before the migration starts).
A write counts as acknowledged only when the app answered 201 with the row's id or the file's
SHA-256; anything else is a failed write (the freeze stops the app: writes fail from then on).
Writes one JSON document: the acknowledged rows (id, name) and files (name, SHA-256) with the
wall-clock time of each acknowledgement, the failed count and the first errors. Only ever talks
to the URL given (loopback in the tests).
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import ssl
import threading
import time
from urllib.parse import urlsplit


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default="https://127.0.0.1")
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--max-seconds", type=float, default=900.0)
    parser.add_argument("--stop-file", default="/root/writer.stop")
    parser.add_argument("--out", default="/root/writer.json")
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()
    url = urlsplit(args.url)
    context = ssl._create_unverified_context()  # the bare metal's self-signed certificate, loopback only
    interval = 1.0 / args.rate
    start = time.monotonic()
    lock = threading.Lock()
    result: dict = {"started": time.time(), "rows": [], "files": [], "failed": 0, "errors": []}

    def post(path: str, body: bytes, content_type: str) -> dict:
        conn = http.client.HTTPSConnection(url.hostname, url.port or 443, timeout=5, context=context)
        try:
            conn.request("POST", path, body=body, headers={"Content-Type": content_type})
            resp = conn.getresponse()
            data = resp.read()
        finally:
            conn.close()
        if resp.status != 201:
            raise RuntimeError(f"HTTP {resp.status}: {data[:120]!r}")
        return json.loads(data)

    def write(tick: int) -> None:
        name = f"writer-{tick}"
        try:
            if tick % 2 == 0:
                answer = post("/notes", json.dumps({"body": name}).encode(), "application/json")
                with lock:
                    result["rows"].append({"id": int(answer["id"]), "name": name, "at": time.time()})
            else:
                body = os.urandom(4096)
                answer = post(f"/uploads/{name}.bin", body, "application/octet-stream")
                if answer.get("sha256") != hashlib.sha256(body).hexdigest():
                    raise RuntimeError("the app acknowledged another digest")
                with lock:
                    result["files"].append({"name": f"{name}.bin", "sha256": answer["sha256"], "at": time.time()})
        except Exception as exc:  # every failure counts, whatever it is
            with lock:
                result["failed"] += 1
                if len(result["errors"]) < 5:
                    result["errors"].append(f"{time.monotonic() - start:.2f}s {type(exc).__name__}: {exc}")

    def worker(index: int) -> None:
        tick = index + 2  # 0 was the first note; 1 would be a file
        while True:
            due = start + tick * interval
            if due - start >= args.max_seconds or os.path.exists(args.stop_file):
                return
            now = time.monotonic()
            if now < due:
                time.sleep(due - now)
            write(tick)
            tick += args.workers

    write(0)
    if not result["rows"]:
        raise SystemExit(f"the first note was not acknowledged: {result['errors']}")
    start = time.monotonic()
    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(max(1, args.workers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result["stopped"] = time.time()
    text = json.dumps(result)
    with open(args.out + ".partial", "w", encoding="utf-8") as handle:
        handle.write(text + "\n")
    os.replace(args.out + ".partial", args.out)


if __name__ == "__main__":
    main()
