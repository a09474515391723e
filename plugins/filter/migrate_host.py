# Copyright: pidock.stack maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the migrate role that read what the host answered and shape what the role records.

- ``migrate_units_state``: ``systemctl show`` output of the bare-metal units -> [{name, enabled, active}].
- ``migrate_units_killed``: the units whose stop timed out and were killed (``Result=timeout``).
- ``migrate_secret_conflicts``: the compose_secrets keys whose inventory value differs from the env file.
- ``migrate_volume_labels``: the compose labels (and the migration's own role label) of each target volume.
- ``migrate_volume_paths``: each existing volume's mount point, from ``docker volume inspect`` lines
  and the results of the volumes just created.
- ``migrate_tree_record``: what the trees step verified, per tree, from the copy module's results.
- ``migrate_next_phase``: the phase of this run after a given one that still has to run.
- ``migrate_phase_report``: each verified phase's seconds beside the plan's estimate, and the downtime.
- ``migrate_downtime``: when the stack began to serve (host clock) and the seconds since the freeze began.
- ``migrate_start_wait``: the shell lines a background job starts with when it may act only once its start
  file says ``go`` (module_utils/_start_signal.py is the same rule in Python).
"""

from __future__ import annotations

import math
import re
import shlex
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

_ACTIVE = ("active", "activating", "reloading")


def _shown_units(stdout: str, names: Sequence[str]) -> list[tuple[str, dict[str, str]]]:
    """``systemctl show <names...>``: one block of ``Key=value`` lines per unit, in the order asked,
    separated by an empty line; each name with its properties. A block count that differs fails."""
    if not names:
        return []
    blocks = re.split(r"\n\s*\n", (stdout or "").strip("\n"))
    if len(blocks) != len(names):
        raise ValueError(f"systemctl show answered {len(blocks)} block(s) for {len(names)} unit(s)")
    return [
        (name, dict(line.split("=", 1) for line in block.splitlines() if "=" in line))
        for name, block in zip(names, blocks, strict=True)
    ]


def migrate_units_state(stdout: str, names: Sequence[str]) -> list[dict[str, Any]]:
    """The units of ``names`` that are installed, with whether they are enabled and running now.

    ``stdout`` is ``systemctl show --property=Id,LoadState,UnitFileState,ActiveState <names...>``:
    one block of ``Key=value`` lines per unit, in the order asked, separated by an empty line.
    """
    out = []
    for name, props in _shown_units(stdout, names):
        if props.get("LoadState") != "loaded":
            continue
        out.append(
            {
                "name": name,
                "enabled": props.get("UnitFileState") == "enabled",
                "active": props.get("ActiveState") in _ACTIVE,
            }
        )
    return out


def migrate_units_killed(stdout: str, names: Sequence[str]) -> list[str]:
    """The units of ``names`` that systemd killed when their stop timed out (``Result=timeout``).

    ``stdout`` is ``systemctl show --property=Id,Result <names...>``: one block per unit, in the
    order asked, separated by an empty line (the properties inside a block in systemd's order).
    """
    return [str(name) for name, props in _shown_units(stdout, names) if props.get("Result") == "timeout"]


def migrate_secret_conflicts(found: Mapping[str, Any], declared: Mapping[str, Any] | None) -> list[str]:
    """Keys of ``found`` (read from the env file) that ``declared`` (compose_secrets) sets to another value."""
    declared = declared or {}
    return sorted(key for key, value in found.items() if key in declared and str(declared[key]) != str(value))


def migrate_volume_labels(volumes: Sequence[str], roles: Sequence[str], project: str) -> dict[str, dict[str, str]]:
    """Labels per volume: compose's project and volume key (the name without ``<project>_``) and the role."""
    if len(volumes) != len(roles):
        raise ValueError(f"{len(volumes)} volume(s) but {len(roles)} role(s)")
    prefix = f"{project}_"
    return {
        volume: {
            "com.docker.compose.project": project,
            "com.docker.compose.volume": volume[len(prefix) :] if volume.startswith(prefix) else volume,
            "io.pidock.migrate.volume": role,
        }
        for volume, role in zip(volumes, roles, strict=True)
    }


def migrate_volume_paths(inspect_lines: Sequence[str], made: Sequence[Any] | None = None) -> dict[str, str]:
    """Mount point per volume: ``<name>=<mountpoint>`` lines, then the volumes just created (their results)."""
    paths: dict[str, str] = {}
    for line in inspect_lines or []:
        name, sep, path = str(line).partition("=")
        if sep and name:
            paths[name] = path
    for result in made or []:
        volume = result.get("volume") if isinstance(result, Mapping) else None
        if isinstance(volume, Mapping) and volume.get("Name") and volume.get("Mountpoint"):
            paths[str(volume["Name"])] = str(volume["Mountpoint"])
    return paths


def _tree_result(name: str, method: str, rsynced: Mapping[str, Any], copied: Sequence[Any]) -> Mapping[str, Any]:
    if method == "rsync":
        return rsynced.get(name) or {}
    for result in copied or []:
        if isinstance(result, Mapping) and (result.get("item") or {}).get("name") == name:
            return result
    return {}


def migrate_tree_record(
    trees: Sequence[Mapping[str, Any]],
    method: str,
    paths: Mapping[str, str],
    rsynced: Mapping[str, Any] | None = None,
    copied: Sequence[Any] | None = None,
) -> dict[str, dict[str, Any]]:
    """Per tree: volume, path, the manifest's digest, files and bytes, what the copy did, seconds."""
    out = {}
    for tree in trees:
        found = _tree_result(tree["name"], method, rsynced or {}, copied or [])
        copy = found.get("copy") or {}
        out[tree["name"]] = {
            "volume": tree["volume"],
            "path": paths.get(tree["volume"], ""),
            "digest": found.get("digest", ""),
            "files": (found.get("counts") or {}).get("file", 0),
            "bytes": found.get("total_bytes", 0),
            "copied_files": copy.get("files_copied"),
            "copied_bytes": copy.get("bytes_copied"),
            "hashes_reused": copy.get("hashes_reused"),
            "seconds": found.get("seconds"),
        }
    return out


def migrate_next_phase(phases: Sequence[str], index: int, ledger: Mapping[str, Any] | None) -> str:
    """The first phase after ``phases[index]`` that the ledger does not record as verified ('' if none).

    The end of one phase records the next one as started in the same ledger write; a phase an earlier
    run verified is skipped, so it is never marked started again.
    """
    recorded = dict((ledger or {}).get("phases") or {})
    for name in list(phases or [])[int(index) + 1 :]:
        if str(dict(recorded.get(name) or {}).get("status") or "") != "verified":
            return str(name)
    return ""


def migrate_refreeze(
    ledger: Mapping[str, Any] | None,
    is_active_lines: Sequence[str],
    writers: Sequence[str],
    run_phases: Sequence[str],
    frozen_phases: Sequence[str],
) -> dict[str, Any]:
    """Whether a migration the ledger records as frozen still is: ``{phases, why, error}``.

    ``is_active_lines`` is ``systemctl is-active <writers...>``'s output, one line per writer. Between a
    verified freeze and a verified cutover, a writer that runs again (a reboot starts enabled units)
    means the bare metal took writes the frozen phases never saw: the phases from the freeze on are
    cleared so this run freezes again (``phases``, ``why``), or, when this run does not include the
    freeze, it stops (``error``). Nothing to do returns empty values.
    """
    phases = dict((ledger or {}).get("phases") or {})
    status = {name: str(dict(phases.get(name) or {}).get("status") or "") for name in ("freeze", "cutover")}
    nothing: dict[str, Any] = {"phases": [], "why": "", "error": ""}
    if status["freeze"] != "verified" or status["cutover"] == "verified":
        return nothing
    running = [str(w) for w, line in zip(writers, is_active_lines, strict=False) if str(line).strip() == "active"]
    if not running:
        return nothing
    why = (
        f"{', '.join(running)} ran again after the freeze (a reboot starts enabled units): the bare metal took"
        " writes the frozen phases never saw"
    )
    clear = [name for name in frozen_phases if name in phases]
    error = "" if "freeze" in run_phases else f"{why}. Run the migration from the freeze on (it freezes again)"
    return {"phases": clear, "why": why, "error": error}


_REPORT_PHASES = (
    "presync",
    "replicate",
    "prestart",
    "freeze",
    "catchup",
    "dump",
    "restore",
    "delta",
    "verify",
    "cutover",
)
_STAMP = "%Y-%m-%dT%H:%M:%S.%fZ"


def _phase_seconds(entry: Mapping[str, Any]) -> float | None:
    try:
        began = datetime.strptime(str(entry.get("started")), _STAMP)
        ended = datetime.strptime(str(entry.get("verified")), _STAMP)
    except ValueError:
        return None
    return max(0.0, (ended - began).total_seconds())


def _beside(seconds: float, planned: Any) -> str:
    text = f"{seconds:.1f} s"
    if isinstance(planned, (int, float)) and not isinstance(planned, bool):
        text += f" (plan: {planned:g} s)"
    return text


def migrate_phase_report(ledger: Mapping[str, Any] | None, estimate: Mapping[str, Any] | None = None) -> list[str]:
    """One line per verified phase with its seconds (from the ledger's started and verified times),
    beside the plan's estimate for it when the plan made one (``<phase>_seconds``), then the downtime
    (freeze to the stack serving) beside the estimated downtime."""
    phases = dict((ledger or {}).get("phases") or {})
    estimate = dict(estimate or {})
    lines = []
    for name in _REPORT_PHASES:
        entry = dict(phases.get(name) or {})
        if entry.get("status") != "verified":
            continue
        seconds = _phase_seconds(entry)
        if seconds is not None:
            lines.append(f"{name}: {_beside(seconds, estimate.get(f'{name}_seconds'))}")
    downtime = dict(phases.get("cutover") or {}).get("downtime_seconds")
    if isinstance(downtime, (int, float)) and not isinstance(downtime, bool):
        lines.append(
            f"downtime, freeze to the stack serving: {_beside(float(downtime), estimate.get('downtime_seconds'))}"
        )
    return lines


def _stamp(value: Any) -> datetime | None:
    if isinstance(value, bool) or value in (None, ""):
        return None
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(float(value), UTC).replace(tzinfo=None)
    try:
        return datetime.strptime(str(value), _STAMP)
    except ValueError:
        return None


def migrate_downtime(
    freeze_started: Any, seen_by_guard: Any = None, gate_passed_at: Any = None, returned: Any = None
) -> dict[str, Any]:
    """When the stack began to serve and the downtime since the freeze began: ``{serving_since, seconds, source}``.

    The first of these that is known is the moment the stack served:
    ``seen_by_guard`` (a resumed cutover: the freeze guard saw the switch commit), ``gate_passed_at``
    (the switch's own clock, seconds since the epoch, when its front door passed the gate), ``returned``
    (when the switch task returned, which the controller's poll makes later). ``seconds`` is ``None``
    without a freeze time. The freeze time, the guard's sighting and the gate are the host's clock;
    ``returned`` is a fallback (the switch found nothing to do) on the caller's clock.
    """
    known = [
        (source, _stamp(value))
        for source, value in (("guard", seen_by_guard), ("gate", gate_passed_at), ("returned", returned))
    ]
    known = [(source, served) for source, served in known if served is not None]
    if not known:
        return {"serving_since": "", "seconds": None, "source": ""}
    source, served = known[0]
    began = _stamp(freeze_started)
    seconds = None if began is None else round(max(0.0, (served - began).total_seconds()), 1)
    return {"serving_since": served.strftime(_STAMP), "seconds": seconds, "source": source}


_START_POLL = 0.05


def migrate_start_wait(path: str, timeout: Any) -> str:
    """Shell lines that wait for ``path`` to hold a word: ``go`` goes on, any other word ends the job (exit 0,
    nothing done), no file after ``timeout`` seconds fails it (exit 3, nothing done). Ends with ``;``."""
    if not str(path or "").strip():
        raise ValueError("migrate_start_wait needs the start file's path")
    seconds = float(timeout)
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"migrate_start_wait needs a positive timeout, got {timeout!r}")
    quoted = shlex.quote(str(path))
    looks = math.ceil(seconds / _START_POLL)
    late = shlex.quote(f"not started, nothing done: {path} did not appear within {seconds:g} s")
    return (
        f'n=0; until [ -s {quoted} ]; do n=$((n+1)); if [ "$n" -gt {looks} ]; then '
        f"echo {late} >&2; exit 3; fi; "
        f"sleep {_START_POLL}; done; "
        f'if [ "$(cat {quoted})" != go ]; then echo {shlex.quote(f"cancelled by {path}")}; exit 0; fi;'
    )


class FilterModule:
    """pidock.stack migrate host filters."""

    def filters(self) -> dict[str, Any]:
        return {
            "migrate_units_state": migrate_units_state,
            "migrate_units_killed": migrate_units_killed,
            "migrate_secret_conflicts": migrate_secret_conflicts,
            "migrate_volume_labels": migrate_volume_labels,
            "migrate_volume_paths": migrate_volume_paths,
            "migrate_tree_record": migrate_tree_record,
            "migrate_next_phase": migrate_next_phase,
            "migrate_refreeze": migrate_refreeze,
            "migrate_phase_report": migrate_phase_report,
            "migrate_downtime": migrate_downtime,
            "migrate_start_wait": migrate_start_wait,
        }
