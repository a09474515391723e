"""migrate_db_info: catalog facts as JSON from psql; the queries run against a real PostgreSQL.

The first tests fake psql (argv, parsing, failures). The last one starts the stack's PostgreSQL
image (local/postgres:17-pgvector, built by `make setup`) and runs every query against it, then
feeds the result to migrate_replication_plan and migrate_sequence_sql; it is skipped where no
Docker engine or no such image is available.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from ansible.module_utils import basic
from ansible_collections.pidock.stack.plugins.filter import migrate_replication as mr
from ansible_collections.pidock.stack.plugins.modules import migrate_db_info
from conftest import ModuleFailed, RunModule


class FakePsql:
    """Answers run_command with a JSON document per part, recording the argv."""

    def __init__(self, answers):
        self.answers = answers
        self.calls = []

    def __call__(self, module, argv, **kwargs):
        self.calls.append(argv)
        sql = argv[-1]
        for part, query in migrate_db_info.QUERIES.items():
            if sql == query:
                answer = self.answers[part]
                return answer if isinstance(answer, tuple) else (0, json.dumps(answer) + "\n", "")
        raise AssertionError(f"unexpected query {sql[:60]!r}")


@pytest.fixture
def fake(monkeypatch):
    def _install(answers):
        f = FakePsql(answers)

        def run_command(self, argv, **kwargs):
            return f(self, argv, **kwargs)

        monkeypatch.setattr(basic.AnsibleModule, "run_command", run_command)
        return f

    return _install


def test_each_part_is_one_psql_call_with_safe_options(run_module: RunModule, fake):
    f = fake({"server": {"version_num": 170004}, "lsn": "0/1"})
    res = run_module(migrate_db_info.main, {"database": "inventory_db", "gather": ["server", "lsn", "server"]})
    assert res["changed"] is False
    assert res["facts"] == {"server": {"version_num": 170004}, "lsn": "0/1"}
    assert len(f.calls) == 2  # a part named twice is read once
    # The host's clock around the reads (a caller times a frozen step with them).
    assert 0 < res["began_at"] <= res["ended_at"]
    assert "started" not in res  # Ansible reads a result's 'started' as an async job's
    argv = f.calls[0]
    assert argv[:5] == ["runuser", "-u", "postgres", "--", "psql"]
    assert argv[5:13] == ["-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-d", "inventory_db"]


def test_custom_psql_command_for_the_container(run_module: RunModule, fake):
    f = fake({"extensions": {"vector": "0.8.0"}})
    res = run_module(
        migrate_db_info.main,
        {
            "psql": ["docker", "exec", "-i", "inventory-postgres-1", "psql", "-U", "inventory"],
            "database": "inventory_db",
            "gather": ["extensions"],
        },
        check_mode=True,
    )
    assert res["facts"] == {"extensions": {"vector": "0.8.0"}}
    assert f.calls[0][:7] == ["docker", "exec", "-i", "inventory-postgres-1", "psql", "-U", "inventory"]


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ((2, "", "psql: error: connection refused\n"), "reading server of database db failed (rc=2): psql: error"),
        ((0, "NOTICE: something\n", ""), "psql did not print one JSON document"),
        ((0, "", ""), "psql did not print one JSON document"),
    ],
    ids=["psql fails", "not JSON", "nothing printed"],
)
def test_failures_name_the_part(run_module: RunModule, fake, answer, message):
    fake({"server": answer})
    with pytest.raises(ModuleFailed) as exc:
        run_module(migrate_db_info.main, {"database": "db", "gather": ["server"]})
    assert message in exc.value.result["msg"]
    assert exc.value.result["part"] == "server"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"database": "-h evil"}, "is not a database name"),
        ({"database": ""}, "is not a database name"),
        ({"database": "db", "psql": []}, "psql: the command"),
    ],
)
def test_bad_arguments(run_module: RunModule, fake, args, message):
    fake({})
    with pytest.raises(ModuleFailed, match=message):
        run_module(migrate_db_info.main, args)


def test_unknown_part_is_refused(run_module: RunModule, fake):
    fake({})
    with pytest.raises(ModuleFailed, match="gather"):
        run_module(migrate_db_info.main, {"database": "db", "gather": ["everything"]})


# --- against a real PostgreSQL ---------------------------------------------------------------

IMAGE = "local/postgres:17-pgvector"
SETUP_SQL = """
CREATE EXTENSION vector;
CREATE TABLE items (id bigserial PRIMARY KEY, name text NOT NULL DEFAULT 'x', emb vector(3));
CREATE INDEX items_name ON items (name);
CREATE TABLE log (at timestamptz, msg text);
CREATE UNLOGGED TABLE cache (k text PRIMARY KEY);
CREATE TABLE "User" (id int NOT NULL);
CREATE UNIQUE INDEX user_id ON "User" (id);
ALTER TABLE "User" REPLICA IDENTITY USING INDEX user_id;
CREATE SEQUENCE unused_seq START 100;
INSERT INTO items (name) VALUES ('a'), ('b'), ('c');
SELECT lo_create(0);
"""


def _docker_image_present() -> bool:
    if not shutil.which("docker"):
        return False
    done = subprocess.run(["docker", "image", "inspect", IMAGE], capture_output=True, check=False)
    return done.returncode == 0


@pytest.fixture(scope="module")
def postgres():
    if not _docker_image_present():
        pytest.skip(f"needs a Docker engine with {IMAGE} (make setup)")
    name = f"pidock-unit-pg-{uuid.uuid4().hex[:8]}"
    subprocess.run(
        [
            "docker",
            "run",
            "-d",
            "--rm",
            "--name",
            name,
            "-e",
            "POSTGRES_PASSWORD=unit",
            "-e",
            "POSTGRES_USER=inventory",
            "-e",
            "POSTGRES_DB=inventory_db",
            IMAGE,
        ],
        check=True,
        capture_output=True,
    )
    psql = ["docker", "exec", "-i", name, "psql", "-U", "inventory"]
    try:
        # The image's entrypoint runs a temporary server to initialise, stops it, then starts the real
        # one: wait for the line it prints between the two (the official image's wording, or the
        # local image's), then for the server to answer.
        for _attempt in range(240):
            logs = subprocess.run(["docker", "logs", name], capture_output=True, text=True, check=False)
            text = logs.stdout + logs.stderr
            if ("init process complete" in text or "database initialised" in text) and subprocess.run(
                ["docker", "exec", name, "pg_isready", "-q", "-U", "inventory"], check=False
            ).returncode == 0:
                break
            time.sleep(0.5)
        subprocess.run(
            [*psql, "-d", "inventory_db", "-q", "-v", "ON_ERROR_STOP=1"],
            input=SETUP_SQL,
            text=True,
            check=True,
            capture_output=True,
        )
        yield psql
    finally:
        subprocess.run(["docker", "rm", "-f", "-v", name], capture_output=True, check=False)


def test_queries_against_postgres_17(run_module: RunModule, postgres):
    res = run_module(
        migrate_db_info.main, {"psql": postgres, "database": "inventory_db", "gather": list(migrate_db_info.QUERIES)}
    )
    facts = res["facts"]
    assert facts["server"]["version_num"] // 10000 == 17
    assert facts["server"]["wal_level"] == "replica"
    assert facts["server"]["large_objects"] == 1
    tables = {t["name"]: t for t in facts["tables"]}
    assert set(tables) == {"User", "cache", "items", "log"}
    assert tables["items"]["has_primary_key"] is True and tables["cache"]["persistence"] == "u"
    assert tables["User"]["replica_identity"] == "i" and tables["User"]["replica_identity_index"] == "user_id"
    assert facts["extensions"]["vector"] == facts["available_extensions"]["vector"]
    seqs = {s["name"]: s for s in facts["sequences"]}
    assert seqs["items_id_seq"]["last_value"] == 3 and seqs["unused_seq"]["is_called"] is False
    assert facts["schema"]["tables"]["public.items"]["constraints"] == ["PRIMARY KEY (id)"]
    assert mr.migrate_lsn_reached(facts["lsn"], facts["lsn"]) is True
    assert facts["subscriptions"] == []
    assert facts["slots"] == []
    assert facts["server"]["port"] == 5432

    plan = mr.migrate_replication_plan(
        {
            "source": {
                **facts["server"],
                "tables": facts["tables"],
                "extensions": facts["extensions"],
                "sequences": len(facts["sequences"]),
            },
            "target": {"version_num": facts["server"]["version_num"], "extensions": facts["available_extensions"]},
        },
        {"allow_restart": True},
    )
    assert plan["method"] == "dump"
    assert plan["restart_settings"] == {"wal_level": "logical"}
    assert any("public.cache" in r for r in plan["reasons"])
    assert any("public.log" in r for r in plan["reasons"])

    # The sequence statements run, and nextval continues where the source stands.
    sql = "\n".join(mr.migrate_sequence_sql(facts["sequences"]))
    subprocess.run(
        [*postgres, "-d", "inventory_db", "-q", "-v", "ON_ERROR_STOP=1"],
        input=sql,
        text=True,
        check=True,
        capture_output=True,
    )
    nxt = subprocess.run(
        [*postgres, "-d", "inventory_db", "-Atc", "SELECT nextval('items_id_seq'), nextval('unused_seq')"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert nxt.stdout.strip() == "4|100"

    # DDL shows up as drift.
    subprocess.run(
        [*postgres, "-d", "inventory_db", "-qc", "ALTER TABLE items ADD COLUMN qty int"],
        check=True,
        capture_output=True,
    )
    again = run_module(migrate_db_info.main, {"psql": postgres, "database": "inventory_db", "gather": ["schema"]})
    assert mr.migrate_schema_drift(facts["schema"], again["facts"]["schema"]) == [
        "table public.items: column qty was added"
    ]


# --- files/baseline.sql (the migrate role's baseline of a database), against the same server ---

BASELINE_SQL = Path(__file__).resolve().parents[4] / "roles/migrate/files/baseline.sql"
BASELINE_SETUP = """
CREATE EXTENSION vector;
CREATE TYPE mood AS ENUM ('sad', 'ok');
CREATE DOMAIN posint AS int CHECK (VALUE > 0);
CREATE TABLE nocols ();
INSERT INTO nocols DEFAULT VALUES;
CREATE TABLE mixed (id int PRIMARY KEY, a text, b text, tags int[], m mood, p posint, j jsonb,
                    at timestamptz, v vector(3));
