# Copyright: pidock.stack maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the migrate role's way back by replication (migrate_reverse_replication): after a cutover
that replicated, the bare metal's PostgreSQL subscribes to the stack's, and a rollback carries the
stack's writes back through that subscription instead of a dump and restore.

- ``migrate_reverse_ready``: whether prestart prepared the stack's PostgreSQL for it (and why not).
- ``migrate_reverse_started``: whether the subscription the cutover made streams (the stack's slot is active).
- ``migrate_reverse_carry``: how a rollback carries the stack's database back - by replication, or with the
  dump and why.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def _named(rows: Sequence[Mapping[str, Any]] | None, name: str) -> dict[str, Any] | None:
    for row in rows or []:
        if isinstance(row, Mapping) and row.get("name") == name:
            return dict(row)
    return None


def migrate_reverse_ready(enabled: Any, wal_level: str) -> dict[str, Any]:
    """``{ready, why}``: the way back needs the option and the stack's PostgreSQL at wal_level=logical."""
    if not enabled:
        return {"ready": False, "why": "migrate_reverse_replication is false"}
    level = str(wal_level or "").strip()
    if level == "logical":
        return {"ready": True, "why": ""}
    return {
        "ready": False,
        "why": f"the stack's PostgreSQL runs with wal_level={level or '?'} (a command line or a setting of its own"
        " may override what the migration set)",
    }


def migrate_reverse_started(
    slots: Sequence[Mapping[str, Any]] | None, name: str, host: str, timeout: Any, error: str = ""
) -> dict[str, Any]:
    """``{state, why, host, slot}`` once the cutover subscribed the bare metal: ``streaming`` when the
    stack's slot ``name`` is active (a walsender serves the bare metal from it), else ``not streaming``.
    ``error``: what CREATE SUBSCRIPTION printed when it failed (its first line, at most 300 characters)."""
    slot = _named(slots, name)
    record: dict[str, Any] = {"host": host, "slot": name}
    if not host:
        return {**record, "state": "not streaming", "why": "the stack's PostgreSQL has no address on a network"}
    if str(error or "").strip():
        first = str(error).strip().splitlines()[0][:300]
        return {**record, "state": "not streaming", "why": f"the bare metal could not subscribe: {first}"}
    if slot is None:
        return {**record, "state": "not streaming", "why": f"the stack's PostgreSQL has no slot {name}"}
    if not slot.get("active"):
        return {
            **record,
            "state": "not streaming",
            "why": f"the bare metal did not stream from the stack's slot {name} at {host} within {timeout} s",
        }
    return {**record, "state": "streaming", "why": ""}


def migrate_reverse_carry(
    reverse: Mapping[str, Any] | None,
    subscriptions: Sequence[Mapping[str, Any]] | None,
    slots: Sequence[Mapping[str, Any]] | None,
    drift: Sequence[str] | None,
    name: str,
) -> dict[str, Any]:
    """``{method, why}``: ``replication`` when the way back the cutover started still streams - the bare
    metal's subscription ``name`` is enabled and receiving, the stack's slot ``name`` active and not
    lost, and the two schemas agree (``drift``: what changed, DDL is not replicated) - else ``dump``
    with the reason. ``reverse`` is the ledger's record of the cutover (``state``, ``why``)."""
    reverse = dict(reverse or {})
    if reverse.get("state") == "ended":
        return {"method": "dump", "why": f"the way back was ended (migrate_finish) at {reverse.get('ended') or '?'}"}
    if reverse.get("state") != "streaming":
        why = reverse.get("why") or (
            "the cutover started no way back by replication (the dump method, or migrate_reverse_replication: false)"
        )
        return {"method": "dump", "why": why}
    if drift:
        return {
            "method": "dump",
            "why": "the schema changed in the stack since the cutover (DDL is not replicated): " + "; ".join(drift),
        }
    sub = _named(subscriptions, name)
    slot = _named(slots, name)
    if sub is None:
        return {"method": "dump", "why": f"the bare metal's PostgreSQL has no subscription {name} any more"}
    if not sub.get("enabled"):
        return {"method": "dump", "why": f"the bare metal's subscription {name} is disabled"}
    if slot is None:
        return {"method": "dump", "why": f"the stack's PostgreSQL has no slot {name} any more"}
    if slot.get("wal_status") == "lost":
        return {
            "method": "dump",
            "why": f"the stack's slot {name} was lost"
            " (the bare metal fell behind by more than migrate_reverse_wal_keep)",
        }
    if not slot.get("active") or not sub.get("received_lsn"):
        return {
            "method": "dump",
            "why": f"the bare metal's subscription {name} does not stream from the stack (its worker is not running)",
        }
    return {"method": "replication", "why": ""}


class FilterModule:
    """pidock.stack migrate way-back filters."""

    def filters(self) -> dict[str, Any]:
        return {
            "migrate_reverse_ready": migrate_reverse_ready,
            "migrate_reverse_started": migrate_reverse_started,
            "migrate_reverse_carry": migrate_reverse_carry,
        }
