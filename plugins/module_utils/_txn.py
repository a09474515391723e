"""The deploy switch of a pidock compose stack as one host-side transaction.

Everything the cutover does runs on the host, in one process that holds the stack's kernel lock:

    start beside -> wait healthy -> nginx -t + reload -> front-door gate -> record -> retire (+ in place)

and, when a step before ``record`` fails, the exact reverse (the previous nginx config, reload,
the gate on the previous release, the new colour removed). Before each step a line is appended to
``<root>/journal.jsonl``. When the process dies (the host rebooted, someone killed it), the next
transaction reads the journal first: a transaction that reached ``commit`` is finished, any other
is undone. A transaction still running holds the lock, so the next one simply waits for it.

The lock is ``flock`` on ``<root>/deploy.lock``, held on an open descriptor by the transaction's
process: the kernel releases it when that process ends, whatever the way. The file's JSON content
only names the holder for messages; an empty or unparsable file means nothing.

Test hook: when ``<root>/.txn-pause`` names a step, the transaction writes ``<root>/.txn-paused``
(step and pid) before that step and waits until the pause file is removed. The fault tests use it to
kill the controller (or this process) at a named point instead of guessing with sleeps.

Private to pidock.stack: names and signatures may change without notice.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import secrets
import select
import subprocess
import time
import urllib.error
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Optional

from ansible.module_utils.urls import open_url
from ansible_collections.pidock.stack.plugins.module_utils._atomic import write_atomic
from ansible_collections.pidock.stack.plugins.module_utils._release import (
    AUDIT_FILE,
    activate,
    audit_entry,
    current_release,
    read_release,
    release_path,
    with_outcome,
    write_json_atomic,
)

JOURNAL_FILE = "journal.jsonl"
LOCK_FILE = "deploy.lock"
PAUSE_FILE = ".txn-pause"
PAUSED_FILE = ".txn-paused"
# Forward steps, in order; the transaction is committed once ``record`` is done.
FORWARD_STEPS = (
    "start_beside",
    "wait_healthy",
    "front_config",
    "reload",
    "gate",
    "record",
    "drain",
    "retire",
    "in_place",
)
UNDO_STEPS = ("undo_front", "undo_reload", "undo_start", "undo_gate", "undo_drain", "undo_retire", "undo_record")
# Seconds to wait for nginx workers of the configuration a reload replaced: they finish the
# requests they hold, proxied to the colour about to be removed. Past this, removal goes ahead.
DRAIN_TIMEOUT = 15.0
# Prints how many nginx workers are still finishing requests under an older configuration (their
# process title starts "nginx: worker process is shutting down"; this script's own command line
# holds that text too, but not at its start). Plain POSIX sh over /proc: no ps in the front image.
DRAIN_COUNT_SCRIPT = (
    "n=0; for f in /proc/[0-9]*/cmdline; do "
    "case \"$(tr '\\000' ' ' < \"$f\" 2>/dev/null)\" in 'nginx: worker process is shutting down'*) n=$((n+1));; esac; "
    "done; echo $n"
)
_JOURNAL_KEEP_LINES = 2000
_JOURNAL_TRIM_BYTES = 512 * 1024
MIN_HEALTH_TIMEOUT = 5
_INSPECT_FORMAT = "{{json .State}}\t{{json .Config.Labels}}\t{{.Name}}"

# Evaluated at import on the managed host (a type alias, not an annotation): no `X | None` before 3.10.
Runner = Callable[[Sequence[str], Optional[str]], tuple[int, str, str]]  # noqa: UP045
Prober = Callable[[str, bool, float], tuple[int, Any, str]]


class TxnError(Exception):
    """A step failed; the message is meant for the operator."""


class LockBusy(TxnError):
    """Another live process holds the stack's lock."""

    def __init__(self, message: str, holder: Mapping[str, Any] | None) -> None:
        super().__init__(message)
        self.holder = dict(holder) if holder else None


