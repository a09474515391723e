# Copyright: pidock.stack maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the rollout playbooks' summary (playbooks/tasks/record.yml and summary.yml).

- ``rollout_note``: what the compose role's switch did beyond the switch itself, for the host's
  summary line (services recreated in place and the interruption the host measured).
- ``rollout_lines``: one line per host of the play: its outcome, release and message.
- ``rollout_bad``: the hosts whose outcome is not one of the good ones, with that outcome.

A host that recorded no outcome (unreachable before it got that far) counts as failed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

_MISSING: dict[str, Any] = {
    "outcome": "failed",
    "release": "",
    "version": "",
    "message": "no outcome recorded (unreachable?)",
}


def rollout_note(switch: Any) -> str:
    """'recreated in place: postgres (interruption 3.21 s)' from the compose role's compose_last_switch."""
    if not isinstance(switch, Mapping):
        return ""
    services = [str(s) for s in (switch.get("in_place") or [])]
    if not services:
        return ""
    durations = switch.get("durations") or {}
    seconds = durations.get("interruption_s") if isinstance(durations, Mapping) else None
    if seconds is None:
        return f"in place, not applied: {', '.join(services)}"
    return f"recreated in place: {', '.join(services)} (interruption {float(seconds):.2f} s)"


def _result(hostvars: Any, host: str, key: str) -> Mapping[str, Any]:
    try:
        if host not in hostvars:
            return _MISSING
        found = hostvars[host][key]
    except (KeyError, TypeError, AttributeError):
        return _MISSING
    if not isinstance(found, Mapping) or "outcome" not in found:
        return _MISSING
    return found


def _line(host: str, result: Mapping[str, Any]) -> str:
    text = f"{host}: {str(result.get('outcome', '')).strip()}"
    if result.get("release"):
        text += f" - release {result['release']} ({result.get('version', '')})"
    for field in ("message", "note"):
        if result.get(field):
            text += f"; {result[field]}"
    return text


def rollout_lines(hostvars: Any, hosts: Sequence[str], key: str = "__pidock_result") -> list[str]:
    """One summary line per host, in the play's order."""
    return [_line(host, _result(hostvars, host, key)) for host in hosts]


def rollout_bad(hostvars: Any, hosts: Sequence[str], good: Sequence[str], key: str = "__pidock_result") -> list[str]:
    """'<host> <outcome>' for every host whose outcome is not in ``good``."""
    bad = []
    for host in hosts:
        outcome = str(_result(hostvars, host, key).get("outcome", "failed")).strip()
        if outcome not in good:
            bad.append(f"{host} {outcome}")
    return bad


class FilterModule:
    """pidock.stack rollout summary filters."""

    def filters(self) -> dict[str, Any]:
        return {"rollout_note": rollout_note, "rollout_lines": rollout_lines, "rollout_bad": rollout_bad}
