"""The two deployed example shapes, asserted through their real state.

examples-notes  shape 1: web + worker sharing an SQLite volume (inventories/examples/web-worker-sqlite)
examples-shop   shape 3: frontend + backend + PostgreSQL (inventories/examples/three-tier-postgres)
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime
from typing import Any

import pytest
from pidock_helpers import docker_inspect, http_json, run_ok

BASE = "https://127.0.0.1"
MIB = 1024 * 1024


def _only(host: Any, name: str) -> None:
    if host.backend.get_hostname() != name:
        pytest.skip(f"asserts {name} only")


def _container(host: Any, project: str, service: str) -> dict[str, Any]:
    """The one running container of a compose service (blue/green services: either colour)."""
    ids = run_ok(
        host,
        "docker ps -q --filter label=com.docker.compose.project=%s --filter status=running",
        project,
    ).split()
    found = [
        c
        for c in (docker_inspect(host, i) for i in ids)
        if c["Config"]["Labels"]["com.docker.compose.service"] in (service, f"{service}-blue", f"{service}-green")
    ]
    assert len(found) == 1, f"{project}: expected one running {service} container, found {len(found)}"
    return found[0]


def _when(stamp: str) -> datetime:
    """Docker's RFC 3339 time with nanoseconds -> datetime (microseconds)."""
    stamp = stamp.strip().replace("Z", "+00:00")
    head, _, rest = stamp.partition(".")
    if not rest:
        return datetime.fromisoformat(stamp)
    frac = "".join(ch for ch in rest if ch.isdigit())
    zone = rest[len(frac) :]
    return datetime.fromisoformat(f"{head}.{frac[:6].ljust(6, '0')}{zone}")


