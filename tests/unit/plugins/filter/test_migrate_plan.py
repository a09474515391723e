"""migrate_plan: observed facts in, {source, target, estimate, blockers, warnings} out."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
from ansible_collections.pidock.stack.plugins.filter import migrate_plan as f

GIB = 1024**3
IMAGE = "local/postgres:17-pgvector"


def _space(path: str, mount: str, available: int) -> dict[str, Any]:
    return {"path": path, "mount": mount, "available_bytes": available}


def _listener(port: int, address: str, process: str, unit: str) -> dict[str, Any]:
    return {"port": port, "address": address, "process": process, "unit": unit}


def _facts() -> dict[str, Any]:
    """A source and target with nothing wrong: the plan finds no blocker and no warning."""
    return {
        "host": "bare",
        "target_host": "bare",
        "config": {
            "postgres_image": IMAGE,
            "images_dir": "/var/lib/inventory/images",
            "ml_cache_dir": "/var/lib/inventory/ml_cache",
            "ssl_dir": "/var/lib/inventory/ssl",
            "env_file": "/var/lib/inventory/config/inventory.env",
            "data_dir": "/var/lib/docker",
            "work_dir": "/var/lib/pidock-migrate",
            "ml_models": ["sentence-transformers/all-MiniLM-L6-v2"],
            "stack_ports": [80, 443],
            "source_units": ["inventory.service", "nginx.service", "postgresql@17-main.service"],
            "space_margin": 0.2,
            "copy_rate": 40,
            "dump_rate": 25,
            "overhead_seconds": 45,
            "builtin_locales": ["c", "posix"],
            "docker_arch": {"armhf": "arm", "i386": "386"},
            "project": "inventory",
            "ipv6_bug_min_version": "26.0.0",
        },
        "db": {
            "server_version": "17.2 (Debian 17.2-1)",
            "server_version_num": 170002,
            "database": "inventory_db",
            "encoding": "UTF8",
            "collate": "en_US.UTF-8",
            "ctype": "en_US.UTF-8",
            "size_bytes": 100 * 1000 * 1000,
            "extensions": [{"name": "plpgsql", "version": "1.0"}, {"name": "vector", "version": "0.8.0"}],
            "roles": [{"name": "inventory", "login": True, "password": "scram-sha-256"}],
            "tables": [{"name": "items", "rows": 10}, {"name": "images", "rows": 5}],
            "sequences": [],
            "connections": 0,
            "databases": ["inventory_db"],
        },
        "image": {"found": True, "inspect": {"Architecture": "amd64"}, "error": ""},
        "probe": [
            "version=postgres (PostgreSQL) 17.4 (Debian 17.4-1.pgdg120+2)",
            "extension=plpgsql=1.0",
            "extension=vector=0.8.0",
            "locale=C",
            "locale=en_US.utf8",
            "locale=POSIX",
        ],
        "arch": "amd64\n",
        "paths": {
            "/var/lib/inventory/images": True,
            "/var/lib/inventory/ml_cache": True,
            "/var/lib/inventory/ssl": True,
            "/var/lib/inventory/config/inventory.env": True,
        },
        "trees": {
            "/var/lib/inventory/images": {
                "counts": {"file": 100, "dir": 3, "symlink": 1, "hardlink_groups": 1},
                "total_bytes": 400 * 1000 * 1000,
            },
            "/var/lib/inventory/ml_cache": {
                "counts": {"file": 10, "dir": 5, "symlink": 8, "hardlink_groups": 0},
                "total_bytes": 100 * 1000 * 1000,
            },
        },
        "hf": {
            "ok": True,
            "dangling": [],
            "repos": [
                {"repo_id": "sentence-transformers/all-MiniLM-L6-v2", "ok": True, "errors": [], "refs": {"main": "x"}}
            ],
        },
        "units": "Id=inventory.service\nActiveState=active\nUnitFileState=enabled\n\n"
        "Id=nginx.service\nActiveState=active\nUnitFileState=enabled\n",
        "space": [_space("/var/lib/docker", "/", 10737418240), _space("/var/lib/pidock-migrate", "/", 10737418240)],
        "listeners": [
            _listener(443, "0.0.0.0:443", "nginx", "nginx.service"),
            _listener(80, "0.0.0.0:80", "nginx", "nginx.service"),
            _listener(22, "0.0.0.0:22", "sshd", "ssh.service"),
        ],
        "env": {"keys": ["POSTGRES_PASSWORD"], "errors": [], "missing": []},
        "volumes": [
            {"var": "migrate_target_images_volume", "name": "inventory_images", "exists": False},
            {"var": "migrate_target_ml_cache_volume", "name": "inventory_ml_cache", "exists": True, "entries": 0},
            {
                "var": "migrate_target_pgdata_volume",
                "name": "inventory_pgdata",
                "exists": True,
                "entries": 19,
                "labels": {f.MIGRATE_VOLUME_LABEL: "pgdata", "com.docker.compose.project": "inventory"},
            },
        ],
        "engine": {"version": "28.1.1", "ipv6_disabled": True, "ipv6_workaround": True},
    }


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(facts: dict[str, Any]) -> None:
        *head, last = path.split(".")
        node: Any = facts
        for key in head:
            node = node[int(key)] if isinstance(node, list) else node[key]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return change


def _vol(index: int, **changes: Any) -> Callable[[dict[str, Any]], None]:
    def change(facts: dict[str, Any]) -> None:
        facts["volumes"][index].update(changes)

    return change


def _c_locale(facts: dict[str, Any]) -> None:
    facts["db"].update(collate="C", ctype="POSIX")
    facts["probe"] = ["version=postgres (PostgreSQL) 17.4", "extension=vector=0.8.0"]


# (name, change, blocker fragments expected, warning fragments expected)
CASES: list[tuple[str, Callable[[dict[str, Any]], None], list[str], list[str]]] = [
    ("collation missing from the image", _set("db.collate", "de_DE.UTF-8"), ["locale de_DE.UTF-8 (LC_COLLATE"], []),
    ("ctype missing from the image", _set("db.ctype", "sv_SE.ISO-8859-1"), ["LC_CTYPE of inventory_db"], []),
    ("C locale is built in", _c_locale, [], []),
    (
        "target major older",
        _set("db.server_version_num", 180001),
        ["target PostgreSQL 17 is older than the source 18"],
        [],
    ),
    (
        "no postgres in the image",
        _set("probe", ["extension=vector=0.8.0", "locale=en_US.utf8"]),
        ["no postgres server"],
        [],
    ),
    (
        "extension missing",
        _set("db.extensions", [{"name": "postgis", "version": "3.5"}]),
        ["lacks the extension postgis (3.5"],
        [],
    ),
    (
        "extension older",
        _set("probe.2", "extension=vector=0.7.4"),
        ["has vector 0.7.4, older than the source 0.8.0"],
        [],
    ),
    ("extension newer is fine", _set("probe.2", "extension=vector=0.10.0"), [], []),
    ("image architecture", _set("arch", "arm64"), [f"image {IMAGE} is amd64, the target runs arm64"], []),
    ("armhf maps to arm", _set("arch", "armhf"), ["the target runs arm"], []),
    (
        "image missing",
        _set("image", {"found": False, "inspect": {}, "error": "No such image"}),
        [f"image {IMAGE} is not on bare", "compose role's image step"],
        [],
    ),
    (
        "port held by another unit",
        _set("listeners.1", _listener(80, "0.0.0.0:80", "apache2", "apache2.service")),
        ["port 80 is held by apache2 (apache2.service)"],
        [],
    ),
    (
        "port held by Docker's proxy before the cutover",
        _set("listeners.1", _listener(80, "0.0.0.0:80", "docker-proxy", "docker.service")),
        ["port 80 is held by docker-proxy (docker.service)"],
        [],
    ),
    (
        "port held by Docker's proxy once the cutover began: the stack's switch",
        lambda facts: (
            _set("listeners.1", _listener(80, "0.0.0.0:80", "docker-proxy", "docker.service"))(facts),
            _set("ledger", {"phases": {"cutover": {"status": "started"}}})(facts),
        ),
        [],
        [],
    ),
    (
        "port held by another unit once the cutover began",
        lambda facts: (
            _set("listeners.1", _listener(80, "0.0.0.0:80", "apache2", "apache2.service"))(facts),
            _set("ledger", {"phases": {"cutover": {"status": "started"}}})(facts),
        ),
        ["port 80 is held by apache2 (apache2.service)"],
        [],
    ),
    (
        "port held by a process outside units",
        _set("listeners.0", _listener(443, "[::]:443", "caddy", "-")),
        ["port 443 is held by caddy (-)"],
        [],
    ),
    (
        "free space short on the shared mount",
        _set("space", [_space("/var/lib/docker", "/", 500000000), _space("/var/lib/pidock-migrate", "/", 500000000)]),
        ["too little space on /var/lib/docker + /var/lib/pidock-migrate"],
        [],
    ),
    (
        "free space short on the work dir only",
        _set("space", [_space("/var/lib/docker", "/", 10737418240), _space("/var/lib/pidock-migrate", "/srv", 1000)]),
        ["too little space on /var/lib/pidock-migrate: 114.4 MiB needed, 1000 Bytes free"],
        [],
    ),
    (
        "model missing from the HF cache",
        _set("hf.repos", []),
        ["model sentence-transformers/all-MiniLM-L6-v2 is not in the ML cache"],
        [],
    ),
    ("model broken in the HF cache", _set("hf.repos.0.ok", False), ["is broken in the ML cache"], []),
    ("HF cache missing entirely", _set("hf", None), ["is not in the ML cache"], []),
    (
        "other repo broken is a warning",
        _set(
            "hf.repos",
            [
                {"repo_id": "sentence-transformers/all-MiniLM-L6-v2", "ok": True},
                {"repo_id": "x/y", "ok": False, "errors": [{"kind": "dangling"}]},
            ],
        ),
        [],
        ["ML cache repository x/y has errors (dangling)"],
    ),
    (
        "volume names mixed up",
        _vol(0, name="inventory_pgdata"),
        ["migrate_target_images_volume: inventory_pgdata is also migrate_target_pgdata_volume"],
        [],
    ),
    (
        "volume of another role",
        _vol(0, exists=True, entries=3, labels={f.MIGRATE_VOLUME_LABEL: "pgdata"}),
        ["migrate_target_images_volume: inventory_images holds the migration's pgdata volume"],
        [],
    ),
    (
        "foreign non-empty volume",
        _vol(1, entries=2),
        [
            "migrate_target_ml_cache_volume: inventory_ml_cache exists, holds 2 entries and was not made by this",
        ],
        [],
    ),
    (
        "volume of another project",
        _vol(2, labels={f.MIGRATE_VOLUME_LABEL: "pgdata", "com.docker.compose.project": "other"}),
        ["made by a migration into compose project other"],
        [],
    ),
    ("unreadable volume", _vol(1, entries=None), ["its content could not be read"], []),
    (
        "unparsable env file",
        _set(
            "env", {"keys": [], "errors": [{"line": 3, "problem": "quote opened here is never closed"}], "missing": []}
        ),
        ["inventory.env line 3: quote opened here is never closed"],
        [],
    ),
    (
        "env file lacks a mapped key",
        _set("env", {"keys": [], "errors": [], "missing": ["POSTGRES_PASSWORD"]}),
        ["migrate_env_secrets: POSTGRES_PASSWORD missing from"],
        [],
    ),
    (
        "engine needs the IPv6 workaround",
        _set("engine.ipv6_workaround", False),
        ["Docker 28.1.1 on a host with IPv6 disabled", "playbooks/provision.yml"],
        [],
    ),
    (
        "old engine needs no workaround",
        _set("engine", {"version": "25.0.5", "ipv6_disabled": True, "ipv6_workaround": False}),
        [],
        [],
    ),
    (
        "engine with IPv6 needs no workaround",
        _set("engine", {"version": "28.1.1", "ipv6_disabled": False, "ipv6_workaround": False}),
        [],
        [],
    ),
    (
        "no engine at all",
        _set("engine", {"version": "", "ipv6_disabled": False}),
        ["Docker does not answer", "provision.yml"],
        [],
    ),
    (
        "md5 password",
        _set("db.roles", [{"name": "old", "login": True, "password": "md5"}]),
        [],
        ["role old has an md5 password hash"],
    ),
    ("SQL_ASCII", _set("db.encoding", "SQL_ASCII"), [], ["SQL_ASCII"]),
    ("clients connected", _set("db.connections", 3), [], ["3 client connection(s) to inventory_db"]),
    (
        "source path missing",
        _set("paths./var/lib/inventory/ssl", False),
        [],
        ["/var/lib/inventory/ssl does not exist on the source"],
    ),
]


def test_base_facts_plan_clean() -> None:
    plan = f.migrate_plan(_facts())
    assert plan["blockers"] == []
    assert plan["warnings"] == []
    assert set(plan) == {"host", "target_host", "source", "target", "estimate", "blockers", "warnings"}


@pytest.mark.parametrize(("name", "change", "blockers", "warnings"), CASES, ids=[c[0] for c in CASES])
def test_plan_table(
    name: str, change: Callable[[dict[str, Any]], None], blockers: list[str], warnings: list[str]
) -> None:
    facts = copy.deepcopy(_facts())
    change(facts)
    plan = f.migrate_plan(facts)
    assert len(plan["blockers"]) == (1 if blockers else 0), plan["blockers"]
    for fragment in blockers:
        assert fragment in plan["blockers"][0], (name, plan["blockers"])
    assert len(plan["warnings"]) == len(warnings), plan["warnings"]
    for fragment, warning in zip(warnings, plan["warnings"], strict=True):
        assert fragment in warning


def test_estimate_and_summary() -> None:
    plan = f.migrate_plan(_facts())
    assert plan["estimate"] == {
        "presync_seconds": 13,  # 500 MB at 40 MB/s
        "dump_seconds": 4,  # 100 MB at 25 MB/s
        "restore_seconds": 4,
        "delta_seconds": 5,
        "downtime_seconds": 4 * 2 + 5 + 45,
        "total_seconds": 13 + 58,
        "assumed_copy_mb_s": 40,
        "assumed_dump_mb_s": 25,
    }
    assert plan["source"]["rows"] == 15
    assert plan["source"]["major"] == 17 and plan["target"]["major"] == 17
    assert plan["source"]["images"] == {
        "files": 100,
        "dirs": 3,
        "symlinks": 1,
        "hardlink_groups": 1,
        "bytes": 400_000_000,
    }
    assert plan["source"]["units"][1] == {"unit": "nginx.service", "active": "active", "enabled": "enabled"}
    assert [p["port"] for p in plan["target"]["ports"]] == [443, 80]
    assert all(p["freed_at_cutover"] for p in plan["target"]["ports"])
    assert plan["target"]["locales"] == ["c", "en_us.utf8", "posix"]
    assert plan["target"]["space"] == [
        {"path": "/var/lib/docker + /var/lib/pidock-migrate", "need": 720_000_000 + 120_000_000, "have": 10737418240}
    ]
    json.dumps(plan)  # the report is JSON


def test_plan_never_shows_env_values() -> None:
    plan = f.migrate_plan(_facts())
    assert plan["source"]["env_keys"] == ["POSTGRES_PASSWORD"]


VOLUME_CASES: list[tuple[str, list[dict[str, Any]], list[str]]] = [
    ("all new", [], []),
    (
        "typo puts images on pgdata",
        [{"name": "inventory_pgdata"}, {}, {}],
        ["migrate_target_images_volume: inventory_pgdata is also migrate_target_pgdata_volume"],
    ),
    (
        "typo puts pgdata on images",
        [{}, {}, {"name": "inventory_images"}],
        ["migrate_target_pgdata_volume: inventory_images is also migrate_target_images_volume"],
    ),
    (
        "all three the same",
        [{"name": "x"}, {"name": "x"}, {"name": "x"}],
        [
            "migrate_target_images_volume: x is also",
            "migrate_target_ml_cache_volume: x is also",
            "migrate_target_pgdata_volume: x is also",
        ],
    ),
    ("empty name", [{}, {"name": ""}, {}], ["migrate_target_ml_cache_volume is empty"]),
    ("existing empty", [{"exists": True, "entries": 0}, {}, {}], []),
    (
        "existing with our label",
        [{"exists": True, "entries": 5, "labels": {f.MIGRATE_VOLUME_LABEL: "images"}}, {}, {}],
        [],
    ),
    (
        "existing with compose labels only",
        [{"exists": True, "entries": 1, "labels": {"com.docker.compose.project": "inventory"}}, {}, {}],
        ["migrate_target_images_volume: inventory_images exists, holds 1 entry"],
    ),
]


@pytest.mark.parametrize(("name", "changes", "expected"), VOLUME_CASES, ids=[c[0] for c in VOLUME_CASES])
def test_volume_blockers(name: str, changes: list[dict[str, Any]], expected: list[str]) -> None:
    base = [
        {"var": "migrate_target_images_volume", "name": "inventory_images", "exists": False},
        {"var": "migrate_target_ml_cache_volume", "name": "inventory_ml_cache", "exists": False},
        {"var": "migrate_target_pgdata_volume", "name": "inventory_pgdata", "exists": False},
    ]
    for vol, change in zip(base, changes + [{}] * (3 - len(changes)), strict=True):
        vol.update(change)
    found = f.migrate_volume_blockers(base, "inventory")
    assert len(found) == len(expected), found
    for fragment, blocker in zip(expected, found, strict=True):
        assert blocker.startswith(fragment) or fragment in blocker, (name, found)


def test_plan_reads_the_engine_as_text_or_as_migrate_host_info_returns_it() -> None:
    """The engine's version with quotes and the sysctl's text are tolerated; the workaround is found
    in docker.service's Environment=."""
    facts = _facts()
    facts["engine"] = {"version": '"28.1.1"\n', "ipv6_disabled": "1\n", "environment": "Environment=FOO=1\n"}
    plan = f.migrate_plan(facts)
    assert plan["blockers"][0].startswith("Docker 28.1.1 on a host with IPv6 disabled")
    assert len(plan["blockers"]) == 1
    facts["engine"] = {"version": "28.1.1", "ipv6_disabled": False, "environment": ""}
    assert f.migrate_plan(facts)["blockers"] == []
    facts["engine"] = {
        "version": "28.1.1",
        "ipv6_disabled": True,
        "environment": "Environment=DOCKER_ALLOW_IPV6_ON_IPV4_INTERFACE=1\n",
    }
    assert f.migrate_plan(facts)["target"]["engine"] == {
        "version": "28.1.1",
        "ipv6_disabled": True,
        "ipv6_workaround": True,
    }


