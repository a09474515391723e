"""plugins/filter/migrate_replication.py: replicate or dump, LSNs, schema drift, sequence values."""

from __future__ import annotations

import copy

import pytest
from ansible_collections.pidock.stack.plugins.filter import migrate_replication as mr

# A bare-metal server that replication can use as it is, and a stack that matches it.
READY = {
    "source": {
        "version_num": 170004,
        "wal_level": "logical",
        "max_replication_slots": 10,
        "replication_slots_used": 0,
        "max_wal_senders": 10,
        "wal_senders_used": 0,
        "tables": [
            {"schema": "public", "name": "items", "persistence": "p", "has_primary_key": True, "replica_identity": "d"},
            {"schema": "public", "name": "tags", "persistence": "p", "has_primary_key": False, "replica_identity": "f"},
            {
                "schema": "public",
                "name": "by_idx",
                "persistence": "p",
                "has_primary_key": False,
                "replica_identity": "i",
                "replica_identity_index": "by_idx_key",
            },
            {"schema": "pg_temp_3", "name": "scratch", "persistence": "t"},
        ],
        "large_objects": 0,
        "extensions": {"plpgsql": "1.0", "vector": "0.8.0"},
        "sequences": 2,
    },
    "target": {"version_num": 170005, "extensions": {"vector": "0.8.0"}},
}


def _facts(**changes):
    """READY with dotted-path changes: _facts(**{"source.wal_level": "replica"})."""
    facts = copy.deepcopy(READY)
    for path, value in changes.items():
        node = facts
        *parents, last = path.split(".")
        for p in parents:
            node = node[p]
        node[last] = value
    return facts


KEYLESS = {"schema": "public", "name": "log", "persistence": "p", "has_primary_key": False, "replica_identity": "d"}

