"""After migrate_rollback and the faults: the bare metal serves again, its data identical to what
the stack held when it froze (the writes made in the stack after cutover carried back); the stack is
down; the failed restore stopped before cutover. Last, a second migration loses none of it."""

from __future__ import annotations

import itertools
import json
import subprocess
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import pytest
from _db import BARE_METAL_PSQL, STACK_PSQL, load, snapshot
from pidock_helpers import (
    http,
    http_json,
    kill_controller,
    live_and_file_fingerprints,
    run_ok,
    run_playbook,
    start_playbook,
    wait_inside,
)

pytestmark = pytest.mark.usefixtures("rolled_back")

_LEDGER = "/var/lib/pidock-migrate/ledger.json"
_HOST = "migrate-pi"
_ONLINE = {"migrate_db_method": "replicate", "migrate_replication_allow_restart": True}


def assert_files_served(host, files: dict[str, str | None]) -> None:
    """Through whichever nginx serves on 443: each file with its SHA-256, a deleted one (None) 404."""
    for path, digest in files.items():
        url = "https://127.0.0.1/images/" + quote(path)
        code = run_ok(host, "curl -sk -o /dev/null -w '%%{http_code}' %s", url).strip()
        if digest is None:
            assert code == "404", path
            continue
        assert code == "200", path
        assert run_ok(host, "curl -sk %s | sha256sum", url).split()[0] == digest, path


def test_bare_metal_serves_again(host):
    status, body = http_json(host, "https://127.0.0.1/health", insecure=True)
    assert status == 200, body
    assert body["release"] == "bare-metal"
    assert "nginx" in run_ok(host, "ss -Hltnp '( sport = :443 )'")


def test_every_writer_runs_again_with_its_own_stop_timeout(host):
    # The freeze killed inventory-sweeper (it ignores SIGTERM); the rollback starts it again and
    # removes the drop-in that bounded its stop.
    assert run_ok(host, "systemctl is-active inventory.service inventory-sweeper.service").split() == ["active"] * 2
    assert not host.file("/run/systemd/system/inventory-sweeper.service.d/zz-pidock-migrate-freeze.conf").exists
    stop_timeout = run_ok(host, "systemctl show -p TimeoutStopUSec inventory-sweeper.service").strip()
    assert stop_timeout == "TimeoutStopUSec=1min 30s"  # the unit's own again


def test_bare_metal_data_equals_what_the_stack_held(host):
    held = load()
    held.pop("files", None)  # compared by test_stack_writes_are_served_by_the_bare_metal_nginx
    assert snapshot(host, BARE_METAL_PSQL) == held


def test_stack_is_down_and_its_volumes_kept(host):
    assert run_ok(host, "docker ps -aq --filter label=com.docker.compose.project=inventory").strip() == ""
    for volume in ("inventory_pgdata", "inventory_images", "inventory_ml_cache"):
        run_ok(host, "docker volume inspect %s", volume)


def test_ledger_was_cleared_and_records_both_rollbacks(host):
    ledger = json.loads(host.file(_LEDGER).content_string)
    assert set(ledger["phases"]) == {"presync"}
    assert ledger["phases"]["presync"]["resumed"] is True
    requested, failed = ledger["rollbacks"][-2:]
    assert requested["reason"] == "requested"
    assert "cutover" in requested["cleared"]
    assert requested["stack_served_since"]
    assert requested["carried_back"] is True  # so the next plan lets a migration through
    carried = requested["carried"]
    print(f"carried back: {json.dumps(carried)}")
    assert {t["table"] for t in carried["tables"]} == {"public.items", "public.images"}
    assert carried["rows_added"] >= 1
    assert carried["trees"]["images"]["files"] == 2  # the upload and the changed file
    assert carried["trees"]["images"]["removed"] >= 1  # the deleted file (and the emptied .pidock-partial)
    assert carried["trees"]["ml_cache"]["files"] == 0
    assert "stack_served_since" not in failed
    assert failed["reason"].startswith("restore failed")
    assert "vector" in failed["reason"]
    assert "cutover" not in failed["cleared"]


def test_failed_restore_left_no_containers(host):
    assert run_ok(host, "docker ps -aq --filter label=pidock.migrate=true").strip() == ""


