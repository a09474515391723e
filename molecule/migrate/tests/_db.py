"""Probes the tests run themselves (not the role's baseline): per-table row counts and ordered
checksums, sequence positions, a pgvector nearest-neighbour query, the app role's hash, and the
model the app serves from the Hugging Face cache."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from pidock_helpers import http_json, run_ok

BARE_METAL_PSQL = "runuser -u postgres -- psql -XtAq -d inventory_db -c %s"
STACK_PSQL = (
    "docker exec $(docker ps -q --filter label=com.docker.compose.project=inventory"
    " --filter label=com.docker.compose.service=postgres) psql -XtAq -U postgres -d inventory_db -c %s"
)
TABLES = {"categories": "id", "items": "id", "images": "id"}
STATE = Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/tmp")) / "migrate-stack-state.json"


def sql(host: Any, psql: str, query: str) -> str:
    return run_ok(host, psql, query).strip()


def snapshot(host: Any, psql: str) -> dict[str, Any]:
    """What must be identical on bare metal and in the stack."""
    out: dict[str, Any] = {"tables": {}, "sequences": {}}
    for table, key in TABLES.items():
        out["tables"][table] = sql(
            host, psql, f"SELECT count(*) || ' ' || md5(string_agg(t::text, '|' ORDER BY t.{key})) FROM {table} t"
        )
        seq = f"{table}_{key}_seq"
        out["sequences"][seq] = sql(
            host, psql, f"SELECT last_value || ' ' || is_called || ' ' || (SELECT max({key}) FROM {table}) FROM {seq}"
        )
    # Exact nearest neighbours: "+ 0" keeps the HNSW index out of this query. The index is
    # approximate and its graph depends on how it was built (a parallel build on restore), so an
    # index scan missed item 42 itself once (2026-11-28). That the index is used is
    # test_hnsw_index_was_rebuilt_and_is_used's job; this compares the data.
    out["nearest"] = sql(
        host,
        psql,
        "SELECT string_agg(id::text, ',') FROM (SELECT id FROM items "
        "ORDER BY (embedding <=> (SELECT embedding FROM items WHERE id = 42)) + 0, id LIMIT 8) AS n",
    )
    out["role"] = sql(host, psql, "SELECT rolsuper || ' ' || rolpassword FROM pg_authid WHERE rolname = 'inventory'")
    out["vector"] = sql(host, psql, "SELECT extversion FROM pg_extension WHERE extname = 'vector'")
    out["settings"] = sql(
        host,
        psql,
        "SELECT string_agg(coalesce(r.rolname, '*') || ':' || array_to_string(s.setconfig, ','), ';'"
        " ORDER BY coalesce(r.rolname, '*'))"
        " FROM pg_db_role_setting s LEFT JOIN pg_roles r ON r.oid = s.setrole"
        " WHERE s.setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
    return out


def save(state: dict[str, Any]) -> None:
    STATE.write_text(json.dumps(state, indent=2), encoding="utf-8")


def load() -> dict[str, Any]:
    return json.loads(STATE.read_text(encoding="utf-8"))


def assert_model_served(host: Any) -> None:
    """The app (bare metal or stack) resolves all-MiniLM-L6-v2 from its cache, offline, through nginx."""
    status, body = http_json(host, "https://127.0.0.1/model", insecure=True)
    assert status == 200, body
    assert body["model"] == "models--sentence-transformers--all-MiniLM-L6-v2"
    assert body["config"]["hidden_size"] == 384
    assert "model.safetensors" in body["files"]
