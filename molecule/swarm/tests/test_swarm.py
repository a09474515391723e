"""The Inventory stack on a three-node swarm, in order.

Converge formed the swarm (swarm-1 manager, swarm-2 and swarm-3 workers) and deployed v1. The
tests re-run molecule/swarm/deploy.yml with ansible-playbook as an operator would and assert what
the cluster runs and what the front door serves.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import testinfra
import yaml
from pidock_helpers import http_json, kill_controller, molecule_inventory, run_ok, wait_inside

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


def _wait(what: str, check: Any, limit: float, step: float = 1.0) -> float:
    """Seconds until check() is true; fail after limit."""
    start = time.monotonic()
    while time.monotonic() - start < limit:
        if check():
            return time.monotonic() - start
        time.sleep(step)
    raise AssertionError(f"{what}: not within {limit} s")


class Probe:
    """molecule/swarm/files/probe.py on the manager: RATE requests/s through the front, over a few
    keep-alive connections, while something happens. Entering returns once a first answer came."""

    RATE = 30

    def __init__(self, name: str, workers: int = 6) -> None:
        self.workers = workers
        self.out = f"/root/probe-{name}.json"
        self.ready = f"/root/probe-{name}.ready"

    def __enter__(self) -> Probe:
        src = SCENARIO / "files" / "probe.py"
        subprocess.run(["docker", "cp", str(src), f"{MANAGER}:/root/probe.py"], check=True)
        subprocess.run(["docker", "exec", MANAGER, "rm", "-f", "/root/probe.stop", self.out, self.ready], check=True)
        argv = [
            "python3",
            "/root/probe.py",
            "--rate",
            str(self.RATE),
            "--workers",
            str(self.workers),
            "--max-seconds",
            "400",
        ]
        argv += ["--out", self.out, "--ready-file", self.ready]
        subprocess.run(["docker", "exec", "-d", MANAGER, *argv], check=True)
        _wait("the probe's first answer", lambda: host(MANAGER).file(self.ready).exists, 30, step=0.2)
        return self

    def __exit__(self, *exc: object) -> None:
        subprocess.run(["docker", "exec", MANAGER, "touch", "/root/probe.stop"], check=True)

    def result(self) -> dict[str, Any]:
        _wait("the probe's result", lambda: host(MANAGER).file(self.out).exists, 30, step=0.2)
        return json.loads(host(MANAGER).file(self.out).content_string)


def recap_changed(out: str) -> dict[str, int]:
    """changed= per host from a PLAY RECAP."""
    found = {}
    for line in out.splitlines():
        if line.startswith("swarm-") and "changed=" in line:
            found[line.split()[0]] = int(line.split("changed=")[1].split()[0])
    return found


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
    # An old version of a secret and of a config that no stored release names: the deploy removes them.
    run_ok(host(MANAGER), "printf old | docker secret create --label pidock.project=inventory inventory_OLD_0123 -")
    run_ok(host(MANAGER), "printf old | docker config create --label pidock.project=inventory inventory_nginx_0123 -")
    with Probe("v2") as probe:
        out = play("deploy.yml", "-e", "compose_version=v2", "-e", "swarm_test_build=true")
    result = probe.result()
    print(f"[swarm] probe during the v1 -> v2 rolling update: {result}")
    assert "inventory v2: deployed" in out
    assert result["rate"] >= 20, result
    assert result["failed"] == 0, result
    assert result["releases"] == ["v1", "v2"], result
    assert [served(n) for n in NODES] == ["v2"] * 3
    assert update_state("inventory_app") == "completed"
    objects = run_ok(
        host(MANAGER), "docker secret ls --format '{{.Name}}'; docker config ls --format '{{.Name}}'"
    ).split()
    assert "inventory_OLD_0123" not in objects and "inventory_nginx_0123" not in objects, objects
    assert any(o.startswith("inventory_POSTGRES_PASSWORD_") for o in objects), objects


def test_workers_pull_from_the_registry_what_only_the_manager_built() -> None:
    """swarm-1 loaded the tarballs (v1) and built v2's app (source: build), tagged every image into
    its registry (TLS, a private CA the nodes trust for swarm-1:5000 only) and pushed it; the
    workers run the app by digest, pulled from there, and never held an image under its own name."""
    tasks = json.loads(
        run_ok(
            host(MANAGER),
            "docker service ps inventory_app --filter desired-state=running --format '{{json .}}' | head -1",
        )
    )
    assert tasks["Image"].startswith("swarm-1:5000/local/inventory-app-built@sha256:"), tasks
    workers = [n for n in running_nodes("inventory_app") if n != MANAGER]
    assert workers, running_nodes("inventory_app")
    for name in workers:
        repos = run_ok(host(name), "docker image ls --format '{{.Repository}}'").split()
        assert "swarm-1:5000/local/inventory-app-built" in repos, (name, repos)
        assert not [r for r in repos if r.startswith("local/")], (name, repos)
    for name in NODES:
        assert run_ok(host(name), "cat /etc/docker/certs.d/swarm-1:5000/ca.crt").startswith("-----BEGIN CERTIFICATE")
    catalog = run_ok(
        host("swarm-2"),
        'python3 -c "import urllib.request, ssl; '
        "c = ssl.create_default_context(cafile='/etc/docker/certs.d/swarm-1:5000/ca.crt'); "
        "print(urllib.request.urlopen('https://swarm-1:5000/v2/_catalog', context=c).read().decode())\"",
    )
    assert set(json.loads(catalog)["repositories"]) >= {"local/inventory-app-built", "local/nginx", "local/postgres"}
    # The key of the registry is its user's alone.
    assert run_ok(host(MANAGER), "stat -c '%U %a' /etc/docker/registry/registry.key").split() == [
        "docker-registry",
        "600",
    ]


def test_rerun_changes_nothing() -> None:
    """Cluster, certificate and stack (site.yml, all of converge.yml but the docker role, whose own
    idempotence its scenarios prove) again at v2: changed=0 on every node. This stands in for
    Molecule's idempotence step, which would re-run the whole converge once more."""
    out = play("site.yml", "-e", "compose_version=v2", "-e", "swarm_test_build=true")
    assert "inventory v2: unchanged" in out
    assert recap_changed(out) == {n: 0 for n in NODES}, out[-4000:]