STACK_WRITE_CASES: list[tuple[str, dict[str, Any] | None, bool, bool]] = [
    ("no ledger", None, False, False),
    ("never rolled back", {"phases": {"cutover": {"status": "verified"}}}, False, False),
    ("rolled back before the stack served", {"rollbacks": [{"time": "t1", "reason": "restore failed"}]}, False, False),
    ("rolled back after the stack served", {"rollbacks": [{"time": "t2", "stack_served_since": "t1"}]}, False, True),
    ("told to discard", {"rollbacks": [{"time": "t2", "stack_served_since": "t1"}]}, True, False),
    ("carried back", {"rollbacks": [{"time": "t2", "stack_served_since": "t1", "carried_back": True}]}, False, False),
    (
        "a later migration failed and rolled back (the operator passed the guard)",
        {"rollbacks": [{"time": "t2", "stack_served_since": "t1"}, {"time": "t3", "reason": "delta failed"}]},
        False,
        False,
    ),
]


@pytest.mark.parametrize(
    ("name", "ledger", "discard", "blocked"), STACK_WRITE_CASES, ids=[c[0] for c in STACK_WRITE_CASES]
)
def test_stack_writes_guard(name: str, ledger: dict[str, Any] | None, discard: bool, blocked: bool) -> None:
    facts = _facts()
    facts["ledger"] = ledger
    facts["config"].update(discard_stack_writes=discard, stack_write_volumes=["inventory_pgdata", "inventory_images"])
    blockers = f.migrate_plan(facts)["blockers"]
    assert len(blockers) == int(blocked), blockers
    if blocked:
        assert blockers[0].startswith("the stack served from t1 until the rollback at t2")
        assert "(inventory_pgdata, inventory_images)" in blockers[0]
        assert "migrate_discard_stack_writes: true" in blockers[0]


