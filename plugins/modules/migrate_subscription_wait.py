#!/usr/bin/python
# Copyright: (c) 2026, pidock.stack maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: migrate_subscription_wait
short_description: Wait for the initial table copy of a PostgreSQL logical replication subscription
version_added: 0.2.0
description:
  - Waits until every table of a logical replication subscription is ready (C(srsubstate) V(r) in
    C(pg_subscription_rel)), that is until the subscriber copied each table and caught up with the changes made
    meanwhile, or until O(timeout).
  - Looks every O(interval) seconds, each look one C(psql) call on the subscriber that prints one JSON document
    built by the server - each table's state, the rows the table synchronisation worker copied so far into a table
    being copied (C(pg_stat_progress_copy), PostgreSQL 14 and later) and the subscription's count of table
    synchronisation errors (C(pg_stat_subscription_stats), PostgreSQL 15 and later).
  - The rows done are the estimated rows (O(table_rows)) of the tables already copied plus the rows copied so far
    into the tables being copied; the rows to do are the estimated rows of all the subscription's tables.
  - With O(progress_file), keeps a progress record for M(pidock.stack.async_progress) while it waits, so a task
    run with C(async) and C(poll=0) prints a line every few seconds with the rows and the tables done and to do,
    the rows copied per second and the time left.
  - Fails at once when the subscription does not exist in O(database); on timeout, fails naming each table not
    ready with its state, and the synchronisation error count.
  - Reads only; it never changes the subscription or the server.
author:
  - pidock.stack maintainers (@pidock)
