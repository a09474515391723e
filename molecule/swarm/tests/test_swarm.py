"""The Inventory stack on a three-node swarm, in order.

Converge formed the swarm (swarm-1 manager, swarm-2 and swarm-3 workers) and deployed v1. The
tests re-run molecule/swarm/deploy.yml with ansible-playbook as an operator would and assert what
the cluster runs and what the front door serves.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import testinfra
from pidock_helpers import http_json, molecule_inventory, run_ok

PROJECT = Path(__file__).resolve().parents[3]
SCENARIO = Path(__file__).resolve().parents[1]
NODES = ["swarm-1", "swarm-2", "swarm-3"]
MANAGER = "swarm-1"
HEALTH = "https://127.0.0.1/health"
SECRET = "swarm-s3cret-$pw-7f3a"
OUTPUTS: list[str] = []


def host(name: str) -> Any:
    return testinfra.get_host(f"docker://{name}")


def play(playbook: str, *extra: str, expect_rc: int = 0) -> str:
    env = dict(os.environ)
    env.setdefault("ANSIBLE_COLLECTIONS_PATH", f"{PROJECT}/collections")
    env.update(ANSIBLE_PIPELINING="true", ANSIBLE_FORCE_COLOR="false", ANSIBLE_NOCOLOR="true")
    cmd = ["ansible-playbook", "-i", molecule_inventory("swarm"), str(SCENARIO / playbook), *extra]
    start = time.monotonic()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900, check=False)
    out = done.stdout + done.stderr
    OUTPUTS.append(out)
    print(f"\n[swarm] {playbook} {' '.join(extra)}: rc={done.returncode} in {time.monotonic() - start:.1f} s")
    assert done.returncode == expect_rc, f"{playbook} {extra} rc={done.returncode}:\n{out[-6000:]}"
    return out


def served(name: str) -> str:
    status, body = http_json(host(name), HEALTH, insecure=True)
    assert status == 200, (name, status, body)
    return body["release"]


def services() -> dict[str, dict[str, Any]]:
    out = run_ok(host(MANAGER), "docker service ls --format '{{json .}}'")
    return {s["Name"]: s for s in (json.loads(line) for line in out.splitlines())}


def running_nodes(service: str) -> list[str]:
    out = run_ok(
        host(MANAGER),
        f"docker service ps {service} --filter desired-state=running --format '{{{{.Node}}}} {{{{.CurrentState}}}}'",
    )
    return sorted(line.split()[0] for line in out.splitlines() if " Running " in f" {line} ")


def update_state(service: str) -> str:
    fmt = "'{{if .UpdateStatus}}{{.UpdateStatus.State}}{{end}}'"
    return run_ok(host(MANAGER), f"docker service inspect {service} --format {fmt}").strip()


class Probe:
    """probe.py on the manager at 25 requests/s through the front while something happens."""

    def __init__(self, name: str) -> None:
        self.out = f"/root/probe-{name}.json"

    def __enter__(self) -> Probe:
        src = PROJECT / "molecule" / "compose_deploy" / "files" / "probe.py"
        subprocess.run(["docker", "cp", str(src), f"{MANAGER}:/root/probe.py"], check=True)
        subprocess.run(["docker", "exec", MANAGER, "rm", "-f", "/root/probe.stop", self.out], check=True)
        subprocess.run(
            [
                "docker",
                "exec",
                "-d",
                MANAGER,
                "python3",
                "/root/probe.py",
                "--rate",
                "25",
                "--max-seconds",
                "300",
                "--out",
                self.out,
            ],
            check=True,
        )
        time.sleep(2)
        return self

    def __exit__(self, *exc: object) -> None:
        subprocess.run(["docker", "exec", MANAGER, "touch", "/root/probe.stop"], check=True)

    def result(self) -> dict[str, Any]:
        for _ in range(30):
            done = subprocess.run(["docker", "exec", MANAGER, "cat", self.out], capture_output=True, text=True)
            if done.returncode == 0 and done.stdout.strip():
                return json.loads(done.stdout)
            time.sleep(1)
        raise AssertionError("the probe wrote no result")


def test_cluster_formed() -> None:
    out = run_ok(host(MANAGER), "docker node ls --format '{{json .}}'")
    nodes = {n["Hostname"]: n for n in (json.loads(line) for line in out.splitlines())}
    assert sorted(nodes) == NODES
    assert all(n["Status"] == "Ready" and n["Availability"] == "Active" for n in nodes.values()), nodes
    assert nodes[MANAGER]["ManagerStatus"] == "Leader"
    assert nodes["swarm-2"]["ManagerStatus"] == nodes["swarm-3"]["ManagerStatus"] == ""
    labels = run_ok(host(MANAGER), "docker node inspect swarm-1 --format '{{json .Spec.Labels}}'")
    assert json.loads(labels) == {"db": "true"}
    for name in NODES:
        info = json.loads(run_ok(host(name), "docker info --format '{{json .}}'"))
        assert info["LiveRestoreEnabled"] is False


def test_v1_deployed_across_the_nodes() -> None:
    svc = services()
    assert svc["inventory_app"]["Replicas"] == "3/3"
    assert svc["inventory_postgres"]["Replicas"] == "1/1"
    assert svc["inventory_nginx"]["Mode"] == "global"
    assert running_nodes("inventory_postgres") == [MANAGER]
    assert len(set(running_nodes("inventory_app"))) >= 2
    # The front is on every node and answers there (host-mode port), with the database behind it.
    for name in NODES:
        status, body = http_json(host(name), HEALTH, insecure=True)
        assert (status, body["release"], body["db"]) == (200, "v1", "ok"), (name, body)


def test_rolling_update_under_load_fails_no_request() -> None:
    with Probe("v2") as probe:
        out = play("deploy.yml", "-e", "compose_version=v2")
    result = probe.result()
    print(f"[swarm] probe during the v1 -> v2 rolling update: {result}")
    assert "inventory v2: deployed" in out
    assert result["requests"] >= 20 * result["seconds"] * 0.9
    assert result["failed"] == 0, result
    assert result["releases"] == ["v1", "v2"], result
    assert [served(n) for n in NODES] == ["v2"] * 3
    assert update_state("inventory_app") == "completed"


def test_redeploy_changes_nothing() -> None:
    out = play("deploy.yml", "-e", "compose_version=v2")
    assert "inventory v2: unchanged" in out
    recap = [line for line in out.splitlines() if line.startswith("swarm-")]
    assert recap and all("changed=0" in line for line in recap), recap


def test_broken_release_is_rolled_back_by_swarm() -> None:
    out = play("deploy.yml", "-e", "compose_version=v3", "-e", "swarm_test_fail=true", expect_rc=2)
    assert "inventory v3: rolled_back" in out
    assert update_state("inventory_app") == "rollback_completed"
    assert [served(n) for n in NODES] == ["v2"] * 3
    assert services()["inventory_app"]["Replicas"] == "3/3"


def test_secrets_never_in_a_file_or_output() -> None:
    for out in OUTPUTS:
        assert SECRET not in out
    for name in NODES:
        # Every place on the node's disk a deploy writes to: Docker's swarm state (the raft log is
        # encrypted), containers, volumes, configs, logs, home, temp. Image layers predate the
        # secret. Secrets are mounted into containers from memory (tmpfs), which is left out.
        found = host(name).run(
            "grep -rlF --exclude-dir=secrets --exclude-dir=pidock-images -e %s /etc /opt /root /var/tmp /tmp /var/log "
            "/var/lib/docker/swarm /var/lib/docker/containers /var/lib/docker/volumes",
            SECRET,
        )
        assert found.rc == 1, f"{name}: secret found in {found.stdout}"
    # And the services do get it: the app reaches the database with it.
    assert http_json(host(MANAGER), HEALTH, insecure=True)[1]["db"] == "ok"


def test_bad_inputs_are_refused_before_anything_changes() -> None:
    before = run_ok(host(MANAGER), "docker service ls -q | sort; docker secret ls -q | sort")
    cases = [
        (
            '{"swarm_stack_services": {"app": {"replicas": 3}, "postgres": {"placement": {"disk": "ssd"}}}}',
            "placement node.labels.disk == ssd matches no node",
        ),
        ('{"swarm_stack_front_mode": "replicated", "swarm_stack_front_replicas": 0}', "swarm_stack_front_replicas"),
        (
            '{"compose_services": {"app": {"image": "x", "ports": ["443:8000"]}}}',
            "published port 443/tcp is already published by",
        ),
    ]
    for extra, message in cases:
        out = play("deploy.yml", "-e", extra, expect_rc=2)
        assert message in out, out[-3000:]
    out = play("converge.yml", "-e", '{"docker_daemon_options": {"live-restore": true}}', expect_rc=2)
    assert "live-restore: true contradicts docker_swarm_node: true" in out
    assert run_ok(host(MANAGER), "docker service ls -q | sort; docker secret ls -q | sort") == before


def _wait(what: str, check: Any, limit: float) -> float:
    """Seconds until check() is true; fail after limit."""
    start = time.monotonic()
    while time.monotonic() - start < limit:
        if check():
            return time.monotonic() - start
        time.sleep(1)
    raise AssertionError(f"{what}: not within {limit} s")


def _node(name: str) -> dict[str, Any]:
    out = run_ok(host(MANAGER), "docker node ls --format '{{json .}}'")
    return next(n for n in (json.loads(line) for line in out.splitlines()) if n["Hostname"] == name)


def test_lost_worker_tasks_run_elsewhere_within_30_s() -> None:
    victim = next(n for n in running_nodes("inventory_app") if n != MANAGER)
    with Probe("lost") as probe:
        start = time.monotonic()
        subprocess.run(["docker", "stop", victim], check=True, capture_output=True)
        took = (
            time.monotonic()
            - start
            + _wait(
                "app back to 3 running tasks on the other nodes",
                lambda: len(running_nodes("inventory_app")) == 3 and victim not in running_nodes("inventory_app"),
                60,
            )
        )
        time.sleep(3)
    result = probe.result()
    errors_s = result["failed"] / 25
    print(f"[swarm] {victim} stopped: app tasks rescheduled in {took:.1f} s; probe {result}")
    assert took <= 30
    assert errors_s <= 1.0, result


def test_worker_comes_back_and_rejoins() -> None:
    victim = next(n for n in NODES if n != MANAGER and _node(n)["Status"] != "Ready")
    subprocess.run(["docker", "start", victim], check=True, capture_output=True)
    took = _wait(f"{victim} Ready again", lambda: _node(victim)["Status"] == "Ready", 120)
    print(f"[swarm] {victim} rejoined {took:.1f} s after its start")
    assert _node(victim)["Availability"] == "Active"


def test_drain_moves_the_tasks_and_undrain() -> None:
    play("cluster.yml", "-e", '{"swarm_test_drain": ["swarm-2"]}')
    assert _node("swarm-2")["Availability"] == "Drain"
    took = _wait(
        "swarm-2 empty and app 3/3",
        lambda: (
            "swarm-2" not in running_nodes("inventory_app") + running_nodes("inventory_nginx")
            and len(running_nodes("inventory_app")) == 3
        ),
        60,
    )
    print(f"[swarm] swarm-2 drained in {took:.1f} s")
    assert served(MANAGER) == "v2"
    play("cluster.yml")
    assert _node("swarm-2")["Availability"] == "Active"
