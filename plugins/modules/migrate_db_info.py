#!/usr/bin/python
# Copyright: (c) 2026, pidock.stack maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: migrate_db_info
short_description: Read what an online migration needs to know about a PostgreSQL database
version_added: 0.1.0
description:
  - Reads catalog facts of one PostgreSQL database through C(psql), each part as one JSON document built by the
    server (no text parsing), for the online migration of the P(pidock.stack.migrate#role) role.
  - V(server) - version, port, C(listen_addresses), the C(pg_hba.conf) path, whether C(ssl) is on and its
    certificate file, C(wal_level), replication slots and WAL senders (configured and in use), large objects.
  - V(tables) - every user table with its persistence, primary key, replica identity and estimated rows
    (C(reltuples), 0 before the first C(ANALYZE)); tables that belong to an extension are left out.
  - V(extensions) - installed extensions and versions; V(available_extensions) - the version C(CREATE EXTENSION)
    would install.
  - V(sequences) - every sequence with its last value, whether it was used, and its start.
  - V(schema) - a snapshot of the schema (columns, indexes, constraints, sequences, extensions) for
    P(pidock.stack.migrate_schema_drift#filter).
  - V(lsn) - the server's current WAL position (on a primary); V(subscriptions) - the state of every
    subscription of this database (on a subscriber); V(slots) - the logical replication slots of this database
    and the position each subscriber confirmed as flushed, and C(wal_status) (V(lost) once the slot's WAL was
    removed; empty before PostgreSQL 13) (on a publisher).
  - The decision (replicate or dump) is P(pidock.stack.migrate_replication_plan#filter)'s.
author:
  - pidock.stack maintainers (@pidock)
options:
  psql:
    description:
      - The command that runs C(psql) against the server, as a list, without the database.
      - On the bare metal, the default runs it as the C(postgres) OS user over the local socket; for the stack's
        container, for example V([docker, exec, -i, inventory-postgres-1, psql, -U, inventory]).
    type: list
    elements: str
    default: [runuser, -u, postgres, --, psql]
  database:
    description: The database to read.
    type: str
    required: true
  gather:
    description: The parts to read.
    type: list
    elements: str
    choices: [server, tables, extensions, available_extensions, sequences, schema, lsn, subscriptions, slots]
    default: [server, tables, extensions, sequences]
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: none
notes:
  - Read-only. C(psql) runs with C(-X) (no C(.psqlrc)) and C(ON_ERROR_STOP); a failing query fails the task with
    its error.
"""

EXAMPLES = r"""
- name: Read the bare-metal database
  pidock.stack.migrate_db_info:
    database: inventory_db
    gather: [server, tables, extensions, sequences, schema]
  register: source_db

- name: Read the stack's database
  pidock.stack.migrate_db_info:
    psql: [docker, exec, -i, inventory-postgres-1, psql, -U, inventory]
    database: inventory_db
    gather: [server, available_extensions, subscriptions]
  register: target_db
"""

RETURN = r"""
facts:
  description: One key per part read.
  returned: success
  type: dict
  sample:
    server: {version_num: 170004, port: 5432, listen_addresses: localhost,
             hba_file: /etc/postgresql/17/main/pg_hba.conf, ssl: true,
             ssl_cert_file: /etc/ssl/certs/ssl-cert-snakeoil.pem, wal_level: replica, max_replication_slots: 10,
             replication_slots_used: 0, max_wal_senders: 10, wal_senders_used: 0, large_objects: 0}
    tables: [{schema: public, name: items, persistence: p, has_primary_key: true, replica_identity: d,
              replica_identity_index: null, rows: 12000}]
    extensions: {plpgsql: "1.0", vector: "0.8.0"}
    sequences: [{schema: public, name: items_id_seq, last_value: 12000, is_called: true, start_value: 1}]
    lsn: 0/16B3748
    slots: [{name: pidock_migrate, plugin: pgoutput, active: true, confirmed_flush_lsn: 0/16B3748,
             wal_status: reserved}]
began_at:
  description:
    - When the module began to read, in seconds since the epoch on the host's clock. With RV(ended_at), a caller
      times a step inside a downtime without a task of its own to take the time.
  returned: success
  type: float
  sample: 1764446400.123
ended_at:
  description: When the module had read everything, in seconds since the epoch on the host's clock.
  returned: success
  type: float
  sample: 1764446400.456
"""

import json
import time

from ansible.module_utils.basic import AnsibleModule

# Tables of the database's users: ordinary and partitioned, outside the system schemas, not
# created by an extension (CREATE EXTENSION makes those again on the other side).
_USER_TABLES = """
  FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p')
   AND n.nspname NOT IN ('pg_catalog', 'information_schema')
   AND n.nspname NOT LIKE 'pg\\_toast%'
   AND n.nspname NOT LIKE 'pg\\_temp\\_%'
   AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                    WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
"""

QUERIES = {
    "server": """
SELECT json_build_object(
  'version_num', current_setting('server_version_num')::int,
  'port', current_setting('port')::int,
  'listen_addresses', current_setting('listen_addresses'),
  'hba_file', current_setting('hba_file'),
  'ssl', current_setting('ssl') = 'on',
  'ssl_cert_file', current_setting('ssl_cert_file'),
  'wal_level', current_setting('wal_level'),
  'max_replication_slots', current_setting('max_replication_slots')::int,
  'replication_slots_used', (SELECT count(*) FROM pg_catalog.pg_replication_slots),
  'max_wal_senders', current_setting('max_wal_senders')::int,
  'wal_senders_used', (SELECT count(*) FROM pg_catalog.pg_stat_replication),
  'large_objects', (SELECT count(*) FROM pg_catalog.pg_largeobject_metadata))
""",
    "tables": f"""
SELECT coalesce(json_agg(json_build_object(
  'schema', n.nspname,
  'name', c.relname,
  'persistence', c.relpersistence,
  'has_primary_key', EXISTS (SELECT 1 FROM pg_catalog.pg_constraint k WHERE k.conrelid = c.oid AND k.contype = 'p'),
  'replica_identity', c.relreplident,
  'replica_identity_index', (SELECT i.indexrelid::regclass::text FROM pg_catalog.pg_index i
                              WHERE i.indrelid = c.oid AND i.indisreplident),
  'rows', greatest(c.reltuples, 0)::bigint)
  ORDER BY n.nspname, c.relname), '[]')
{_USER_TABLES}
""",
    "extensions": "SELECT coalesce(json_object_agg(extname, extversion), '{}') FROM pg_catalog.pg_extension",
    "available_extensions": (
        "SELECT coalesce(json_object_agg(name, default_version), '{}') FROM pg_catalog.pg_available_extensions"
    ),
    "sequences": """
SELECT coalesce(json_agg(json_build_object(
  'schema', schemaname, 'name', sequencename, 'last_value', last_value,
  'is_called', last_value IS NOT NULL, 'start_value', start_value)
  ORDER BY schemaname, sequencename), '[]')
  FROM pg_catalog.pg_sequences
""",
    "schema": f"""
SELECT json_build_object(
  'tables', coalesce((
    SELECT json_object_agg(n.nspname || '.' || c.relname, json_build_object(
      'columns', (SELECT coalesce(json_agg(json_build_object(
                    'name', a.attname,
                    'type', pg_catalog.format_type(a.atttypid, a.atttypmod),
                    'not_null', a.attnotnull,
                    'default', pg_catalog.pg_get_expr(ad.adbin, ad.adrelid)) ORDER BY a.attnum), '[]')
                    FROM pg_catalog.pg_attribute a
                    LEFT JOIN pg_catalog.pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
                   WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped),
      'indexes', (SELECT coalesce(json_agg(pg_catalog.pg_get_indexdef(i.indexrelid)
                    ORDER BY pg_catalog.pg_get_indexdef(i.indexrelid)), '[]')
                    FROM pg_catalog.pg_index i WHERE i.indrelid = c.oid),
      'constraints', (SELECT coalesce(json_agg(pg_catalog.pg_get_constraintdef(k.oid)
                        ORDER BY pg_catalog.pg_get_constraintdef(k.oid)), '[]')
                        FROM pg_catalog.pg_constraint k WHERE k.conrelid = c.oid))){_USER_TABLES}), '{{}}'),
  'sequences', coalesce((SELECT json_agg(schemaname || '.' || sequencename ORDER BY schemaname, sequencename)
                           FROM pg_catalog.pg_sequences), '[]'),
  'extensions', coalesce((SELECT json_object_agg(extname, extversion) FROM pg_catalog.pg_extension), '{{}}'))
""",
    "lsn": "SELECT to_json(pg_catalog.pg_current_wal_lsn()::text)",
    "slots": """
SELECT coalesce(json_agg(json_build_object(
  'name', s.slot_name, 'plugin', s.plugin, 'active', s.active,
  'confirmed_flush_lsn', s.confirmed_flush_lsn::text,
  'wal_status', to_jsonb(s) ->> 'wal_status') ORDER BY s.slot_name), '[]')
  FROM pg_catalog.pg_replication_slots AS s
 WHERE s.slot_type = 'logical' AND s.database = current_database()
""",
    "subscriptions": """
SELECT coalesce(json_agg(json_build_object(
  'name', s.subname, 'enabled', s.subenabled,
  'received_lsn', (SELECT max(st.received_lsn)::text FROM pg_catalog.pg_stat_subscription st WHERE st.subid = s.oid),
  'latest_end_lsn', (SELECT max(st.latest_end_lsn)::text FROM pg_catalog.pg_stat_subscription st
                      WHERE st.subid = s.oid),
  'tables_not_ready', (SELECT count(*) FROM pg_catalog.pg_subscription_rel r
                        WHERE r.srsubid = s.oid AND r.srsubstate <> 'r'))
  ORDER BY s.subname), '[]')
  FROM pg_catalog.pg_subscription s
 WHERE s.subdbid = (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database())
""",
}


def read(module: AnsibleModule, psql: list[str], database: str, part: str):
    """Run one part's query; the server prints one JSON document."""
    argv = [*psql, "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-d", database, "-c", QUERIES[part]]
    rc, out, err = module.run_command(argv)
    if rc != 0:
        module.fail_json(
            msg=f"reading {part} of database {database} failed (rc={rc}): {err.strip() or out.strip()}",
            part=part,
            rc=rc,
        )
    try:
        return json.loads(out.strip())
    except ValueError:
        module.fail_json(
            msg=f"reading {part} of database {database}: psql did not print one JSON document",
            part=part,
            stdout=out[-2000:],
        )
    return None  # not reached


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "psql": {"type": "list", "elements": "str", "default": ["runuser", "-u", "postgres", "--", "psql"]},
            "database": {"type": "str", "required": True},
            "gather": {
                "type": "list",
                "elements": "str",
                "choices": list(QUERIES),
                "default": ["server", "tables", "extensions", "sequences"],
            },
        },
        supports_check_mode=True,
    )
    psql = module.params["psql"]
    if not psql:
        module.fail_json(msg="psql: the command that runs psql must not be empty")
    database = module.params["database"]
    if not database or database.startswith("-"):
        module.fail_json(msg=f"database: {database!r} is not a database name")
    began_at = time.time()
    facts = {}
    for part in dict.fromkeys(module.params["gather"]):
        facts[part] = read(module, psql, database, part)
    module.exit_json(changed=False, facts=facts, began_at=round(began_at, 3), ended_at=round(time.time(), 3))


if __name__ == "__main__":
    main()
