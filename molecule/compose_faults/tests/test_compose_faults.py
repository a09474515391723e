"""pidock.stack.compose: the controller dies mid-switch, the host finishes or undoes, the next run converges.

Converge deployed v1. Each test starts a probe (25 requests/s through nginx), asks the host
transaction to pause at a named step (<root>/.txn-pause), starts deploy.yml / rollback.yml in a
session of its own, waits until the host says it is paused there (<root>/.txn-paused), and
SIGKILLs the whole ansible-playbook process group, as a dropped SSH link does (the image-load
case instead waits until a host process has the image tarball open). Where a test also
kills the host-side process (the transaction died, as in a reboot), the next run must finish or
undo it from the journal; where it does not, the host process goes on by itself and the next run
waits for it. Then the very next plain run must converge, with no manual step.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from pidock_helpers import http_json, kill_controller, molecule_inventory, run_ok, wait_inside

SCENARIO = Path(__file__).resolve().parent.parent
HOST = "faults-host"
ROOT = "/opt/pidock/stacks/faults"
HEALTH = "https://127.0.0.1/health"
BROKEN = ("-e", '{"__app_extra_env": {"FAIL_HEALTH": "1"}}')
TIMES: dict[str, float] = {}
RATES: dict[str, float] = {}


def _cmd(playbook: str, *extra: str) -> list[str]:
    return ["ansible-playbook", "-i", molecule_inventory("compose_faults"), str(SCENARIO / playbook), *extra]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    project = str(SCENARIO.parent.parent)
    env.setdefault("ANSIBLE_COLLECTIONS_PATH", f"{project}/collections")
    env.setdefault("ANSIBLE_ROLES_PATH", f"{project}/roles")
    env["ANSIBLE_NOCOLOR"] = "true"
    return env


def play(playbook: str, *extra: str, expect_rc: int = 0) -> str:
    start = time.monotonic()
    done = subprocess.run(_cmd(playbook, *extra), env=_env(), capture_output=True, text=True, timeout=600)
    out = done.stdout + done.stderr
    print(f"  {playbook} {' '.join(extra)}: rc {done.returncode} in {time.monotonic() - start:.1f}s")
    assert done.returncode == expect_rc, f"{playbook} {extra} rc={done.returncode}:\n{out[-5000:]}"
    return out


def sh(command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", "exec", HOST, "sh", "-c", command], capture_output=True, text=True, check=check)


class Probe:
    """probe.py inside the host, 25 requests/s through nginx, for the whole of a fault and the next run."""

    def __init__(self, name: str) -> None:
        self.out = f"/root/probe-{name}.json"

    def __enter__(self) -> Probe:
        sh(f"rm -f /root/probe.stop {self.out}")
        subprocess.run(
            [
                "docker",
                "exec",
                "-d",
                HOST,
                "python3",
                "/root/probe.py",
                "--rate",
                "25",
                "--max-seconds",
                "400",
                # Up to 16 requests in flight: a loaded machine's slower answers (the other lane of
                # the suite) do not lower the rate sent below the schedule.
                "--workers",
                "16",
                "--out",
                self.out,
            ],
            check=True,
        )
        time.sleep(1)
        return self

    def __exit__(self, *exc: object) -> None:
        sh("touch /root/probe.stop")

    def result(self) -> dict[str, Any]:
        for _ in range(30):
            done = sh(f"cat {self.out}", check=False)
            if done.returncode == 0 and done.stdout.strip():
                return json.loads(done.stdout)
            time.sleep(0.5)
        raise AssertionError("the probe wrote no result")


def killed_at(step: str, playbook: str, *extra: str, kill_host_process: bool) -> dict[str, Any]:
    """Run playbook until the host transaction reaches ``step``; SIGKILL the controller (and the host process)."""
    sh(f"rm -f {ROOT}/.txn-paused && echo {step} > {ROOT}/.txn-pause")
    proc = subprocess.Popen(
        _cmd(playbook, *extra), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    seen = wait_inside(HOST, f"cat {ROOT}/.txn-paused 2>/dev/null", beside=proc)
    paused: dict[str, Any] = json.loads(seen) if seen.strip() else {}
    assert paused.get("step") == step, f"the transaction never paused at {step} (rc {proc.poll()})"
    kill_controller(proc)
    proc.wait(30)
    if kill_host_process:
        sh(f"kill -9 {paused['pid']}")
        time.sleep(0.5)
        assert sh(f"kill -0 {paused['pid']}", check=False).returncode != 0
    sh(f"rm -f {ROOT}/.txn-pause")
    return paused


def state(host) -> dict[str, Any]:
    status, body = http_json(host, HEALTH, insecure=True)
    current = run_ok(host, f"readlink {ROOT}/current").strip().rsplit("/", 1)[1]
    history = json.loads(run_ok(host, f"cat {ROOT}/history.json"))
    last = json.loads(run_ok(host, f"tail -n 1 {ROOT}/audit.log"))
    version = json.loads(run_ok(host, f"cat {ROOT}/releases/{current}/release.json"))["version"]
    return {
        "status": status,
        "served": body.get("release"),
        "current": current,
        "current_version": version,
        "history": history[-1]["release"],
        "audit": last,
    }


def assert_converged(host, version: str) -> None:
    """nginx, current, history.json and the last audit line name the same release; no lock, no open journal."""
    now = state(host)
    assert now["status"] == 200 and now["served"] == version, now
    assert now["current_version"] == version, now
    assert now["history"] == now["current"], now
    assert now["audit"]["served"] == version and now["audit"]["served_release"] == now["current"], now
    run_ok(host, f"flock -n {ROOT}/deploy.lock true")
    journal = [json.loads(line) for line in run_ok(host, f"cat {ROOT}/journal.jsonl").splitlines()]
    last_begin = [r for r in journal if r["event"] == "begin"][-1]["txn"]
    assert any(r["event"] == "end" and r["txn"] == last_begin for r in journal), "the last transaction ended"


def assert_no_failed_requests(probe: Probe, name: str) -> None:
    result = probe.result()
    print(f"  probe {name}: {result}")
    assert result["failed"] == 0, result
    # Asked for 25/s; the bar is 20/s over the whole window (fault, recovery, next run).
    assert result["requests"] >= 20 * result["seconds"], result
    RATES[name] = round(result["requests"] / max(result["seconds"], 0.1), 1)


def deploy_args(version: str, *extra: str) -> tuple[str, ...]:
    return ("-e", f"compose_version={version}", *extra)


def test_v1_serves(host):
    assert_converged(host, "v1")


# (test id, playbook, version deployed when killed, pause step, kill the host process too,
#  extra args of the killed run, version the next plain deploy asks for, version served at the end)
CASES = [
    ("start_beside", "deploy.yml", "v2", "start_beside", True, (), "v2"),
    ("after_reload_live", "deploy.yml", "v3", "gate", False, (), "v3"),
    ("gate_dead", "deploy.yml", "v4", "gate", True, (), "v4"),
    ("retire_dead", "deploy.yml", "v5", "retire", True, (), "v5"),
    ("failing_rollback_dead", "deploy.yml", "v6", "undo_start", True, BROKEN, "v5"),
]


@pytest.mark.parametrize(
    ("name", "playbook", "version", "step", "dead", "extra", "next_version"), CASES, ids=[c[0] for c in CASES]
)
def test_deploy_killed_then_next_run_converges(host, name, playbook, version, step, dead, extra, next_version):
    start = time.monotonic()
    with Probe(name) as probe:
        killed_at(step, playbook, *deploy_args(version, *extra), kill_host_process=dead)
        out = play("deploy.yml", *deploy_args(next_version))
    assert_no_failed_requests(probe, name)
    assert_converged(host, next_version)
    if dead:
        assert "recovered" in out or "after_step" in out, out[-3000:]
    TIMES[name] = round(time.monotonic() - start, 1)


def test_failing_release_is_recorded_failed(host):
    v6 = run_ok(host, f"ls -d {ROOT}/releases/v6-*").strip().rsplit("/", 1)[1]
    meta = json.loads(run_ok(host, f"cat {ROOT}/releases/{v6}/release.json"))
    assert meta["outcome"] == "failed"
    audit = [json.loads(line) for line in run_ok(host, f"cat {ROOT}/audit.log").splitlines()]
    undone = [a for a in audit if a["release"] == v6]
    assert undone and undone[-1]["outcome"] == "rolled_back" and undone[-1]["served"] == "v5", undone


MANUAL = [
    ("rollback_gate_dead", "gate", True, "v4"),
    ("rollback_retire_live", "retire", False, "v5"),
]


@pytest.mark.parametrize(("name", "step", "dead", "target"), MANUAL, ids=[m[0] for m in MANUAL])
def test_manual_rollback_killed_then_next_rollback_converges(host, name, step, dead, target):
    start = time.monotonic()
    target_id = run_ok(host, f"ls -d {ROOT}/releases/{target}-*").strip().rsplit("/", 1)[1]
    with Probe(name) as probe:
        killed_at(step, "rollback.yml", "-e", f"compose_rollback_to={target_id}", kill_host_process=dead)
        play("rollback.yml", "-e", f"compose_rollback_to={target_id}")
    assert_no_failed_requests(probe, name)
    assert_converged(host, target)
    assert state(host)["audit"]["action"] == "rollback"
    TIMES[name] = round(time.monotonic() - start, 1)


def test_failing_manual_rollback_stays_with_an_audit_line(host):
    before = state(host)
    v6 = run_ok(host, f"ls -d {ROOT}/releases/v6-*").strip().rsplit("/", 1)[1]
    with Probe("rollback_to_broken") as probe:
        play("rollback.yml", "-e", f"compose_rollback_to={v6}", expect_rc=2)
    assert_no_failed_requests(probe, "rollback_to_broken")
    after = state(host)
    assert after["served"] == before["served"] and after["current"] == before["current"]
    assert (after["audit"]["action"], after["audit"]["release"], after["audit"]["outcome"]) == (
        "rollback",
        v6,
        "failed",
    )


def killed_during_image_load(tar: str, *extra: str) -> None:
    """Run deploy.yml until a host process has the image tarball open (the load streams it to the
    engine); SIGKILL the controller's process group and that host process, so the engine drops
    the half-read image."""
    # A watcher inside the host scans /proc without pause from before the run starts: a `docker exec`
    # per look (0.2-1 s each on a loaded machine) could miss a load that took under a second.
    found = "/root/image-loader.pid"
    sh(f"rm -f {found}")
    watch = (
        "echo $$ > /root/image-watcher.pid; "
        f"while :; do for p in /proc/[0-9]*; do ls -l $p/fd 2>/dev/null | grep -qF {tar}"
        f" && {{ echo ${{p#/proc/}} > {found}.tmp; mv {found}.tmp {found}; exit 0; }}; done; done"
    )
    subprocess.run(["docker", "exec", "-d", HOST, "timeout", "300", "sh", "-c", watch], check=True)
    proc = subprocess.Popen(
        _cmd("deploy.yml", *extra),
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    loader = wait_inside(HOST, f"cat {found} 2>/dev/null", step=0.1, beside=proc).strip()
    loader = loader or sh(f"cat {found} 2>/dev/null", check=False).stdout.strip()
    sh("kill $(cat /root/image-watcher.pid) 2>/dev/null; rm -f /root/image-watcher.pid", check=False)
    assert loader, f"no host process ever opened {tar} (rc {proc.poll()})"
    kill_controller(proc)
    proc.wait(30)
    sh(f"kill -9 {loader}", check=False)


def test_deploy_killed_during_image_load_then_next_run_converges(host):
    """The app's image is not on the host (untagged; the running containers keep theirs), so the
    deploy of v7 loads it from its tarball; the controller and the loading process die mid-load.
    Nothing had switched: v5 serves throughout, and the next plain run loads the image and
    converges on v7."""
    start = time.monotonic()
    sh("docker image rm --force local/inventory-app:latest")
    with Probe("image_load") as probe:
        killed_during_image_load("/opt/pidock-images/inventory-app.tar", *deploy_args("v7"))
        assert state(host)["served"] == "v5"
        play("deploy.yml", *deploy_args("v7"))
    assert_no_failed_requests(probe, "image_load")
    assert_converged(host, "v7")
    assert sh("docker image inspect local/inventory-app:latest", check=False).returncode == 0
    TIMES["image_load"] = round(time.monotonic() - start, 1)


def test_times():
    print("fault cycles (s):", TIMES)
    print("probe rates (requests/s):", RATES)