PLAN_CASES = [
    # (id, facts, settings, method, substring expected in reasons (or None), substring in steps (or None))
    ("ready: replicate, sequences copied at the freeze", READY, {}, "replicate", None, "copy 2 sequence value(s)"),
    ("dump asked for", READY, {"method": "dump"}, "dump", "migrate_db_method is dump", None),
    (
        "wal_level replica, restart not allowed",
        _facts(**{"source.wal_level": "replica"}),
        {},
        "dump",
        "wal_level=logical needs a restart",
        None,
    ),
    (
        "wal_level replica, restart allowed: stated with its estimate",
        _facts(**{"source.wal_level": "replica"}),
        {"allow_restart": True, "restart_estimate_s": 7},
        "replicate",
        None,
        "set wal_level=logical (about 7 s",
    ),
    (
        "no free slot for the subscription and its sync workers",
        _facts(**{"source.max_replication_slots": 3, "source.replication_slots_used": 1}),
        {},
        "dump",
        "max_replication_slots=4",
        None,
    ),
    ("too few WAL senders", _facts(**{"source.max_wal_senders": 2}), {}, "dump", "max_wal_senders=3", None),
    (
        "fewer sync workers need fewer slots",
        _facts(**{"source.max_replication_slots": 2}),
        {"sync_workers": 1},
        "replicate",
        None,
        None,
    ),
    (
        "PostgreSQL 9.6 has no publications",
        _facts(**{"source.version_num": 90624}),
        {},
        "dump",
        "PostgreSQL 9.6 has no logical replication",
        None,
    ),
    (
        "a stack older than the bare metal",
        _facts(**{"target.version_num": 160004}),
        {},
        "dump",
        "PostgreSQL 16 is older than the bare metal's 17",
        None,
    ),
    (
        "unlogged table",
        _facts(
            **{
                "source.tables": READY["source"]["tables"]
                + [{"schema": "public", "name": "cache", "persistence": "u", "has_primary_key": True}]
            }
        ),
        {},
        "dump",
        "unlogged tables are not replicated: public.cache",
        None,
    ),
    ("large objects", _facts(**{"source.large_objects": 3}), {}, "dump", "3 large object(s)", None),
    (
        "table without a key, FULL not allowed",
        _facts(**{"source.tables": [KEYLESS]}),
        {},
        "dump",
        "without a primary key or replica identity: public.log",
        None,
    ),
    (
        "table without a key, FULL allowed",
        _facts(**{"source.tables": [KEYLESS]}),
        {"allow_replica_identity_full": True},
        "replicate",
        None,
        "REPLICA IDENTITY FULL on public.log",
    ),
    (
        "replica identity nothing counts as keyless even with a key",
        _facts(**{"source.tables": [dict(KEYLESS, has_primary_key=True, replica_identity="n")]}),
        {},
        "dump",
        "public.log",
        None,
    ),
    (
        "replica identity index without the index counts as keyless",
        _facts(**{"source.tables": [dict(KEYLESS, replica_identity="i")]}),
        {},
        "dump",
        "public.log",
        None,
    ),
    (
        "listen address already covered by '*'",
        _facts(**{"source.listen_addresses": "*"}),
        {"listen_address": "172.17.0.1"},
        "replicate",
        None,
        "reached at 172.17.0.1",
    ),
    (
        "listen address missing, restart not allowed",
        _facts(**{"source.listen_addresses": "localhost"}),
        {"listen_address": "172.17.0.1"},
        "dump",
        "listen_addresses=localhost,172.17.0.1 needs a restart",
        None,
    ),
    (
        "listen address missing, restart allowed",
        _facts(**{"source.listen_addresses": "localhost"}),
        {"listen_address": "172.17.0.1", "allow_restart": True},
        "replicate",
        None,
        "set listen_addresses=localhost,172.17.0.1",
    ),
    (
        "no address found for the stack to reach the bare metal",
        READY,
        {"listen_address": ""},
        "dump",
        "no address on which the stack's PostgreSQL reaches the bare metal",
        None,
    ),
    (
        "separate target host, ssl on: over TLS to the target's address only",
        _facts(**{"source.ssl": True, "source.listen_addresses": "*"}),
        {"listen_address": "192.168.1.20", "tls": True},
        "replicate",
        None,
        "hostssl pg_hba line for the target host's address only, reached at 192.168.1.20 over TLS",
    ),
    (
        "separate target host, ssl off: no replication in clear over the network",
        _facts(**{"source.ssl": False, "source.listen_addresses": "*"}),
        {"listen_address": "192.168.1.20", "tls": True},
        "dump",
        "ssl is off on the bare-metal PostgreSQL",
        None,
    ),
    (
        "separate target host, stack's PostgreSQL 15: no TLS without a client certificate",
        _facts(
            **{
                "source.ssl": True,
                "source.listen_addresses": "*",
                "source.version_num": 150004,
                "target.version_num": 150008,
            }
        ),
        {"listen_address": "192.168.1.20", "tls": True},
        "dump",
        "cannot subscribe over TLS without a client certificate (sslcertmode needs 16 or later)",
        None,
    ),
    (
        "same host, ssl off: the bridge does not leave the host",
        _facts(**{"source.ssl": False, "source.listen_addresses": "*"}),
        {"listen_address": "172.17.0.1"},
        "replicate",
        None,
        "pg_hba lines for the stack's networks only",
    ),
    (
        "extension missing in the stack",
        _facts(**{"target.extensions": {}}),
        {},
        "dump",
        "extension vector is not available",
        None,
    ),
]


@pytest.mark.parametrize(
    ("facts", "settings", "method", "reason", "step"), [c[1:] for c in PLAN_CASES], ids=[c[0] for c in PLAN_CASES]
)
def test_replication_plan(facts, settings, method, reason, step):
    plan = mr.migrate_replication_plan(facts, settings)
    assert plan["method"] == method, plan
    if reason is None:
        assert plan["reasons"] == []
    else:
        assert any(reason in r for r in plan["reasons"]), plan["reasons"]
    if step is not None:
        assert any(step in s for s in plan["steps"]), plan["steps"]
    assert plan["errors"] == []  # auto never refuses: it falls back and says why


def test_replicate_requested_but_impossible_refuses_by_name():
    plan = mr.migrate_replication_plan(_facts(**{"source.large_objects": 1}), {"method": "replicate"})
    assert plan["method"] == "dump"
    assert plan["errors"] == [
        "migrate_db_method is replicate, but 1 large object(s) (pg_largeobject) are not replicated"
    ]


def test_unknown_method_is_an_error():
    plan = mr.migrate_replication_plan(READY, {"method": "rsync"})
    assert plan["errors"] and "migrate_db_method" in plan["errors"][0]