def test_stack_writes_are_served_by_the_bare_metal_nginx(host):
    """Each file the stack added, changed or deleted after cutover is so on bare metal, through its nginx."""
    files = load()["files"]
    assert len(files) == 3
    assert_files_served(host, files)
    owners = set(run_ok(host, "find /var/lib/inventory/images -printf '%u:%g\\n'").split())
    assert owners == {"inventory:inventory"}


def test_stack_rows_are_served_by_the_bare_metal_app(host):
    status, body = http_json(host, "https://127.0.0.1/items", insecure=True)
    assert status == 200
    names = {row["id"]: row["name"] for row in body}
    assert names[44] == "Umbenannt im Stack"
    assert sum(1 for name in names.values() if name.startswith("Nach dem Umzug ")) == 2


def test_carry_left_no_guard_behind(host):
    """The freeze-time database, the snapshots and the stack's dump went once the bare metal served."""
    dbs = run_ok(
        host, BARE_METAL_PSQL, "SELECT string_agg(datname, ',') FROM pg_database WHERE datname LIKE 'inventory%'"
    )
    assert dbs.strip() == "inventory_db"
    for tree in ("images", "ml_cache"):
        assert not host.file(f"/var/lib/inventory/{tree}.pidock-before-rollback").exists
    assert not host.file("/var/lib/pidock-migrate/carry/inventory_db.dump").exists


_GUARD_PG = (
    "docker run -d --name pidock-guard-pg -v inventory_pgdata:/var/lib/postgresql/data local/postgres:17-pgvector"
    " >/dev/null && for i in $(seq 60); do"
    " docker exec pidock-guard-pg pg_isready -q -h 127.0.0.1 && break; sleep 1; done"
    " && docker exec pidock-guard-pg psql -XtAq -U postgres -d inventory_db -c %s"
    " ; rc=$?; docker stop -t 30 pidock-guard-pg >/dev/null; docker rm pidock-guard-pg >/dev/null; exit $rc"
)
_PHASES = '{"migrate_phases": %s}'


def test_data_guards_refuse_what_only_the_stack_holds(host):
    """Read from the data, not the ledger (which says the stack's writes were carried back): a
    container serving from a target volume blocks the plan; a file changed in a volume after the
    cutover's mark stops presync before it writes; a row written into the stack's database since the
    baseline the rollback carried back stops restore before it drops the database. Each leaves the
    data as it was; undone, the next test migrates again (the restore's guard then finds the
    database equal to the carried baseline and lets it through)."""
    run_ok(host, "docker run -d --name pidock-guard-user -v inventory_images:/data local/nginx:latest")
    try:
        out, _took = run_playbook("migrate", "migrate.yml", "-e", _PHASES % '["plan"]', expect_rc=2)
    finally:
        run_ok(host, "docker rm -f pidock-guard-user")
    assert "container pidock-guard-user is running with inventory_images mounted" in " ".join(out.split()), out[-3000:]

    volume = run_ok(host, "docker volume inspect --format '{{.Mountpoint}}' inventory_images").strip()
    mark = "/var/lib/pidock-migrate/stack-serving"
    # As the cutover writes it: after the migration's own copies; then the stack writes.
    run_ok(host, "touch %s && sleep 0.1 && echo 'written by the stack' > %s", mark, f"{volume}/after-the-mark.txt")
    # presync runs again only when the ledger does not say verified (as an interrupted run leaves it).
    ledger = json.loads(host.file(_LEDGER).content_string)
    ledger["phases"]["presync"]["status"] = "started"
    run_ok(host, "printf '%%s' %s > %s", json.dumps(ledger), _LEDGER)  # printf: no escapes interpreted
    try:
        out, _took = run_playbook("migrate", "migrate.yml", "-e", _PHASES % '["presync"]', expect_rc=2)
        text = " ".join(out.split())
        assert "(guard_file), written by something other than this copy" in text and "after-the-mark.txt" in text, out[
            -3000:
        ]
        assert host.file(f"{volume}/after-the-mark.txt").content_string == "written by the stack\n"
    finally:
        run_ok(host, "rm -f %s %s", mark, f"{volume}/after-the-mark.txt")

    run_ok(host, _GUARD_PG, "INSERT INTO categories (id, name) VALUES (99999, 'written by the stack')")
    try:
        out, _took = run_playbook(
            "migrate", "migrate.yml", "-e", _PHASES % '["freeze", "dump", "restore"]', expect_rc=2
        )
        text = " ".join(out.split())
        assert "Migration stopped in phase restore" in text, out[-3000:]
        assert "inventory_db in inventory_pgdata changed since the migration last recorded it" in text, out[-3000:]
        assert "public.categories" in text, out[-3000:]
        assert run_ok(host, _GUARD_PG, "SELECT name FROM categories WHERE id = 99999").strip() == "written by the stack"
    finally:
        run_ok(host, _GUARD_PG, "DELETE FROM categories WHERE id = 99999")
    status, _body = http_json(host, "https://127.0.0.1/health", insecure=True)
    assert status == 200, "the bare metal serves again after the refused restore"