options:
  psql:
    description:
      - The command that runs C(psql) against the subscriber's server, as a list, without the database.
      - The query is fed on standard input, so a command through Docker must keep it open, for example
        V([docker, exec, -i, inventory-postgres-1, psql, -X, -U, postgres]).
    type: list
    elements: str
    required: true
  database:
    description: The subscriber database, the one the subscription was created in.
    type: str
    required: true
  subscription:
    description: The subscription's name.
    type: str
    required: true
  table_rows:
    description:
      - Estimated rows of each published table, keyed C(schema.table) as the source reports them (the C(rows) of
        the V(tables) part of M(pidock.stack.migrate_db_info) read on the publisher).
      - Gives RV(rows_total) and the rows of the tables already copied. A table missing here counts 0 rows; a
        negative estimate (a table never analysed) counts 0.
      - Empty - the rows to do are unknown; the progress shows the rows copied so far and the tables ready.
    type: dict
    default: {}
  timeout:
    description: Seconds to wait for every table to be ready.
    type: int
    default: 3600
  interval:
    description: Seconds between two looks. More than V(0).
    type: float
    default: 1.0
  progress_file:
    description:
      - Report progress in this JSON file on the managed host while the module waits, for
        M(pidock.stack.async_progress) (see O(pidock.stack.tree_manifest#module:progress_file) for the record).
      - Phase C(copy); the tables ready and in the subscription are counted as items (C(item_unit) V(table)), the
        rows done and to do as counts (C(count_unit) V(rows)); the rate is the rows copied per second since the
        module started (rows copied before it count as done, not as speed) and the seconds left follow from it.
      - Rewritten atomically (mode 0600) after every look; left with C(done=true) when the module succeeds, for the
        caller to remove (M(pidock.stack.async_progress) does). Written in check mode too.
      - Its directory must exist.
    type: path
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details:
      - Looks once and reports what it saw, without waiting and without failing on tables not ready yet.
  diff_mode:
    support: none
  platform:
    platforms: posix
    details: Runs O(psql) on the target; the subscriber's server must be PostgreSQL 10 or later.
notes:
  - C(psql) runs with C(-X) (no C(.psqlrc)), C(ON_ERROR_STOP) and the subscription's name as a C(psql) variable
    (quoted by C(psql), never pasted into the query). A failing C(psql) fails the task with its error.
  - A subscription without tables is ready at once.
  - A table whose synchronisation fails (a duplicate key, a missing column) is retried by the server and stays not
    ready (state V(i) or V(d)); the module keeps waiting until O(timeout), and the failure message gives
    RV(sync_errors). The server's log has the cause.
seealso:
  - module: pidock.stack.migrate_db_info
  - module: pidock.stack.async_progress
"""

EXAMPLES = r"""
- name: Read the estimated rows of the source's tables
  pidock.stack.migrate_db_info:
    database: inventory_db
    gather: [tables]
  register: source_db

- name: Wait for the initial copy in the background
  pidock.stack.migrate_subscription_wait:
    psql: [docker, exec, -i, inventory-postgres-1, psql, -X, -U, postgres]
    database: inventory_db
    subscription: pidock_migrate
    # schema.table -> estimated rows
    table_rows: >-
      {{ dict(source_db.facts.tables | map(attribute='schema')
              | zip(source_db.facts.tables | map(attribute='name')) | map('join', '.')
              | zip(source_db.facts.tables | map(attribute='rows'))) }}
    timeout: 7200
    progress_file: /var/tmp/pidock-initial-copy.progress.json
  async: 7260
  poll: 0
  register: initial_copy

- name: Print the copy's progress every 10 seconds until it is done
  pidock.stack.async_progress:
    jid: "{{ initial_copy.ansible_job_id }}"
    progress_file: /var/tmp/pidock-initial-copy.progress.json
    label: initial copy
    timeout: 7260

- name: Only look (check mode reads once and never waits)
  pidock.stack.migrate_subscription_wait:
    psql: [docker, exec, -i, inventory-postgres-1, psql, -X, -U, postgres]
    database: inventory_db
    subscription: pidock_migrate
  check_mode: true
  register: copy_state
"""

RETURN = r"""
tables:
  description: The subscription's tables.
  returned: always
  type: int
  sample: 5
ready:
  description: Its tables in state V(r) (ready); equal to RV(tables) once the module succeeds outside check mode.
  returned: always
  type: int
  sample: 5
rows_done:
  description:
    - Estimated rows of the tables whose copy is over (states V(f), V(s), V(r)) plus the rows copied so far into the
      others.
  returned: always
  type: int
  sample: 500000
rows_total:
  description: Estimated rows of the subscription's tables, from O(table_rows) (0 when it is empty).
  returned: always
  type: int
  sample: 500000
seconds:
  description: Seconds the module waited.
  returned: always
  type: float
  sample: 61.2
states:
  description:
    - Each table, as C(schema.table), with its state - V(i) initialising, V(d) copying data, V(f) copy finished,
      V(s) synchronised, V(r) ready.
  returned: always
  type: dict
  sample: {"public.items": "r", "public.log": "r"}
sync_errors:
  description:
    - How many times a table synchronisation worker of the subscription failed (C(sync_error_count)); null before
      PostgreSQL 15.
  returned: always
  type: int
  sample: 0
"""

import json
import os
import time
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.pidock.stack.plugins.module_utils._progress import ProgressMeter, duration_text

# Tables whose copy is over: their estimated rows count as done. f (finished copy, PostgreSQL 14+) and s
# (synchronized) only wait for the apply worker to catch up, which moves no more rows into them.
COPIED_STATES = frozenset({"f", "s", "r"})
READY = "r"
STATE_NAMES = {
    "i": "initializing",
    "d": "copying data",
    "f": "copy finished",
    "s": "synchronized",
    "r": "ready",
}

# The clock and the sleep, replaced in unit tests.
_clock = time.monotonic
_sleep = time.sleep

# One look, fed to psql on standard input. The first query picks, by server version, the expression of each
# optional view (a view a server lacks cannot even be named in a query) and stores it in a psql variable with
# \gset; the second interpolates them and prints one JSON document. The subscription's name arrives as the psql
# variable pidock_subscription, which :'...' quotes as a literal. The subscription is looked up in the current
# database only: pg_subscription is shared by all databases of the server.
LOOK_SQL = r"""
SELECT CASE WHEN pg_catalog.current_setting('server_version_num')::int >= 140000
            THEN '(SELECT max(p.tuples_processed) FROM pg_catalog.pg_stat_progress_copy p
                    WHERE p.relid = r.srrelid AND p.datid = d.oid)'
            ELSE 'NULL::bigint' END AS pidock_copied,
       CASE WHEN pg_catalog.current_setting('server_version_num')::int >= 150000
            THEN '(SELECT st.sync_error_count FROM pg_catalog.pg_stat_subscription_stats st WHERE st.subid = s.oid)'
            ELSE 'NULL::bigint' END AS pidock_sync_errors
\gset
WITH d AS (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database()),
     s AS (SELECT sub.oid, sub.subenabled FROM pg_catalog.pg_subscription sub JOIN d ON sub.subdbid = d.oid
            WHERE sub.subname = :'pidock_subscription')
SELECT json_build_object(
  'found', EXISTS (SELECT 1 FROM s),
  'enabled', (SELECT s.subenabled FROM s),
  'sync_errors', (SELECT :pidock_sync_errors FROM s),
  'tables', coalesce((
    SELECT json_agg(json_build_object(
             'name', n.nspname || '.' || c.relname,
             'state', r.srsubstate,
             'copied', :pidock_copied) ORDER BY n.nspname, c.relname)
      FROM s CROSS JOIN d
      JOIN pg_catalog.pg_subscription_rel r ON r.srsubid = s.oid
      JOIN pg_catalog.pg_class c ON c.oid = r.srrelid
      JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace), '[]'));
"""


def psql_argv(psql: list[str], database: str, subscription: str) -> list[str]:
    """The argv of one look: the user's psql command, quiet, unaligned tuples only, stopping at the first error,
    the script read from standard input."""
    return [
        *psql,
        "-X",
        "-A",
        "-t",
        "-q",
        "-v",
        "ON_ERROR_STOP=1",
        "-v",
        f"pidock_subscription={subscription}",
        "-d",
        database,
        "-f",
        "-",
    ]


def _count(value: Any, what: str) -> int | None:
    """A non-negative integer of the document, or None (null); anything else is a ValueError naming ``what``."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{what} is {value!r}, not a count")
    return value


