# Copyright: pidock.stack maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the pidock.stack.migrate rollback that carries the stack's writes back to bare metal.

migrate_inverse_id_map(forward, owner)  -> the uid (or gid) map that takes the container's owners back
                                           to the bare-metal owner; refuses a forward map that is not
                                           one-to-one
migrate_carry_db_sql(present, step)     -> the SQL (psql variables :"db" and :"keep") that moves the
                                           bare-metal database aside, puts it back, or drops it, decided
                                           from the databases that exist now (a re-run converges)
migrate_carry_report(changes, trees, frozen_at, serving_at)
                                        -> {tables, rows_added, rows_removed, files, bytes, removed,
                                           downtime_seconds, lines}: what the rollback carried

The rollback YAML only gathers (psql, tree_manifest, timestamps) and orchestrates; every decision
that depends on what a previous, interrupted run left behind is taken here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from ansible.errors import AnsibleFilterError

_STAMP = "%Y-%m-%dT%H:%M:%S.%fZ"
_STEPS = ("prepare", "undo", "finish")


def migrate_inverse_id_map(forward: Mapping[str, Any] | None, owner: Any) -> dict[str, int]:
    """Invert a presync id map (bare-metal id -> container id) for the copy back to bare metal.

    Explicit keys are inverted one by one; the ``*`` entry (every other bare-metal id) and any id
    the stack created map to ``owner``, the owner of the bare-metal tree. A map in which two
    explicit bare-metal ids share one container id cannot be inverted: which one should get the
    file back? It is refused, naming the ids.
    """
    try:
        default = int(owner)
    except (TypeError, ValueError) as exc:
        raise AnsibleFilterError(f"migrate_inverse_id_map: the owner {owner!r} is not a number") from exc
    inverse: dict[str, int] = {}
    seen: dict[int, str] = {}
    for key, value in sorted((forward or {}).items(), key=lambda kv: str(kv[0])):
        key = str(key).strip()
        try:
            target = int(value)
        except (TypeError, ValueError) as exc:
            raise AnsibleFilterError(f"migrate_inverse_id_map: {key!r} maps to {value!r}, not a number") from exc
        if key == "*":
            continue
        try:
            source = int(key)
        except ValueError as exc:
            raise AnsibleFilterError(f"migrate_inverse_id_map: the key {key!r} is not a number or '*'") from exc
        if target in seen:
            raise AnsibleFilterError(
                f"migrate_inverse_id_map: ids {seen[target]} and {key} both map to {target}; "
                "the map is not one-to-one, so the copy back cannot tell their files apart"
            )
        seen[target] = key
        inverse[str(target)] = source
    inverse["*"] = default
    return inverse


def migrate_carry_db_sql(present: Iterable[str], step: str, db: str = "db", keep: str = "keep") -> list[str]:
    """SQL for one step of the database swap, from the databases that exist now.

    ``present`` lists which of the two names exist on the bare-metal server, as the role names
    them: ``db`` (the database the app uses) and ``keep`` (where the freeze-time database waits
    while the stack's dump is restored under the app's name).

    prepare  before pg_restore --create: move the freeze-time database aside, or, when an
             interrupted run moved it already, drop the partial copy that run restored.
    undo     after a failed carry: drop what was restored and put the freeze-time database back.
    finish   after the bare metal serves the carried data: drop the freeze-time database.
    """
    if step not in _STEPS:
        raise AnsibleFilterError(f"migrate_carry_db_sql: step must be one of {', '.join(_STEPS)}, not {step!r}")
    names = set(present or [])
    unknown = names - {db, keep}
    if unknown:
        raise AnsibleFilterError(f"migrate_carry_db_sql: unexpected database names {sorted(unknown)}")
    has_db, has_keep = db in names, keep in names
    drop_db = 'DROP DATABASE IF EXISTS :"db" WITH (FORCE);'
    if step == "prepare":
        if has_keep:
            return [drop_db] if has_db else []
        if has_db:
            return ['ALTER DATABASE :"db" RENAME TO :"keep";']
        raise AnsibleFilterError(
            "the bare-metal server has no database to roll back to (neither the app's nor one set aside by an "
            "earlier rollback); nothing was changed"
        )
    if step == "undo":
        if not has_keep:
            return []
        return [drop_db, 'ALTER DATABASE :"keep" RENAME TO :"db";']
    return ['DROP DATABASE IF EXISTS :"keep" WITH (FORCE);'] if has_keep and has_db else []


def _seconds(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    try:
        return round((datetime.strptime(end, _STAMP) - datetime.strptime(start, _STAMP)).total_seconds(), 1)
    except ValueError:
        return None


def migrate_carry_report(
    changes: Mapping[str, Any],
    trees: Iterable[Mapping[str, Any]],
    frozen_at: str | None = None,
    serving_at: str | None = None,
) -> dict[str, Any]:
    """What the rollback carried back, for the ledger note and the operator.

    ``changes`` is migrate_baseline_changes(bare-metal baseline at the freeze, stack baseline),
    ``trees`` the tree_manifest copy results of the trees (``item.name`` and ``copy``), and the
    times (UTC, ``%Y-%m-%dT%H:%M:%S.%fZ``) when the stack was frozen and when the bare metal
    answered again.
    """
    tables = [
        {
            "table": t["table"],
            "change": t.get("change", "changed"),
            "rows_before": int(t.get("rows_before") or 0),
            "rows_after": int(t.get("rows_after") or 0),
        }
        for t in (changes or {}).get("tables") or []
    ]
    per_tree: dict[str, dict[str, int]] = {}
    for result in trees or []:
        item = result.get("item") or {}
        if isinstance(item, (list, tuple)):  # a loop over zipped lists: the tree comes first
            item = item[0] if item else {}
        name = item.get("name") or result.get("name") or "?"
        copy = result.get("copy") or {}
        per_tree[name] = {
            "files": int(copy.get("files_copied") or 0),
            "bytes": int(copy.get("bytes_copied") or 0),
            "removed": int(copy.get("removed") or 0),
            "links": int(copy.get("links") or 0),
        }
    downtime = _seconds(frozen_at, serving_at)
    report: dict[str, Any] = {
        "tables": tables,
        "rows_added": sum(max(t["rows_after"] - t["rows_before"], 0) for t in tables),
        "rows_removed": sum(max(t["rows_before"] - t["rows_after"], 0) for t in tables),
        "sequences": list((changes or {}).get("sequences") or []),
        "trees": per_tree,
        "files": sum(t["files"] for t in per_tree.values()),
        "bytes": sum(t["bytes"] for t in per_tree.values()),
        "removed": sum(t["removed"] for t in per_tree.values()),
        "downtime_seconds": downtime,
    }
    lines = [f"{t['table']}: {t['change']}, rows {t['rows_before']} -> {t['rows_after']}" for t in tables] or [
        "database: no table changed since the cutover"
    ]
    lines += [
        f"{name}: {t['files']} files ({t['bytes']} bytes) copied, {t['links']} links made, {t['removed']} removed"
        for name, t in sorted(per_tree.items())
    ]
    if downtime is not None:
        lines.append(f"downtime (stack frozen -> bare metal answering): {downtime} s")
    report["lines"] = lines
    return report


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "migrate_inverse_id_map": migrate_inverse_id_map,
            "migrate_carry_db_sql": migrate_carry_db_sql,
            "migrate_carry_report": migrate_carry_report,
        }