def _replication_left(host) -> list[str]:
    """What of the replication exists on the bare metal (its PostgreSQL must run)."""
    left = []
    for what, query in (
        ("slot", "SELECT count(*) FROM pg_replication_slots"),
        ("publication", "SELECT count(*) FROM pg_publication"),
        ("role", "SELECT count(*) FROM pg_roles WHERE rolname = 'pidock_migrate'"),
    ):
        if run_ok(host, BARE_METAL_PSQL, query).strip() != "0":
            left.append(what)
    if "pidock_migrate" in run_ok(host, "cat /etc/postgresql/17/main/pg_hba.conf"):
        left.append("pg_hba line")
    if host.file("/var/lib/pidock-migrate/replication.password").exists:
        left.append("password file")
    return left


# Seconds of controller silence the freeze guard allows in the killed run (the role's default is 300).
# The freeze itself holds its ledger write until the writers are stopped (the sweeper's 2 s kill
# included): on a slow CI machine beside another scenario that silence passed 8 s, and the guard put
# the bare metal back before the run reached the catch-up. 20 s leaves room and still ends the wait
# after the kill quickly.
_GUARD_TIMEOUT = 20
# ... and no slack for the plan's estimates (3x the delta's would add 15 s here).
_GUARD_FAST = {"migrate_guard_timeout": _GUARD_TIMEOUT, "migrate_guard_slack": 0}
# A run that goes on to the switch needs more: catchup, delta and verify hold their ledger writes, so a
# live controller gives no sign of life for about 8 s there (more beside another scenario). With 8 s
# the guard put the bare metal back behind a live run, and the fence stopped it before the switch.
_GUARD_LIVE = {"migrate_guard_timeout": 30, "migrate_guard_slack": 0}
# Prints something once the ledger's catchup entry says started (the notes of earlier rollbacks name it too).
_CATCHUP_STARTED = f'grep -A4 \'"catchup": {{\' {_LEDGER} 2>/dev/null | grep -o \'"status": "started"\''


