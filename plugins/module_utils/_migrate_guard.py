# Copyright: (c) 2026, pidock.stack maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The freeze guard of a pidock.stack migration: the host puts the bare metal back by itself when
the controller goes silent while the bare metal is frozen.

From the freeze to the stack's switch, nothing serves the app. Those steps are Ansible tasks, so a
controller that dies there (a dropped SSH link to a Pi) would leave the bare metal frozen until
someone runs the migration again. The guard is a process on the host, started at the freeze as an
async job, that watches for signs of life from the controller:

* the ledger file's mtime (every phase boundary writes it),
* ``guard.heartbeat``'s mtime (async_progress touches it while it waits for a long job),
* the guard file itself (armed, switching).

It allows ``timeout`` seconds of silence, plus ``slack`` times the plan's estimate for phases whose
longest step runs without a heartbeat (dump, restore, verify's hashing). Past that, with the ledger
saying the bare metal is frozen:

    armed      -> undo: the bare-metal units start again as they ran before the freeze, the ledger is
                  cleared from the freeze on with a note, status ``undone``;
    switching  -> the stack's own switch (compose_switch, a host-side transaction of its own) decides:
                  it runs: wait; it committed: status ``served`` (the stack serves, the next run
                  finishes the cutover); it was undone or never started: undo as above.

The fence: the cutover goes from ``armed`` to ``switching`` under the guard's lock, and only then
stops the bare-metal front. The guard undoes under the same lock and only from ``armed`` or
``switching`` without a committed switch. So the controller and the host never both act: a
controller that comes back after the guard undid finds ``undone`` and stops before the switch.

Private to pidock.stack: names and signatures may change without notice.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from ansible_collections.pidock.stack.plugins.module_utils._atomic import write_atomic
from ansible_collections.pidock.stack.plugins.module_utils._ledger import (
    apply_ledger,
    ledger_text,
    read_ledger,
    write_ledger,
)
from ansible_collections.pidock.stack.plugins.module_utils._txn import Journal, last_transaction, lock_is_free

GUARD_FILE = "guard.json"
LOCK_FILE = "guard.lock"
HEARTBEAT_FILE = "guard.heartbeat"
ACTIVE = ("armed", "switching")
# The phases from the freeze on, in the order they run; the first is what "frozen" means.
FROZEN_PHASES = ("freeze", "catchup", "dump", "restore", "delta", "verify", "cutover")
# The plan's estimate that bounds a phase's longest step without a heartbeat (verify hashes every
# copied file: about the presync's reading).
ESTIMATE_KEYS = {
    "dump": "dump_seconds",
    "restore": "restore_seconds",
    "delta": "delta_seconds",
    "verify": "presync_seconds",
}

# The phases that may run while the ledger still says the key runs: the role holds the entries of
# catchup and delta for the next write (roles/migrate/vars/main.yml, _migrate_held_phases).
HELD_NEXT = {"catchup": ("delta", "verify"), "delta": ("verify",)}

Runner = Callable[[Sequence[str]], tuple[int, str, str]]


class GuardError(Exception):
    """A guard operation that cannot go ahead; the message says why and what to do."""


def utc(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: UP017


def run_command(argv: Sequence[str]) -> tuple[int, str, str]:
    done = subprocess.run(list(argv), capture_output=True, text=True, check=False)
    return done.returncode, done.stdout, done.stderr


# --- pure decisions -------------------------------------------------------------------------------


def current_phase(ledger: Mapping[str, Any]) -> str | None:
    """The frozen phase the ledger says runs now (the last one started), else None."""
    phases = ledger.get("phases", {})
    started = [name for name in FROZEN_PHASES if phases.get(name, {}).get("status") == "started"]
    return started[-1] if started else None


def is_frozen(ledger: Mapping[str, Any]) -> bool:
    """True from the freeze's start until the cutover is verified."""
    phases = ledger.get("phases", {})
    return phases.get("freeze", {}).get("status") in ("started", "verified") and (
        phases.get("cutover", {}).get("status") != "verified"
    )


def silence_limit(guard: Mapping[str, Any], phase: str | None) -> float:
    """Seconds of silence the guard allows in ``phase``: the timeout, plus the slack times the
    plan's estimate where the phase's longest step gives no heartbeat. The role holds the ledger
    entries of catchup and delta for a later write (HELD_NEXT), so while the ledger says one of
    them runs, the phases after it may run too: the largest estimate among them counts."""
    estimates = guard.get("estimates") or {}
    largest = 0.0
    for name in (phase or "", *HELD_NEXT.get(phase or "", ())):
        key = ESTIMATE_KEYS.get(name)
        if key:
            largest = max(largest, float(estimates.get(key, 0) or 0))
    return float(guard["timeout"]) + float(guard.get("slack", 0)) * largest


def switch_state(records: Sequence[Mapping[str, Any]], lock_free: bool, since: float) -> str:
    """What became of the stack's switch begun at or after ``since`` (epoch), from its journal:
    ``running`` (its lock is held), ``served`` (committed: it passed its gate), ``undone`` (ended
    without a commit, or died before one) or ``none`` (never began)."""
    mine = [r for r in records if float(r.get("epoch", 0)) >= since - 1]
    state = last_transaction(mine)
    if not lock_free:
        return "running"
    if state is None:
        return "none"
    if state["committed"]:
        return "served"
    return "undone"


def decide(
    guard: Mapping[str, Any], ledger: Mapping[str, Any], now: float, last_sign: float, switch: str
) -> tuple[str, str]:
    """One look of the watcher: ``(action, why)`` with action ``exit``, ``wait``, ``served`` or ``undo``."""
    status = guard.get("status")
    if status not in ACTIVE:
        return "exit", f"the guard is {status}"
    if status == "switching" and switch == "served":
        return "served", "the stack's switch passed its gate: the stack serves"
    phase = current_phase(ledger)
    limit = silence_limit(guard, phase)
    silent = now - last_sign
    if silent < limit:
        return "wait", ""
    if not is_frozen(ledger):
        return "exit", f"the controller was silent for {silent:.0f} s, but nothing is frozen"
    if status == "switching" and switch == "running":
        return "wait", ""
    where = f"in phase {phase}" if phase else "after the freeze"
    why = f"the controller was silent for {silent:.0f} s {where} (limit {limit:.0f} s)"
    if status == "switching":
        why += f"; the stack's switch {'never began' if switch == 'none' else 'was undone'}"
    return "undo", why


def units_to_start(recorded: Any, fallback: Sequence[str]) -> list[str]:
    """The bare-metal units that ran before the freeze (units.json: [{name, enabled, active}]), in
    their order; every unit of ``fallback`` when there is no usable record."""
    if isinstance(recorded, list) and all(isinstance(u, Mapping) and u.get("name") for u in recorded):
        return [str(u["name"]) for u in recorded if u.get("active", True)]
    return list(fallback)


# --- the guard's files ----------------------------------------------------------------------------


class GuardLock:
    """flock(LOCK_EX) on <dir>/guard.lock while open. Its holders only read and write small files
    (and stop units, in the switch to ``switching``): waiting is short."""

    def __init__(self, directory: str) -> None:
        self.path = os.path.join(directory, LOCK_FILE)
        self.fd: int | None = None

    def __enter__(self) -> GuardLock:
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def read_guard(directory: str) -> dict[str, Any] | None:
    try:
        with open(os.path.join(directory, GUARD_FILE), encoding="utf-8") as handle:
            data = json.load(handle)
    except FileNotFoundError:
        return None
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def write_guard(directory: str, guard: Mapping[str, Any]) -> None:
    write_atomic(os.path.join(directory, GUARD_FILE), json.dumps(guard, indent=2, sort_keys=True) + "\n", 0o600)


def touch(path: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        os.utime(fd)
    finally:
        os.close(fd)


def mtime(path: str) -> float:
    try:
        return os.stat(path).st_mtime
    except FileNotFoundError:
        return 0.0


def last_sign(directory: str, guard: Mapping[str, Any]) -> float:
    """The newest sign of life from the controller (epoch)."""
    return max(
        mtime(os.path.join(directory, HEARTBEAT_FILE)),
        mtime(str(guard.get("ledger") or "")),
        float(guard.get("touched_at", 0) or 0),
    )


# --- acts -----------------------------------------------------------------------------------------


def undo(directory: str, guard: dict[str, Any], why: str, now: float, run: Runner) -> dict[str, Any]:
    """Put the bare metal back: the ledger cleared from the freeze on (first, as the role's rollback
    does: a later run never takes what the bare metal writes from now on for frozen), then the units
    that ran before the freeze started in one systemctl call. Returns the outcome recorded."""
    clear = list(guard.get("clear") or [])
    if guard.get("status") == "switching":
        clear += [p for p in guard.get("clear_switching") or [] if p not in clear]
    ledger_path = str(guard["ledger"])
    ledger, before = read_ledger(ledger_path)
    note = {"reason": f"the host put the bare metal back: {why}", "by": "guard", "guard_status": guard.get("status")}
    new, cleared = apply_ledger(
        ledger, phase=None, entry=None, clear=clear, note=note, note_key="rollbacks", now=utc(now)
    )
    text = ledger_text(new)
    if text != (before or ""):
        write_ledger(ledger_path, text)
    units_file = str(guard.get("units_file") or "")
    recorded = None
    if units_file:
        with contextlib.suppress(OSError, ValueError), open(units_file, encoding="utf-8") as handle:
            recorded = json.load(handle)
    units = units_to_start(recorded, guard.get("units") or [])
    rc, _out, err = run(["systemctl", "start", *units]) if units else (0, "", "")
    if rc == 0 and units_file:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(units_file)
    return {
        "action": "undone",
        "why": why,
        "at": utc(now),
        "cleared": cleared,
        "units_started": units if rc == 0 else [],
        "units_error": "" if rc == 0 else f"systemctl start {' '.join(units)} failed (rc {rc}): {err.strip()[-400:]}",
    }


def look(directory: str, token: str, now: float, run: Runner) -> tuple[str, dict[str, Any] | None]:
    """One look of the watcher under the lock: ``(action, outcome)``; acts on ``undo`` and ``served``."""
    with GuardLock(directory):
        guard = read_guard(directory)
        if guard is None or guard.get("token") != token:
            return "exit", {"action": "replaced", "why": "another run took the guard over", "at": utc(now)}
        try:
            ledger, _text = read_ledger(str(guard["ledger"]))
        except (OSError, ValueError):
            ledger = {"phases": {}}
        switch = "none"
        if guard.get("status") == "switching" and guard.get("compose_root"):
            root = str(guard["compose_root"])
            switch = switch_state(Journal(root).records(), lock_is_free(root), float(guard.get("switching_at") or 0))
        action, why = decide(guard, ledger, now, last_sign(directory, guard), switch)
        if action == "wait":
            return action, None
        if action == "exit":
            outcome = {"action": "ended", "why": why, "at": utc(now)}
            if guard.get("status") in ACTIVE:  # nobody watches any more: the fence must not pass
                write_guard(directory, {**guard, "status": "ended", "outcome": outcome, "ended_at": now})
            return action, outcome
        if action == "undo":
            outcome = undo(directory, guard, why, now, run)
        else:
            # The time the stack was seen serving: a resumed cutover records it as the end of the downtime.
            seen = datetime.fromtimestamp(now, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")  # noqa: UP017
            outcome = {"action": "served", "why": why, "at": utc(now), "seen": seen}
        write_guard(directory, {**guard, "status": outcome["action"], "outcome": outcome, "ended_at": now})
        return action, outcome


def watch(
    directory: str,
    token: str,
    *,
    poll: float = 0.5,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
    run: Runner = run_command,
) -> dict[str, Any]:
    """Look every ``poll`` seconds until the guard ends; the outcome."""
    while True:
        action, outcome = look(directory, token, clock(), run)
        if action != "wait":
            return outcome or {}
        sleep(poll)


def arm(directory: str, settings: Mapping[str, Any], now: float) -> tuple[dict[str, Any], dict[str, Any] | None, bool]:
    """Arm the guard for ``settings['token']`` (or refresh it: the same token is a sign of life).
    Returns the guard, the one it replaced (None when none or the same) and whether it changed."""
    with GuardLock(directory):
        old = read_guard(directory)
        if old is not None and old.get("token") == settings["token"] and old.get("status") in ACTIVE:
            guard = {**old, "touched_at": now}
            write_guard(directory, guard)
            return guard, None, False
        guard = {**settings, "status": "armed", "armed_at": now, "touched_at": now, "switching_at": None}
        write_guard(directory, guard)
        return guard, old, True


def switching_refusal(guard: Mapping[str, Any] | None, token: str) -> str | None:
    """Why the fence refuses to hand over to the switch (None: it may)."""
    if guard is None or guard.get("token") != token:
        return (
            "no freeze guard armed by this run: the cutover does not stop the bare metal without one "
            "(run the migration again; it arms the guard before the frozen phases)"
        )
    if guard.get("status") == "undone":
        outcome = guard.get("outcome") or {}
        return (
            f"the host put the bare metal back at {outcome.get('at', '?')} ({outcome.get('why', '?')}); "
            "the stack was not switched and the bare metal serves. Run the migration again: it freezes afresh"
        )
    if guard.get("status") not in ACTIVE:
        return f"the freeze guard is {guard.get('status')}, not armed: the cutover does not go ahead"
    return None


def ledger_refusal(guard: Mapping[str, Any] | None, token: str) -> str | None:
    """Why a run may no longer write the ledger (None: it may): the guard this run armed put the bare
    metal back (its frozen phases would be recorded over a bare metal that serves again), or another
    run guards the bare metal now."""
    if guard is None:
        return None
    if guard.get("token") == token and guard.get("status") == "undone":
        outcome = guard.get("outcome") or {}
        return (
            f"the host put the bare metal back at {outcome.get('at', '?')} ({outcome.get('why', '?')}): "
            "this run's phases are not recorded over it. Run the migration again: it freezes afresh"
        )
    if guard.get("token") != token and guard.get("status") in ACTIVE:
        return "another run of the migration guards this host now: this run records nothing more"
    return None


def to_switching(
    directory: str, token: str, now: float, stop_units: Sequence[str], marker: str, run: Runner
) -> tuple[dict[str, Any], bool]:
    """The fence before the switch: from ``armed`` to ``switching`` under the lock, then the
    bare-metal front units stop and the serving marker is touched. Raises GuardError when the guard
    undid (the bare metal serves again) or belongs to no run of this token."""
    with GuardLock(directory):
        guard = read_guard(directory)
        refusal = switching_refusal(guard, token)
        if refusal or guard is None:
            raise GuardError(refusal or "no guard")
        changed = guard.get("status") != "switching"
        if changed:
            guard = {**guard, "status": "switching", "switching_at": now, "touched_at": now}
            write_guard(directory, guard)
        if stop_units:
            rc, _out, err = run(["systemctl", "stop", *stop_units])
            if rc != 0:
                raise GuardError(f"systemctl stop {' '.join(stop_units)} failed (rc {rc}): {err.strip()[-400:]}")
        if marker:
            touch(marker)
        return guard, changed


def outcome_report(previous: str | None, outcome: Mapping[str, Any]) -> str:
    """What a run that takes the guard over says about an earlier run's guard that acted ('' when none did)."""
    if previous not in ("undone", "served"):
        return ""
    if outcome.get("action") == "undone":
        done = (
            f"put the bare metal back (units started: {', '.join(outcome.get('units_started') or [])}; "
            f"ledger cleared: {', '.join(outcome.get('cleared') or [])})"
        )
    else:
        done = "let the stack serve (its switch had passed its gate)"
    text = (
        f"An earlier run went silent while the bare metal was frozen: {outcome.get('why', '?')}. "
        f"At {outcome.get('at', '?')} the host {done}."
    )
    return f"{text} {outcome['units_error']}" if outcome.get("units_error") else text


def disarm(directory: str, now: float) -> tuple[dict[str, Any] | None, str | None, bool]:
    """End the guard, whoever armed it. Returns the guard after, its status before, and whether it changed.
    A guard that undid keeps its outcome (the caller reports it); its status becomes ``disarmed``."""
    with GuardLock(directory):
        guard = read_guard(directory)
        if guard is None:
            return None, None, False
        before = guard.get("status")
        if before == "disarmed":
            return guard, before, False
        guard = {**guard, "status": "disarmed", "disarmed_at": now}
        write_guard(directory, guard)
        return guard, before, True