def parse_look(text: str) -> dict[str, Any]:
    """The JSON document of one look, checked: ``found``, ``enabled``, ``sync_errors`` and ``tables`` (each a
    ``name``, a one-letter ``state`` and ``copied``, None when no copy of it is in progress).

    Raises ValueError saying what is wrong, so the module can fail with it.
    """
    try:
        doc = json.loads(text.strip())
    except ValueError:
        raise ValueError("psql did not print one JSON document") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("found"), bool) or not isinstance(doc.get("tables"), list):
        raise ValueError("psql printed JSON that is not a look at a subscription")
    enabled = doc.get("enabled")
    tables = []
    for table in doc["tables"]:
        if not isinstance(table, dict) or not isinstance(table.get("name"), str):
            raise ValueError(f"a table of the look is {table!r}")
        state = table.get("state")
        if not isinstance(state, str) or len(state) != 1:
            raise ValueError(f"table {table['name']}: state is {state!r}")
        tables.append(
            {"name": table["name"], "state": state, "copied": _count(table.get("copied"), f"{table['name']} copied")}
        )
    return {
        "found": doc["found"],
        "enabled": enabled if isinstance(enabled, bool) else None,
        "sync_errors": _count(doc.get("sync_errors"), "sync_errors"),
        "tables": tables,
    }


def table_rows_map(raw: dict[str, Any]) -> dict[str, int]:
    """O(table_rows) as integers: a negative estimate (reltuples -1, never analysed) is 0; what is not a
    number is a ValueError naming the table."""
    rows: dict[str, int] = {}
    for name, value in raw.items():
        if isinstance(value, bool):
            raise ValueError(f"table_rows: {name} is {value!r}, not a number of rows")
        try:
            number = int(float(value))
        except (TypeError, ValueError, OverflowError):
            raise ValueError(f"table_rows: {name} is {value!r}, not a number of rows") from None
        rows[str(name)] = max(0, number)
    return rows


def summarize(look: dict[str, Any], table_rows: dict[str, int]) -> dict[str, Any]:
    """What one look says: the module's return values plus ``done`` (every table ready; true without tables)."""
    states = {table["name"]: table["state"] for table in look["tables"]}
    rows_total = sum(table_rows.get(name, 0) for name in states)
    rows_done = 0
    for table in look["tables"]:
        if table["state"] in COPIED_STATES:
            rows_done += table_rows.get(table["name"], 0)
        else:
            rows_done += table["copied"] or 0
    ready = sum(1 for state in states.values() if state == READY)
    return {
        "tables": len(states),
        "ready": ready,
        "rows_done": rows_done,
        "rows_total": rows_total,
        "states": states,
        "sync_errors": look["sync_errors"],
        "done": ready == len(states),
    }


def missing_message(subscription: str, database: str) -> str:
    return f"subscription {subscription} does not exist in database {database}"