def _container(name: str, volumes: list[str], labels: dict[str, str] | None = None, state: str = "running"):
    return {
        "Id": "c0ffee" * 10,
        "Names": [f"/{name}"],
        "State": state,
        "Labels": labels or {},
        "Mounts": [{"Type": "volume", "Name": v, "Destination": "/data"} for v in volumes]
        + [{"Type": "bind", "Source": "/etc/x", "Destination": "/x"}],
    }


TARGET_VOLUMES = ["inventory_images", "inventory_ml_cache", "inventory_pgdata"]
ALL_WRITTEN = {"phases": {p: {"status": "verified"} for p in ("presync", "restore", "delta")}}
VOLUME_USER_CASES: list[tuple[str, list[dict[str, Any]] | None, dict[str, Any] | None, list[str]]] = [
    ("no containers", [], None, []),
    ("none known (engine down)", None, None, []),
    (
        "the stack's postgres serves from pgdata",
        [_container("inventory-postgres-1", ["inventory_pgdata"], {"com.docker.compose.project": "inventory"})],
        None,
        ["container inventory-postgres-1 (compose project inventory) is running with inventory_pgdata mounted"],
    ),
    (
        "an app with two volumes, one blocker naming both",
        [_container("app", ["inventory_ml_cache", "inventory_images"])],
        {"phases": {"presync": {"status": "verified"}}},
        ["container app is running with inventory_images, inventory_ml_cache mounted"],
    ),
    (
        "the migration's own restore container",
        [_container("pm", ["inventory_pgdata"], {"pidock.migrate": "true"})],
        None,
        [],
    ),
    ("a stopped container", [_container("old", ["inventory_pgdata"], state="exited")], None, []),
    ("a volume of another stack", [_container("other", ["shop_pgdata"])], None, []),
    (
        "after a verified cutover the stack serving is the outcome",
        [_container("inventory-postgres-1", ["inventory_pgdata"])],
        ALL_WRITTEN,
        [],
    ),
    (
        "a ledger with delta still to run",
        [_container("inventory-postgres-1", ["inventory_pgdata"])],
        {
            "phases": {
                "presync": {"status": "verified"},
                "restore": {"status": "verified"},
                "delta": {"status": "started"},
            }
        },
        ["inventory-postgres-1"],
    ),
]


