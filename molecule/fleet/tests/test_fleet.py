"""Fleet rollout through playbooks/deploy.yml and playbooks/rollback.yml, in order.

Converge put v1 on the four hosts. The tests below run the playbooks with ansible-playbook, as an
operator would, and assert what each host serves over HTTPS through its nginx front, which
release `current` points to, and which releases exist.
"""

from __future__ import annotations

import json
import textwrap
import threading
from pathlib import Path
from typing import Any

import testinfra
import yaml
from pidock_helpers import http_json, run_ok, run_playbook

HOSTS = ["fleet-1", "fleet-2", "fleet-3", "fleet-4"]
ROOT = "/opt/pidock/stacks/fleet"
HEALTH = "https://127.0.0.1/health"
TIMES: dict[str, float] = {}
# Converge and idempotence ran the docker role; later deploys skip it, as an operator may.
NO_DOCKER = ("-e", "pidock_deploy_docker=false")


def play(playbook: str, *extra: str, expect_rc: int = 0) -> tuple[str, float]:
    """Run one of the collection's playbooks against the fleet; return its output and wall time."""
    return run_playbook("fleet", playbook, *extra, expect_rc=expect_rc)


def summary(out: str) -> dict[str, str]:
    """The summary play's lines: host -> "outcome - release id (version); message"."""
    block = out.split("TASK [Show every host's release and outcome]", 1)
    assert len(block) == 2, f"no summary printed:\n{out[-4000:]}"
    shown = block[1].split("=>", 1)[1].split("\nTASK [", 1)[0]
    lines = yaml.safe_load(textwrap.dedent(shown))["msg"]
    print("[fleet] summary:\n" + "\n".join(f"  {line}" for line in lines))
    return dict(line.split(": ", 1) for line in lines)


def host(name: str) -> Any:
    return testinfra.get_host(f"docker://{name}")


def served(name: str) -> str:
    """The release the host serves over HTTPS through its nginx front (must answer 200)."""
    status, body = http_json(host(name), HEALTH, insecure=True)
    assert status == 200, (name, status, body)
    return body["release"]


def releases(name: str) -> dict[str, dict[str, Any]]:
    """release id -> release.json of every release on the host."""
    out = run_ok(
        host(name),
        "python3 -c 'import glob, json, sys; "
        f'json.dump([json.load(open(f)) for f in glob.glob("{ROOT}/releases/*/release.json")], sys.stdout)\'',
    )
    return {r["id"]: r for r in json.loads(out)}


def current(name: str) -> str:
    return Path(run_ok(host(name), f"readlink {ROOT}/current").strip()).name


def state(name: str) -> str:
    """What an untouched host keeps: current, the release list, the audit log, its containers."""
    return run_ok(
        host(name),
        f"readlink {ROOT}/current; ls {ROOT}/releases; wc -l < {ROOT}/audit.log; docker ps -q --no-trunc | sort",
    )


def test_converge_put_v1_everywhere() -> None:
    for name in HOSTS:
        assert served(name) == "v1"
        assert releases(name)[current(name)]["version"] == "v1"


def test_served_certificate_is_the_hosts_own() -> None:
    for name in HOSTS:
        h = host(name)
        on_disk = run_ok(h, "openssl x509 -noout -fingerprint -sha256 -in /opt/pidock/stacks/fleet/tls/fullchain.pem")
        presented = run_ok(
            h,
            "openssl s_client -connect 127.0.0.1:443 -servername localhost </dev/null 2>/dev/null"
            " | openssl x509 -noout -fingerprint -sha256",
        )
        assert presented.strip() == on_disk.strip() != ""