def test_restart_settings_are_returned_when_allowed():
    plan = mr.migrate_replication_plan(
        _facts(**{"source.wal_level": "minimal", "source.max_wal_senders": 0}), {"allow_restart": True}
    )
    assert plan["restart"] is True
    assert plan["restart_settings"] == {"wal_level": "logical", "max_wal_senders": 3}


@pytest.mark.parametrize(
    ("current", "address", "want"),
    [
        ("localhost", "172.17.0.1", "localhost,172.17.0.1"),
        ("localhost, 10.0.0.5", "10.0.0.5", None),
        ("*", "10.0.0.5", None),
        ("0.0.0.0", "10.0.0.5", None),
        ("0.0.0.0", "fd00::1", "0.0.0.0,fd00::1"),
        ("::", "fd00::1", None),
        ("", "172.17.0.1", "172.17.0.1"),
    ],
)
def test_listen_with(current, address, want):
    assert mr._listen_with(current, address) == want


def test_listen_address_joins_the_other_restart_settings():
    plan = mr.migrate_replication_plan(
        _facts(**{"source.wal_level": "replica", "source.listen_addresses": "localhost"}),
        {"listen_address": "172.17.0.1", "allow_restart": True},
    )
    assert plan["restart_settings"] == {"wal_level": "logical", "listen_addresses": "localhost,172.17.0.1"}
    assert plan["listen_address"] == "172.17.0.1"


def test_extension_version_difference_is_a_warning_not_a_blocker():
    plan = mr.migrate_replication_plan(_facts(**{"target.extensions": {"vector": "0.8.1"}}))
    assert plan["method"] == "replicate"
    assert plan["warnings"] == ["extension vector: 0.8.0 on the bare metal, 0.8.1 in the stack"]


@pytest.mark.parametrize(
    ("confirmed", "target", "want"),
    [
        ("0/16B3748", "0/16B3748", True),
        ("0/16B3749", "0/16B3748", True),
        ("0/16B3747", "0/16B3748", False),
        ("1/0", "0/FFFFFFFF", True),  # the high word counts more than any low word
        ("0/FFFFFFFF", "1/0", False),
        ("a/ff", "A/FF", True),
        (None, "0/1", False),
        ("", "0/1", False),
    ],
)
def test_lsn_reached(confirmed, target, want):
    assert mr.migrate_lsn_reached(confirmed, target) is want


@pytest.mark.parametrize("bad", ["16B3748", "0/", "x/1", "1/2/3", "123456789/0"])
def test_lsn_malformed_raises(bad):
    with pytest.raises(ValueError, match="not a pg_lsn"):
        mr.migrate_lsn_reached(bad, "0/1")


SNAP = {
    "tables": {
        "public.items": {
            "columns": [
                {"name": "id", "type": "bigint", "not_null": True, "default": "nextval('items_id_seq')"},
                {"name": "name", "type": "text", "not_null": False, "default": None},
            ],
            "indexes": ["CREATE UNIQUE INDEX items_pkey ON public.items USING btree (id)"],
            "constraints": ["PRIMARY KEY (id)"],
        },
    },
    "sequences": ["public.items_id_seq"],
    "extensions": {"vector": "0.8.0"},
}


def _snap(fn):
    s = copy.deepcopy(SNAP)
    fn(s)
    return s


DRIFT_CASES = [
    ("no change", SNAP, []),
    ("table created", _snap(lambda s: s["tables"].update({"public.new": {}})), ["table public.new was created"]),
    ("table dropped", _snap(lambda s: s["tables"].pop("public.items")), ["table public.items was dropped"]),
    (
        "column added",
        _snap(
            lambda s: s["tables"]["public.items"]["columns"].append(
                {"name": "qty", "type": "integer", "not_null": False}
            )
        ),
        ["table public.items: column qty was added"],
    ),
    (
        "column type changed",
        _snap(lambda s: s["tables"]["public.items"]["columns"][1].update(type="varchar(20)")),
        ["table public.items: column name changed (text -> varchar(20))"],
    ),
    (
        "column became not null",
        _snap(lambda s: s["tables"]["public.items"]["columns"][1].update(not_null=True)),
        ["table public.items: column name changed (text -> text not null)"],
    ),
    (
        "index added",
        _snap(lambda s: s["tables"]["public.items"]["indexes"].append("CREATE INDEX i ON t (name)")),
        ["table public.items: index added: CREATE INDEX i ON t (name)"],
    ),
    (
        "constraint dropped",
        _snap(lambda s: s["tables"]["public.items"].update(constraints=[])),
        ["table public.items: constraint dropped: PRIMARY KEY (id)"],
    ),
    ("sequence created", _snap(lambda s: s["sequences"].append("public.s2")), ["sequence public.s2 was created"]),
    (
        "extension updated",
        _snap(lambda s: s["extensions"].update(vector="0.8.1")),
        ["extension vector: 0.8.0 -> 0.8.1"],
    ),
    ("extension dropped", _snap(lambda s: s["extensions"].clear()), ["extension vector: 0.8.0 -> absent"]),
]