def utc(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


# --- lock ---------------------------------------------------------------------------------------


def read_holder(path: str) -> dict[str, Any] | None:
    """The note in the lock file, or None when it is missing, empty or not a JSON object."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.loads(handle.read() or "null")
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def describe(holder: Mapping[str, Any] | None) -> str:
    if not holder:
        return "a process that left no note"
    return (
        f"{holder.get('owner', '?')} (pid {holder.get('pid', '?')} on the host, {holder.get('kind', '?')} of "
        f"{holder.get('release', '?')}, since {holder.get('since', '?')})"
    )


class HostLock:
    """flock(LOCK_EX) on <root>/deploy.lock, held while this object is open.

    The file is never removed: removing it while another process waits on the old inode would let
    two processes each hold "the" lock.
    """

    def __init__(self, root: str) -> None:
        self.path = os.path.join(root, LOCK_FILE)
        self.fd: int | None = None

    def acquire(
        self,
        wait: float,
        note: Mapping[str, Any],
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> float:
        """Take the lock, waiting up to ``wait`` seconds for a live holder; returns the seconds waited."""
        if wait < 0:
            raise TxnError(f"lock wait must be 0 or more seconds, got {wait}")
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        start = clock()
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as exc:
                    if exc.errno not in (errno.EAGAIN, errno.EACCES):
                        raise
                if clock() - start >= wait:
                    holder = read_holder(self.path)
                    raise LockBusy(
                        f"The stack at {os.path.dirname(self.path)} is being switched by {describe(holder)}; "
                        f"waited {wait:g}s (compose_lock_timeout). That process is alive (the kernel lock is "
                        "released the moment it ends): wait for it, or raise compose_lock_timeout.",
                        holder,
                    )
                sleep(0.2)
        except BaseException:
            os.close(fd)
            raise
        self.fd = fd
        text = json.dumps(dict(note), sort_keys=True) + "\n"
        os.ftruncate(fd, 0)
        os.pwrite(fd, text.encode(), 0)
        return clock() - start

    def release(self) -> None:
        if self.fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(self.fd, 0)
        os.close(self.fd)
        self.fd = None

    def __enter__(self) -> HostLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def lock_is_free(root: str) -> bool:
    """True when nobody holds the kernel lock (probing takes and gives it back at once)."""
    path = os.path.join(root, LOCK_FILE)
    if not os.path.exists(path):
        return True
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    finally:
        os.close(fd)
    return True


# --- journal ------------------------------------------------------------------------------------


class Journal:
    """Append-only JSON lines, fsynced before the step they announce runs."""

    def __init__(self, root: str, clock: Callable[[], float] = time.time) -> None:
        self.path = os.path.join(root, JOURNAL_FILE)
        self.clock = clock

    def append(self, record: Mapping[str, Any]) -> dict[str, Any]:
        now = self.clock()
        line = {"time": utc(now), "epoch": round(now, 3), **record}
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o640)
        try:
            os.write(fd, (json.dumps(line, sort_keys=True) + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        return line

    def records(self) -> list[dict[str, Any]]:
        """Every readable record; a torn last line (death mid-write) is skipped."""
        try:
            with open(self.path, encoding="utf-8") as handle:
                lines = handle.read().splitlines()
        except FileNotFoundError:
            return []
        found = []
        for raw in lines:
            try:
                item = json.loads(raw)
            except ValueError:
                continue
            if isinstance(item, dict) and item.get("txn"):
                found.append(item)
        return found

    def trim(self) -> None:
        """Keep the journal small: the newest lines only, rewritten atomically (lock held)."""
        with contextlib.suppress(FileNotFoundError):
            if os.path.getsize(self.path) > _JOURNAL_TRIM_BYTES:
                with open(self.path, encoding="utf-8") as handle:
                    keep = handle.read().splitlines()[-_JOURNAL_KEEP_LINES:]
                write_atomic(self.path, "\n".join(keep) + "\n", 0o640)


def last_transaction(records: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """The state of the newest transaction in the journal, folded from its records."""
    begins = [r for r in records if r.get("event") == "begin"]
    if not begins:
        return None
    begin = begins[-1]
    txn = begin["txn"]
    mine = [r for r in records if r.get("txn") == txn]
    state: dict[str, Any] = {
        "txn": txn,
        "begin": dict(begin),
        "steps": [r["step"] for r in mine if r.get("event") == "step"],
        "committed": any(r.get("event") == "commit" for r in mine),
        "undoing": any(r.get("event") == "undo" for r in mine),
        "end": next((dict(r) for r in mine if r.get("event") == "end"), None),
    }
    state["last_step"] = state["steps"][-1] if state["steps"] else None
    return state


def replay_action(state: Mapping[str, Any] | None) -> str:
    """What to do with the newest transaction found with the lock free: nothing, finish or undo.

    Committed (current, history and audit may be half written, the new release passed its gate)
    means forward only; anything else is undone, undoing included (undo steps are idempotent).
    """
    if state is None or state.get("end") is not None:
        return "nothing"
    return "finish" if state.get("committed") else "undo"


# --- release plan -------------------------------------------------------------------------------

# Answers in a row the front door must give after services were recreated in place, and how many
# times served() asks before it says the front door does not answer.
_SETTLED_ANSWERS = 3
_SERVED_ATTEMPTS = 4

_VOLATILE = ("container_name",)


def _comparable(service: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in service.items() if k not in _VOLATILE}


def release_plan(
    before: Mapping[str, Any] | None, after: Mapping[str, Any], cutover: str = "blue_green"
) -> dict[str, Any]:
    """Which services of ``after`` start beside, which are recreated in place (and why), which retire.

    ``before`` and ``after`` are compose files as dicts (``docker compose config --format json
    --no-interpolate``: secrets are never expanded). A service whose name exists in both releases
    with another definition cannot run twice side by side: it is recreated in place, once, after
    the stateless part passed its gate.
    """
    old = dict((before or {}).get("services") or {})
    new = dict(after.get("services") or {})
    beside, in_place, unchanged = [], [], []
    for name in sorted(new):
        if name not in old:
            beside.append(name)
            continue
        if _comparable(old[name]) == _comparable(new[name]):
            unchanged.append(name)
            continue
        changed = sorted(
            k for k in set(old[name]) | set(new[name]) if k not in _VOLATILE and old[name].get(k) != new[name].get(k)
        )
        volumes = [v for v in new[name].get("volumes") or [] if isinstance(v, Mapping) and v.get("type") == "volume"]
        why = (
            "keeps its data in volume(s) " + ", ".join(sorted(str(v.get("source")) for v in volumes))
            if volumes
            else "keeps its name across releases (only the front's upstream runs blue/green)"
        )
        if cutover != "blue_green":
            why = "compose_cutover is recreate"
        in_place.append({"service": name, "changed": changed, "why": why})
    retire = sorted(name for name in old if name not in new)
    return {"beside": beside, "in_place": in_place, "unchanged": unchanged, "retire": retire, "cutover": cutover}


def colour_clash(
    target: str,
    target_meta: Mapping[str, Any] | None,
    current: str,
    current_meta: Mapping[str, Any] | None,
    plan: Mapping[str, Any],
) -> str:
    """Why a blue/green switch to ``target`` cannot happen without interrupting the service ("" when it can).

    A release keeps the colour it was staged in. Going back to an older release of the colour that
    serves now (two releases back) would have to recreate the serving containers in place, and the
    gate would still see the old release. Refused before anything changes, with the way forward.
    """
    if not current or target == current or plan.get("cutover", "blue_green") != "blue_green":
        return ""
    colour = ((target_meta or {}).get("extra") or {}).get("colour")
    if not colour or colour != ((current_meta or {}).get("extra") or {}).get("colour"):
        return ""
    clashing = sorted(i["service"] for i in plan.get("in_place") or [] if str(i["service"]).endswith(f"-{colour}"))
    if not clashing:
        return ""
    version = (target_meta or {}).get("version", "?")
    return (
        f"release {target} runs {', '.join(clashing)} in the colour that serves now ({colour}, release {current}): "
        "switching to it would recreate the serving containers in place. Roll back to the previous release, "
        f"or deploy {version}'s configuration again with deploy.yml (it is staged in the other colour)"
    )


def active_services(config: Mapping[str, Any], profiles: Sequence[str]) -> dict[str, Any]:
    """The compose config with only the services that run: no profile, or an enabled one."""
    out = dict(config)
    out["services"] = {
        name: svc
        for name, svc in (config.get("services") or {}).items()
        if not svc.get("profiles") or set(svc["profiles"]) & set(profiles)
    }
    return out


def plan_text(plan: Mapping[str, Any]) -> str:
    lines = [f"start beside: {', '.join(plan['beside']) or 'nothing'}"]
    for item in plan["in_place"]:
        lines.append(
            f"recreate IN PLACE (once, after the gate; brief interruption): {item['service']} - {item['why']}; "
            f"changed: {', '.join(item['changed'])}"
        )
    lines.append(f"retire: {', '.join(plan['retire']) or 'nothing'}")
    lines.append(f"unchanged: {', '.join(plan['unchanged']) or 'nothing'}")
    return "\n".join(lines) + "\n"


# --- host commands ------------------------------------------------------------------------------


def run_command(argv: Sequence[str], cwd: str | None = None) -> tuple[int, str, str]:
    done = subprocess.run(list(argv), cwd=cwd, capture_output=True, text=True, check=False)
    return done.returncode, done.stdout, done.stderr


def http_probe(url: str, validate_certs: bool, timeout: float) -> tuple[int, Any, str]:
    """GET url: (status, parsed JSON or None, first bytes of the body or the error)."""
    try:
        with open_url(url, headers={"Connection": "close"}, timeout=timeout, validate_certs=validate_certs) as resp:
            status, body = resp.status, resp.read(65536)
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read(2000) if exc.fp else b""
    except (OSError, ValueError) as exc:
        return 0, None, f"{type(exc).__name__}: {exc}"
    text = body.decode("utf-8", "replace")
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    return status, parsed, text[:300]


def events_stream(project: str, since: float) -> subprocess.Popen[str]:
    """`docker events` of the project's containers since ``since``: every health/state change."""
    return subprocess.Popen(
        [
            "docker",
            "events",
            "--since",
            f"{since:.3f}",
            "--filter",
            "type=container",
            "--filter",
            f"label=com.docker.compose.project={project}",
            "--format",
            "{{.Status}}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )


class Settings:
    """What one transaction needs to know, validated once."""

    def __init__(self, params: Mapping[str, Any]) -> None:
        self.root: str = params["root"]
        self.project: str = params["project"]
        self.profiles: list[str] = list(params.get("profiles") or [])
        self.cutover: str = params.get("cutover") or "blue_green"
        self.front_enabled: bool = bool(params.get("front_enabled", True))
        self.front_name: str = params.get("front_name") or "nginx"
        self.front_conf: str = params.get("front_conf") or os.path.join(self.root, "front", "conf.d", "default.conf")
        self.health_url: str = params.get("health_url") or ""
        self.release_key: str = params.get("health_release_key") or ""
        self.validate_certs: bool = bool(params.get("health_validate_certs", False))
        self.health_timeout: float = float(params.get("health_timeout", 180))
        self.lock_timeout: float = float(params.get("lock_timeout", 1800))
        self.rollback_on_failure: bool = bool(params.get("rollback_on_failure", True))
        self.owner: str = params.get("owner") or "ansible"
        problems = []
        if self.health_timeout < MIN_HEALTH_TIMEOUT:
            problems.append(f"health_timeout must be at least {MIN_HEALTH_TIMEOUT}s, got {self.health_timeout:g}")
        if self.lock_timeout < 0:
            problems.append(f"lock_timeout must be 0 or more seconds, got {self.lock_timeout:g}")
        if self.cutover not in ("blue_green", "recreate"):
            problems.append(f"cutover must be blue_green or recreate, got {self.cutover!r}")
        if problems:
            raise TxnError("; ".join(problems))


class Switch:
    """One stack's transactions: recover what a dead process left, switch to a release."""

    def __init__(
        self,
        settings: Settings,
        runner: Runner = run_command,
        prober: Prober = http_probe,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        events: Callable[[str, float], Any] = events_stream,
    ) -> None:
        self.s = settings
        self.run = runner
        self.probe = prober
        self.clock = clock
        self.sleep = sleep
        self.events = events
        self.journal = Journal(settings.root, clock)
        self.txn = ""
        self.timings: dict[str, float] = {}
        self.log: list[str] = []
        # `docker compose config` of each release read in this process: a release directory never
        # changes once staged, and each read costs a compose start (about 0.3 s on a Pi).
        self._configs: dict[str, dict[str, Any]] = {}
        self._front_was_down = False
        # When this process saw the front door pass its gate (the release serves from then on).
        self.gate_passed_at: float | None = None

    # -- small helpers ---------------------------------------------------------------------------

    def _compose(self, release_id: str, *args: str) -> list[str]:
        argv = ["docker", "compose", "-p", self.s.project, "-f", "compose.yml"]
        for profile in self.s.profiles:
            argv += ["--profile", profile]
        return argv + list(args)

    def _docker(self, argv: Sequence[str], release_id: str | None = None, what: str = "") -> str:
        cwd = release_path(self.s.root, release_id) if release_id else None
        rc, out, err = self.run(argv, cwd)
        if rc != 0:
            raise TxnError(f"{what or ' '.join(argv[:4])} failed (rc {rc}): {(err or out).strip()[-1500:]}")
        return out

    def compose_config(self, release_id: str | None, definition_file: str | None = None) -> dict[str, Any] | None:
        """The release's compose file as JSON, secrets not expanded (None: no such release)."""
        if definition_file is None:
            if not release_id or read_release(self.s.root, release_id) is None:
                return None
            if release_id in self._configs:
                return self._configs[release_id]
            cwd: str | None = release_path(self.s.root, release_id)
            argv = self._compose(release_id, "config", "--format", "json", "--no-interpolate")
        else:
            cwd = os.path.dirname(definition_file)
            argv = [
                "docker",
                "compose",
                "-p",
                self.s.project,
                "-f",
                definition_file,
                *[a for p in self.s.profiles for a in ("--profile", p)],
                "config",
                "--format",
                "json",
                "--no-interpolate",
            ]
        rc, out, err = self.run(argv, cwd)
        if rc != 0:
            raise TxnError(
                f"docker compose config of {release_id or definition_file} failed: {(err or out).strip()[-800:]}"
            )
        config = active_services(json.loads(out), self.s.profiles)
        if definition_file is None and release_id:
            self._configs[release_id] = config
        return config

    def _pause_hook(self, step: str) -> None:
        pause = os.path.join(self.s.root, PAUSE_FILE)
        try:
            with open(pause, encoding="utf-8") as handle:
                wanted = handle.read().strip()
        except FileNotFoundError:
            return
        if wanted != step:
            return
        paused = os.path.join(self.s.root, PAUSED_FILE)
        write_atomic(paused, json.dumps({"step": step, "pid": os.getpid(), "txn": self.txn}) + "\n")
        while os.path.exists(pause):
            self.sleep(0.1)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(paused)

    def _step(self, name: str, action: Callable[[], Any]) -> Any:
        self.journal.append({"txn": self.txn, "event": "step", "step": name, "pid": os.getpid()})
        self._pause_hook(name)
        start = self.clock()
        try:
            return action()
        finally:
            self.timings[name] = round(self.timings.get(name, 0.0) + self.clock() - start, 2)

    # -- health ----------------------------------------------------------------------------------

    def _containers(self, services: Sequence[str]) -> list[dict[str, Any]]:
        """State and labels (never Config.Env: it holds secrets) of the project's containers."""
        out = self._docker(
            ["docker", "ps", "-a", "-q", "--filter", f"label=com.docker.compose.project={self.s.project}"],
            what="docker ps",
        )
        ids = out.split()
        if not ids:
            return []
        found = []
        inspected = self._docker(["docker", "inspect", "--format", _INSPECT_FORMAT, *ids], what="docker inspect")
        for line in inspected.splitlines():
            parts = line.split("\t")
            if len(parts) != 3:
                continue
            state, labels = json.loads(parts[0]), json.loads(parts[1]) or {}
            service = labels.get("com.docker.compose.service", "")
            if services and service not in services:
                continue
            found.append({"service": service, "name": parts[2].lstrip("/"), "state": state})
        return found

    @staticmethod
    def judge(containers: Sequence[Mapping[str, Any]], services: Sequence[str]) -> tuple[str, list[str]]:
        """'healthy', 'waiting' or 'failed', with what is wrong (health output, never the environment)."""
        problems, waiting = [], False
        seen = {c["service"] for c in containers}
        for service in services:
            if service not in seen:
                waiting = True
                problems.append(f"{service}: no container yet")
        for item in containers:
            state = item["state"] or {}
            health = state.get("Health") or {}
            status = state.get("Status", "?")
            if status in ("exited", "dead") or health.get("Status") == "unhealthy":
                logs = health.get("Log") or []
                last = (logs[-1].get("Output") or "").strip()[-300:] if logs else ""
                problems.append(
                    f"service {item['service']} is {health.get('Status') or status} ({item['name']})"
                    + (f", exit code {state.get('ExitCode')}" if status == "exited" else "")
                    + (f", last health output: {last}" if last else "")
                )
                return "failed", problems
            if status != "running" or health.get("Status") not in (None, "healthy"):
                waiting = True
                problems.append(f"{item['service']}: {health.get('Status') or status}")
        return ("waiting" if waiting else "healthy"), problems

    def wait_healthy(self, services: Sequence[str]) -> float:
        """Block until every container of ``services`` runs and is healthy, driven by docker events."""
        start = self.clock()
        deadline = start + self.s.health_timeout
        stream = self.events(self.s.project, start - 1)
        try:
            while True:
                verdict, problems = self.judge(self._containers(services), services)
                if verdict == "healthy":
                    return round(self.clock() - start, 2)
                if verdict == "failed":
                    raise TxnError("; ".join(problems))
                left = deadline - self.clock()
                if left <= 0:
                    raise TxnError(f"not healthy within {self.s.health_timeout:g}s: {'; '.join(problems)}")
                self._next_event(stream, min(left, 5.0))
        finally:
            if stream is not None and hasattr(stream, "kill"):
                with contextlib.suppress(OSError):
                    stream.kill()
                    stream.wait(timeout=5)

    def _next_event(self, stream: Any, timeout: float) -> None:
        """Wait for one docker event (or the timeout: a missed event costs at most that)."""
        if stream is None or getattr(stream, "stdout", None) is None:
            self.sleep(min(timeout, 0.5))
            return
        ready = select.select([stream.stdout], [], [], timeout)[0]
        if ready and not stream.stdout.readline():
            self.sleep(min(timeout, 0.5))

    def gate(self, version: str, consecutive: int = 1) -> dict[str, Any]:
        """Poll the front door until it answers 200 naming ``version`` ``consecutive`` times in a row.

        After services were recreated in place the app's pooled connections may fail a few requests
        more: several answers in a row tell a settled front door from one lucky answer.
        """
        if not self.s.health_url:
            return {"status": None, "served": None, "seconds": 0.0}
        start = self.clock()
        deadline = start + self.s.health_timeout
        good = 0
        while True:
            status, parsed, text = self.probe(self.s.health_url, self.s.validate_certs, 5.0)
            served = parsed.get(self.s.release_key) if isinstance(parsed, dict) and self.s.release_key else None
            good = good + 1 if status == 200 and (not self.s.release_key or served == version) else 0
            if good >= consecutive:
                return {"status": status, "served": served, "seconds": round(self.clock() - start, 2)}
            if self.clock() >= deadline:
                raise TxnError(
                    f"{self.s.health_url} did not report {self.s.release_key}={version} within "
                    f"{self.s.health_timeout:g}s: last answer {status or 'none'} {text[:300]}"
                )
            self.sleep(0.25)

    def served(self, refused_is_final: bool = False) -> str | None:
        """What the front door serves now (the release key), or None when it does not answer.

        A failed answer is asked again a few times (about a second in all): one request that met a
        stale pooled connection is not what the front door serves. With ``refused_is_final``, a
        refused connection (nothing listens on the port) is the answer at once: the switch asks so
        before it starts, where the migration's cutover always finds the front door down.
        """
        if not self.s.health_url or not self.s.release_key:
            return None
        for attempt in range(_SERVED_ATTEMPTS):
            if attempt:
                self.sleep(0.25)
            status, parsed, text = self.probe(self.s.health_url, self.s.validate_certs, 5.0)
            if status == 200 and isinstance(parsed, dict):
                value = parsed.get(self.s.release_key)
                return None if value is None else str(value)
            if refused_is_final and status == 0 and "connection refused" in text.lower():
                return None
        return None

    # -- front -----------------------------------------------------------------------------------

    def _front_running(self) -> bool:
        return any(
            c["service"] == self.s.front_name and (c["state"] or {}).get("Status") == "running"
            for c in self._containers([self.s.front_name])
        )

    def install_front_conf(self, release_id: str) -> bool:
        """Copy the release's nginx.conf to the live config; True when the content changed."""
        src = os.path.join(release_path(self.s.root, release_id), "nginx.conf")
        with open(src, encoding="utf-8") as handle:
            wanted = handle.read()
        try:
            with open(self.s.front_conf, encoding="utf-8") as handle:
                if handle.read() == wanted:
                    return False
        except FileNotFoundError:
            pass
        os.makedirs(os.path.dirname(self.s.front_conf), mode=0o755, exist_ok=True)
        write_atomic(self.s.front_conf, wanted, 0o644)
        return True

    def reload_front(self) -> None:
        exec_ = ["docker", "compose", "-p", self.s.project, "exec", "-T", self.s.front_name]
        self._docker([*exec_, "nginx", "-t"], what="nginx -t in the running front")
        self._docker([*exec_, "nginx", "-s", "reload"], what="nginx reload")

    def drain_front(self) -> float:
        """Wait (at most DRAIN_TIMEOUT) until no nginx worker of a replaced configuration still holds
        requests: they are proxied to the colour about to be removed, which would answer them 502.
        Called only with a front. Best effort: a front that cannot be asked (no sh in its image) is
        not waited for."""
        start = self.clock()
        argv = ["docker", "compose", "-p", self.s.project, "exec", "-T", self.s.front_name, "sh", "-c"]
        while True:
            rc, out, _err = self.run([*argv, DRAIN_COUNT_SCRIPT], None)
            left = out.strip()
            if rc != 0 or not left.isdigit() or int(left) == 0 or self.clock() - start >= DRAIN_TIMEOUT:
                return round(self.clock() - start, 2)
            self.sleep(0.1)

    # -- the transaction -------------------------------------------------------------------------

    def recover(self) -> dict[str, Any] | None:
        """With the lock held: finish or undo what a dead transaction left. None when nothing was left."""
        state = last_transaction(self.journal.records())
        action = replay_action(state)
        if action == "nothing" or state is None:
            return None
        begin = state["begin"]
        self.txn = state["txn"]
        self.journal.append(
            {
                "txn": self.txn,
                "event": "recover",
                "action": action,
                "pid": os.getpid(),
                "after_step": state["last_step"],
            }
        )
        note = f"recovered after the process died at step {state['last_step'] or 'begin'}"
        if action == "finish":
            result = self._finish(begin, note)
        else:
            result = self._undo(
                begin, f"the transaction's process died at step {state['last_step'] or 'begin'}", recovered=True
            )
        result["recovered"] = {"txn": self.txn, "action": action, "after_step": state["last_step"]}
        return result

    def already_there(self, current: str, target: str, served: str | None, version: str | None) -> bool:
        """True when ``target`` is current and the front door serves its version (or cannot tell):
        a switch to it has nothing to do."""
        return current == target and (not self.s.release_key or not self.s.health_url or served == version)

    def switch(self, target: str, kind: str, note: str = "") -> dict[str, Any]:
        """Move the stack to release ``target`` behind the gate (the lock is held by the caller)."""
        meta = read_release(self.s.root, target)
        if meta is None:
            raise TxnError(f"release {target} does not exist under {self.s.root}")
        current = current_release(self.s.root) or ""
        from_meta = read_release(self.s.root, current) if current else None
        plan = release_plan(
            self.compose_config(current) if from_meta else None, self.compose_config(target) or {}, self.s.cutover
        )
        clash = colour_clash(target, meta, current, from_meta, plan)
        if clash:
            raise TxnError(clash)
        # Asked only when it can matter: a front door that does not answer is asked again for about a
        # second (served()), and the migration's first switch meets exactly that (the bare-metal
        # nginx has just stopped, the stack's front is not up yet).
        served = self.served(refused_is_final=True) if current == target else None
        # Nothing answered on the front door: the front this switch starts is a fresh one.
        self._front_was_down = current == target and served is None
        if self.already_there(current, target, served, meta.get("version")):
            # Already there: make sure nothing is left over (an interrupted retire) and stop.
            return {
                "changed": False,
                "outcome": "unchanged",
                "release": target,
                "version": meta.get("version"),
                "previous": current,
                "served": served,
                "plan": plan,
            }
        self.txn = f"{int(self.clock())}-{secrets.token_hex(4)}"
        self.journal.trim()
        begin = {
            "txn": self.txn,
            "event": "begin",
            "kind": kind,
            "note": note,
            "pid": os.getpid(),
            "to": target,
            "to_version": meta.get("version", ""),
            "from": current,
            "from_version": (from_meta or {}).get("version", ""),
            "plan": plan,
            "started": self.clock(),
        }
        self.journal.append(begin)
        try:
            self._forward(begin)
        except TxnError as exc:
            return self._undo(begin, str(exc), recovered=False)
        return self._finish(begin, "")

    def _forward(self, begin: Mapping[str, Any]) -> None:
        target, plan = begin["to"], begin["plan"]
        first = not begin["from"]
        if self.s.front_enabled and first and not os.path.exists(self.s.front_conf):
            self.install_front_conf(target)
        up = (
            ["up", "-d", "--remove-orphans"]
            if self.s.cutover != "blue_green" or first
            else ["up", "-d", "--no-recreate"]
        )

        def start() -> None:
            fresh = [s for s in plan["beside"] if s != self.s.front_name]
            if fresh and not first:
                # A container left under a new colour's name by something else is not this release's.
                self._docker(self._compose(target, "rm", "-f", "-s", *fresh), target, "removing stale containers")
            self._docker(self._compose(target, *up), target, "starting the release beside the running one")

        self._step("start_beside", start)
        services = sorted((self.compose_config(target) or {}).get("services") or {})
        self._step("wait_healthy", lambda: self.wait_healthy(services))
        if self.s.front_enabled:
            changed = self._step("front_config", lambda: self.install_front_conf(target))
            # A front this switch starts (new beside the old release, or the same release again with
            # nothing on the front door, as in the migration's cutover) read the live config when it
            # started and has resolved no upstream yet: a reload (which also empties nginx's resolver
            # cache after an in-place recreation) would only cost two docker execs, about 0.8 s on a Pi.
            fresh_front = self.s.front_name in plan["beside"] or self._front_was_down
            if changed or not (first or fresh_front):
                self._step("reload", self.reload_front)
        answer = self._step("gate", lambda: self.gate(begin["to_version"]))
        self.timings["gate_s"] = answer["seconds"]
        self.gate_passed_at = self.clock()

    def _record(self, begin: Mapping[str, Any], outcome: str, note: str) -> None:
        now = self.clock()
        target = begin["to"]
        if current_release(self.s.root) != target:
            activate(self.s.root, target, now, begin.get("kind", "deploy") + (f" ({note})" if note else ""))
        meta = read_release(self.s.root, target) or {}
        if meta.get("outcome") != outcome:
            write_json_atomic(
                os.path.join(release_path(self.s.root, target), "release.json"),
                with_outcome(meta, outcome, note or "health gate passed", now),
            )
        if begin.get("kind") == "rollback" and begin.get("from"):
            prev = read_release(self.s.root, begin["from"]) or {}
            if prev and prev.get("outcome") != "rolled_back":
                write_json_atomic(
                    os.path.join(release_path(self.s.root, begin["from"]), "release.json"),
                    with_outcome(prev, "rolled_back", f"manual rollback to {target}", now),
                )

    def _finish(self, begin: Mapping[str, Any], note: str) -> dict[str, Any]:
        """Forward from the commit point: record, retire the old colour, apply in-place changes."""
        target, plan = begin["to"], begin["plan"]
        self._step("record", lambda: self._record(begin, "success", note))
        self.journal.append({"txn": self.txn, "event": "commit"})
        interruption = None
        error = ""
        in_place = [i["service"] for i in plan["in_place"]] if self.s.cutover == "blue_green" else []
        try:
            if self.s.front_enabled:
                self._step("drain", self.drain_front)
            # The retire's `up` also stops and recreates the in-place services: their interruption
            # starts here, and ends when they are healthy and the front door answers again.
            start = self.clock()
            self._step(
                "retire",
                lambda: self._docker(
                    self._compose(target, "up", "-d", "--remove-orphans"), target, "retiring the replaced release"
                ),
            )
            if in_place:
                self._step("in_place", lambda: self.wait_healthy(in_place))
                self._step("in_place_gate", lambda: self.gate(begin["to_version"], consecutive=_SETTLED_ANSWERS))
                interruption = round(self.clock() - start, 2)
        except TxnError as exc:
            error = (
                f"the release serves, but applying it in place failed: {exc}. It was NOT rolled back "
                "automatically (that would recreate " + (", ".join(in_place) or "the services") + " again)"
            )
        return self._end(begin, "success" if not error else "failed", error, note, interruption)

    def _undo(self, begin: Mapping[str, Any], error: str, recovered: bool) -> dict[str, Any]:
        """The exact reverse of the forward steps, back to the release that served before."""
        source, target = begin["from"], begin["to"]
        self.journal.append({"txn": self.txn, "event": "undo", "error": error[:2000]})
        if not source or not self.s.rollback_on_failure:
            if not recovered:
                self._mark(target, "failed", error)
            return self._end(
                begin,
                "failed",
                error,
                "no previous release to go back to" if not source else "compose_rollback_on_failure is false",
                None,
            )
        try:
            if self.s.front_enabled:
                changed = self._step("undo_front", lambda: self.install_front_conf(source))
                if changed or recovered:
                    self._step("undo_reload", self.reload_front)
            if self.s.cutover == "blue_green":
                # The source's colour still runs: the front serves it again (gate) and the workers
                # of the failed configuration finish their requests before its containers go.
                self._step(
                    "undo_start",
                    lambda: self._docker(
                        self._compose(source, "up", "-d", "--no-recreate"), source, "starting the release again"
                    ),
                )
                self._step("undo_gate", lambda: self.gate(begin["from_version"]))
                if self.s.front_enabled:
                    self._step("undo_drain", self.drain_front)
                self._step(
                    "undo_retire",
                    lambda: self._docker(
                        self._compose(source, "up", "-d", "--no-recreate", "--remove-orphans"),
                        source,
                        "removing the failed release's containers",
                    ),
                )
            else:
                self._step(
                    "undo_start",
                    lambda: self._docker(
                        self._compose(source, "up", "-d", "--remove-orphans"),
                        source,
                        "recreating the release that served",
                    ),
                )
                self._step("undo_gate", lambda: self.gate(begin["from_version"]))
        except TxnError as exc:
            return self._end(begin, "failed", f"{error}. ROLLBACK FAILED too: {exc}", "", None)
        self._step("undo_record", lambda: self._undo_record(begin, error))
        return self._end(begin, "failed" if begin.get("kind") == "rollback" else "rolled_back", error, "", None)

    def _mark(self, release_id: str, outcome: str, note: str) -> None:
        meta = read_release(self.s.root, release_id)
        if meta is not None and meta.get("outcome") != outcome:
            write_json_atomic(
                os.path.join(release_path(self.s.root, release_id), "release.json"),
                with_outcome(meta, outcome, note[:2000], self.clock()),
            )

    def _undo_record(self, begin: Mapping[str, Any], error: str) -> None:
        if current_release(self.s.root) != begin["from"]:
            activate(self.s.root, begin["from"], self.clock(), f"{begin.get('kind', 'deploy')} undone")
        # A manual rollback that failed leaves its target as it was (it served before); a new
        # release that failed is marked failed.
        if begin.get("kind") != "rollback":
            self._mark(begin["to"], "failed", error)

    def _end(
        self, begin: Mapping[str, Any], intended: str, error: str, note: str, interruption: float | None
    ) -> dict[str, Any]:
        """Read what the front door serves, write the audit line and the end of the journal."""
        served = self.served()
        outcome = truth(intended, served, begin, bool(self.s.health_url and self.s.release_key))
        if outcome != intended and not error:
            error = f"the front door serves {served!r}, not {begin['to_version']!r}"
        elif outcome != intended:
            error = f"{error}; the front door serves {served!r}"
        served_release = {begin["to_version"]: begin["to"], begin["from_version"]: begin["from"]}.get(served or "", "")
        entry = {
            "action": begin.get("kind", "deploy"),
            "release": begin["to"],
            "version": begin["to_version"],
            "previous": begin["from"],
            "outcome": outcome,
            "served": served,
            "served_release": served_release or (begin["to"] if outcome == "success" else begin["from"]),
            "txn": self.txn,
            "durations": {
                "total_s": round(self.clock() - float(begin.get("started", self.clock())), 2),
                "gate_s": self.timings.get("gate_s", self.timings.get("gate", 0.0)),
                **({"interruption_s": interruption} if interruption is not None else {}),
            },
            "steps_s": dict(self.timings),
        }
        if begin["plan"]["in_place"]:
            entry["in_place"] = [i["service"] for i in begin["plan"]["in_place"]]
        if intended != "success" and outcome == intended and begin["from"]:
            entry["rolled_back_to"] = begin["from"]
        if error:
            entry["error"] = error[:2000]
        if note:
            entry["note"] = note
        line = audit_entry(entry, self.clock())
        fd = os.open(os.path.join(self.s.root, AUDIT_FILE), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
        with os.fdopen(fd, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")
        self.journal.append({"txn": self.txn, "event": "end", "outcome": outcome, "served": served})
        return {
            "changed": True,
            "outcome": outcome,
            "release": begin["to"],
            "version": begin["to_version"],
            "previous": begin["from"],
            "served": served,
            "served_release": entry["served_release"],
            "error": error,
            "plan": begin["plan"],
            "audit": json.loads(line),
            "durations": entry["durations"],
            "current": current_release(self.s.root) or "",
            # Seconds the release has served (its gate passed) when this returns: what follows the
            # gate (record, drain, retire) is not downtime. Absent when no gate passed in this process.
            # gate_passed_at: the same moment on the host's clock (seconds since the epoch), for a caller
            # that measures a downtime against another time taken on this host.
            **(
                {
                    "since_gate_s": round(self.clock() - self.gate_passed_at, 2),
                    "gate_passed_at": round(self.gate_passed_at, 3),
                }
                if self.gate_passed_at is not None and outcome == "success"
                else {}
            ),
        }


def truth(intended: str, served: str | None, begin: Mapping[str, Any], can_see: bool) -> str:
    """The outcome as the front door shows it; the transaction's intent only where it cannot see.

    success: the front door serves the new release. An undone transaction keeps its intended
    outcome (rolled_back for a deploy, failed for a manual rollback) only when the front door
    serves the release it started from; anything else is failed.
    """
    if not can_see:
        return intended
    if intended == "success":
        return "success" if served is not None and served == begin.get("to_version") else "failed"
    if served is not None and begin.get("from") and served == begin.get("from_version"):
        return intended
    return "failed"