def test_broken_release_is_rolled_back_by_swarm() -> None:
    out = play("deploy.yml", "-e", "compose_version=v3", "-e", "swarm_test_fail=true", expect_rc=2)
    assert "inventory v3: rolled_back" in out
    assert update_state("inventory_app") == "rollback_completed"
    assert [served(n) for n in NODES] == ["v2"] * 3
    assert services()["inventory_app"]["Replicas"] == "3/3"


def test_releases_are_stored_with_pinned_images() -> None:
    """v1 and v2 succeeded, v3 was rolled back by Swarm: three releases, each with its stack file
    naming every image by the registry digest recorded in release.json, and its secrets' versioned
    names."""
    root = "/opt/pidock/swarm/inventory"
    stored = {
        r["version"]: r
        for r in (
            json.loads(run_ok(host(MANAGER), "cat %s", f))
            for f in run_ok(host(MANAGER), f"ls {root}/releases/*/release.json").split()
        )
    }
    assert {v: r["outcome"] for v, r in stored.items()} == {"v1": "success", "v2": "success", "v3": "rolled_back"}
    v2 = stored["v2"]
    stack = yaml.safe_load(run_ok(host(MANAGER), "cat %s", f"{root}/releases/{v2['id']}/stack.yml"))
    for name, svc in stack["services"].items():
        # By the registry's digest, the image ID recorded beside it.
        assert svc["image"] == v2["images"][name]["digests"][0], (name, svc["image"], v2["images"][name])
        assert svc["image"].startswith("swarm-1:5000/local/") and "@sha256:" in svc["image"], svc["image"]
        assert v2["images"][name]["id"].startswith("sha256:")

    assert any(s.startswith("inventory_POSTGRES_PASSWORD_") for s in v2["extra"]["secrets"]), v2["extra"]
    assert run_ok(host(MANAGER), "readlink %s", f"{root}/current").strip().endswith(v2["id"])
    assert SECRET not in run_ok(host(MANAGER), "cat %s/releases/*/*", root)