@pytest.mark.parametrize(
    ("name", "containers", "ledger", "expected"), VOLUME_USER_CASES, ids=[c[0] for c in VOLUME_USER_CASES]
)
def test_volume_users_guard(name: str, containers: Any, ledger: Any, expected: list[str]) -> None:
    blockers = f.migrate_volume_users_blockers(containers, TARGET_VOLUMES, ledger)
    assert len(blockers) == len(expected), blockers
    for fragment, blocker in zip(expected, blockers, strict=True):
        assert fragment in blocker
        assert "migrate_rollback.yml" in blocker


PRESTARTED = {"phases": {"replicate": {"status": "verified"}, "prestart": {"status": "verified"}}}
COMPOSE = {"com.docker.compose.project": "inventory"}


@pytest.mark.parametrize(
    ("containers", "ledger", "blocked"),
    [
        ([_container("inventory-postgres-1", ["inventory_pgdata"], COMPOSE)], PRESTARTED, []),
        (
            [_container("inventory-postgres-1", ["inventory_pgdata"], COMPOSE)],
            {"phases": {"prestart": {"status": "started"}}},
            [],
        ),
        (
            [_container("inventory-postgres-1", ["inventory_pgdata"], COMPOSE)],
            {"phases": {"replicate": {"status": "verified"}}},
            ["inventory-postgres-1"],
        ),
        (
            [_container("other-db-1", ["inventory_pgdata"], {"com.docker.compose.project": "other"})],
            PRESTARTED,
            ["other-db-1"],
        ),
    ],
    ids=["prestarted stack", "prestart under way", "not prestarted", "another project"],
)
def test_volume_users_guard_accepts_the_migrations_prestarted_stack(containers, ledger, blocked) -> None:
    blockers = f.migrate_volume_users_blockers(containers, TARGET_VOLUMES, ledger, "inventory")
    assert [b.split()[1] for b in blockers] == blocked


