# Copyright: pidock.stack maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters for the online migration of the pidock.stack.migrate role (logical replication).

migrate_replication_plan(facts, settings) -> {method, requested, reasons, steps, restart,
                                              replica_identity_full, warnings, errors}
    whether the database can move by logical replication while the bare metal serves, what that
    needs first (a restart for wal_level, REPLICA IDENTITY FULL on tables without a key), and why
    not when it cannot (the plan then chooses the dump)
migrate_lsn_reached(confirmed, target)  -> True when a subscriber confirmed the publisher's LSN
migrate_schema_drift(before, after)     -> one message per schema change between two snapshots
                                           (DDL during the migration is never silently missed)
migrate_sequence_sql(sequences)         -> the setval() statements that carry sequence values
                                           (logical replication does not)
migrate_db_method(source, probe, settings, ledger)
                                        -> the plan above from what the role read (migrate_db_info
                                           on the bare metal, probe_image.sh lines of the stack's
                                           image), or the method a migration under way recorded
migrate_alter_system_sql(settings)      -> ALTER SYSTEM statements for the plan's restart settings
migrate_replica_identity_sql(tables, names)
                                        -> ALTER TABLE ... REPLICA IDENTITY FULL for the named tables
migrate_plan_method(plan, db_plan)      -> the migration plan (migrate_plan) with the method: its
                                           errors as blockers, and the estimate of that method

``facts`` is what the role read from the two PostgreSQL servers (catalog queries as JSON); every
decision is made here so that the tasks only gather, act and report.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ansible_collections.pidock.stack.plugins.filter.migrate_plan import _probe

