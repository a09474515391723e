"""pidock.stack.compose: the deploy story, in order.

Converge deployed v1. Each test below runs deploy.yml / rollback.yml / input_checks.yml against
the host with ansible-playbook and asserts the state it leaves: HTTPS through nginx reports the
release, the TLS handshake presents tls_facts' certificate, rows survive, release.json, the
`current` symlink, the audit log, zero failed requests while cutting over.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from pidock_helpers import docker_inspect, http_json, molecule_inventory, run_ok

SCENARIO = Path(__file__).resolve().parent.parent
HOST = "compose-deploy"
ROOT = "/opt/pidock/stacks/inventory"
HEALTH = "https://127.0.0.1/health"
STATE: dict[str, Any] = {}


def _inventory() -> str:
    return molecule_inventory("compose_deploy")


def _playbook_cmd(playbook: str, *extra: str) -> list[str]:
    return ["ansible-playbook", "-i", _inventory(), str(SCENARIO / playbook), *extra]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    project = str(SCENARIO.parent.parent)
    env.setdefault("ANSIBLE_COLLECTIONS_PATH", f"{project}/collections")
    env.setdefault("ANSIBLE_ROLES_PATH", f"{project}/roles")
    env["ANSIBLE_FORCE_COLOR"] = "false"
    env["ANSIBLE_NOCOLOR"] = "true"
    return env


def play(playbook: str, *extra: str, expect_rc: int | None = 0) -> str:
    """Run a playbook of this scenario against the host; return its output."""
    done = subprocess.run(_playbook_cmd(playbook, *extra), env=_env(), capture_output=True, text=True, timeout=900)
    out = done.stdout + done.stderr
    if expect_rc is not None:
        assert done.returncode == expect_rc, f"{playbook} {extra} rc={done.returncode}:\n{out[-6000:]}"
    return out


def recap(out: str) -> dict[str, int]:
    match = re.search(rf"{HOST}\s*:\s*(.*)", out)
    assert match, out[-3000:]
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", match.group(1))}


REGISTRY_APP = "127.0.0.1:5000/inventory/app:2"
FROM_REGISTRY = ("-e", f"__app_image={REGISTRY_APP}", "-e", "__app_source=pull")


def deploy(version: str, *extra: str, expect_rc: int = 0) -> str:
    """v2 and later pull the app image from the host's registry."""
    return play("deploy.yml", "-e", f"compose_version={version}", *FROM_REGISTRY, *extra, expect_rc=expect_rc)


def health(host) -> dict[str, Any]:
    status, body = http_json(host, HEALTH, insecure=True)
    assert status == 200, body
    return body


def current(host) -> str:
    return run_ok(host, f"readlink {ROOT}/current").strip()


def release_json(host, release_dir: str) -> dict[str, Any]:
    return json.loads(run_ok(host, f"cat {ROOT}/{release_dir}/release.json"))


def audit(host) -> list[dict[str, Any]]:
    return [json.loads(line) for line in run_ok(host, f"cat {ROOT}/audit.log").splitlines() if line.strip()]


def items(host) -> list[dict[str, Any]]:
    status, body = http_json(host, "https://127.0.0.1/items", insecure=True)
    assert status == 200
    return body


def container_id(host, service: str) -> str:
    return run_ok(host, f"docker compose -p inventory ps -q {service}").strip()


def host_state(host) -> str:
    """Everything a refused deploy must leave alone."""
    return run_ok(
        host,
        f"readlink {ROOT}/current; ls {ROOT}/releases; md5sum {ROOT}/front/conf.d/default.conf; "
        f"wc -l < {ROOT}/audit.log; docker ps -q --no-trunc | sort; flock -n {ROOT}/deploy.lock true && echo unlocked",
    )


class Probe:
    """probe.py inside the host at 50 requests/s through nginx while something happens."""

    def __init__(self, name: str) -> None:
        self.out = f"/root/probe-{name}.json"

    def __enter__(self) -> Probe:
        subprocess.run(["docker", "exec", HOST, "rm", "-f", "/root/probe.stop", self.out], check=True)
        subprocess.run(
            ["docker", "exec", "-d", HOST, "python3", "/root/probe.py", "--rate", "50", "--max-seconds", "400",
             "--out", self.out],
            check=True,
        )
        time.sleep(2)
        return self

    def __exit__(self, *exc: object) -> None:
        subprocess.run(["docker", "exec", HOST, "touch", "/root/probe.stop"], check=True)

    def result(self) -> dict[str, Any]:
        for _ in range(30):
            done = subprocess.run(["docker", "exec", HOST, "cat", self.out], capture_output=True, text=True)
            if done.returncode == 0 and done.stdout.strip():
                return json.loads(done.stdout)
            time.sleep(1)
        raise AssertionError("the probe wrote no result")