def _post_json(host: Any, url: str, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    out = run_ok(
        host,
        "curl -sk --max-time 10 -o /root/.pidock-post-body -w '%%{http_code}' -H 'Content-Type: application/json' "
        "-d %s %s",
        json.dumps(payload),
        url,
    )
    return int(out.strip()), json.loads(host.file("/root/.pidock-post-body").content_string)


def _sqlite(host: Any, db: str, sql: str) -> list[list[Any]]:
    """Rows of a query on an SQLite file in the host, opened read-only from outside the stack."""
    script = (
        f"import json, sqlite3; c = sqlite3.connect('file:{db}?mode=ro', uri=True); "
        f"print(json.dumps(c.execute({sql!r}).fetchall()))"
    )
    return json.loads(run_ok(host, "python3 -c %s", script))


def _served_fingerprint(host: Any) -> str:
    out = run_ok(
        host,
        "openssl s_client -connect 127.0.0.1:443 </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256",
    )
    return out.strip().split("=", 1)[1]


@pytest.mark.parametrize(
    ("name", "project", "version"),
    [("examples-notes", "notes", "1.4.2"), ("examples-shop", "shop", "2.3.0")],
)
def test_https_through_nginx_serves_the_release(host: Any, name: str, project: str, version: str) -> None:
    _only(host, name)
    status, body = http_json(host, f"{BASE}/health", insecure=True)
    assert status == 200, body
    assert body["release"] == version
    # Plain HTTP answers with a redirect to HTTPS.
    assert run_ok(host, "curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1/health").strip() == "301"
    # nginx presents the certificate pidock.stack.tls put in the stack's tls/ directory.
    on_disk = run_ok(
        host, "openssl x509 -noout -fingerprint -sha256 -in /opt/pidock/stacks/%s/tls/fullchain.pem", project
    )
    assert _served_fingerprint(host) == on_disk.strip().split("=", 1)[1]
    current = json.loads(run_ok(host, "cat /opt/pidock/stacks/%s/current/release.json", project))
    assert current["version"] == version
    assert current["outcome"] == "success"


# --- shape 1: web + worker sharing an SQLite volume ------------------------------------------


def test_worker_writes_the_shared_sqlite_and_web_reads_it(host: Any) -> None:
    _only(host, "examples-notes")
    web = _container(host, "notes", "web")
    worker = _container(host, "notes", "worker")
    volumes = {
        c["Name"]: [m["Name"] for m in c["Mounts"] if m["Type"] == "volume" and m["Destination"] == "/var/lib/notes"]
        for c in (web, worker)
    }
    assert all(v == ["notes_data"] for v in volumes.values()), volumes

    text = f"check {uuid.uuid4().hex} five words"
    status, created = _post_json(host, f"{BASE}/notes", {"text": text})
    assert status == 201, created
    note: dict[str, Any] = {}
    for _ in range(30):
        status, note = http_json(host, f"{BASE}/notes/{created['id']}", insecure=True)
        if note.get("status") == "done":
            break
        time.sleep(1)
    # The web read back what the worker wrote: the word count and the worker's own hostname.
    assert note.get("status") == "done", note
    assert note["words"] == 4
    assert note["processed_by"] == worker["Config"]["Hostname"]

    # And the row is really in the SQLite file on the volume, owned by the app user.
    db = "/var/lib/docker/volumes/notes_data/_data/notes.db"
    assert host.file(db).uid == 1000
    row = _sqlite(host, db, f"SELECT status, words, processed_by FROM notes WHERE id = {int(created['id'])}")
    assert row == [["done", 4, worker["Config"]["Hostname"]]]
    beats = _sqlite(host, db, "SELECT sum(beats) FROM heartbeat")[0][0]
    assert beats > 1
    for c in (web, worker):
        assert c["Config"]["User"] == "1000:1000"
        assert c["State"]["Health"]["Status"] == "healthy"


# --- shape 3: frontend + backend + PostgreSQL ------------------------------------------------


def test_frontend_serves_and_backend_queries_postgres(host: Any) -> None:
    _only(host, "examples-shop")
    status = run_ok(host, "curl -sk -o /root/.pidock-index -w '%%{http_code}' %s/", BASE).strip()
    assert status == "200"
    assert "Shop frontend" in host.file("/root/.pidock-index").content_string

    status, health = http_json(host, f"{BASE}/health", insecure=True)
    assert status == 200 and health["db"] == "ok", health

    name = f"example-{uuid.uuid4().hex[:12]}"
    status, item = _post_json(host, f"{BASE}/api/items", {"name": name})
    assert status in (200, 201), item
    status, items = http_json(host, f"{BASE}/api/items", insecure=True)
    assert status == 200
    assert name in [i["name"] for i in items]
    # The row is in PostgreSQL, written by the backend's own connection.
    pg = _container(host, "shop", "postgres")
    rows = run_ok(
        host,
        "docker exec %s psql -U shop -d shop -tAc %s",
        pg["Id"],
        f"SELECT count(*) FROM items WHERE name = '{name}'",
    )
    assert rows.strip() == "1"


@pytest.mark.parametrize(
    ("service", "cpus", "memory_mib", "pids"),
    [("postgres", 1.0, 512, 200), ("backend", 0.5, 256, 100), ("frontend", 0.25, 64, 50)],
)
def test_resource_limits_applied(host: Any, service: str, cpus: float, memory_mib: int, pids: int) -> None:
    _only(host, "examples-shop")
    hc = _container(host, "shop", service)["HostConfig"]
    assert hc["NanoCpus"] == int(cpus * 1e9)
    assert hc["Memory"] == memory_mib * MIB
    assert hc["PidsLimit"] == pids


def test_depends_on_order_honoured(host: Any) -> None:
    """postgres healthy -> backend starts; backend healthy -> frontend starts."""
    _only(host, "examples-shop")
    pg = _container(host, "shop", "postgres")
    backend = _container(host, "shop", "backend")
    frontend = _container(host, "shop", "frontend")
    labels = {c["Name"]: c["Config"]["Labels"].get("com.docker.compose.depends_on", "") for c in (backend, frontend)}
    assert "postgres:service_healthy" in labels[backend["Name"]], labels
    assert "backend:service_healthy" in labels[frontend["Name"]], labels

    # PostgreSQL's last "ready" line (after first-start initialisation) precedes the backend's start.
    pg_log = run_ok(host, "docker logs --timestamps %s 2>&1", pg["Id"]).splitlines()
    ready = [_when(line.split()[0]) for line in pg_log if "ready to accept connections" in line]
    assert ready, "postgres never logged that it was ready"
    assert ready[-1] <= _when(backend["State"]["StartedAt"])
    # The backend answered its first healthcheck (gunicorn access log) before the frontend started.
    be_log = run_ok(host, "docker logs --timestamps %s 2>&1", backend["Id"]).splitlines()
    healthy = [_when(line.split()[0]) for line in be_log if "GET /health" in line and '" 200 ' in line]
    assert healthy, "the backend never answered /health with 200"
    assert healthy[0] <= _when(frontend["State"]["StartedAt"])
    for c in (backend, frontend):
        assert c["RestartCount"] == 0