def test_plan_blocks_on_a_stack_serving_from_the_volumes() -> None:
    facts = copy.deepcopy(_facts())
    facts["volume_users"] = [_container("inventory-postgres-1", ["inventory_pgdata"])]
    plan = f.migrate_plan(facts)
    assert any("inventory-postgres-1" in b for b in plan["blockers"]), plan["blockers"]


def _baseline(**rows: int) -> dict[str, Any]:
    return {
        "owner": "inventory",
        "encoding": "UTF8",
        "tables": [{"table": f"public.{t}", "rows": n, "checksum": f"c{n}"} for t, n in rows.items()],
        "sequences": [],
        "probes": [],
    }


RESTORE_GUARD_CASES: list[tuple[str, Any, Any, list[str]]] = [
    ("no database in the volume", None, _baseline(items=3), []),
    ("an empty answer", {}, None, []),
    ("a restore of this migration under way", _baseline(items=7), {"restoring": True}, []),
    ("equal to what verify or the carry recorded", _baseline(items=3, images=2), _baseline(items=3, images=2), []),
    (
        "rows written since",
        _baseline(items=5, images=2),
        _baseline(items=3, images=2),
        ["inventory_db in inventory_pgdata changed since", "public.items", "migrate_rollback.yml"],
    ),
    ("never recorded and empty (the image's POSTGRES_DB)", _baseline(items=0), None, []),
    ("never recorded, no tables", _baseline(), None, []),
    (
        "never recorded, with rows",
        _baseline(items=4, images=0, categories=2),
        None,
        ["holds 6 row(s) in 2 table(s) (public.items, public.categories)", "never recorded"],
    ),
]


@pytest.mark.parametrize(
    ("name", "current", "recorded", "expected"), RESTORE_GUARD_CASES, ids=[c[0] for c in RESTORE_GUARD_CASES]
)
def test_restore_guard(name: str, current: Any, recorded: Any, expected: list[str]) -> None:
    problems = f.migrate_restore_guard(current, recorded, "inventory_db", "inventory_pgdata")
    assert len(problems) == (1 if expected else 0), problems
    for fragment in expected:
        assert fragment in problems[0]
    if expected:
        assert "migrate_discard_stack_writes: true" in problems[0]