def test_rollback_to_previous_then_to_a_named_release() -> None:
    root = "/opt/pidock/swarm/inventory"
    with Probe("rollback") as probe:
        out = play("rollback.yml")
    result = probe.result()
    print(f"[swarm] probe during the rollback v2 -> v1: {result}")
    assert "inventory v1: deployed (rollback" in out, out[-3000:]
    assert [served(n) for n in NODES] == ["v1"] * 3
    assert result["failed"] == 0, result
    v2 = next(
        json.loads(run_ok(host(MANAGER), "cat %s", f))["id"]
        for f in run_ok(host(MANAGER), f"ls {root}/releases/*/release.json").split()
        if json.loads(run_ok(host(MANAGER), "cat %s", f))["version"] == "v2"
    )
    out = play("rollback.yml", "-e", f"swarm_rollback_to={v2}")
    assert "inventory v2: deployed (rollback" in out
    assert [served(n) for n in NODES] == ["v2"] * 3
    audit = [json.loads(line) for line in run_ok(host(MANAGER), "cat %s", f"{root}/audit.log").splitlines()]
    assert [(a["action"], a["version"], a["outcome"]) for a in audit[-2:]] == [
        ("rollback", "v1", "deployed"),
        ("rollback", "v2", "deployed"),
    ]
    # Refused by name, nothing changed: an unknown release.
    out = play("rollback.yml", "-e", "swarm_rollback_to=v9", expect_rc=2)
    assert "swarm_rollback_to: 'v9' names no stored release" in out
    assert [served(n) for n in NODES] == ["v2"] * 3


ROOT = "/opt/pidock/swarm/inventory"


