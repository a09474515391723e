"""Notes web app: queue notes, read what the worker made of them, all from the shared SQLite file.

GET  /health        {"release", "notes", "done", "worker_age_s"}; 200 when the database opens.
POST /notes         {"text": ...} queues a note; returns its id.
GET  /notes/<id>    the note, with status, word count and the worker that processed it.
"""

from __future__ import annotations

import os
import time
from typing import Any

import notes_db
from flask import Flask, abort, jsonify, request

app = Flask(__name__)


@app.get("/health")
def health() -> Any:
    conn = notes_db.connect()
    try:
        notes = conn.execute("SELECT count(*) FROM notes").fetchone()[0]
        done = conn.execute("SELECT count(*) FROM notes WHERE status = 'done'").fetchone()[0]
        seen = conn.execute("SELECT max(seen_at) FROM heartbeat").fetchone()[0]
    finally:
        conn.close()
    return jsonify(
        release=os.environ.get("RELEASE", "dev"),
        notes=notes,
        done=done,
        worker_age_s=None if seen is None else round(time.time() - seen, 1),
    )


@app.post("/notes")
def add_note() -> Any:
    text = str((request.get_json(silent=True) or {}).get("text", "")).strip()
    if not text:
        abort(400)
    conn = notes_db.connect()
    try:
        with conn:
            note_id = conn.execute("INSERT INTO notes (text) VALUES (?)", (text,)).lastrowid
    finally:
        conn.close()
    return jsonify(id=note_id, status="queued"), 201


@app.get("/notes/<int:note_id>")
def get_note(note_id: int) -> Any:
    conn = notes_db.connect()
    try:
        row = conn.execute("SELECT * FROM notes WHERE id = ?", (note_id,)).fetchone()
    finally:
        conn.close()
    if row is None:
        abort(404)
    return jsonify(dict(row))