def timeout_message(
    subscription: str, database: str, timeout: float, summary: dict[str, Any], enabled: bool | None = True
) -> str:
    """The failure when tables are still not ready after ``timeout`` seconds: each of them with its state."""
    waiting = [
        f"{name} ({state}: {STATE_NAMES.get(state, 'unknown state')})"
        for name, state in sorted(summary["states"].items())
        if state != READY
    ]
    errors = summary["sync_errors"]
    errors_text = "unknown (before PostgreSQL 15)" if errors is None else str(errors)
    disabled = "; the subscription is disabled" if enabled is False else ""
    return (
        f"subscription {subscription} in database {database}: {len(waiting)} of {summary['tables']} tables not ready "
        f"after {duration_text(timeout)} (timeout): {', '.join(waiting)}; sync errors: {errors_text}{disabled}"
    )


def _result(summary: dict[str, Any], started: float) -> dict[str, Any]:
    result = {key: value for key, value in summary.items() if key != "done"}
    result["seconds"] = round(_clock() - started, 1)
    return result


def _look(module: AnsibleModule, argv: list[str], table_rows: dict[str, int]) -> tuple[dict[str, Any], bool | None]:
    """Run one look; fail on a psql error, a bad document or a missing subscription. Returns the summary and
    whether the subscription is enabled."""
    params = module.params
    rc, out, err = module.run_command(argv, data=LOOK_SQL)
    if rc != 0:
        module.fail_json(
            msg=(
                f"reading subscription {params['subscription']} in database {params['database']} failed "
                f"(rc={rc}): {err.strip() or out.strip()}"
            ),
            rc=rc,
        )
    try:
        look = parse_look(out)
    except ValueError as exc:
        module.fail_json(
            msg=f"reading subscription {params['subscription']} in database {params['database']}: {exc}",
            stdout=out[-2000:],
        )
    if not look["found"]:
        module.fail_json(msg=missing_message(params["subscription"], params["database"]))
    return summarize(look, table_rows), look["enabled"]


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "psql": {"type": "list", "elements": "str", "required": True},
            "database": {"type": "str", "required": True},
            "subscription": {"type": "str", "required": True},
            "table_rows": {"type": "dict", "default": {}},
            "timeout": {"type": "int", "default": 3600},
            "interval": {"type": "float", "default": 1.0},
            "progress_file": {"type": "path"},
        },
        supports_check_mode=True,
    )
    params = module.params
    if not params["psql"]:
        module.fail_json(msg="psql: the command that runs psql must not be empty")
    database, subscription = params["database"], params["subscription"]
    if not database or database.startswith("-"):
        module.fail_json(msg=f"database: {database!r} is not a database name")
    if not subscription:
        module.fail_json(msg="subscription: the name must not be empty")
    if params["interval"] <= 0:
        module.fail_json(msg=f"interval must be more than 0 seconds, not {params['interval']}")
    if params["timeout"] < 0:
        module.fail_json(msg=f"timeout must not be negative, not {params['timeout']}")
    try:
        table_rows = table_rows_map(params["table_rows"])
    except ValueError as exc:
        module.fail_json(msg=str(exc))
    path = params["progress_file"]
    if path and not os.path.isdir(os.path.dirname(path) or "."):
        module.fail_json(msg=f"progress_file directory {os.path.dirname(path)} does not exist")

    argv = psql_argv(params["psql"], database, subscription)
    started = _clock()
    summary, enabled = _look(module, argv, table_rows)
    # Every look rewrites the file: the looks are already interval seconds apart.
    meter = ProgressMeter(path, interval=0.0, clock=_clock)
    meter.phase("copy", summary["tables"], summary["rows_total"] or None, count_unit="rows", item_unit="table")
    already = summary["rows_done"]  # copied before the wait began: done, but not this run's speed
    while True:
        meter.set(summary["ready"], summary["rows_done"], read=summary["rows_done"] - already)
        if summary["done"] or module.check_mode:
            break
        remaining = params["timeout"] - (_clock() - started)
        if remaining <= 0:
            module.fail_json(
                msg=timeout_message(subscription, database, params["timeout"], summary, enabled),
                **_result(summary, started),
            )
        _sleep(min(params["interval"], remaining))
        summary, enabled = _look(module, argv, table_rows)
    meter.finish()
    module.exit_json(changed=False, **_result(summary, started))


if __name__ == "__main__":
    main()
