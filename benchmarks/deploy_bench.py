#!/usr/bin/env python3
"""Side-by-side benchmark of playbooks/deploy.yml: a baseline commit against this checkout.

One run, one machine, the same host kind and the same data for both sides: a git worktree of the
baseline commit (default f5e7451) and the current checkout each deploy the demo stack
(inventories/demo of their own tree) to a host container of their own, built from the same image
(local/debian-docker:trixie, scripts/testhost.py). The current side is a worktree of HEAD (commit
what you want measured). The runs of the two sides alternate, or with --parallel run at the same
time, so a busy machine weighs on both alike. Measured, as medians of --reps runs each:

  no-op      playbooks/deploy.yml on a converged host (changed=0): wall time, tasks run, and the
             seconds per role from ansible.posix.profile_roles
  version    a new compose_version: wall time, and gate_s from the audit.log line it wrote
  failing    a release whose app never becomes healthy (its database host does not resolve),
             with compose_health_timeout --health-timeout: wall time, and the seconds from the
             gate giving up (the first failed task that is not ignored, as printed) to the end
             of the run; afterwards the front door must still serve the last good release

    PYTHONPATH=collections .venv/bin/python benchmarks/deploy_bench.py [--baseline f5e7451]
        [--reps 3] [--health-timeout 30] [--parallel] [--json out.json] [--keep]

It prints one table with the ratio current/baseline per measure. Hosts (containers and their
/var/lib/docker volumes) and the worktrees are removed at the end, pass or fail (--keep leaves them
for a look); the playbook logs stay in .cache/deploy-bench/<UTC time>/. Traffic stays inside the test hosts.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
IMAGE = "local/debian-docker:trixie"
STACK_ROOT = "/opt/pidock/stacks/inventory"
PASSWORD = "benchPassw0rdSameForBoth"
RECAP = re.compile(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)\s+skipped=(\d+)")
ROLE_TIME = re.compile(r"^(\S+)\s+-+\s+(\d+(?:\.\d+)?)s\s*$")
FAILED_TASK = re.compile(r"^(fatal|failed): \[")


@dataclass
class Run:
    wall: float
    rc: int
    ok: int = 0
    changed: int = 0
    failed: int = 0
    skipped: int = 0
    roles: dict[str, float] = field(default_factory=dict)
    giveup_to_end: float | None = None
    giveup_task: str = ""
    log: str = ""

    @property
    def tasks(self) -> int:
        # The recap's ok counts changed tasks too.
        return self.ok + self.failed + self.skipped


@dataclass
class Side:
    label: str
    tree: Path
    host: str
    inventory: Path
    good_version: str = "demo-1"
    runs: dict[str, list[Run]] = field(default_factory=dict)
    gate_s: list[float] = field(default_factory=list)


def sh(*argv: str, check: bool = True, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(list(argv), check=False, text=True, capture_output=True, cwd=cwd)
    if check and proc.returncode != 0:
        detail = f"{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
        raise RuntimeError(f"{' '.join(argv)[:200]} failed ({proc.returncode}):\n{detail}")
    return proc


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def parse_output(lines: list[tuple[float, str]], end: float) -> dict[str, Any]:
    """Recap counts, seconds per role (profile_roles) and when the first real failure was printed."""
    out: dict[str, Any] = {"roles": {}, "giveup": None, "giveup_task": ""}
    task = ""
    for i, (stamp, line) in enumerate(lines):
        if line.startswith("TASK ["):
            task = line[6:].split("]", 1)[0]
        m = RECAP.match(line)
        if m:
            out.update(ok=int(m[2]), changed=int(m[3]), failed=int(m[5]), skipped=int(m[6]))
        m = ROLE_TIME.match(line.strip())
        if m:
            out["roles"][m[1]] = float(m[2])
        if out["giveup"] is None and FAILED_TASK.match(line):
            # An ignored failure prints "...ignoring" right after its result.
            following = " ".join(text for _stamp, text in lines[i + 1 : i + 40])
            if "...ignoring" not in following.split("TASK [", maxsplit=1)[0]:
                out["giveup"] = end - stamp
                out["giveup_task"] = task
    return out


def playbook(side: Side, extra: dict[str, Any], workdir: Path, name: str, logdir: Path) -> Run:
    extra_file = workdir / f"{side.label}-{name}.yml"
    extra_file.write_text(yaml.safe_dump(extra, sort_keys=False), encoding="utf-8")
    env = dict(os.environ)
    env.update(
        ANSIBLE_CONFIG=str(side.tree / "ansible.cfg"),
        ANSIBLE_CALLBACKS_ENABLED="ansible.posix.profile_roles",
        ANSIBLE_FORCE_COLOR="0",
        ANSIBLE_NOCOLOR="1",
        PATH=f"{ROOT / '.venv' / 'bin'}:{env.get('PATH', '')}",
    )
    argv = ["ansible-playbook", "playbooks/deploy.yml", "-i", str(side.inventory), "-e", f"@{extra_file}"]
    lines: list[tuple[float, str]] = []
    start = time.monotonic()
    proc = subprocess.Popen(argv, cwd=side.tree, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append((time.monotonic(), line.rstrip("\n")))
    rc = proc.wait()
    end = time.monotonic()
    text = "\n".join(line for _stamp, line in lines)
    (logdir / f"{side.label}-{name}.log").write_text(text, encoding="utf-8")
    parsed = parse_output(lines, end)
    run = Run(
        wall=end - start,
        rc=rc,
        ok=parsed.get("ok", 0),
        changed=parsed.get("changed", 0),
        failed=parsed.get("failed", 0),
        skipped=parsed.get("skipped", 0),
        roles=parsed["roles"],
        giveup_to_end=parsed["giveup"],
        giveup_task=parsed["giveup_task"],
        log=str(logdir / f"{side.label}-{name}.log"),
    )
    log(f"{side.label:8} {name:12} {run.wall:6.1f}s rc={rc} ok={run.ok} changed={run.changed} failed={run.failed}")
    if run.giveup_to_end is not None:
        log(f"{side.label:8} {name:12} first failure {run.giveup_to_end:.1f}s before the end: {run.giveup_task}")
    return run


def served_release(host: str) -> str:
    script = (
        "import json, ssl, urllib.request; c = ssl._create_unverified_context(); "
        "print(json.load(urllib.request.urlopen('https://127.0.0.1/health', context=c, timeout=10)).get('release', ''))"
    )
    return sh("docker", "exec", host, "python3", "-c", script).stdout.strip()


def last_audit(host: str) -> dict[str, Any]:
    out = sh("docker", "exec", host, "tail", "-n", "1", f"{STACK_ROOT}/audit.log").stdout.strip()
    return json.loads(out) if out else {}


def gate_seconds(entry: dict[str, Any]) -> float | None:
    durations = entry.get("durations") or {}
    value = durations.get("gate_s", entry.get("gate_s"))
    return float(value) if value is not None else None


def demo_vars(tree: Path) -> dict[str, Any]:
    path = tree / "inventories" / "demo" / "group_vars" / "pi" / "main.yml"
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def failing_vars(tree: Path, version: str, health_timeout: int) -> dict[str, Any]:
    services = copy.deepcopy(demo_vars(tree)["compose_services"])
    services["app"]["environment"]["POSTGRES_HOST"] = "no-such-database-host"
    return {
        "compose_secrets": {"POSTGRES_PASSWORD": PASSWORD},
        "compose_version": version,
        "compose_health_timeout": health_timeout,
        "compose_services": services,
    }


def make_side(label: str, tree: Path, workdir: Path) -> Side:
    host = f"pidock-bench-{label}"
    inventory = workdir / f"inventory-{label}"
    inventory.mkdir()
    (inventory / "group_vars").symlink_to(tree / "inventories" / "demo" / "group_vars")
    hosts = {
        "pi": {
            "hosts": {
                f"bench-{label}": {
                    "ansible_connection": "community.docker.docker",
                    "ansible_host": host,
                    "ansible_user": "root",
                    "ansible_python_interpreter": "/usr/bin/python3",
                }
            }
        }
    }
    (inventory / "hosts.yml").write_text(yaml.safe_dump(hosts), encoding="utf-8")
    return Side(label=label, tree=tree, host=host, inventory=inventory)


def median(values: list[float]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def table(sides: list[Side]) -> tuple[str, list[dict[str, Any]]]:
    base, head = sides

    def column(side: Side) -> dict[str, float | None]:
        noop = side.runs.get("noop", [])
        version = side.runs.get("version", [])
        failing = side.runs.get("failing", [])
        roles: dict[str, float | None] = {}
        for role in ("docker", "tls", "compose"):
            # profile_roles names a role as it was included: short or fully qualified.
            roles[role] = median([r.roles.get(role, r.roles.get(f"pidock.stack.{role}")) for r in noop])
        return {
            "no-op deploy.yml wall (s)": median([r.wall for r in noop]),
            "no-op tasks run": median([float(r.tasks) for r in noop]),
            "no-op docker role (s)": roles["docker"],
            "no-op tls role (s)": roles["tls"],
            "no-op compose role (s)": roles["compose"],
            "version change wall (s)": median([r.wall for r in version]),
            "gate_s, audit.log (s)": median(side.gate_s),
            "failing release wall (s)": median([r.wall for r in failing]),
            "gate give-up -> run end (s)": median([r.giveup_to_end for r in failing]),
        }

    b, h = column(base), column(head)
    rows = []
    width = max(len(k) for k in b)
    lines = [f"{'measure (median of runs)':{width}}  {'baseline':>9}  {'current':>9}  {'ratio':>6}", "-" * (width + 32)]
    for key in b:
        bv, hv = b[key], h[key]
        ratio = (hv / bv) if (bv and hv is not None) else None

        def fmt(v: float | None) -> str:
            return f"{v:9.1f}" if v is not None else f"{'-':>9}"

        lines.append(f"{key:{width}}  {fmt(bv)}  {fmt(hv)}  {(f'{ratio:6.2f}' if ratio is not None else '     -')}")
        rows.append({"measure": key, "baseline": bv, "current": hv, "ratio": ratio})
    return "\n".join(lines), rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", default="f5e7451", help="commit to compare against (default f5e7451)")
    parser.add_argument("--reps", type=int, default=3, help="runs per measure and side (default 3)")
    parser.add_argument("--health-timeout", type=int, default=30, help="compose_health_timeout of the failing release")
    parser.add_argument("--skip", action="append", default=[], choices=["noop", "version", "failing"])
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    parser.add_argument("--keep", action="store_true", help="leave hosts and worktrees in place")
    parser.add_argument(
        "--parallel", action="store_true", help="run each measure on both sides at the same time (same load on both)"
    )
    args = parser.parse_args()
    if args.reps < 1:
        parser.error("--reps must be at least 1")

    baseline = sh("git", "rev-parse", "--verify", f"{args.baseline}^{{commit}}", cwd=ROOT).stdout.strip()
    current = sh("git", "rev-parse", "--short", "HEAD", cwd=ROOT).stdout.strip()
    dirty = bool(sh("git", "status", "--porcelain", "--untracked-files=no", cwd=ROOT).stdout.strip())
    workdir = Path(tempfile.mkdtemp(prefix="pidock-deploy-bench-"))
    logdir = ROOT / ".cache" / "deploy-bench" / time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    logdir.mkdir(parents=True, exist_ok=True)
    base_tree = workdir / "baseline"
    head_tree = workdir / "current"
    sides: list[Side] = []
    finished = False

    def on_signal(signum: int, _frame: Any) -> None:
        raise SystemExit(f"interrupted by signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    try:
        # The current side runs a worktree of HEAD too, so edits made while the benchmark runs do not leak in.
        log(
            f"baseline {baseline[:7]} vs current HEAD {current}{' (uncommitted changes NOT included)' if dirty else ''}"
        )
        sh("git", "worktree", "add", "--detach", str(base_tree), baseline, cwd=ROOT)
        sh("git", "worktree", "add", "--detach", str(head_tree), "HEAD", cwd=ROOT)
        sides = [make_side("baseline", base_tree, workdir), make_side("current", head_tree, workdir)]

        def create(side: Side) -> None:
            sh(sys.executable, str(ROOT / "scripts" / "testhost.py"), "create", side.host, IMAGE)

        threads = [threading.Thread(target=create, args=(s,)) for s in sides]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for side in sides:
            if sh("docker", "container", "inspect", side.host, check=False).returncode != 0:
                raise RuntimeError(f"host {side.host} was not created")

        common = {"compose_secrets": {"POSTGRES_PASSWORD": PASSWORD}}

        def first(side: Side) -> None:
            run = playbook(side, {**common, "compose_version": "demo-1"}, workdir, "first", logdir)
            if run.rc != 0:
                raise RuntimeError(f"{side.label}: the first deploy failed (log: {run.log})")

        def noop(side: Side, rep: int) -> None:
            run = playbook(side, {**common, "compose_version": side.good_version}, workdir, f"noop-{rep}", logdir)
            if run.rc != 0 or run.changed != 0:
                log(f"{side.label}: no-op {rep} not clean (rc={run.rc}, changed={run.changed}); {run.log}")
            side.runs.setdefault("noop", []).append(run)

        def version(side: Side, rep: int) -> None:
            want = f"bench-{rep + 2}"
            run = playbook(side, {**common, "compose_version": want}, workdir, f"version-{rep}", logdir)
            side.runs.setdefault("version", []).append(run)
            served = served_release(side.host)
            if run.rc != 0 or served != want:
                raise RuntimeError(f"{side.label}: version {want} failed (serves {served!r}); {run.log}")
            side.good_version = want
            gate = gate_seconds(last_audit(side.host))
            if gate is not None:
                side.gate_s.append(gate)

        def failing(side: Side, rep: int) -> None:
            extra = failing_vars(side.tree, f"broken-{rep}", args.health_timeout)
            run = playbook(side, extra, workdir, f"failing-{rep}", logdir)
            side.runs.setdefault("failing", []).append(run)
            served = served_release(side.host)
            if run.rc == 0 or served != side.good_version:
                raise RuntimeError(
                    f"{side.label}: the failing release {'passed' if run.rc == 0 else 'failed'}, front door "
                    f"serves {served!r}, expected {side.good_version!r}; log {run.log}"
                )

        def step(action: Any, *extra: Any, rep: int = 0) -> None:
            """One measure on both sides: at the same time (--parallel) or one after the other, alternating."""
            order = sides if rep % 2 == 0 else list(reversed(sides))
            if not args.parallel:
                for side in order:
                    action(side, *extra)
                return
            errors: list[BaseException] = []

            def guarded(side: Side) -> None:
                try:
                    action(side, *extra)
                except BaseException as exc:  # re-raised below, once both sides ended
                    errors.append(exc)

            threads = [threading.Thread(target=guarded, args=(side,)) for side in order]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            if errors:
                raise errors[0]

        step(first)
        for name, action in (("noop", noop), ("version", version), ("failing", failing)):
            if name in args.skip:
                continue
            for rep in range(args.reps):
                step(action, rep, rep=rep)

        finished = True
        return 0
    except (Exception, SystemExit) as exc:
        log(f"FAILED: {exc}")
        return 1
    finally:
        # The table of what was measured, also when a later measure failed.
        if len(sides) == 2 and any(side.runs for side in sides):
            text, rows = table(sides)
            print()
            print(
                f"deploy.yml of the demo stack, baseline {baseline[:7]} vs current {current}, medians of {args.reps}"
                f"{', both sides at once' if args.parallel else ', sides in turn'}"
                f" (failing release: compose_health_timeout {args.health_timeout})"
                f"{'' if finished else ' -- INCOMPLETE, the run failed'}"
            )
            print(text)
            if args.json:
                numbers = {"baseline": baseline, "current": current, "reps": args.reps, "rows": rows}
                args.json.write_text(json.dumps(numbers, indent=2), encoding="utf-8")
        if args.keep:
            log(f"kept: hosts {', '.join(s.host for s in sides)}, worktrees and inventories in {workdir}")
        else:
            for host in ("pidock-bench-baseline", "pidock-bench-current"):
                sh(sys.executable, str(ROOT / "scripts" / "testhost.py"), "remove", host, check=False)
            for tree in (base_tree, head_tree):
                sh("git", "worktree", "remove", "--force", str(tree), check=False, cwd=ROOT)
            sh("git", "worktree", "prune", check=False, cwd=ROOT)
            shutil.rmtree(workdir, ignore_errors=True)
            log("hosts and worktrees removed")
        log(f"playbook logs: {logdir}")


if __name__ == "__main__":
    sys.exit(main())