def _killed_while_frozen(host) -> float:
    """playbooks/migrate.yml's frozen phases (replicate and prestart are verified), killed once the
    ledger says the catch-up runs, the bare metal frozen: SIGKILL to the controller's whole process
    group, as a dropped link would end it. The freeze guard on the host must put the bare metal back
    by itself: its units run again, its app answers through its nginx, and the ledger keeps replicate
    and prestart but nothing from the freeze on; the replication still runs (a change on the bare
    metal reaches the stack's subscriber). Returns the seconds from the kill until the bare metal
    answered again."""
    with tempfile.NamedTemporaryFile(prefix="pidock-killed-", suffix=".log", delete=False) as log:
        output = Path(log.name)
    frozen = {"migrate_phases": ["freeze", "catchup", "delta", "verify", "cutover"]}
    proc = start_playbook("migrate", "migrate.yml", "-e", json.dumps(_ONLINE | _GUARD_FAST | frozen), output=output)
    try:
        seen = wait_inside(_HOST, _CATCHUP_STARTED, step=0.1, beside=proc)
        assert seen, f"the run never reached the catch-up (rc {proc.poll()}):\n{output.read_text()[-4000:]}"
    finally:
        if proc.poll() is None:
            kill_controller(proc)
        proc.wait(30)
        output.unlink()
    killed_at = time.monotonic()
    guard = json.loads(run_ok(host, "cat /var/lib/pidock-migrate/guard.json"))
    assert guard["status"] == "armed" and guard["timeout"] == _GUARD_TIMEOUT, guard
    status, _text = http(host, "https://127.0.0.1/health", insecure=True)
    assert status != 200, "the bare metal still served: the kill came before the freeze"
    undone = wait_inside(_HOST, 'grep -o \'"status": "undone"\' /var/lib/pidock-migrate/guard.json', timeout=120)
    assert undone, run_ok(host, "cat /var/lib/pidock-migrate/guard.json")
    for _attempt in range(60):
        status, text = http(host, "https://127.0.0.1/health", insecure=True)
        if status == 200:
            break
        time.sleep(0.5)
    back = time.monotonic() - killed_at
    assert status == 200 and json.loads(text)["release"] == "bare-metal", text
    ledger = json.loads(host.file(_LEDGER).content_string)
    assert {"replicate", "prestart"} <= set(ledger["phases"]), ledger["phases"]
    assert not set(ledger["phases"]) & {"freeze", "catchup", "delta", "verify", "cutover"}, ledger["phases"]
    note = ledger["rollbacks"][-1]
    assert note["by"] == "guard" and "the controller was silent" in note["reason"], note
    assert not host.file("/var/lib/pidock-migrate/units.json").exists
    # The replication the guard left running carries what the bare metal takes now (changed and put back,
    # so the data the last test compares stays as it was).
    name = run_ok(host, BARE_METAL_PSQL, "SELECT name FROM categories WHERE id = 1").strip()
    for value in (f"{name}-after-the-guard", name):
        run_ok(host, BARE_METAL_PSQL, f"UPDATE categories SET name = '{value}' WHERE id = 1")
        for _attempt in range(60):
            if run_ok(host, STACK_PSQL, "SELECT name FROM categories WHERE id = 1").strip() == value:
                break
            time.sleep(0.5)
        else:
            raise AssertionError(f"the change to {value!r} did not reach the stack's subscriber")
    print(f"killed in the catch-up; the host put the bare metal back {back:.1f} s later ({note['reason']})")
    return back


