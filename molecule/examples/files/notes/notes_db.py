"""The notes SQLite database, shared by the web app and the worker through one volume."""

from __future__ import annotations

import os
import sqlite3

SCHEMA = """
CREATE TABLE IF NOT EXISTS notes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    text TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'queued',
    words INTEGER,
    processed_by TEXT,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    processed_at TEXT
);
CREATE TABLE IF NOT EXISTS heartbeat (
    worker TEXT PRIMARY KEY,
    beats INTEGER NOT NULL,
    seen_at REAL NOT NULL
);
"""


def connect() -> sqlite3.Connection:
    """Open the database (WAL, so the web reads while the worker writes) and make the schema."""
    conn = sqlite3.connect(os.environ.get("NOTES_DB", "/var/lib/notes/notes.db"), timeout=10)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA busy_timeout=10000")
    conn.executescript(SCHEMA)
    return conn
