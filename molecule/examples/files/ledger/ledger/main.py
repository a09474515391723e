"""Ledger API stand-in: the api-postgres example's contract, served through the HTTPS front.

GET  /api/health   {"version", "db", "entries"}; 200 only when PostgreSQL (DATABASE_URL) answers
POST /api/entries  {"memo": ..., "cents": ...} inserts a row; returns its id
GET  /api/entries  the rows, newest first
"""

from __future__ import annotations

import os
from typing import Any

import psycopg2
from flask import Flask, jsonify, request

app = Flask(__name__)
_SCHEMA = "CREATE TABLE IF NOT EXISTS entries (id serial PRIMARY KEY, memo text NOT NULL, cents bigint NOT NULL)"


def _connect() -> Any:
    conn = psycopg2.connect(os.environ["DATABASE_URL"], connect_timeout=3)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(_SCHEMA)
    return conn


@app.get("/api/health")
def health() -> Any:
    version = os.environ.get("APP_VERSION", "dev")
    try:
        conn = _connect()
    except (psycopg2.Error, KeyError) as exc:
        return jsonify(version=version, db=f"error: {type(exc).__name__}"), 503
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM entries")
            entries = cur.fetchone()[0]
    finally:
        conn.close()
    return jsonify(version=version, db="ok", entries=entries)


@app.post("/api/entries")
def add_entry() -> Any:
    body = request.get_json(silent=True) or {}
    conn = _connect()
    try:
        with conn.cursor() as cur:
            cur.execute(
                "INSERT INTO entries (memo, cents) VALUES (%s, %s) RETURNING id",
                (str(body.get("memo", "")), int(body.get("cents", 0))),
            )
            new_id = cur.fetchone()[0]
    finally:
        conn.close()
    return jsonify(id=new_id), 201


@app.get("/api/entries")
def entries() -> Any:
    conn = _connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT id, memo, cents FROM entries ORDER BY id DESC")
            rows = [{"id": i, "memo": m, "cents": c} for i, m, c in cur.fetchall()]
    finally:
        conn.close()
    return jsonify(rows)