def test_ddl_while_replicating_stops_the_cutover_and_takes_the_replication_down(host):
    """The replicate and prestart phases alone (with the restart for wal_level=logical and a listener
    on Docker's bridge gateway; the stack then runs all but its front); then the frozen phases with
    the controller killed in the catch-up (_killed_while_frozen: the host puts the bare metal back);
    then a column added on the bare metal, and the frozen phases again: the catch-up finds the schema
    change (DDL is not replicated), names it, and the rollback takes the replication down on both
    sides; the bare metal serves again and the next migration copies afresh."""
    _out, took = run_playbook(
        "migrate",
        "migrate.yml",
        "-e",
        json.dumps(_ONLINE | {"migrate_phases": ["replicate", "prestart"]}),
    )
    print(f"replicate and prestart phases alone: {took:.1f} s")
    assert run_ok(host, BARE_METAL_PSQL, "SHOW wal_level").strip() == "logical"
    assert _replication_left(host) == ["slot", "publication", "role", "pg_hba line", "password file"]
    # The stack runs but its front: its own PostgreSQL is the subscriber, reached over TCP from the
    # stack's network only, and the bare metal still serves the front door.
    running = run_ok(host, "docker ps --format '{{.Names}}' --filter label=com.docker.compose.project=inventory")
    assert sorted(running.split()) == ["inventory-app-blue-1", "inventory-postgres-1"], running
    assert run_ok(host, STACK_PSQL, "SELECT count(*) FROM pg_subscription WHERE subenabled").strip() == "1"
    hba = run_ok(host, "grep pidock_migrate /etc/postgresql/17/main/pg_hba.conf")
    assert all(line.startswith("host inventory_db pidock_migrate 172.") for line in hba.splitlines()), hba
    streaming = run_ok(host, BARE_METAL_PSQL, "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'")
    assert streaming.strip() == "1"
    status, body = http_json(host, "https://127.0.0.1/health", insecure=True)
    assert status == 200 and body.get("release") != "migrated-1", body
    _killed_while_frozen(host)
    run_ok(host, BARE_METAL_PSQL, "ALTER TABLE categories ADD COLUMN added_while_replicating integer")
    # As a reboot while frozen would leave the host: the ledger says frozen, the writer runs (enabled).
    run_ok(host, "systemctl is-active inventory.service")
    run_ok(
        host,
        "python3 -c \"import json; p = '%s'; d = json.load(open(p)); d['phases']['freeze'] = {'status': 'verified',"
        " 'started': '2026-01-01T00:00:00.000000Z', 'verified': '2026-01-01T00:00:01.000000Z', 'resumed': False};"
        " open(p, 'w').write(json.dumps(d))\"",
        _LEDGER,
    )
    try:
        out, _took = run_playbook(
            "migrate",
            "migrate.yml",
            "-e",
            '{"migrate_phases": ["freeze", "catchup", "delta", "verify", "cutover"]}',
            expect_rc=2,
        )
    finally:
        run_ok(host, BARE_METAL_PSQL, "ALTER TABLE categories DROP COLUMN IF EXISTS added_while_replicating")
    text = " ".join(out.split())
    # The run after the kill says what the guard did.
    assert "put the bare metal back" in text, out[-3000:]
    # The run found the writer running under a ledger that said frozen, and froze again first.
    notes = json.loads(host.file(_LEDGER).content_string)["rollbacks"]
    # (The guard started both writers again; the reason names each, inventory-sweeper too.)
    refrozen = [
        n
        for n in notes
        if "ran again after the freeze" in n.get("reason", "") and "inventory.service" in n.get("reason", "")
    ]
    assert refrozen and refrozen[-1]["cleared"] == ["freeze"], notes[-3:]
    assert "Migration stopped in phase catchup" in text, out[-3000:]
    assert "The schema changed while the database replicated" in text, out[-3000:]
    assert "table public.categories: column added_while_replicating was added" in text, out[-3000:]
    status, _body = http_json(host, "https://127.0.0.1/health", insecure=True)
    assert status == 200, "the bare metal serves again after the refused catch-up"
    assert _replication_left(host) == []
    assert run_ok(host, "docker ps --quiet --filter label=com.docker.compose.project=inventory").strip() == ""
    phases = json.loads(host.file(_LEDGER).content_string)["phases"]
    for phase in ("replicate", "prestart"):
        assert phases.get(phase, {}).get("status") in (None, ""), phases.get(phase)


def _killed_while_switching(host) -> str:
    """playbooks/migrate.yml (online, from the replication on), killed while the stack's switch waits
    before its gate (the compose switch's test hook .txn-pause): the bare metal is stopped, the switch
    runs on the host under its lock.
    The freeze guard must wait for that switch, silence or not, and once it commits let the stack serve
    (status served) instead of putting the bare metal back. Returns the killed run's output."""
    root = "/opt/pidock/stacks/inventory"
    run_ok(host, f"rm -f {root}/.txn-paused && echo gate > {root}/.txn-pause")
    with tempfile.NamedTemporaryFile(prefix="pidock-killed-", suffix=".log", delete=False) as log:
        output = Path(log.name)
    proc = start_playbook("migrate", "migrate.yml", "-e", json.dumps(_ONLINE | _GUARD_LIVE), output=output)
    seen = ""
    try:
        # The whole online migration runs before the switch (initial copy, prestart, freeze, catch-up): on two
        # cores beside another scenario and the writer that took more than wait_inside's default 300 s.
        seen = wait_inside(_HOST, f"cat {root}/.txn-paused 2>/dev/null", beside=proc, timeout=900)
        assert seen, f"the switch never paused at its gate (rc {proc.poll()}):\n{output.read_text()[-4000:]}"
    finally:
        if proc.poll() is None:
            kill_controller(proc)
        proc.wait(30)
        if not seen:
            run_ok(host, f"rm -f {root}/.txn-pause")
    out = output.read_text()
    output.unlink()
    try:
        assert json.loads(run_ok(host, "cat /var/lib/pidock-migrate/guard.json"))["status"] == "switching"
        assert "inactive" in host.run("systemctl is-active nginx.service inventory.service").stdout
        time.sleep(_GUARD_LIVE["migrate_guard_timeout"] + 2)  # silent past the limit; the switch holds its lock
        assert json.loads(run_ok(host, "cat /var/lib/pidock-migrate/guard.json"))["status"] == "switching"
    finally:
        run_ok(host, f"rm -f {root}/.txn-pause")
    served = wait_inside(_HOST, 'grep -o \'"status": "served"\' /var/lib/pidock-migrate/guard.json', timeout=120)
    assert served, run_ok(host, "cat /var/lib/pidock-migrate/guard.json")
    status, body = http_json(host, "https://127.0.0.1/health", insecure=True)
    assert status == 200 and body["release"] == "migrated-1", body
    print("killed in the switch; the switch went on by itself and the guard let the stack serve")
    return out