# --- v1 (converge) --------------------------------------------------------------------------


def test_v1_serves_through_nginx_with_the_database(host):
    assert health(host) == {"release": "v1", "db": "ok", "images": 0}
    STATE["v1"] = current(host)
    assert STATE["v1"].startswith("releases/v1-")


def test_http_redirects_to_https(host):
    out = run_ok(host, "curl -sS -o /dev/null -w '%{http_code} %{redirect_url}' http://127.0.0.1/items")
    assert out.strip() == "301 https://127.0.0.1/items"


def test_tls_handshake_presents_the_tls_facts_certificate(host):
    expected = run_ok(host, f"openssl x509 -noout -fingerprint -sha256 -in {ROOT}/tls/fullchain.pem").split("=", 1)[1]
    served = run_ok(
        host,
        "openssl s_client -connect 127.0.0.1:443 -servername inventory.test </dev/null 2>/dev/null"
        " | openssl x509 -noout -fingerprint -sha256",
    ).split("=", 1)[1]
    assert served.strip() == expected.strip()
    recorded = run_ok(host, f"cat {ROOT}/current/tls.fingerprint").strip()
    assert recorded == expected.strip()


def test_release_directory_v1(host):
    meta = release_json(host, "current")
    assert meta["version"] == "v1"
    assert meta["outcome"] == "success"
    assert meta["id"] == STATE["v1"].split("/", 1)[1]
    assert meta["id"].endswith(meta["config_hash"][:12])
    for service in ("postgres", "app", "nginx"):
        assert meta["images"][service]["id"].startswith("sha256:")
    # prepare removed the app image: v1 could only have it by loading the controller's tarball
    assert meta["images"]["app"]["image"] == "local/inventory-app:latest"
    assert host.file(f"{ROOT}/images/app.tar").exists is False, "the copied tarball is cleaned up"
    assert set(meta["files"]) == {".env", "compose.yml", "nginx.conf", "tls.fingerprint"}
    env = host.file(f"{ROOT}/current/.env")
    assert env.mode == 0o600
    assert "POSTGRES_PASSWORD='s3cret-inventory-$pw'" in env.content_string
    compose = host.file(f"{ROOT}/current/compose.yml").content_string
    assert "s3cret" not in compose
    assert compose.startswith("#")


def test_secret_reaches_postgres_unmangled(host):
    env = docker_inspect(host, container_id(host, "postgres"))["Config"]["Env"]
    assert "POSTGRES_PASSWORD=s3cret-inventory-$pw" in env


LITERAL = "$2b$12$abcdef${POSTGRES_PASSWORD}$HOME"


def test_environment_reaches_the_container_byte_for_byte(host):
    env = docker_inspect(host, container_id(host, "app-blue"))["Config"]["Env"]
    assert f"PIDOCK_LITERAL={LITERAL}" in env
    assert not [e for e in env if "s3cret" in e and not e.startswith("POSTGRES_PASSWORD=")], env


def test_compose_config_gives_each_service_only_its_listed_secrets(host):
    config = json.loads(
        run_ok(host, f"cd {ROOT}/current && docker compose --profile tools --profile tunnel config --format json")
    )
    listed = {"postgres", "app-blue"}
    for name, service in config["services"].items():
        env = service.get("environment") or {}
        # `config` may print a literal `$` escaped again as `$$`
        assert {k: (v or "").replace("$$", "$") for k, v in env.items()}.get("PIDOCK_LITERAL", LITERAL) == LITERAL
        rest = json.dumps({k: v for k, v in service.items() if k != "environment"})
        others = json.dumps({k: v for k, v in env.items() if k != "POSTGRES_PASSWORD"})
        assert "s3cret" not in rest + others, name
        assert ("POSTGRES_PASSWORD" in env) == (name in listed), name


def test_build_source_built_from_the_copied_context(host):
    meta = release_json(host, "current")
    image = docker_inspect(host, "inventory/tools:1")
    assert image["Id"] == meta["images"]["tools"]["id"]
    assert image["Config"]["Labels"]["org.pidock.example"] == "built by pidock.stack.compose"
    assert host.file(f"{ROOT}/build/tools/Dockerfile").exists


