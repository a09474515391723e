"""Stand-in for the Inventory app: enough surface for deploy, migration and rollback tests.

GET  /health       {"release", "db", "images"}; 200 only when the database answers. Each worker
                   thread keeps one connection for it (autocommit, so never idle in a
                   transaction): a new connection per check costs the server a backend and
                   the SCRAM exchange, about 20 ms of CPU, and the tests probe at 25-50/s.
GET  /items        rows of the items table (created on first use).
POST /items        {"name": ...} inserts a row; returns it with its id.
POST /notes        {"body": ...} inserts a row into notes (created on first use); returns its id.
POST /uploads/<n>  stores the body as IMAGE_DIR/uploads/<n> (written, flushed, then renamed);
                   returns its SHA-256 once it is on disk.
GET  /model        resolves the Hugging Face cache under HF_HOME offline (refs -> snapshot).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from pathlib import Path
from typing import Any

import psycopg2
from flask import Flask, jsonify, request

app = Flask(__name__)


def _connect() -> Any:
    return psycopg2.connect(
        host=os.environ.get("POSTGRES_HOST", "postgres"),
        port=int(os.environ.get("POSTGRES_PORT", "5432")),
        user=os.environ.get("POSTGRES_USER", "inventory"),
        password=os.environ.get("POSTGRES_PASSWORD", ""),
        dbname=os.environ.get("POSTGRES_DB", "inventory_db"),
        connect_timeout=int(os.environ.get("DB_CONNECT_TIMEOUT", "2")),
        application_name="inventory-app",
    )


def _count_images() -> int:
    root = Path(os.environ.get("IMAGE_DIR", "/var/lib/inventory/images"))
    if not root.is_dir():
        return 0
    return sum(1 for p in root.rglob("*") if p.is_file())


_HEALTH = threading.local()


def _select_one(conn: Any) -> None:
    with conn.cursor() as cur:
        cur.execute("SELECT 1")
        cur.fetchone()


def _health_query() -> None:
    """SELECT 1 on this thread's kept connection. A kept connection that fails (the server restarted,
    or went away and came back) is dropped and the check is made once more on a new one, so a
    restart shows as failed checks only while the server is really down."""
    kept = getattr(_HEALTH, "conn", None)
    if kept is not None and not kept.closed:
        try:
            _select_one(kept)
            return
        except psycopg2.Error:
            kept.close()
    _HEALTH.conn = None
    conn = _connect()
    conn.autocommit = True
    try:
        _select_one(conn)
    except psycopg2.Error:
        conn.close()
        raise
    _HEALTH.conn = conn


@app.get("/health")
def health() -> Any:
    body: dict[str, Any] = {"release": os.environ.get("RELEASE", "dev"), "images": _count_images()}
    try:
        _health_query()
        body["db"] = "ok"
        status = 200
    except psycopg2.Error as exc:
        body["db"] = f"error: {str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}"
        status = 503
    if os.environ.get("FAIL_HEALTH"):
        # A deliberately broken release for rollback tests.
        body["db"] = "error: FAIL_HEALTH is set"
        status = 500
    return jsonify(body), status


# Tables the stand-in creates on first use: name -> (its text column, CREATE TABLE statement).
_TABLES = {
    "items": (
        "name",
        "CREATE TABLE IF NOT EXISTS items ("
        " id bigserial PRIMARY KEY, name text NOT NULL, created_at timestamptz NOT NULL DEFAULT now())",
    ),
    "notes": (
        "body",
        "CREATE TABLE IF NOT EXISTS notes ("
        " id bigserial PRIMARY KEY, body text NOT NULL, created_at timestamptz NOT NULL DEFAULT now())",
    ),
}


def _add_row(table: str) -> Any:
    """Insert the request's {column: text} into table; 201 with the row's id once committed."""
    column, create = _TABLES[table]
    payload = request.get_json(silent=True) or {}
    value = payload.get(column)
    if not isinstance(value, str) or not value:
        return jsonify({"error": f"{column} (a non-empty string) is required"}), 400
    with _connect() as conn, conn.cursor() as cur:
        cur.execute(create)
        cur.execute(f"INSERT INTO {table} ({column}) VALUES (%s) RETURNING id", (value,))
        new_id = cur.fetchone()[0]
    conn.close()
    return jsonify({"id": new_id, column: value}), 201


@app.get("/items")
def list_items() -> Any:
    with _connect() as conn, conn.cursor() as cur:
        cur.execute(_TABLES["items"][1])
        cur.execute("SELECT id, name FROM items ORDER BY id")
        rows = [{"id": r[0], "name": r[1]} for r in cur.fetchall()]
    conn.close()
    return jsonify(rows)


@app.post("/items")
def add_item() -> Any:
    return _add_row("items")


@app.post("/notes")
def add_note() -> Any:
    return _add_row("notes")


_UPLOAD_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


@app.post("/uploads/<name>")
def upload(name: str) -> Any:
    if not _UPLOAD_NAME.match(name):
        return jsonify({"error": "name: letters, digits, '.', '_' and '-' only"}), 400
    body = request.get_data(cache=False)
    folder = Path(os.environ.get("IMAGE_DIR", "/var/lib/inventory/images")) / "uploads"
    folder.mkdir(exist_ok=True)
    partial = folder / f".{name}.partial"
    with open(partial, "wb") as handle:
        handle.write(body)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, folder / name)
    return jsonify({"name": name, "sha256": hashlib.sha256(body).hexdigest()}), 201


@app.get("/model")
def model() -> Any:
    """Resolve a hub-layout model offline, as sentence-transformers would with HF_HUB_OFFLINE=1."""
    hub = Path(os.environ.get("HF_HOME", "/var/lib/inventory/ml_cache"))
    if (hub / "hub").is_dir():
        hub = hub / "hub"
    name = request.args.get("name", os.environ.get("MODEL_NAME", ""))
    candidates = [hub / ("models--" + name.replace("/", "--"))] if name else sorted(hub.glob("models--*"))
    for repo in candidates:
        ref = repo / "refs" / "main"
        if not ref.is_file():
            continue
        snapshot = repo / "snapshots" / ref.read_text().strip()
        config = snapshot / "config.json"
        if not config.is_file():
            return jsonify({"model": repo.name, "error": f"{config} does not resolve"}), 500
        files = sorted(str(p.relative_to(snapshot)) for p in snapshot.rglob("*") if p.is_file())
        return jsonify({"model": repo.name, "config": json.loads(config.read_text()), "files": files}), 200
    return jsonify({"error": f"no model found under {hub}"}), 404
