#!/usr/bin/env python3
"""CPU that the test stack's app spends on the probes and on its own health checks: an older
commit's inventory-app image against this checkout's, in one run.

Usage: .venv/bin/python benchmarks/health_cost.py [--baseline REV] [--requests 600] [--checks 40]

Builds images/inventory-app at REV (default: the last commit before /health kept its database
connection) and from the work tree, each as local/inventory-app:bench-<label>. For each image it
starts PostgreSQL and the app on a private network, then
  - sends --requests GET /health one after another (the probes' request, without TLS), and
  - runs the image's own HEALTHCHECK command --checks times with `docker exec`,
and reads the CPU the app's and PostgreSQL's containers used from their cgroups (cgroup v1
cpuacct or v2 cpu.stat), so the client and whatever else runs on the machine do not count.
Prints CPU per request and per check for both images and the ratio head/baseline. Removes its
containers, network and images. Needs Docker and local/postgres:17-pgvector, local/debian-slim:trixie
(scripts/build-sample-images.sh).
"""

from __future__ import annotations

import argparse
import http.client
import json
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONTEXT = "images/inventory-app"
# The commit before "inventory-app: /health keeps one autocommit connection per worker thread".
DEFAULT_BASELINE = "df5a981"
NET = "pidock-bench-health"


def docker(*args: str, check: bool = True) -> str:
    done = subprocess.run(["docker", *args], capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise SystemExit(f"docker {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout.strip()


def build(label: str, rev: str | None) -> str:
    tag = f"local/inventory-app:bench-{label}"
    with tempfile.TemporaryDirectory() as tmp:
        if rev is None:
            context = str(ROOT / CONTEXT)
        else:
            archive = subprocess.run(
                ["git", "-C", str(ROOT), "archive", rev, CONTEXT], capture_output=True, check=True
            ).stdout
            subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
            context = str(Path(tmp) / CONTEXT)
        docker("build", "-q", "-t", tag, context)
    return tag


def cpu_ns(container: str) -> int:
    """The container's CPU time so far (nanoseconds), from its cgroup."""
    full = docker("inspect", "-f", "{{.Id}}", container)
    for path in (
        Path(f"/sys/fs/cgroup/cpuacct/docker/{full}/cpuacct.usage"),
        Path(f"/sys/fs/cgroup/cpu,cpuacct/docker/{full}/cpuacct.usage"),
        Path(f"/sys/fs/cgroup/system.slice/docker-{full}.scope/cpuacct.usage"),
    ):
        if path.exists():
            return int(path.read_text())
    for path in (
        Path(f"/sys/fs/cgroup/system.slice/docker-{full}.scope/cpu.stat"),
        Path(f"/sys/fs/cgroup/docker/{full}/cpu.stat"),
    ):
        if path.exists():
            fields = dict(line.split() for line in path.read_text().splitlines())
            return int(fields["usage_usec"]) * 1000
    raise SystemExit(f"no cgroup CPU counter found for {container}")


def wait_healthy(container: str, limit: float = 60) -> None:
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if docker("inspect", "-f", "{{.State.Health.Status}}", container, check=False) == "healthy":
            return
        time.sleep(0.5)
    raise SystemExit(f"{container} did not become healthy: {docker('logs', '--tail', '20', container, check=False)}")


def get_health(port: int) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/health")
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def wait_answers(port: int, limit: float = 60) -> None:
    end = time.monotonic() + limit
    while time.monotonic() < end:
        try:
            if get_health(port) == 200:
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"the app on port {port} did not answer 200 within {limit} s")


def measure(label: str, tag: str, requests: int, checks: int) -> dict[str, float]:
    pg, app = f"pidock-bench-pg-{label}", f"pidock-bench-app-{label}"
    try:
        docker("run", "-d", "--name", pg, "--network", NET, "--network-alias", "postgres",
               "-e", "POSTGRES_USER=inventory", "-e", "POSTGRES_DB=inventory_db", "-e", "POSTGRES_PASSWORD=bench",
               "--health-cmd", "pg_isready -q -h 127.0.0.1 -U inventory -d inventory_db",
               "--health-interval", "1s", "local/postgres:17-pgvector")
        wait_healthy(pg)
        # No health check of its own while measuring: only the exec'd checks below count.
        docker("run", "-d", "--name", app, "--network", NET, "-p", "127.0.0.1::8000", "--no-healthcheck",
               "-e", f"POSTGRES_HOST={pg}", "-e", "POSTGRES_PASSWORD=bench", tag)
        port = int(docker("port", app, "8000/tcp").rsplit(":", 1)[1])
        wait_answers(port)
        check_cmd = json.loads(docker("image", "inspect", "-f", "{{json .Config.Healthcheck.Test}}", tag))
        argv = check_cmd[1:] if check_cmd[0] == "CMD" else ["sh", "-c", check_cmd[1]]
        for _warm in range(20):  # warm-up: kept connections opened, pages in memory
            get_health(port)

        before = cpu_ns(app) + cpu_ns(pg)
        for _request in range(requests):
            # A new connection per request, as the probes open (they go through nginx; nginx is not measured).
            status = get_health(port)
            if status != 200:
                raise SystemExit(f"{label}: /health answered {status}")
        per_request = (cpu_ns(app) + cpu_ns(pg) - before) / requests / 1e6

        before = cpu_ns(app) + cpu_ns(pg)
        for _check in range(checks):
            done = subprocess.run(["docker", "exec", app, *argv], capture_output=True, check=False)
            if done.returncode != 0:
                raise SystemExit(f"{label}: the health check failed: {done.stderr!r}")
        per_check = (cpu_ns(app) + cpu_ns(pg) - before) / checks / 1e6
        return {"request_ms": per_request, "check_ms": per_check}
    finally:
        docker("rm", "-f", "-v", app, pg, check=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--baseline", default=DEFAULT_BASELINE)
    parser.add_argument("--requests", type=int, default=600)
    parser.add_argument("--checks", type=int, default=40)
    args = parser.parse_args()
    docker("network", "create", NET, check=False)
    tags = []
    try:
        tags = [build("base", args.baseline), build("head", None)]
        base = measure("base", tags[0], args.requests, args.checks)
        head = measure("head", tags[1], args.requests, args.checks)
    finally:
        if tags:
            docker("rmi", *tags, check=False)
        docker("network", "rm", NET, check=False)
    print(f"CPU of the app's and PostgreSQL's containers (baseline {args.baseline} vs the work tree)")
    print(f"{'':32}{'baseline':>10}{'head':>10}{'ratio':>8}")
    for key, name in (("request_ms", "per GET /health (ms)"), ("check_ms", "per health check (ms)")):
        print(f"{name:32}{base[key]:10.2f}{head[key]:10.2f}{head[key] / base[key]:8.2f}x")


if __name__ == "__main__":
    main()