def test_resource_limits_and_profiles(host):
    app = docker_inspect(host, container_id(host, "app-blue"))
    assert app["HostConfig"]["Memory"] == 256 * 1024 * 1024
    assert app["HostConfig"]["NanoCpus"] == 1_000_000_000
    assert container_id(host, "tunnel") == "", "the tunnel profile is not enabled"
    assert container_id(host, "tools") == ""


def test_write_a_row(host):
    out = run_ok(
        host,
        "curl -sSk -X POST -H 'Content-Type: application/json' -d '{\"name\": \"before-v2\"}' "
        "https://127.0.0.1/items",
    )
    assert json.loads(out)["name"] == "before-v2"
    STATE["rows"] = items(host)
    assert [r["name"] for r in STATE["rows"]] == ["before-v2"]


# --- v2: zero-downtime cutover ----------------------------------------------------------------


def test_deploy_v2_with_zero_failed_requests(host):
    STATE["postgres_id"] = container_id(host, "postgres")
    STATE["nginx_pid"] = run_ok(host, "docker compose -p inventory exec -T nginx cat /run/nginx.pid").strip()
    with Probe("v2") as probe:
        deploy("v2")
    result = probe.result()
    STATE["probe_v2"] = result
    assert result["failed"] == 0, result
    assert result["requests"] >= 500, result
    assert result["releases"] == ["v1", "v2"], result
    print("cutover v1->v2:", result)


def test_v2_serves_and_the_row_survived(host):
    assert health(host)["release"] == "v2"
    assert items(host) == STATE["rows"]
    STATE["v2"] = current(host)
    assert STATE["v2"].startswith("releases/v2-")


def test_v2_app_image_was_pulled_from_the_registry(host):
    meta = release_json(host, STATE["v2"])
    assert meta["images"]["app"]["image"] == REGISTRY_APP
    assert any(d.startswith("127.0.0.1:5000/inventory/app@sha256:") for d in meta["images"]["app"]["digests"]), meta
    image = docker_inspect(host, container_id(host, "app-green"))["Image"]
    assert image == meta["images"]["app"]["id"]


def test_stateful_service_and_front_were_not_recreated(host):
    assert container_id(host, "postgres") == STATE["postgres_id"]
    # nginx was reloaded (same master process), not restarted
    assert run_ok(host, "docker compose -p inventory exec -T nginx cat /run/nginx.pid").strip() == STATE["nginx_pid"]
    assert container_id(host, "app-green")
    assert container_id(host, "app-blue") == "", "the old colour retired"


def test_snapshot_taken_before_v2(host):
    v2_id = STATE["v2"].split("/", 1)[1]
    dump = run_ok(host, f"zcat {ROOT}/snapshots/{v2_id}.sql.gz")
    assert "before-v2" in dump


def test_v2_audited(host):
    last = audit(host)[-1]
    assert last["action"] == "deploy"
    assert last["outcome"] == "success"
    assert last["release"] == STATE["v2"].split("/", 1)[1]
    assert last["previous"] == STATE["v1"].split("/", 1)[1]
    assert last["durations"]["total_s"] > 0


# --- v3: broken, rolled back automatically -------------------------------------------------


def postgres_state(host) -> tuple[str, str, int]:
    """The postgres container's id, start time and restart count."""
    found = docker_inspect(host, container_id(host, "postgres"))
    return found["Id"], found["State"]["StartedAt"], found["RestartCount"]


def plan_before_switch(out: str) -> str:
    """The release plan the run printed, which must come before the switch task."""
    plan = out.find("recreate IN PLACE")
    switch = out.find("Switch (start beside")
    assert 0 <= plan < switch, out[-4000:]
    return " ".join(out[plan:switch].split())


def test_broken_v3_rolls_back_automatically(host):
    # v3 also changes postgres's definition: the plan names it, and the failing release never touches it.
    postgres = postgres_state(host)
    with Probe("v3") as probe:
        out = deploy(
            "v3", "-e", '{"__app_extra_env": {"FAIL_HEALTH": "1"}}', "-e", "__postgres_memory=640m", expect_rc=2
        )
    result = probe.result()
    STATE["probe_v3"] = result
    text = " ".join(out.split())
    assert "postgres - keeps its data in volume(s) pgdata" in plan_before_switch(out)
    assert "failed its health gate" in text, out[-4000:]
    assert "service app-blue is unhealthy" in text, out[-4000:]
    assert "Rolled back to v2-" in text, out[-4000:]
    assert "Not touched (planned in place, after the gate): postgres." in text, out[-4000:]
    assert postgres_state(host) == postgres, "postgres was not restarted"
    assert result["failed"] == 0, result
    assert result["releases"] == ["v2"], result
    print("automatic rollback v3->v2:", result)