@pytest.mark.parametrize(("after", "want"), [c[1:] for c in DRIFT_CASES], ids=[c[0] for c in DRIFT_CASES])
def test_schema_drift(after, want):
    assert mr.migrate_schema_drift(SNAP, after) == want


SEQ_CASES = [
    (
        "used sequence",
        [{"schema": "public", "name": "items_id_seq", "last_value": 12000, "is_called": True}],
        ["SELECT pg_catalog.setval('public.items_id_seq'::regclass, 12000, true);"],
    ),
    (
        "never used: first nextval returns its start on both sides",
        [{"schema": "public", "name": "s", "last_value": None, "start_value": 100}],
        ["SELECT pg_catalog.setval('public.s'::regclass, 100, false);"],
    ),
    (
        "names that need quotes, in order",
        [
            {"schema": "App", "name": "o'q\"s", "last_value": 5, "is_called": True},
            {"schema": "public", "name": "user", "last_value": 1, "is_called": False},
        ],
        [
            'SELECT pg_catalog.setval(\'"App"."o\'\'q""s"\'::regclass, 5, true);',
            "SELECT pg_catalog.setval('public.\"user\"'::regclass, 1, false);",
        ],
    ),
]


@pytest.mark.parametrize(("seqs", "want"), [c[1:] for c in SEQ_CASES], ids=[c[0] for c in SEQ_CASES])
def test_sequence_sql(seqs, want):
    assert mr.migrate_sequence_sql(seqs) == want


@pytest.mark.parametrize("bad", [{"name": "s", "last_value": "1; DROP TABLE x"}, {"schema": "public", "last_value": 1}])
def test_sequence_sql_refuses_what_is_not_a_number_or_a_name(bad):
    with pytest.raises(ValueError):
        mr.migrate_sequence_sql([bad])


# migrate_db_method: migrate_db_info's facts and the image probe's lines, or the ledger's method.
SOURCE_INFO = {
    "server": {
        "version_num": 170004,
        "port": 5432,
        "wal_level": "replica",
        "max_replication_slots": 10,
        "replication_slots_used": 0,
        "max_wal_senders": 10,
        "wal_senders_used": 0,
        "large_objects": 0,
    },
    "tables": [
        {"schema": "public", "name": "items", "persistence": "p", "has_primary_key": True, "replica_identity": "d"}
    ],
    "extensions": {"plpgsql": "1.0", "vector": "0.8.0"},
    "sequences": [{"schema": "public", "name": "items_id_seq", "last_value": 3, "is_called": True, "start_value": 1}],
}
PROBE = [
    "version=postgres (PostgreSQL) 17.2 (Debian 17.2-1)",
    "extension=vector=0.8.0",
    "extension=plpgsql=1.0",
    "locale=C",
]


def _ledger(**statuses):
    return {"phases": {phase: {"status": status} for phase, status in statuses.items()}}


