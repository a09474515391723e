"""After migrate_rollback and the faults: the bare metal serves again, its data identical to what
the stack held; the stack is down; the failed restore stopped before cutover."""

from __future__ import annotations

import json

import pytest
from _db import BARE_METAL_PSQL, load, snapshot
from pidock_helpers import http_json, run_ok

pytestmark = pytest.mark.usefixtures("rolled_back")

_LEDGER = "/var/lib/pidock-migrate/ledger.json"


def test_bare_metal_serves_again(host):
    status, body = http_json(host, "https://127.0.0.1/health", insecure=True)
    assert status == 200, body
    assert body["release"] == "bare-metal"
    assert "nginx" in run_ok(host, "ss -Hltnp '( sport = :443 )'")


def test_bare_metal_data_equals_what_the_stack_held(host):
    assert snapshot(host, BARE_METAL_PSQL) == load()


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
    assert requested["stack_served_since"]  # the next plan refuses to overwrite the stack's writes
    assert "stack_served_since" not in failed
    assert failed["reason"].startswith("restore failed")
    assert "vector" in failed["reason"]
    assert "cutover" not in failed["cleared"]


def test_failed_restore_left_no_containers(host):
    assert run_ok(host, "docker ps -aq --filter label=pidock.migrate=true").strip() == ""
