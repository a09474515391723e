"""The plan phase of pidock.stack.migrate: its report on the controller states the source and target."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from pidock_helpers import run_ok

_REPORTS = Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/nonexistent"))


def _plan(kind: str = "reports") -> dict:
    path = _REPORTS / kind / "migrate-pi.plan.json"
    if not path.is_file():
        pytest.fail(f"no plan report at {path}")
    return json.loads(path.read_text(encoding="utf-8"))


def test_plan_has_no_blockers():
    """No blocker, and no warning but the open connections' notice: the app keeps a connection per
    worker thread for its health checks (as a pooled app does), so the plan may find some open."""
    plan = _plan()
    assert plan["blockers"] == []
    connections = plan["source"]["connections"]
    expected = [f"{connections} client connection(s) to inventory_db now; freeze stops the writers"]
    assert plan["warnings"] == (expected if connections else []), plan["warnings"]


def test_plan_reads_both_postgresql_sides(host):
    plan = _plan()
    src, tgt = plan["source"], plan["target"]
    assert src["major"] == tgt["major"] == 17
    assert src["encoding"] == "UTF8"
    assert src["collate"] == "C.UTF-8"
    assert {e["name"]: e["version"] for e in src["extensions"]}["vector"] == "0.8.0"
    assert tgt["extensions"]["vector"] == "0.8.0"
    assert tgt["image_present"] is True
    assert tgt["image_architecture"] == tgt["host_architecture"] == run_ok(host, "dpkg --print-architecture").strip()


@pytest.mark.usefixtures("rolled_back")
def test_plan_counts_match_the_database(host):
    # The plan side_effect took after the rollback: it reads the data the rollback carried back.
    plan = _plan("reports-after-rollback")
    assert plan["blockers"] == []
    tables = {t["name"]: t["rows"] for t in plan["source"]["tables"]}
    for table, rows in tables.items():
        live = run_ok(host, "runuser -u postgres -- psql -XtAq -d inventory_db -c %s", f"SELECT count(*) FROM {table}")
        assert int(live) == rows, table
    assert tables["items"] >= 10000
    roles = {r["name"]: r["password"] for r in plan["source"]["roles"]}
    assert roles["inventory"] == "scram-sha-256"


def test_plan_counts_files(host):
    plan = _plan()
    images = plan["source"]["images"]
    assert images["files"] == int(run_ok(host, "find /var/lib/inventory/images -type f | wc -l"))
    assert images["bytes"] > 0
    assert images["hardlink_groups"] == 1
    (repo,) = plan["source"]["ml_repos"]
    assert repo["ok"] is True
    assert repo["repo_id"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert plan["source"]["ml_dangling"] == []


def test_plan_sees_bare_metal_nginx_on_the_stack_ports():
    ports = {p["port"]: p for p in _plan()["target"]["ports"]}
    assert set(ports) == {80, 443}
    assert all(p["unit"] == "nginx.service" and p["freed_at_cutover"] for p in ports.values())


def test_plan_estimates_and_space():
    plan = _plan()
    est = plan["estimate"]
    assert 0 < est["downtime_seconds"] <= est["total_seconds"]
    assert all(c["need"] < c["have"] for c in plan["target"]["space"])


def test_check_mode_plan_is_the_same_plan():
    a, b = _plan(), _plan("reports-check")

    # Rows and names must agree; a table's on-disk size may move between the two reads (vacuum,
    # hint bits), as seen once: 49,618,944 then 49,610,752 bytes for the same 11,989 rows.
    def tables(plan):
        return [{k: v for k, v in t.items() if k != "bytes"} for t in plan["source"]["tables"]]

    assert tables(a) == tables(b)
    assert a["blockers"] == b["blockers"]


def test_plan_chooses_the_dump_and_says_why():
    """Replication would need wal_level=logical and a listener on Docker's bridge gateway, a restart
    the plan may not do (not allowed): auto falls back to the dump, the reason in the JSON and the
    Markdown report."""
    method = _plan()["db_method"]
    assert (method["method"], method["requested"], method["recorded"]) == ("dump", "auto", False)
    assert any("wal_level=logical needs a restart" in r for r in method["reasons"]), method
    # The stack reaches the bare metal at the gateway of Docker's default bridge.
    gateway = method["listen_address"]
    assert gateway.count(".") == 3, method
    assert any(f"listen_addresses=localhost,{gateway}," in r for r in method["reasons"]), method
    text = (_REPORTS / "reports" / "migrate-pi.plan.md").read_text(encoding="utf-8")
    assert "## Database method: dump" in text and "wal_level=logical needs a restart" in text


def test_blocked_plan_names_every_blocker():
    blockers = "\n".join(_plan("reports-blocked")["blockers"])
    assert "lacks the extension vector" in blockers
    assert "locale C.UTF-8" in blockers
    assert "too little space on /mnt/migrate-small" in blockers
    assert "port 8443 is held by python3 (migrate-squatter.service)" in blockers
    assert "migrate_target_images_volume: inventory_pgdata is also migrate_target_pgdata_volume" in blockers
    assert "port 443" not in blockers
    # Replication asked for where it is not possible (wal_level, and the stack's image lacks pgvector).
    assert "migrate_db_method is replicate, but listen_addresses=localhost," in blockers
    assert "wal_level=logical needs a restart" in blockers
    assert "migrate_db_method is replicate, but extension vector is not available" in blockers


def test_markdown_report_is_written():
    text = (_REPORTS / "reports" / "migrate-pi.plan.md").read_text(encoding="utf-8")
    assert "**No blockers.**" in text
    assert "| public.items |" in text


@pytest.mark.usefixtures("rolled_back")
def test_plan_left_the_source_untouched(host):
    for unit in ("inventory", "nginx", "postgresql@17-main"):
        assert host.service(unit).is_running
    assert host.service("inventory").is_enabled
