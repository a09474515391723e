"""Notes worker: every second, count the words of queued notes and record a heartbeat.

python3 -m notes_worker                 run the loop (SIGTERM stops it between batches)
python3 -m notes_worker --healthcheck   exit 0 when this worker's heartbeat is under 15 s old
"""

from __future__ import annotations

import signal
import socket
import sys
import time

import notes_db

_running = True


def _stop(_signum: int, _frame: object) -> None:
    global _running
    _running = False


def work_once(conn: notes_db.sqlite3.Connection, worker: str) -> int:
    with conn:
        rows = conn.execute("SELECT id, text FROM notes WHERE status = 'queued' ORDER BY id LIMIT 50").fetchall()
        for row in rows:
            conn.execute(
                "UPDATE notes SET status = 'done', words = ?, processed_by = ?,"
                " processed_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = ?",
                (len(row["text"].split()), worker, row["id"]),
            )
        conn.execute(
            "INSERT INTO heartbeat (worker, beats, seen_at) VALUES (?, 1, ?)"
            " ON CONFLICT(worker) DO UPDATE SET beats = beats + 1, seen_at = excluded.seen_at",
            (worker, time.time()),
        )
    return len(rows)


def healthcheck(worker: str) -> int:
    conn = notes_db.connect()
    try:
        row = conn.execute("SELECT seen_at FROM heartbeat WHERE worker = ?", (worker,)).fetchone()
    finally:
        conn.close()
    return 0 if row is not None and time.time() - row["seen_at"] < 15 else 1


def main() -> int:
    worker = socket.gethostname()
    if "--healthcheck" in sys.argv:
        return healthcheck(worker)
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    conn = notes_db.connect()
    print(f"notes worker {worker} started", flush=True)
    while _running:
        done = work_once(conn, worker)
        if done:
            print(f"processed {done} note(s)", flush=True)
        time.sleep(1)
    conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