METHOD_CASES = [
    # id, settings, ledger, method, restart, recorded
    ("no restart allowed: dump", {"method": "auto"}, {}, "dump", False, False),
    ("restart allowed: replicate", {"method": "auto", "allow_restart": True}, {}, "replicate", True, False),
    ("dump asked", {"method": "dump", "allow_restart": True}, {}, "dump", False, False),
    (
        "replicate under way",
        {"method": "dump"},
        _ledger(presync="verified", replicate="started"),
        "replicate",
        False,
        True,
    ),
    (
        "catch-up under way",
        {"method": "auto"},
        _ledger(replicate="verified", catchup="started"),
        "replicate",
        False,
        True,
    ),
    (
        "dump under way",
        {"method": "auto", "allow_restart": True},
        _ledger(freeze="verified", dump="verified"),
        "dump",
        False,
        True,
    ),
    ("restore under way", {"method": "auto", "allow_restart": True}, _ledger(restore="started"), "dump", False, True),
    (
        "cleared phases do not count",
        {"method": "auto", "allow_restart": True},
        _ledger(dump="", replicate=""),
        "replicate",
        True,
        False,
    ),
    ("presync alone decides nothing", {"method": "auto"}, _ledger(presync="verified"), "dump", False, False),
]


@pytest.mark.parametrize(
    ("settings", "ledger", "method", "restart", "recorded"),
    [c[1:] for c in METHOD_CASES],
    ids=[c[0] for c in METHOD_CASES],
)
def test_db_method(settings, ledger, method, restart, recorded):
    plan = mr.migrate_db_method(SOURCE_INFO, PROBE, settings, ledger)
    assert (plan["method"], plan["restart"], plan["recorded"]) == (method, restart, recorded)
    if recorded:
        assert plan["errors"] == []


def test_db_method_reads_the_probe_and_counts_sequences():
    plan = mr.migrate_db_method(SOURCE_INFO, PROBE, {"allow_restart": True})
    assert plan["restart_settings"] == {"wal_level": "logical"}
    assert any("1 sequence value" in step for step in plan["steps"])
    # The stack's image without pgvector: the extension blocks, the method falls back.
    plan = mr.migrate_db_method(SOURCE_INFO, PROBE[:1], {"allow_restart": True})
    assert plan["method"] == "dump" and any("extension vector" in r for r in plan["reasons"])


def test_db_method_recorded_differs_from_plan_warns():
    plan = mr.migrate_db_method(SOURCE_INFO, PROBE, {"method": "dump"}, _ledger(replicate="verified"))
    assert plan["method"] == "replicate"
    assert any("uses replicate" in w for w in plan["warnings"])


@pytest.mark.parametrize(
    ("text", "want"),
    [("17.2", 170002), ("16", 160000), ("9.6.24", 90624), ("10.23", 100023), ("", 0), ("beta", 0)],
)
def test_version_num(text, want):
    assert mr._version_num(text) == want


def test_alter_system_sql():
    assert mr.migrate_alter_system_sql({"wal_level": "logical", "max_wal_senders": 13}) == [
        "ALTER SYSTEM SET max_wal_senders = '13';",
        "ALTER SYSTEM SET wal_level = 'logical';",
    ]
    assert mr.migrate_alter_system_sql({}) == []
    with pytest.raises(ValueError, match="not a server setting"):
        mr.migrate_alter_system_sql({"wal_level = x; DROP": "1"})


PLAN = {
    "blockers": ["b1"],
    "warnings": ["w1"],
    "estimate": {
        "presync_seconds": 30,
        "dump_seconds": 10,
        "restore_seconds": 10,
        "delta_seconds": 5,
        "downtime_seconds": 70,
        "total_seconds": 100,
    },
}


def test_plan_method_replicate_moves_dump_and_restore_out_of_the_downtime():
    db_plan = mr.migrate_db_method(SOURCE_INFO, PROBE, {"allow_restart": True})
    out = mr.migrate_plan_method(PLAN, db_plan)
    est = out["estimate"]
    assert out["db_method"]["method"] == "replicate" and out["db_method"]["restart"] is True
    assert (est["replicate_seconds"], est["dump_seconds"], est["restore_seconds"]) == (20, 0, 0)
    assert est["downtime_seconds"] == 5 + 3 + 18  # delta, catch-up, freeze + verify + the front's start
    assert est["total_seconds"] == 30 + 20 + 10 + est["downtime_seconds"]
    assert out["blockers"] == ["b1"] and PLAN["estimate"]["dump_seconds"] == 10  # input untouched


def test_plan_method_dump_keeps_the_estimate_and_refusal_blocks():
    db_plan = mr.migrate_db_method(SOURCE_INFO, PROBE, {"method": "replicate"})
    out = mr.migrate_plan_method(PLAN, db_plan)
    assert out["estimate"] == PLAN["estimate"]
    assert out["db_method"]["method"] == "dump"
    assert out["blockers"][0] == "b1" and any("migrate_db_method is replicate, but" in b for b in out["blockers"][1:])


