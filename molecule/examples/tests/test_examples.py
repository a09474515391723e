"""The four deployed example shapes, asserted through their real state.

examples-notes  shape 1: web + worker sharing an SQLite volume (inventories/examples/web-worker-sqlite),
                and shape 2: a hardened non-root app with a metrics port (inventories/examples/nonroot-metrics)
                behind its own front on 8444
examples-shop   shape 3: frontend + backend + PostgreSQL (inventories/examples/three-tier-postgres),
                and shape 4: an API + PostgreSQL with /api/health (inventories/examples/api-postgres)
                behind its own front on 8445
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


def _served_fingerprint(host: Any, port: int = 443) -> str:
    out = run_ok(
        host,
        "openssl s_client -connect 127.0.0.1:%s </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256",
        str(port),
    )
    return out.strip().split("=", 1)[1]


# (container host, project, version, HTTPS port, HTTP port, health path, release key)
FRONT_DOORS = [
    ("examples-notes", "notes", "1.4.2", 443, 80, "/health", "release"),
    ("examples-notes", "feeds", "3.1.0", 8444, 8081, "/healthz", "version"),
    ("examples-shop", "shop", "2.3.0", 443, 80, "/health", "release"),
    ("examples-shop", "ledger", "0.9.0", 8445, 8082, "/api/health", "version"),
]


@pytest.mark.parametrize(
    ("name", "project", "version", "https_port", "http_port", "path", "key"),
    FRONT_DOORS,
    ids=[f"{d[1]}-on-{d[0]}" for d in FRONT_DOORS],
)
def test_https_through_nginx_serves_the_release(
    host: Any, name: str, project: str, version: str, https_port: int, http_port: int, path: str, key: str
) -> None:
    _only(host, name)
    status, body = http_json(host, f"https://127.0.0.1:{https_port}{path}", insecure=True)
    assert status == 200, body
    assert body[key] == version
    # Plain HTTP answers with a redirect to HTTPS.
    code = run_ok(host, "curl -s -o /dev/null -w '%%{http_code}' http://127.0.0.1:%s%s", str(http_port), path)
    assert code.strip() == "301"
    # nginx presents the certificate pidock.stack.tls put in the stack's tls/ directory.
    on_disk = run_ok(
        host, "openssl x509 -noout -fingerprint -sha256 -in /opt/pidock/stacks/%s/tls/fullchain.pem", project
    )
    assert _served_fingerprint(host, https_port) == on_disk.strip().split("=", 1)[1]
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


# --- shape 2: non-root app, secrets by environment only, metrics port -------------------------

FEEDS = "https://127.0.0.1:8444"


def test_feeds_runs_hardened_and_writes_its_volume(host: Any) -> None:
    _only(host, "examples-notes")
    app = _container(host, "feeds", "app")
    hc = app["HostConfig"]
    assert app["Config"]["User"] == "10001:10001"
    assert hc["ReadonlyRootfs"] is True
    assert hc["CapDrop"] == ["ALL"]
    assert "no-new-privileges:true" in hc["SecurityOpt"]
    assert hc["PidsLimit"] == 64 and hc["Memory"] == 192 * MIB
    assert app["State"]["Health"]["Status"] == "healthy"
    # The app process really runs as 10001, and it cannot write its root file system.
    assert run_ok(host, "docker exec %s id -u", app["Id"]).strip() == "10001"
    assert host.run("docker exec %s touch /usr/local/bin/x", app["Id"]).rc != 0

    status, health = http_json(host, f"{FEEDS}/healthz", insecure=True)
    assert status == 200 and health["secrets"] == "ok" and health["uid"] == 10001, health
    text = f"entry {uuid.uuid4().hex}"
    status, answer = _post_json(host, f"{FEEDS}/entries", {"text": text})
    assert status == 201, answer
    data = "/var/lib/docker/volumes/feeds_data/_data"
    assert host.file(data).uid == 10001
    assert text in host.file(f"{data}/entries.jsonl").content_string


def test_feeds_secrets_only_in_env_and_metrics_published(host: Any) -> None:
    _only(host, "examples-notes")
    root = "/opt/pidock/stacks/feeds/current"
    env = host.file(f"{root}/.env")
    assert env.mode == 0o600 and env.uid == 0
    assert "test-only-feeds-token" in env.content_string
    # compose.yml names the secrets, never their values; the image carries no secret file.
    compose = host.file(f"{root}/compose.yml").content_string
    assert "test-only-feeds" not in compose
    assert "${FEEDS_API_TOKEN}" in compose or "FEEDS_API_TOKEN" in compose
    # The metrics port is published on the host, outside the HTTPS front.
    out = run_ok(host, "curl -sS --max-time 5 http://127.0.0.1:9100/metrics")
    assert "feeds_requests_total " in out and "feeds_entries " in out


# --- shape 4: API + PostgreSQL, health under the API prefix ----------------------------------

LEDGER = "https://127.0.0.1:8445"


def test_ledger_api_writes_postgres_through_its_front(host: Any) -> None:
    _only(host, "examples-shop")
    memo = f"ledger-{uuid.uuid4().hex[:12]}"
    status, created = _post_json(host, f"{LEDGER}/api/entries", {"memo": memo, "cents": 1234})
    assert status == 201, created
    status, rows = http_json(host, f"{LEDGER}/api/entries", insecure=True)
    assert status == 200
    assert {"id": created["id"], "memo": memo, "cents": 1234} in rows
    # The row is in the ledger stack's own PostgreSQL, not in the shop's.
    pg = _container(host, "ledger", "postgres")
    count = run_ok(
        host,
        "docker exec %s psql -U ledger -d ledger -tAc %s",
        pg["Id"],
        f"SELECT count(*) FROM entries WHERE memo = '{memo}'",
    )
    assert count.strip() == "1"
    api = _container(host, "ledger", "api")
    # The example's own command: gunicorn with the uvicorn worker class, two workers.
    assert api["Config"]["Cmd"][:5] == ["gunicorn", "--worker-class", "uvicorn.workers.UvicornWorker", "--workers", "2"]
    assert api["State"]["Health"]["Status"] == "healthy"
    assert "postgres:service_healthy" in api["Config"]["Labels"].get("com.docker.compose.depends_on", "")
    # DATABASE_URL carries the password: it lives in the release's .env (0600), not in compose.yml.
    root = "/opt/pidock/stacks/ledger/current"
    assert host.file(f"{root}/.env").mode == 0o600
    assert "testOnlyLedger0DbPassword" not in host.file(f"{root}/compose.yml").content_string