INSERT INTO mixed VALUES (1, 'ab', 'c', '{1,2}', 'ok', 5, '{"x": 1}', '2026-01-01 12:00+00', '[1,2,3]'),
                         (2, NULL, '', NULL, NULL, NULL, NULL, NULL, NULL);
"""


def _checksums(psql: list[str], env: dict[str, str] | None = None) -> dict[str, tuple[int, str]]:
    argv = [psql[0], psql[1], *(f"--env={k}={v}" for k, v in (env or {}).items()), *psql[2:]]
    out = subprocess.run(
        [*argv, "-d", "baseline_t", "-XtAq", "-v", "ON_ERROR_STOP=1", "-f", "-"],
        input=BASELINE_SQL.read_text(encoding="utf-8"),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return {t["table"]: (t["rows"], t["checksum"]) for t in json.loads(out)["tables"]}


def test_baseline_checksums_tell_every_change_and_nothing_else(postgres):
    subprocess.run([*postgres, "-d", "inventory_db", "-qc", "CREATE DATABASE baseline_t"], check=True)
    subprocess.run(
        [*postgres, "-d", "baseline_t", "-q", "-v", "ON_ERROR_STOP=1"],
        input=BASELINE_SETUP,
        text=True,
        check=True,
        capture_output=True,
    )

    def change(sql: str) -> str:
        subprocess.run([*postgres, "-d", "baseline_t", "-v", "ON_ERROR_STOP=1", "-qc", sql], check=True)
        return _checksums(postgres)["public.mixed"][1]

    first = _checksums(postgres)
    assert first["public.nocols"][0] == 1 and first["public.mixed"][0] == 2
    # Binary forms where they exist: the session's time zone and date style change nothing.
    assert _checksums(postgres, {"PGTZ": "Asia/Tokyo", "PGDATESTYLE": "German"}) == first
    seen = {first["public.mixed"][1]}
    # Each change below is told apart from every state before it, the way back included.
    for sql in [
        "UPDATE mixed SET a = 'a', b = 'bc' WHERE id = 1",  # the same bytes split differently
        "UPDATE mixed SET a = 'ab', b = 'c' WHERE id = 1",  # back
        "UPDATE mixed SET tags = '{1,3}' WHERE id = 1",  # an array (text form)
        "UPDATE mixed SET b = NULL WHERE id = 2",  # empty -> NULL
        "UPDATE mixed SET v = '[1,2,3.0001]' WHERE id = 1",  # a vector (binary form)
        "UPDATE mixed SET at = at + interval '1 microsecond' WHERE id = 1",
        "UPDATE mixed SET p = 6, m = 'sad' WHERE id = 1",  # a domain and an enum (text form)
    ]:
        checksum = change(sql)
        went_back = sql == "UPDATE mixed SET a = 'ab', b = 'c' WHERE id = 1"
        assert (checksum in seen) == went_back, sql
        seen.add(checksum)
