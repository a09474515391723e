"""The test ground works: systemd hosts whose own Docker engine (installed by the role here) stores
on overlay2, and the project's sample images run on it (side_effect.yml starts them on Debian 13)."""

from __future__ import annotations

import pytest
from pidock_helpers import docker_info, docker_inspect, http, http_json, run_ok


def _needs_the_sample_stack(host) -> None:
    if host.system_info.codename != "trixie":
        pytest.skip("the sample stack runs on the Debian 13 host")


def test_systemd_is_pid_1_and_running(host):
    assert host.process.get(pid=1).comm == "systemd"
    state = host.run("systemctl is-system-running").stdout.strip()
    assert state in ("running", "degraded"), state


def test_engine_stores_on_overlay2_in_its_own_volume(host):
    info = docker_info(host)
    assert info["Driver"] == "overlay2", info["Driver"]
    assert info["DockerRootDir"] == "/var/lib/docker"


def test_sample_images_are_loaded(host):
    _needs_the_sample_stack(host)
    tags = set(run_ok(host, "docker image ls --format '{{.Repository}}:{{.Tag}}'").split())
    assert {"local/postgres:17-pgvector", "local/nginx:latest", "local/inventory-app:latest"} <= tags


def test_container_on_user_defined_network_answers_http(host):
    _needs_the_sample_stack(host)
    nginx = docker_inspect(host, "tg-nginx")
    assert nginx["State"]["Running"]
    assert "tg-net" in nginx["NetworkSettings"]["Networks"]
    status, body = http(host, "http://127.0.0.1:8080/")
    assert status == 200
    assert "pidock sample nginx" in body


def test_app_reports_database_ok(host):
    _needs_the_sample_stack(host)
    status, body = http_json(host, "http://127.0.0.1:8000/health")
    assert status == 200
    assert body == {"release": "testground", "db": "ok", "images": 0}


def test_app_runs_as_non_root(host):
    _needs_the_sample_stack(host)
    assert run_ok(host, "docker exec tg-app id -u").strip() == "1000"


def test_postgres_has_pgvector_and_is_healthy(host):
    _needs_the_sample_stack(host)
    assert docker_inspect(host, "tg-postgres")["State"]["Health"]["Status"] == "healthy"
    out = run_ok(
        host,
        "docker exec tg-postgres psql -U inventory -d inventory_db -tAc "
        "\"CREATE EXTENSION IF NOT EXISTS vector; SELECT '[1,2]'::vector <-> '[1,3]'::vector\"",
    )
    assert out.strip().splitlines()[-1] == "1"


def test_app_reports_error_when_database_is_down(host):
    _needs_the_sample_stack(host)
    run_ok(host, "docker stop tg-postgres")
    try:
        status, body = http_json(host, "http://127.0.0.1:8000/health")
        assert status != 200
        assert body["db"].startswith("error")
    finally:
        run_ok(host, "docker start tg-postgres")


def test_zipped_module_code_is_compiled_once(host):
    """The test hosts keep what Python compiles for Ansible's zipped modules (images/testhost/).

    Converge ran modules on this host, so ansible.module_utils' code is cached: an entry per source,
    each a code object this host's Python loads.
    """
    entries = run_ok(host, "ls /var/cache/pidock-zipimport").split()
    assert len(entries) >= 20, entries
    loads = run_ok(
        host,
        'python3 -c \'import marshal, sys; d = "/var/cache/pidock-zipimport/"; '
        'print(all(hasattr(marshal.load(open(d + n, "rb")), "co_code") for n in sys.argv[1:]))\' '
        + " ".join(entries[:5]),
    )
    assert loads.strip() == "True"