# Logical replication (publications and subscriptions) exists from PostgreSQL 10.
_MIN_VERSION_NUM = 100000
# A separate target's server subscribes over TLS with sslcertmode=disable (16 or later): otherwise its
# libpq looks for a client certificate under its HOME, which the image's server cannot read.
_MIN_TLS_SUBSCRIBER_MAJOR = 16
# During the initial copy each table being synchronised uses one more replication slot and WAL
# sender beside the subscription's own; PostgreSQL's default max_sync_workers_per_subscription.
_DEFAULT_SYNC_WORKERS = 2
_METHODS = ("auto", "replicate", "dump")
_LSN_RE = re.compile(r"^([0-9A-Fa-f]{1,8})/([0-9A-Fa-f]{1,8})$")
_PLAIN_IDENT = re.compile(r"^[a-z_][a-z0-9_$]*$")
# Words PostgreSQL would not take unquoted as a name (the reserved keywords that matter in a
# qualified sequence name; anything else unusual is quoted by _PLAIN_IDENT anyway).
_RESERVED = frozenset(
    {
        "all",
        "analyse",
        "analyze",
        "and",
        "any",
        "array",
        "as",
        "asc",
        "asymmetric",
        "both",
        "case",
        "cast",
        "check",
        "collate",
        "column",
        "constraint",
        "create",
        "current_catalog",
        "current_date",
        "current_role",
        "current_time",
        "current_timestamp",
        "current_user",
        "default",
        "deferrable",
        "desc",
        "distinct",
        "do",
        "else",
        "end",
        "except",
        "false",
        "fetch",
        "for",
        "foreign",
        "from",
        "grant",
        "group",
        "having",
        "in",
        "initially",
        "intersect",
        "into",
        "lateral",
        "leading",
        "limit",
        "localtime",
        "localtimestamp",
        "not",
        "null",
        "offset",
        "on",
        "only",
        "or",
        "order",
        "placing",
        "primary",
        "references",
        "returning",
        "select",
        "session_user",
        "some",
        "symmetric",
        "system_user",
        "table",
        "then",
        "to",
        "trailing",
        "true",
        "union",
        "unique",
        "user",
        "using",
        "variadic",
        "when",
        "where",
        "window",
        "with",
    }
)


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _major(version_num: int) -> tuple[int, ...]:
    """Major version as a tuple: 170004 -> (17,), 90624 -> (9, 6) (before 10 the major had two parts)."""
    if version_num >= 100000:
        return (version_num // 10000,)
    return (version_num // 10000, version_num // 100 % 100)


def _major_text(version_num: int) -> str:
    return ".".join(str(p) for p in _major(version_num))


def _qualified(table: Mapping[str, Any]) -> str:
    schema = str(table.get("schema") or "public")
    return f"{schema}.{table.get('name')}"


def _listen_with(current: str, address: str) -> str | None:
    """``listen_addresses`` that also covers ``address``, or None when ``current`` already does."""
    entries = [e.strip() for e in current.split(",") if e.strip()]
    wildcard = "::" if ":" in address else "0.0.0.0"  # a setting compared, not a bind
    if "*" in entries or address in entries or wildcard in entries:
        return None
    return ",".join([*entries, address])


def migrate_replication_plan(facts: Mapping[str, Any], settings: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Decide between logical replication and a dump for one database.

    ``facts``:
      ``source`` - the bare-metal server: ``version_num`` (server_version_num), ``wal_level``,
        ``max_replication_slots``, ``replication_slots_used``, ``max_wal_senders``, ``wal_senders_used``,
        ``tables`` (list of ``{schema, name, persistence, has_primary_key, replica_identity,
        replica_identity_index}``; persistence ``p`` permanent, ``u`` unlogged, ``t`` temporary;
        replica_identity ``d`` default, ``n`` nothing, ``f`` full, ``i`` index), ``large_objects``
        (count), ``extensions`` (name to installed version), ``sequences`` (count).
      ``target`` - the stack's server: ``version_num``, ``extensions`` (name to the version
        ``CREATE EXTENSION`` would install, the default version).
    ``settings``: ``method`` (``auto``, ``replicate`` or ``dump``), ``allow_restart`` (the bare-metal
      PostgreSQL may be restarted once, before the freeze, for settings that need it),
      ``allow_replica_identity_full``, ``restart_estimate_s`` (what the plan states),
      ``sync_workers`` (max_sync_workers_per_subscription of the subscriber), ``listen_address`` (the
      address on which the stack's PostgreSQL reaches the bare metal over TCP: with it, the plan checks
      ``listen_addresses`` of the source and adds the address to the restart when missing; empty means
      none was found, which rules replication out; not given: not checked), ``tls`` (the stack's PostgreSQL is
      on a separate host and reaches the bare metal over the network: only over TLS, so ``ssl`` must be on).

    ``method`` is the method to use; ``reasons`` say why replication is not possible (empty when it
    is); ``errors`` are set only when ``replicate`` was requested and is not possible (the plan
    refuses instead of silently falling back); ``steps`` are what replication needs before its
    initial copy, in order.
    """
    settings = dict(settings or {})
    requested = str(settings.get("method") or "auto")
    out: dict[str, Any] = {
        "method": "dump",
        "requested": requested,
        "reasons": [],
        "steps": [],
        "restart": False,
        "restart_settings": {},
        "replica_identity_full": [],
        "listen_address": "",
        "warnings": [],
        "errors": [],
    }
    if requested not in _METHODS:
        out["errors"].append(f"migrate_db_method: {requested!r} is not one of {', '.join(_METHODS)}")
        return out
    if requested == "dump":
        out["reasons"].append("migrate_db_method is dump")
        return out

    source = facts.get("source") or {}
    target = facts.get("target") or {}
    reasons: list[str] = out["reasons"]
    steps: list[str] = out["steps"]
    allow_restart = bool(settings.get("allow_restart", False))
    allow_full = bool(settings.get("allow_replica_identity_full", False))
    restart_s = _int(settings.get("restart_estimate_s"), 5)
    sync_workers = _int(settings.get("sync_workers"), _DEFAULT_SYNC_WORKERS)

    # Versions: publications need 10+, and a subscriber older than its publisher is not supported
    # for what the dump method would carry either.
    src_v, tgt_v = _int(source.get("version_num")), _int(target.get("version_num"))
    if src_v and src_v < _MIN_VERSION_NUM:
        reasons.append(
            f"the bare-metal PostgreSQL {_major_text(src_v)} has no logical replication (10 or later needed)"
        )
    if src_v and tgt_v and _major(tgt_v) < _major(src_v):
        reasons.append(
            f"the stack's PostgreSQL {_major_text(tgt_v)} is older than the bare metal's {_major_text(src_v)}"
        )

    # Server settings that need one restart of the bare-metal PostgreSQL.
    restart_settings: dict[str, Any] = {}
    wal_level = str(source.get("wal_level") or "")
    if wal_level != "logical":
        restart_settings["wal_level"] = "logical"
    if "listen_address" in settings:
        address = str(settings.get("listen_address") or "").strip()
        out["listen_address"] = address
        if not address:
            reasons.append(
                "no address on which the stack's PostgreSQL reaches the bare metal (Docker's default bridge has no "
                "gateway here; set migrate_replication_listen_address)"
            )
        else:
            listening = _listen_with(str(source.get("listen_addresses") or ""), address)
            if listening is not None:
                restart_settings["listen_addresses"] = listening
    tls = bool(settings.get("tls", False))
    if tls and not source.get("ssl"):
        reasons.append(
            "ssl is off on the bare-metal PostgreSQL: the replication to a separate target host crosses the network "
            "with TLS only (set ssl = on and a certificate; a reload is enough)"
        )
    if tls and tgt_v and _major(tgt_v) < (_MIN_TLS_SUBSCRIBER_MAJOR,):
        reasons.append(
            f"the stack's PostgreSQL {_major_text(tgt_v)} cannot subscribe over TLS without a client certificate "
            f"(sslcertmode needs {_MIN_TLS_SUBSCRIBER_MAJOR} or later)"
        )
    need_slots = 1 + sync_workers
    slots_free = _int(source.get("max_replication_slots")) - _int(source.get("replication_slots_used"))
    if slots_free < need_slots:
        restart_settings["max_replication_slots"] = _int(source.get("replication_slots_used")) + need_slots
    senders_free = _int(source.get("max_wal_senders")) - _int(source.get("wal_senders_used"))
    if senders_free < need_slots:
        restart_settings["max_wal_senders"] = _int(source.get("wal_senders_used")) + need_slots
    if restart_settings:
        what = ", ".join(f"{k}={v}" for k, v in sorted(restart_settings.items()))
        if allow_restart:
            out["restart"] = True
            out["restart_settings"] = restart_settings
            steps.append(
                f"restart the bare-metal PostgreSQL once to set {what} (about {restart_s} s without the "
                "database, before the freeze; migrate_replication_allow_restart is true)"
            )
        else:
            reasons.append(
                f"{what} needs a restart of the bare-metal PostgreSQL (allow it with "
                "migrate_replication_allow_restart: true)"
            )

    # What logical replication cannot carry.
    tables = [t for t in source.get("tables") or [] if str(t.get("persistence") or "p") != "t"]
    unlogged = sorted(_qualified(t) for t in tables if str(t.get("persistence")) == "u")
    if unlogged:
        reasons.append(f"unlogged tables are not replicated: {', '.join(unlogged)}")
    lobs = _int(source.get("large_objects"))
    if lobs:
        reasons.append(f"{lobs} large object(s) (pg_largeobject) are not replicated")

    # Tables whose UPDATE and DELETE the publication could not identify: once published, the
    # bare-metal app's updates to them would fail. REPLICA IDENTITY FULL fixes that (slower).
    keyless = []
    for t in tables:
        if str(t.get("persistence") or "p") != "p":
            continue
        ident = str(t.get("replica_identity") or "d")
        if ident == "f" or (ident == "i" and t.get("replica_identity_index")):
            continue
        if ident == "d" and t.get("has_primary_key"):
            continue
        keyless.append(_qualified(t))
    keyless.sort()
    if keyless:
        if allow_full:
            out["replica_identity_full"] = keyless
            steps.append(
                f"ALTER TABLE ... REPLICA IDENTITY FULL on {', '.join(keyless)} (no primary key or replica "
                "identity; migrate_replication_allow_replica_identity_full is true)"
            )
        else:
            reasons.append(
                f"tables without a primary key or replica identity: {', '.join(keyless)} (allow REPLICA IDENTITY "
                "FULL with migrate_replication_allow_replica_identity_full: true)"
            )

    # Extensions: the schema is created in the stack from the bare metal's; a version the stack
    # would install differently is stated (both methods carry the same schema).
    src_ext = dict(source.get("extensions") or {})
    tgt_ext = dict(target.get("extensions") or {})
    for name in sorted(src_ext):
        if name == "plpgsql":
            continue
        if name not in tgt_ext:
            reasons.append(f"extension {name} is not available in the stack's PostgreSQL")
        elif str(tgt_ext[name]) != str(src_ext[name]):
            out["warnings"].append(f"extension {name}: {src_ext[name]} on the bare metal, {tgt_ext[name]} in the stack")

    if not reasons:
        out["method"] = "replicate"
        if tls:
            steps.append(
                "a replication role and a hostssl pg_hba line for the target host's address only, reached at "
                f"{out['listen_address']} over TLS (sslmode=verify-ca against the bare metal's certificate; removed "
                "at the catch-up)"
            )
        else:
            steps.append(
                "a replication role and pg_hba lines for the stack's networks only, reached at "
                f"{out['listen_address'] or 'the local socket'} (removed at the catch-up)"
            )
        steps.append(
            "before the freeze: the stack's own PostgreSQL takes over the subscription and the stack starts "
            "without its front (health-checked); the cutover then only starts the front"
        )
        steps.append("publication, subscription and initial copy while the bare metal serves")
        seq = _int(source.get("sequences"))
        if seq:
            steps.append(f"at the freeze: wait for the subscriber, then copy {seq} sequence value(s)")
    elif requested == "replicate":
        out["errors"] = [f"migrate_db_method is replicate, but {r}" for r in reasons]
    return out


def _lsn(value: Any) -> int:
    m = _LSN_RE.match(str(value or "").strip())
    if not m:
        raise ValueError(f"not a pg_lsn: {value!r}")
    return (int(m.group(1), 16) << 32) | int(m.group(2), 16)


def migrate_lsn_reached(confirmed: Any, target: Any) -> bool:
    """True when ``confirmed`` (a subscriber's confirmed or flushed LSN) is at or past ``target``.

    LSNs are compared as numbers (``16/B374D848``: high and low 32 bits in hex); a missing
    ``confirmed`` (the subscriber has not reported yet) is not reached; a malformed one raises.
    """
    if confirmed in (None, ""):
        return False
    return _lsn(confirmed) >= _lsn(target)


def _columns(table: Mapping[str, Any]) -> dict[str, tuple]:
    cols = {}
    for c in table.get("columns") or []:
        cols[str(c.get("name"))] = (str(c.get("type")), bool(c.get("not_null")), c.get("default"))
    return cols


def migrate_schema_drift(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    """Messages for every schema change between two snapshots of one database.

    A snapshot is ``{tables: {qualified name: {columns: [{name, type, not_null, default}],
    indexes: [definition, ...], constraints: [definition, ...]}}, sequences: [name, ...],
    extensions: {name: version}}``, as the role reads it from the catalog before the initial copy
    and again at the freeze. DDL is not replicated, so any message here stops the cutover.
    """
    msgs: list[str] = []
    bt, at = dict(before.get("tables") or {}), dict(after.get("tables") or {})
    for name in sorted(set(at) - set(bt)):
        msgs.append(f"table {name} was created")
    for name in sorted(set(bt) - set(at)):
        msgs.append(f"table {name} was dropped")
    for name in sorted(set(bt) & set(at)):
        bc, ac = _columns(bt[name]), _columns(at[name])
        for col in sorted(set(ac) - set(bc)):
            msgs.append(f"table {name}: column {col} was added")
        for col in sorted(set(bc) - set(ac)):
            msgs.append(f"table {name}: column {col} was dropped")
        for col in sorted(set(bc) & set(ac)):
            if bc[col] != ac[col]:
                msgs.append(f"table {name}: column {col} changed ({_col_text(bc[col])} -> {_col_text(ac[col])})")
        for kind, word in (("indexes", "index"), ("constraints", "constraint")):
            bi, ai = set(bt[name].get(kind) or []), set(at[name].get(kind) or [])
            msgs.extend(f"table {name}: {word} added: {d}" for d in sorted(ai - bi))
            msgs.extend(f"table {name}: {word} dropped: {d}" for d in sorted(bi - ai))
    bs, as_ = set(before.get("sequences") or []), set(after.get("sequences") or [])
    for s in sorted(as_ - bs):
        msgs.append(f"sequence {s} was created")
    for s in sorted(bs - as_):
        msgs.append(f"sequence {s} was dropped")
    be, ae = dict(before.get("extensions") or {}), dict(after.get("extensions") or {})
    for e in sorted(set(be) | set(ae)):
        if be.get(e) != ae.get(e):
            msgs.append(f"extension {e}: {be.get(e) or 'absent'} -> {ae.get(e) or 'absent'}")
    return msgs


def _col_text(col: tuple) -> str:
    typ, not_null, default = col
    text = typ + (" not null" if not_null else "")
    return text + (f" default {default}" if default not in (None, "") else "")


def _quote_ident(name: str) -> str:
    if _PLAIN_IDENT.match(name) and name not in _RESERVED:
        return name
    return '"' + name.replace('"', '""') + '"'


def _quote_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def migrate_sequence_sql(sequences: list[Mapping[str, Any]]) -> list[str]:
    """``SELECT pg_catalog.setval(...)`` statements that give the subscriber the publisher's values.

    Each item: ``schema``, ``name``, ``last_value`` (integer or null when never used) and
    ``is_called``. A sequence never used keeps ``is_called = false`` at its start so that its
    first ``nextval`` returns the same number on both sides. Names are quoted as PostgreSQL's
    ``quote_ident`` would; values must be integers.
    """
    out = []
    for s in sorted(sequences, key=lambda s: (str(s.get("schema") or "public"), str(s.get("name")))):
        schema, name = str(s.get("schema") or "public"), str(s.get("name") or "")
        if not name:
            raise ValueError("a sequence without a name")
        regclass = _quote_literal(f"{_quote_ident(schema)}.{_quote_ident(name)}")
        if s.get("last_value") is None:
            start = s.get("start_value", 1)
            value, called = int(start), False
        else:
            value, called = int(s["last_value"]), bool(s.get("is_called", True))
        out.append(f"SELECT pg_catalog.setval({regclass}::regclass, {value}, {'true' if called else 'false'});")
    return out


# Ledger phases that fix the method of a migration under way (started or verified).
_METHOD_PHASES = (("replicate", "replicate"), ("catchup", "replicate"), ("dump", "dump"), ("restore", "dump"))
_SETTING_NAME = re.compile(r"^[a-z_][a-z0-9_.]*$")


def _version_num(text: Any) -> int:
    """server_version_num from a version string: '17.2' -> 170002, '9.6.24' -> 90624, '' -> 0."""
    parts = [int(p) for p in re.findall(r"\d+", str(text or ""))[:3]]
    if not parts:
        return 0
    if parts[0] >= 10:
        return parts[0] * 10000 + (parts[1] if len(parts) > 1 else 0)
    return parts[0] * 10000 + (parts[1] if len(parts) > 1 else 0) * 100 + (parts[2] if len(parts) > 2 else 0)


def _probe_facts(lines: Any) -> dict[str, Any]:
    """The stack's server from probe_image.sh's lines (parsed as the plan parses them): version_num and extensions."""
    version, extensions, _locales = _probe([str(line) for line in lines or []])
    return {"version_num": _version_num(version), "extensions": dict(extensions)}


def migrate_db_method(
    source: Mapping[str, Any],
    probe: Any,
    settings: Mapping[str, Any] | None = None,
    ledger: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The database method of this run, with the plan's reasons and steps.

    ``source`` is ``migrate_db_info``'s ``facts`` for the bare-metal database (``server``,
    ``tables``, ``extensions``, ``sequences``); ``probe`` the lines probe_image.sh printed for the
    stack's image. A migration whose ledger has a database phase started or verified keeps that
    phase's method whatever ``settings`` say now (``recorded`` is then true): switching half way
    would leave a subscription or a dump behind.
    """
    source = dict(source or {})
    facts = {
        "source": {
            **dict(source.get("server") or {}),
            "tables": list(source.get("tables") or []),
            "extensions": dict(source.get("extensions") or {}),
            "sequences": len(source.get("sequences") or []),
        },
        "target": _probe_facts(probe),
    }
    plan = migrate_replication_plan(facts, settings)
    phases = dict((ledger or {}).get("phases") or {})
    for phase, method in _METHOD_PHASES:
        if str(dict(phases.get(phase) or {}).get("status") or "") in ("started", "verified"):
            plan["recorded"] = True
            # Reasons and steps were the first run's; facts now (when read at all) only warn.
            plan["reasons"], plan["steps"] = [], []
            if source and plan["method"] != method:
                plan["warnings"].append(
                    f"the migration under way uses {method} (its {phase} phase is in the ledger); "
                    f"the plan would choose {plan['method']} now"
                )
            plan["method"] = method
            plan["errors"] = []
            # A recorded dump never restarts; a recorded replicate had its restart (if any) already.
            plan["restart"] = False
            plan["restart_settings"] = {}
            return plan
    plan["recorded"] = False
    return plan


def migrate_alter_system_sql(settings: Mapping[str, Any]) -> list[str]:
    """``ALTER SYSTEM SET`` statements for server settings (names checked, values quoted)."""
    out = []
    for name in sorted(settings or {}):
        if not _SETTING_NAME.match(str(name)):
            raise ValueError(f"{name!r} is not a server setting name")
        out.append(f"ALTER SYSTEM SET {name} = {_quote_literal(str(settings[name]))};")
    return out


def migrate_replica_identity_sql(tables: list[Mapping[str, Any]], names: list[str]) -> list[str]:
    """``ALTER TABLE ... REPLICA IDENTITY FULL`` for the tables (``{schema, name}``) whose qualified
    name (as the plan writes it) is in ``names``; a name not among the tables is an error."""
    by_name = {_qualified(t): t for t in tables or []}
    out = []
    for qualified in names or []:
        table = by_name.get(qualified)
        if table is None:
            raise ValueError(f"{qualified!r} is not a table of the database")
        out.append(
            f"ALTER TABLE {_quote_ident(str(table.get('schema') or 'public'))}.{_quote_ident(str(table['name']))}"
            " REPLICA IDENTITY FULL;"
        )
    return out


# Seconds the plan states for the catch-up at the freeze (last changes, sequences, teardown), for
# the rest of a replicated migration's downtime besides the delta (the freeze, verify and the
# cutover, which only starts the front: 14-19 s measured on the benchmark host, rounded up), and
# for prestart (live).
_CATCHUP_SECONDS = 3
_PRESTARTED_OVERHEAD_SECONDS = 18
_PRESTART_SECONDS = 10


def migrate_plan_method(plan: Mapping[str, Any], db_plan: Mapping[str, Any]) -> dict[str, Any]:
    """``migrate_plan``'s result with the database method: ``db_method``, its errors as blockers,
    its warnings, and an estimate for that method (with ``replicate`` the dump and the restore
    leave the downtime, the initial copy and prestart run while the bare metal serves, and the
    downtime is the delta, the catch-up and a fixed part)."""
    out = dict(plan)
    db_plan = dict(db_plan or {})
    out["db_method"] = {
        k: db_plan.get(k)
        for k in (
            "method",
            "requested",
            "recorded",
            "reasons",
            "steps",
            "restart",
            "restart_settings",
            "replica_identity_full",
            "listen_address",
        )
    }
    out["blockers"] = [*plan.get("blockers", []), *db_plan.get("errors", [])]
    out["warnings"] = [*plan.get("warnings", []), *db_plan.get("warnings", [])]
    estimate = dict(plan.get("estimate") or {})
    if db_plan.get("method") == "replicate" and estimate:
        moved = int(estimate.get("dump_seconds", 0)) + int(estimate.get("restore_seconds", 0))
        estimate["replicate_seconds"] = moved
        estimate["restart_seconds"] = 5 if db_plan.get("restart") else 0
        estimate["catchup_seconds"] = _CATCHUP_SECONDS
        estimate["prestart_seconds"] = _PRESTART_SECONDS
        estimate["dump_seconds"] = 0
        estimate["restore_seconds"] = 0
        estimate["downtime_seconds"] = (
            int(estimate.get("delta_seconds", 0)) + _CATCHUP_SECONDS + _PRESTARTED_OVERHEAD_SECONDS
        )
        estimate["total_seconds"] = (
            int(estimate.get("presync_seconds", 0)) + moved + _PRESTART_SECONDS + estimate["downtime_seconds"]
        )
    out["estimate"] = estimate
    return out


def migrate_table_rows(tables: list[Mapping[str, Any]] | None) -> dict[str, int]:
    """``migrate_db_info``'s tables as ``{schema.table: estimated rows}`` (never analysed: 0), what
    ``migrate_subscription_wait`` counts the initial copy's progress by."""
    return {_qualified(t): max(0, _int(t.get("rows"))) for t in tables or [] if t.get("name")}


def _volume_name(key: str, top: Mapping[str, Any], project: str) -> str:
    """The Docker name of a compose volume key: its ``name:``, else ``<project>_<key>``."""
    spec = top.get(key) if isinstance(top.get(key), Mapping) else {}
    return str((spec or {}).get("name") or f"{project}_{key}")


def migrate_prestart_services(
    config: Mapping[str, Any], project: str, database_volume: str, front: str = "nginx", app: str = "app"
) -> dict[str, Any]:
    """What the replicate method starts before the freeze, from the staged release's compose file.

    ``config`` is ``docker compose config --format json --no-interpolate`` of the release. Every service
    but the ``front`` starts; ``database`` is the one service that mounts ``database_volume`` (its
    PostgreSQL takes the subscription over); ``app`` is the service named ``app`` (or its blue or
    green colour), asked for its health before the freeze, or ``""``. ``errors`` name what makes the
    stack unfit to start early.
    """
    services = dict((config or {}).get("services") or {})
    top = dict((config or {}).get("volumes") or {})
    errors: list[str] = []
    holders = []
    for name in sorted(services):
        for mount in services[name].get("volumes") or []:
            if not isinstance(mount, Mapping) or mount.get("type", "volume") != "volume" or not mount.get("source"):
                continue
            if _volume_name(str(mount["source"]), top, project) == database_volume:
                holders.append(name)
                break
    if front in holders:
        errors.append(f"the front {front} mounts the database volume {database_volume}")
    holders = [h for h in holders if h != front]
    if len(holders) != 1:
        errors.append(
            f"exactly one service must mount the database volume {database_volume}, found "
            f"{', '.join(holders) or 'none'}"
        )
    start = [name for name in sorted(services) if name != front]
    apps = [name for name in (app, f"{app}-blue", f"{app}-green") if name in services]
    return {
        "start": start,
        "database": holders[0] if len(holders) == 1 else "",
        "app": apps[0] if apps else "",
        "errors": errors,
    }


class FilterModule:
    """Filters for the online (replicated) migration."""

    def filters(self) -> dict[str, Any]:
        return {
            "migrate_replication_plan": migrate_replication_plan,
            "migrate_lsn_reached": migrate_lsn_reached,
            "migrate_schema_drift": migrate_schema_drift,
            "migrate_sequence_sql": migrate_sequence_sql,
            "migrate_db_method": migrate_db_method,
            "migrate_alter_system_sql": migrate_alter_system_sql,
            "migrate_plan_method": migrate_plan_method,
            "migrate_replica_identity_sql": migrate_replica_identity_sql,
            "migrate_prestart_services": migrate_prestart_services,
            "migrate_table_rows": migrate_table_rows,
        }