def test_after_rollback_v2_serves_row_intact(host):
    assert health(host)["release"] == "v2"
    assert current(host) == STATE["v2"]
    assert items(host) == STATE["rows"]
    assert container_id(host, "app-blue") == "", "the broken colour was removed"


def test_failed_attempt_recorded(host):
    v3 = run_ok(host, f"ls -d {ROOT}/releases/v3-*").strip().rsplit("/", 1)[1]
    meta = release_json(host, f"releases/{v3}")
    assert meta["outcome"] == "failed"
    assert "app-blue" in meta["outcome_message"]
    last = audit(host)[-1]
    assert last["release"] == v3
    assert last["outcome"] == "rolled_back"
    assert last["rolled_back_to"] == STATE["v2"].split("/", 1)[1]
    assert "FAIL_HEALTH" in last["error"] or "unhealthy" in last["error"]
    assert last["in_place"] == ["postgres"] and "interruption_s" not in last["durations"], last


# --- a stateful change: postgres recreated in place, once, its interruption measured -----------


def test_stateful_change_recreates_postgres_once_and_measures_the_interruption(host):
    before = postgres_state(host)
    with Probe("v2s") as probe:
        out = deploy("v2s", "-e", "__postgres_memory=640m")
    result = probe.result()
    STATE["probe_v2s"] = result
    assert "postgres - keeps its data in volume(s) pgdata" in plan_before_switch(out)
    assert health(host)["release"] == "v2s"
    assert items(host) == STATE["rows"], "the volume kept the rows"
    after = postgres_state(host)
    assert after[0] != before[0] and after[2] == 0, (before, after)
    pg = docker_inspect(host, after[0])
    assert pg["HostConfig"]["Memory"] == 640 * 1024 * 1024
    # Only the new container exists: recreated once, not twice.
    assert run_ok(host, "docker ps -aq --filter label=com.docker.compose.service=postgres").split() == [after[0][:12]]
    last = audit(host)[-1]
    assert (last["release"].split("-", 1)[0], last["outcome"], last["in_place"]) == ("v2s", "success", ["postgres"])
    gap = last["durations"]["interruption_s"]
    # The role says it (deploy.yml and rollback.yml also put it in each host's summary line).
    assert f"recreated in place: postgres (interruption {gap:.2f} s)" in " ".join(out.split()), out[-3000:]
    # The measured interruption covers what the probe saw (its longest gap between two answers).
    assert result["longest_gap_s"] <= gap + 1.0, (result, gap)
    STATE["v2s"] = current(host)
    print("stateful change v2->v2s:", result, "interruption_s", gap)


# --- manual rollback, redeploy, idempotence, locks ---------------------------------------------


def test_manual_rollback_to_the_serving_colour_is_refused_and_changes_nothing(host):
    # v1 was staged blue, like v2s that serves now (v2 green, v3 blue failed, v2s blue): going back to
    # it would recreate the serving containers in place, so it is refused, naming the way forward.
    before = host_state(host)
    v1 = STATE["v1"].split("/", 1)[1]
    out = " ".join(play("rollback.yml", "-e", f"compose_rollback_to={v1}", expect_rc=2).split())
    assert f"release {v1} runs app-blue in the colour that serves now (blue" in out, out[-3000:]
    assert "deploy v1's configuration again with deploy.yml" in out, out[-3000:]
    assert host_state(host) == before
    assert health(host)["release"] == "v2s"


def test_manual_rollback_to_v2(host):
    v2 = STATE["v2"].split("/", 1)[1]
    play("rollback.yml", "-e", f"compose_rollback_to={v2}")
    assert health(host)["release"] == "v2"
    assert current(host) == STATE["v2"]
    assert items(host) == STATE["rows"]
    last = audit(host)[-1]
    assert (last["action"], last["release"], last["outcome"]) == ("rollback", v2, "success")
    # Going back to v2 recreated postgres in place again (v2's definition), through the same transaction.
    assert last["in_place"] == ["postgres"] and last["durations"]["interruption_s"] > 0, last
    assert release_json(host, STATE["v2s"])["outcome"] == "rolled_back"


