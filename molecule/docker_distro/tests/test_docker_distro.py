"""pidock.stack.docker, distro source: engine running, daemon.json effective, facts exported."""

from __future__ import annotations

import json

import pytest
from pidock_helpers import docker_info, run_ok, version_tuple

# A one-binary image built from the host's own files (-h stores the symlinked paths as files).
PROBE_IMAGE = (
    "docker image inspect pidock/probe:latest >/dev/null 2>&1 || "
    "tar -C / -ch usr/bin/sleep lib64/ld-linux-x86-64.so.2 lib/x86_64-linux-gnu/libc.so.6 "
    "| docker import - pidock/probe:latest"
)


def _major(host) -> int:
    return int(host.system_info.release.split(".")[0])


def _facts(host) -> dict:
    return json.loads(host.file("/root/docker_facts.json").content_string)


def test_engine_running_and_enabled(host):
    svc = host.service("docker")
    assert svc.is_running
    assert svc.is_enabled


def test_engine_comes_from_debian(host):
    assert host.package("docker.io").is_installed
    server = docker_info(host)["ServerVersion"]
    assert version_tuple(server)[0] == (26 if _major(host) >= 13 else 20), server


def test_daemon_json_is_the_merged_config(host):
    f = host.file("/etc/docker/daemon.json")
    assert f.mode == 0o644
    assert f.user == "root"
    cfg = json.loads(f.content_string)
    assert cfg["log-driver"] == "json-file"
    assert cfg["log-opts"] == {"max-size": "20m", "max-file": "3"}, "options must merge over the defaults"
    assert cfg["live-restore"] is True
    assert cfg["default-address-pools"] == [{"base": "172.31.0.0/16", "size": 24}]


def test_daemon_json_is_effective(host):
    info = docker_info(host)
    assert info["LoggingDriver"] == "json-file"
    assert info["LiveRestoreEnabled"] is True
    assert "pidock.scenario=docker_distro" in info["Labels"]


def test_new_networks_use_the_address_pool(host):
    run_ok(host, "docker network create pidock-pool-probe")
    try:
        net = json.loads(run_ok(host, "docker network inspect pidock-pool-probe"))[0]
        subnet = net["IPAM"]["Config"][0]["Subnet"]
        assert subnet.startswith("172.31."), subnet
    finally:
        run_ok(host, "docker network rm pidock-pool-probe")


def test_compose_v2_only_on_debian_13(host):
    result = host.run("docker compose version --short")
    if _major(host) >= 13:
        assert result.rc == 0, result.stderr
        assert version_tuple(result.stdout) >= (2, 18)
    else:
        assert result.rc != 0


def test_ipv6_dropin_detected_only_for_engine_26(host):
    dropin = host.file("/etc/systemd/system/docker.service.d/10-pidock-ipv6.conf")
    env = run_ok(host, "systemctl show docker --property=Environment")
    if _major(host) >= 13:
        assert dropin.exists
        assert dropin.content_string.startswith("#")
        assert "DOCKER_ALLOW_IPV6_ON_IPV4_INTERFACE=1" in env
    else:
        assert not dropin.exists
        assert "DOCKER_ALLOW_IPV6_ON_IPV4_INTERFACE" not in env


def test_container_on_user_defined_network_starts(host):
    if _major(host) < 13:
        pytest.skip("no image to run on the Debian 12 host; the IPv6 bug concerns Docker >= 26")
    # An image from the host's own filesystem: no registry here.
    run_ok(host, PROBE_IMAGE)
    run_ok(host, "docker network create pidock-probe-net")
    try:
        run_ok(
            host, "docker run -d --name pidock-probe --network pidock-probe-net pidock/probe:latest /usr/bin/sleep 30"
        )
        state = json.loads(run_ok(host, "docker inspect pidock-probe"))[0]["State"]
        assert state["Running"], state
    finally:
        host.run("docker rm -f pidock-probe")
        host.run("docker network rm pidock-probe-net")


def test_facts_exported(host):
    facts = _facts(host)
    info = docker_info(host)
    assert facts["engine_version"] == info["ServerVersion"]
    assert facts["storage_driver"] == info["Driver"] == "overlay2"
    assert facts["cgroup_driver"] == info["CgroupDriver"]
    assert str(facts["cgroup_version"]) == str(info["CgroupVersion"])
    assert facts["data_root"] == "/var/lib/docker"
    assert facts["architecture"] == run_ok(host, "dpkg --print-architecture").strip() == "amd64"
    assert facts["is_raspberry_pi"] is False
    assert facts["install_source"] == "distro"
    if _major(host) >= 13:
        assert version_tuple(facts["compose_version"]) >= (2, 18)
    else:
        assert facts["compose_version"] is None


def test_debian_12_says_compose_v2_cannot_be_had(host):
    if _major(host) >= 13:
        pytest.skip("Debian 13 packages compose v2")
    result = json.loads(host.file("/root/compose_required.json").content_string)
    assert "Compose v2 cannot be had from Debian 12 packages" in result["msg"], result["msg"]
    assert "docker_compose_required: false" in result["msg"]
    assert result["same"], "the role must stop before touching daemon.json"


def test_role_installed_the_python_libraries_docker_modules_need(host):
    # The base image (debootstrap minbase) has no python3-requests: dpkg's log shows this host
    # installed it, i.e. the role did.
    assert host.package("python3-requests").is_installed
    assert "install python3-requests" in host.file("/var/log/dpkg.log").content_string
    assert host.run("python3 -c 'import requests'").rc == 0


def test_community_docker_api_modules_work_on_the_host(host):
    info = json.loads(host.file("/root/docker_host_info.json").content_string)
    assert info["ServerVersion"] == docker_info(host)["ServerVersion"]