def test_replica_identity_sql_quotes_and_refuses_unknown_tables():
    tables = [{"schema": "public", "name": "events"}, {"schema": "Shop", "name": "order"}]
    assert mr.migrate_replica_identity_sql(tables, ["public.events", "Shop.order"]) == [
        "ALTER TABLE public.events REPLICA IDENTITY FULL;",
        'ALTER TABLE "Shop"."order" REPLICA IDENTITY FULL;',
    ]
    assert mr.migrate_replica_identity_sql(tables, []) == []
    with pytest.raises(ValueError, match="not a table"):
        mr.migrate_replica_identity_sql(tables, ["public.gone"])


def test_db_method_recorded_without_facts_reads_nothing_and_says_nothing_more():
    plan = mr.migrate_db_method({}, [], {"method": "auto"}, _ledger(replicate="verified", cutover="verified"))
    assert (plan["method"], plan["recorded"], plan["reasons"], plan["steps"], plan["warnings"]) == (
        "replicate",
        True,
        [],
        [],
        [],
    )


RELEASE = {
    "services": {
        "app-blue": {"image": "sha256:1", "volumes": [{"type": "volume", "source": "images", "target": "/i"}]},
        "nginx": {"image": "sha256:2", "volumes": [{"type": "bind", "source": "/opt/x", "target": "/etc/nginx"}]},
        "postgres": {"image": "sha256:3", "volumes": [{"type": "volume", "source": "pgdata", "target": "/d"}]},
        "worker": {"image": "sha256:1"},
    },
    "volumes": {"images": {"name": "inventory_images"}, "pgdata": {}},
}

PRESTART_CASES = [
    # id, release changes (service -> definition, None removes), database volume, expected (start, database, app),
    # error substring
    ("reference stack", {}, "inventory_pgdata", (["app-blue", "postgres", "worker"], "postgres", "app-blue"), None),
    (
        "named volume",
        {"postgres": {"volumes": [{"type": "volume", "source": "db", "target": "/d"}]}},
        "inventory_db",
        (["app-blue", "postgres", "worker"], "postgres", "app-blue"),
        None,
    ),
    ("no holder", {}, "other_pgdata", (["app-blue", "postgres", "worker"], "", "app-blue"), "found none"),
    (
        "two holders",
        {"worker": {"volumes": [{"type": "volume", "source": "pgdata", "target": "/d"}]}},
        "inventory_pgdata",
        (["app-blue", "postgres", "worker"], "", "app-blue"),
        "found postgres, worker",
    ),
    (
        "the front mounts it",
        {"nginx": {"volumes": [{"type": "volume", "source": "pgdata", "target": "/d"}]}},
        "inventory_pgdata",
        (["app-blue", "postgres", "worker"], "postgres", "app-blue"),
        "the front nginx mounts",
    ),
    ("no app service", {"app-blue": None}, "inventory_pgdata", (["postgres", "worker"], "postgres", ""), None),
]


@pytest.mark.parametrize(
    ("changes", "volume", "want", "error"), [c[1:] for c in PRESTART_CASES], ids=[c[0] for c in PRESTART_CASES]
)
def test_prestart_services(changes, volume, want, error):
    release = copy.deepcopy(RELEASE)
    if "postgres" in changes and changes["postgres"] and "db" in str(changes["postgres"]):
        release["volumes"]["db"] = {"name": "inventory_db"}
    for name, service in changes.items():
        if service is None:
            del release["services"][name]
        else:
            release["services"][name] = service
    out = mr.migrate_prestart_services(release, "inventory", volume)
    assert (out["start"], out["database"], out["app"]) == want
    assert (error is None) == (out["errors"] == []), out["errors"]
    if error:
        assert any(error in e for e in out["errors"]), out["errors"]


def test_table_rows():
    tables = [
        {"schema": "public", "name": "items", "rows": 12000},
        {"schema": "Shop", "name": "orders", "rows": -1},
        {"name": "notes"},
        {"schema": "public"},
    ]
    assert mr.migrate_table_rows(tables) == {"public.items": 12000, "Shop.orders": 0, "public.notes": 0}
    assert mr.migrate_table_rows(None) == {}