def test_a_dead_runs_lock_note_blocks_nothing_and_v2_is_redeployed(host):
    # The lock is the kernel's (flock, released when its process dies); a note left in the file by
    # a dead run, or an empty file from a crash between create and write, blocks nothing.
    stale = {"owner": "ghost", "pid": 999999, "since": "2000-01-01T00:00:00Z"}
    run_ok(host, f"echo '{json.dumps(stale)}' > {ROOT}/deploy.lock")
    v1 = STATE["v1"].split("/", 1)[1]
    play("rollback.yml", "-e", f"compose_rollback_to={v1}")  # v1 is blue, v2 green: a real switch
    assert health(host)["release"] == "v1" and current(host) == STATE["v1"]
    run_ok(host, f"echo '{json.dumps(stale)}' > {ROOT}/deploy.lock")
    deploy("v2")
    assert health(host)["release"] == "v2"
    assert current(host) == STATE["v2"], "same configuration, same release id"
    run_ok(host, f": > {ROOT}/deploy.lock")
    out = play("rollback.yml", "-e", f"compose_rollback_to={STATE['v1'].split('/', 1)[1]}", "--check")
    assert recap(out)["failed"] == 0
    run_ok(host, f"flock -n {ROOT}/deploy.lock true")


def test_a_live_holder_is_waited_for_then_named(host):
    # A live process holds the lock: a run waits compose_lock_timeout for it, then fails naming it.
    run_ok(host, f"systemd-run --unit=pidock-hold flock {ROOT}/deploy.lock sleep 900")
    try:
        start = time.monotonic()
        out = " ".join(deploy("v2", "-e", "compose_lock_timeout=2", expect_rc=2).split())
        assert "is being switched by" in out and "waited 2s" in out, out[-3000:]
        assert time.monotonic() - start < 120
    finally:
        run_ok(host, "systemctl stop pidock-hold")
    assert health(host)["release"] == "v2"
    run_ok(host, f"flock -n {ROOT}/deploy.lock true")


# --- refusals and check mode --------------------------------------------------------------------


def test_bad_input_and_disk_preflight_change_nothing(host):
    before = host_state(host)
    out = play("input_checks.yml")
    assert recap(out)["failed"] == 0, out[-4000:]
    assert out.count("Require the refusal to name the problem") >= 32
    assert recap(out)["changed"] == 0
    assert host_state(host) == before
    assert health(host)["release"] == "v2"


def test_check_mode_predicts_and_changes_nothing(host, tmp_path):
    before = host_state(host)
    out = deploy("v4-check", "--check", "--diff", "-vvv")
    # At -vvv with --diff, nothing shows the stack's secret (scripts/secret_leaks.py scan).
    log = tmp_path / "deploy-vvv.log"
    log.write_text(out)
    script = SCENARIO.parent.parent / "scripts" / "secret_leaks.py"
    scan = subprocess.run([sys.executable, str(script), "scan", str(log)], capture_output=True, text=True)
    assert scan.returncode == 0, scan.stderr
    assert recap(out)["changed"] > 0, "check mode predicts the new release"
    # At -vvv the task's result follows its connection lines: look within the task's own block.
    block = re.search(r"TASK \[[^\]]*Write the release directory\].*?(?=\nTASK \[|\Z)", out, re.S)
    assert block and re.search(r"^changed:", block.group(0), re.M), out[-3000:]
    assert host_state(host) == before
    assert health(host)["release"] == "v2"
    assert "v4-check" not in run_ok(host, f"ls {ROOT}/releases")


def test_list_entry_point(host):
    play("list.yml")
    listed = json.loads(run_ok(host, "cat /root/compose-list.json"))
    outcomes = {r["id"].split("-", 1)[0]: r["outcome"] for r in listed["releases"]}
    assert outcomes == {"v1": "success", "v2": "success", "v3": "failed", "v2s": "rolled_back"}, listed
    assert [r["id"] for r in listed["releases"] if r["current"]] == [STATE["v2"].split("/", 1)[1]]
    on_disk = sorted(run_ok(host, f"ls {ROOT}/releases").split())
    assert sorted(r["id"] for r in listed["releases"]) == on_disk


@pytest.mark.parametrize("name", ["probe_v2", "probe_v3", "probe_v2s"])
def test_probe_numbers_are_recorded(name):
    assert name in STATE, "the cutover tests ran"
    print(name, STATE[name])