def app_update_state() -> str:
    done = subprocess.run(
        [
            "docker",
            "exec",
            MANAGER,
            "docker",
            "service",
            "inspect",
            "inventory_app",
            "--format",
            "{{if .UpdateStatus}}{{.UpdateStatus.State}}{{end}}",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip()


def killed_when(state: str, playbook: str, *extra: str) -> float:
    """Run playbook in a session of its own and SIGKILL the whole ansible-playbook process group
    once Swarm reports the app's update in `state` (it has taken the deploy; the run has recorded
    nothing yet), as a dropped SSH link to the manager does. Returns the seconds it ran."""
    env = dict(os.environ)
    env.setdefault("ANSIBLE_COLLECTIONS_PATH", f"{PROJECT}/collections")
    env.update(ANSIBLE_PIPELINING="true", ANSIBLE_FORCE_COLOR="false", ANSIBLE_NOCOLOR="true")
    cmd = ["ansible-playbook", "-i", molecule_inventory("swarm"), str(SCENARIO / playbook), *extra]
    before = app_update_state()
    start = time.monotonic()
    with tempfile.TemporaryFile("w+") as log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        look = (
            "s=$(docker service inspect inventory_app --format '{{if .UpdateStatus}}{{.UpdateStatus.State}}{{end}}'); "
            f'[ "$s" = {state} ] && echo "$s"'
        )
        seen = wait_inside(MANAGER, look, step=0.3, timeout=600, beside=proc).strip()
        if seen == state:
            kill_controller(proc)
        proc.wait(30)
        log.seek(0)
        OUTPUTS.append(log.read())
    took = time.monotonic() - start
    print(f"\n[swarm] {playbook} {' '.join(extra)}: killed at {state} after {took:.1f} s (was {before})")
    assert seen == state and proc.returncode == -signal.SIGKILL, (
        f"{playbook} ended by itself (rc {proc.returncode}) before the app's update was {state}: {OUTPUTS[-1][-3000:]}"
    )
    return took


def releases() -> dict[str, dict[str, Any]]:
    """Stored releases by version (the newest per version)."""
    found = [
        json.loads(run_ok(host(MANAGER), "cat %s", f))
        for f in run_ok(host(MANAGER), f"ls {ROOT}/releases/*/release.json").split()
    ]
    return {r["version"]: r for r in sorted(found, key=lambda r: r["created_epoch"])}


def assert_record_serves(version: str) -> dict[str, Any]:
    """Every node's front serves version; `current` and the last audit line name its release."""
    assert [served(n) for n in NODES] == [version] * 3
    current = run_ok(host(MANAGER), "readlink %s", f"{ROOT}/current").strip().rsplit("/", 1)[1]
    meta = json.loads(run_ok(host(MANAGER), "cat %s", f"{ROOT}/releases/{current}/release.json"))
    last = json.loads(run_ok(host(MANAGER), "tail -n 1 %s", f"{ROOT}/audit.log"))
    assert meta["version"] == version and meta["outcome"] == "success", meta
    assert last["release"] == current, last
    assert services()["inventory_app"]["Replicas"] == "3/3"
    return last


def test_deploy_killed_after_swarm_took_it_then_the_next_run_converges() -> None:
    """The controller dies once Swarm has the new spec: Swarm finishes the rolling update by itself,
    and the next plain run finds v4 serving, makes it current (audit: reconcile) and changes nothing
    else. The probe runs through both: 0 failed requests."""
    args = ("-e", "compose_version=v4", "-e", "swarm_test_build=true")
    with Probe("killed_deploy") as probe:
        killed_when("updating", "deploy.yml", *args)
        # The killed run's lock is still there; the next run of this controller takes it over.
        left = json.loads(run_ok(host(MANAGER), "cat %s", f"{ROOT}/deploy.lock"))
        out = play("deploy.yml", *args)
    assert "Taking over the deploy lock of a run that no longer runs" in " ".join(out.split()), out[-3000:]
    assert f"pid {left['pid']}" in " ".join(out.split())
    assert not host(MANAGER).file(f"{ROOT}/deploy.lock").exists
    result = probe.result()
    print(f"[swarm] probe through the killed deploy v2 -> v4 and the next run: {result}")
    words = " ".join(out.split())  # the callback wraps long messages
    assert "(v4) serves, the record said" in words and "the record now says so" in words, out[-3000:]
    assert "inventory v4: unchanged" in out, out[-3000:]
    last = assert_record_serves("v4")
    assert (last["action"], last["version"]) == ("reconcile", "v4"), last
    assert result["failed"] == 0 and result["rate"] >= 20, result


def test_deploy_killed_while_swarm_rolls_back_then_the_next_run_converges() -> None:
    """A broken v5 is cut short while Swarm rolls it back; the next run deploys the good vars (v4):
    Swarm's rollback is found finished, v4 still serves and stays current, v5 is recorded
    interrupted. Before the pidock.spec labels this run reported rolled_back: the app's last update
    was Swarm's rollback, although it ran exactly what was asked."""
    args = ("-e", "compose_version=v5", "-e", "swarm_test_build=true", "-e", "swarm_test_fail=true")
    killed_when("rollback_started", "deploy.yml", *args)
    # The controller is gone: Swarm finishes the rollback by itself.
    took = _wait("Swarm's rollback, with no controller", lambda: app_update_state() == "rollback_completed", 90)
    print(f"[swarm] Swarm completed its rollback {took:.1f} s after the controller died")
    out = play("deploy.yml", "-e", "compose_version=v4", "-e", "swarm_test_build=true")
    assert "inventory v4: unchanged" in out, out[-3000:]
    assert_record_serves("v4")
    assert releases()["v5"]["outcome"] == "interrupted"


def test_rollback_killed_after_swarm_took_it_then_the_same_rollback_converges() -> None:
    v2 = releases()["v2"]["id"]
    with Probe("killed_rollback") as probe:
        killed_when("updating", "rollback.yml", "-e", f"swarm_rollback_to={v2}")
        out = play("rollback.yml", "-e", f"swarm_rollback_to={v2}")
    result = probe.result()
    print(f"[swarm] probe through the killed rollback v4 -> v2 and the next run: {result}")
    assert "inventory v2: unchanged (rollback" in out, out[-3000:]
    last = assert_record_serves("v2")
    assert (last["action"], last["release"]) == ("reconcile", v2), last
    assert result["failed"] == 0 and result["rate"] >= 20, result


def test_a_live_lock_of_another_controller_stops_a_deploy() -> None:
    """Another controller's run holds the stack: a deploy stops right after its preflight, naming it."""
    before = run_ok(host(MANAGER), "docker service inspect inventory_app --format '{{.Version.Index}}'")
    holder = {"owner": "operator-b", "host": "laptop-b", "pid": 4242, "token": "laptop-b:4242:1"}
    holder.update(time="now", epoch=time.time())
    run_ok(host(MANAGER), "printf '%%s' %s > %s", json.dumps(holder), f"{ROOT}/deploy.lock")
    try:
        out = play("deploy.yml", "-e", "compose_version=v6", expect_rc=2)
    finally:
        run_ok(host(MANAGER), "rm -f %s", f"{ROOT}/deploy.lock")
    assert "is locked by operator-b@laptop-b pid 4242" in " ".join(out.split()), out[-3000:]
    assert run_ok(host(MANAGER), "docker service inspect inventory_app --format '{{.Version.Index}}'") == before
    assert "v6" not in releases()


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
        (
            '{"swarm_registry_enabled": true, "swarm_registry_host": "swarm-9"}',
            "swarm_registry_tls: the certificate does not name the registry host swarm-9",
        ),
        (
            '{"swarm_registry_tls": {"fullchain_path": "/opt/pidock/stacks/registry/tls/fullchain.pem",'
            ' "privkey_path": "/nowhere/privkey.pem", "ca_path": "/opt/pidock/stacks/registry/tls/ca.pem"}}',
            "swarm_registry_tls.privkey_path: /nowhere/privkey.pem does not exist on the deploying manager",
        ),
    ]
    for extra, message in cases:
        out = play("deploy.yml", "-e", extra, expect_rc=2)
        assert message in out, out[-3000:]
    out = play("converge.yml", "-e", '{"docker_daemon_options": {"live-restore": true}}', expect_rc=2)
    assert "live-restore: true contradicts docker_swarm_node: true" in out
    assert run_ok(host(MANAGER), "docker service ls -q | sort; docker secret ls -q | sort") == before


def _node(name: str) -> dict[str, Any]:
    out = run_ok(host(MANAGER), "docker node ls --format '{{json .}}'")
    return next(n for n in (json.loads(line) for line in out.splitlines()) if n["Hostname"] == name)


def test_lost_worker_tasks_run_elsewhere_within_30_s() -> None:
    victim = next(n for n in running_nodes("inventory_app") if n != MANAGER)
    # Requests nginx still sends to the lost tasks wait for its upstream timeout (and then go to a
    # live task): more workers keep the rate sent while some are held.
    with Probe("lost", workers=16) as probe:
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
        # Observe a little longer than the front's DNS cache (valid=5s): requests still sent to the
        # lost tasks' addresses after the reschedule must be counted too.
        time.sleep(6)
    result = probe.result()
    print(f"[swarm] {victim} stopped: app tasks rescheduled in {took:.1f} s; probe {result}")
    assert took <= 30
    assert result["rate"] >= 20, result
    assert result["error_seconds"] <= 1.0, result


def test_worker_comes_back_and_rejoins() -> None:
    victim = next(n for n in NODES if n != MANAGER and _node(n)["Status"] != "Ready")
    subprocess.run(["docker", "start", victim], check=True, capture_output=True)
    took = _wait(f"{victim} Ready again", lambda: _node(victim)["Status"] == "Ready", 120)
    print(f"[swarm] {victim} rejoined {took:.1f} s after its start")
    assert _node(victim)["Availability"] == "Active"


def test_drain_moves_the_tasks_and_undrain() -> None:
    before = served(MANAGER)
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
    assert served(MANAGER) == before
    play("cluster.yml")
    assert _node("swarm-2")["Availability"] == "Active"