def test_migrating_again_online_while_writes_go_on_loses_nothing(host):
    """Last test of the scenario (it changes the stage): playbooks/migrate.yml once more, as an
    operator would after a rollback, now with migrate_db_method: replicate (the first migration
    fell back to the dump: wal_level=replica and no restart allowed) while a writer adds notes and
    uploads files through the bare-metal app at 10 writes/s until the freeze stops it. The first run
    is killed in the switch (_killed_while_switching); the next one finishes the cutover.

    The plan finds nothing that only the stack holds (its writes were carried back). The stack then
    serves every row and file the first stack wrote (the same tables, sequences, nearest neighbours
    and role as at the first stack's freeze; the added and changed files through its nginx, the
    deleted one gone) and every write the bare metal acknowledged: each note by id, each upload by
    SHA-256; the notes' sequence is past their maximum; the HNSW index is used; the certificate is
    the bare metal's. The migration's replication is gone from both sides; the way back streams."""
    secret = (Path(__file__).resolve().parents[1] / "files" / "test_db_password.txt").read_text().strip()
    writer = Path(__file__).resolve().parents[1] / "files" / "writer.py"
    subprocess.run(["docker", "cp", str(writer), f"{_HOST}:/root/writer.py"], check=True)
    run_ok(host, "rm -f /root/writer.stop /root/writer.json")
    subprocess.run(["docker", "exec", "-d", _HOST, "python3", "/root/writer.py", "--rate", "10"], check=True)
    try:
        time.sleep(3)  # writes under way before the migration reads anything
        switch_out = _killed_while_switching(host)
        # The run that finishes the cutover the switch began.
        out, took = run_playbook(
            "migrate",
            "migrate.yml",
            "-e",
            json.dumps(_ONLINE),
        )
    finally:
        run_ok(host, "touch /root/writer.stop")
    written = _writer_report(host)
    assert secret not in out, "the test database password appears in the run's output"
    # The run ends with each phase's time beside the plan's estimate, and the downtime.
    text = " ".join(out.split())
    assert "prestart: " in text and "downtime, freeze to the stack serving: " in text and "(plan: " in text, out[-3000:]
    # The run after the kill says what the guard did.
    assert "let the stack serve (its switch had passed its gate)" in text, out[-3000:]
    # The initial copy (in the killed run: the next one kept the replication) printed its progress (rows
    # against the bare metal's estimates, tables ready) while it ran.
    copy_lines = [line for line in switch_out.splitlines() if "initial copy: copy" in line and " rows" in line]
    print("initial copy progress:", *copy_lines[:3], sep="\n  ")
    assert len(copy_lines) >= 2 and any(" tables" in line for line in copy_lines), out[-3000:]
    ledger = json.loads(host.file(_LEDGER).content_string)
    phases = ledger["phases"]
    for phase in ("presync", "replicate", "prestart", "freeze", "catchup", "delta", "verify", "cutover"):
        assert phases[phase]["status"] == "verified", phase
    assert "dump" not in phases and "restore" not in phases
    # The catch-up's jobs were started before the freeze (frozen_jobs.yml) and waited for its word.
    assert phases["catchup"]["baseline_started_ahead"] is True, phases["catchup"]
    # wal_level=logical since the test before: no restart this time.
    replicated = phases["replicate"]
    assert replicated["restarted"] is False and replicated["restart_settings"] == {}

    # The writer's rate while the bare metal served (until the freeze), and what it got acknowledged.
    freeze = datetime.strptime(phases["freeze"]["started"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    frozen_at = freeze.timestamp()
    acked = written["rows"] + written["files"]
    before = [w for w in acked if w["at"] < frozen_at]
    rate = len(before) / (frozen_at - written["started"])
    print(
        f"online migration: {took:.1f} s; writer {len(written['rows'])} notes and {len(written['files'])} files"
        f" acknowledged, {written['failed']} failed, {rate:.1f} acknowledged writes/s before the freeze;"
        f" downtime {phases['cutover']['downtime_seconds']} s; catch-up {phases['catchup']['seconds']};"
        f" initial copy {phases['replicate']['copy_seconds']} s; stack started before the freeze in"
        f" {phases['prestart']['start_seconds']} s"
    )
    assert rate >= 5, written
    assert len(written["rows"]) >= 20 and len(written["files"]) >= 20, written

    status, body = http_json(host, "https://127.0.0.1/health", insecure=True)
    assert status == 200 and body["release"] == "migrated-1", body
    held = load()
    files = held.pop("files")
    assert snapshot(host, STACK_PSQL) == held
    assert_files_served(host, files)

    _assert_writes_held(host, STACK_PSQL, written, "the stack")
    plan = run_ok(
        host,
        STACK_PSQL,
        "EXPLAIN SELECT id FROM items ORDER BY embedding <=> (SELECT embedding FROM items WHERE id = 42) LIMIT 5",
    )
    assert "items_embedding_hnsw" in plan
    served, on_disk = live_and_file_fingerprints(host, "/var/lib/inventory/ssl/inventory.crt", "inventory.local")
    assert served == on_disk
    # Nothing of the migration's replication is left: no subscription, slot, publication, role or
    # pg_hba line. The bare metal's PostgreSQL runs: it follows the stack's (the way back, next test).
    assert run_ok(host, STACK_PSQL, "SELECT count(*) FROM pg_subscription").strip() == "0"
    assert _replication_left(host) == []


def _assert_writes_held(host, psql: str, written: dict, where: str) -> None:
    """Every note the writer got acknowledged is in the database ``psql`` reaches, by id and body, and
    the notes' sequence is past their maximum; every acknowledged upload is served by SHA-256 through
    whichever nginx serves on 443 (one shell for all of them)."""
    notes = dict(line.split("|", 1) for line in run_ok(host, psql, "SELECT id || '|' || body FROM notes").split())
    missing = [r for r in written["rows"] if notes.get(str(r["id"])) != r["name"]]
    assert missing == [], f"{len(missing)} acknowledged notes missing in {where}: {missing[:5]}"
    last, called = run_ok(host, psql, "SELECT last_value || '|' || is_called FROM notes_id_seq").strip().split("|")
    assert called == "true" and int(last) >= max(r["id"] for r in written["rows"])
    names = " ".join(f["name"] for f in written["files"])
    served = run_ok(
        host,
        "bash -c %s",
        f'for n in {names}; do printf \'%s %s\\n\' "$n" "$(curl -sfk https://127.0.0.1/images/uploads/$n'
        " | sha256sum | cut -d' ' -f1)\"; done",
    )
    digests = dict(line.split() for line in served.splitlines())
    wrong = [f["name"] for f in written["files"] if digests.get(f["name"]) != f["sha256"]]
    assert wrong == [], f"{len(wrong)} acknowledged uploads not served by {where} as written: {wrong[:5]}"


def _writer_report(host) -> dict:
    for _attempt in range(40):
        done = host.run("cat /root/writer.json")
        if done.rc == 0 and done.stdout.strip():
            return json.loads(done.stdout)
        time.sleep(0.5)
    raise AssertionError("the writer did not report")


def test_rollback_by_replication_carries_every_write_back(host):
    """Last test (after the online migration): the bare metal's PostgreSQL follows the stack's (the way
    back: a subscription to the stack's publication, from the slot the catch-up took), while the other
    bare-metal units stay disabled. With the writer adding notes and uploads through the stack's front
    door at 10 writes/s, playbooks/migrate_rollback.yml carries the database back by replication (no
    dump, no restore) and the files as before. The bare metal then serves every write the stack
    acknowledged: each note by id and body in its database, each upload by SHA-256 through its nginx;
    the notes' sequence is past their maximum; nothing of the way back is left on either side. The
    writer's longest gap is the rollback's downtime as served. A fault first: the bare metal's
    PostgreSQL is stopped for 2 s while the stack writes; the rollback starts it and it catches up
    from the stack's slot."""
    reverse = json.loads(host.file(_LEDGER).content_string)["phases"]["cutover"]["reverse"]
    assert reverse["state"] == "streaming", reverse
    assert run_ok(host, "systemctl is-active postgresql@17-main.service").strip() == "active"
    assert run_ok(host, "systemctl is-enabled postgresql.service").strip() == "enabled"
    assert host.run("systemctl is-enabled inventory.service nginx.service").stdout.split() == ["disabled", "disabled"]
    assert run_ok(host, BARE_METAL_PSQL, "SELECT subname FROM pg_subscription").split() == ["pidock_reverse"]
    slot = "SELECT active FROM pg_replication_slots WHERE slot_name = 'pidock_reverse'"
    assert run_ok(host, STACK_PSQL, slot).strip() == "t"
    # migrate_finish would end it (check mode predicts a change and changes nothing).
    out, _took = run_playbook("migrate", "migrate_finish.yml", "--check")
    assert "changed=0" not in out, out[-2000:]
    assert run_ok(host, BARE_METAL_PSQL, "SELECT subname FROM pg_subscription").split() == ["pidock_reverse"]
    run_ok(host, "rm -f /root/writer.stop /root/writer.json")
    subprocess.run(["docker", "exec", "-d", _HOST, "python3", "/root/writer.py", "--rate", "10"], check=True)
    try:
        time.sleep(2)  # the stack takes writes; they stream to the bare metal's database
        # A fault: the bare metal's PostgreSQL goes down while the stack keeps writing (the stack's slot
        # holds those writes). The rollback starts it again, and the subscription resumes from the slot.
        run_ok(host, "systemctl stop postgresql.service postgresql@17-main.service")
        time.sleep(2)
        began = time.time()
        out, took = run_playbook("migrate", "migrate_rollback.yml")
        ended = time.time()
        time.sleep(2)  # and the bare metal takes them once it serves again
    finally:
        run_ok(host, "touch /root/writer.stop")
    written = _writer_report(host)
    text = " ".join(out.split())
    assert "The dump carries it" not in text, out[-3000:]
    note = json.loads(host.file(_LEDGER).content_string)["rollbacks"][-1]
    assert note["carried_back"] is True and note["database_by"] == "replication", note
    assert not host.file("/var/lib/pidock-migrate/carry/globals.sql").exists, "the stack was dumped after all"
    status, body = http_json(host, "https://127.0.0.1/health", insecure=True)
    assert status == 200 and body["release"] == "bare-metal", body
    during = [w for w in written["rows"] + written["files"] if began <= w["at"] <= ended]
    assert len(written["rows"]) >= 20 and len(written["files"]) >= 20, written
    _assert_writes_held(host, BARE_METAL_PSQL, written, "the bare metal")
    # Nothing of the way back is left: no subscription on the bare metal, no password file, the stack down.
    assert run_ok(host, BARE_METAL_PSQL, "SELECT count(*) FROM pg_subscription").strip() == "0"
    assert not host.file("/var/lib/pidock-migrate/reverse.password").exists
    assert run_ok(host, "docker ps --quiet --filter label=com.docker.compose.project=inventory").strip() == ""
    # After the rollback there is no migration to finish.
    out, _took = run_playbook("migrate", "migrate_finish.yml", expect_rc=2)
    assert "Nothing to finish: the ledger records no verified cutover" in " ".join(out.split()), out[-2000:]
    acked = sorted(w["at"] for w in written["rows"] + written["files"])
    gap = max((b - a for a, b in itertools.pairwise(acked) if b >= began and a <= ended), default=0.0)
    print(
        f"rollback by replication: {took:.1f} s; writer {len(written['rows'])} notes and {len(written['files'])} files"
        f" acknowledged ({len(during)} during the rollback), {written['failed']} failed; longest gap between two"
        f" acknowledged writes {gap:.1f} s (the downtime as served)"
    )