def test_one_host_then_four_hosts() -> None:
    """The same deploy (a new version, one release more) on 1 host, then on 4 hosts at once."""
    out, TIMES["1 host"] = play("deploy.yml", "-l", "fleet-1", "-e", "compose_version=v2", *NO_DOCKER)
    assert summary(out)["fleet-1"].startswith("deployed - release v2-")
    assert served("fleet-1") == "v2"
    assert [served(n) for n in HOSTS[1:]] == ["v1", "v1", "v1"]

    out, TIMES["4 hosts"] = play("deploy.yml", "-e", "compose_version=v3", *NO_DOCKER)
    lines = summary(out)
    assert all(lines[n].startswith("deployed - release v3-") for n in HOSTS), lines
    assert [served(n) for n in HOSTS] == ["v3"] * 4
    ratio = TIMES["4 hosts"] / TIMES["1 host"]
    print(
        f"[fleet] BENCH deploy wall time: 1 host {TIMES['1 host']:.1f} s, 4 hosts {TIMES['4 hosts']:.1f} s, "
        f"ratio {ratio:.2f} (target <= 2)"
    )
    # The target is 2x; the bound leaves room for other jobs on this shared 2-core machine.
    assert ratio <= 3.0


def test_broken_release_rolls_back_and_stops_the_rollout() -> None:
    """Batches of two, no failure allowed: fleet-2's v4 fails its health gate in the first batch."""
    before = {n: state(n) for n in HOSTS[2:]}
    out, _ = play(
        "deploy.yml",
        *("-e", "compose_version=v4", *NO_DOCKER),
        *("-e", "pidock_deploy_serial=2", "-e", "pidock_deploy_max_fail_percentage=0"),
        *("-e", '{"fleet_fail_hosts": ["fleet-2"]}'),
        expect_rc=2,
    )
    lines = summary(out)
    assert lines["fleet-1"].startswith("deployed - release v4-"), lines
    assert lines["fleet-2"].startswith("rolled_back - release v3-"), lines
    assert "failed its health gate" in lines["fleet-2"], lines
    assert lines["fleet-3"].startswith("not_started"), lines
    assert lines["fleet-4"].startswith("not_started"), lines
    assert "Rollout incomplete: fleet-2 rolled_back, fleet-3 not_started, fleet-4 not_started" in out

    assert served("fleet-1") == "v4"
    # fleet-2 serves the release it had, and its broken one is on record as failed.
    assert served("fleet-2") == "v3"
    outcomes = {r["version"]: r.get("outcome") for r in releases("fleet-2").values()}
    assert outcomes["v4"] == "failed" and outcomes["v3"] == "success"
    # The hosts after the stop were not touched at all.
    for name in HOSTS[2:]:
        assert served(name) == "v3"
        assert state(name) == before[name]
        assert "v4" not in {r["version"] for r in releases(name).values()}


def test_rollback_previous_and_named() -> None:
    """rollback.yml on two hosts at the same time: fleet-1 to its previous release, fleet-3 to v1 by id."""
    v1 = next(rid for rid, r in releases("fleet-3").items() if r["version"] == "v1")
    runs = {
        "fleet-1": ("-l", "fleet-1"),
        "fleet-3": ("-l", "fleet-3", "-e", f"pidock_rollback_to={v1}"),
    }
    outs: dict[str, str] = {}

    def run(name: str) -> None:
        outs[name] = play("rollback.yml", *runs[name])[0]

    threads = [threading.Thread(target=run, args=(name,)) for name in runs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set(outs) == set(runs), "a rollback run failed (see above)"

    assert summary(outs["fleet-1"])["fleet-1"].startswith("rolled_back - release v3-")
    assert served("fleet-1") == "v3"
    outcomes = {r["version"]: r.get("outcome") for r in releases("fleet-1").values()}
    assert outcomes["v4"] == "rolled_back"

    assert summary(outs["fleet-3"])["fleet-3"] == f"rolled_back - release {v1} (v1)"
    assert served("fleet-3") == "v1"
    assert current("fleet-3") == v1
    # The other hosts kept what they served.
    assert [served(n) for n in ("fleet-2", "fleet-4")] == ["v3", "v3"]
