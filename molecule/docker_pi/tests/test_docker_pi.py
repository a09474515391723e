"""pidock.stack.docker on a simulated Raspberry Pi, and its failure cases."""

from __future__ import annotations

import json

import pytest
from pidock_helpers import docker_info, run_ok

CMDLINE = "/boot/firmware/cmdline.txt"
ORIGINAL = "console=serial0,115200 console=tty1 root=PARTUUID=4e639091-02 rootfstype=ext4 fsck.repair=yes rootwait"


def _facts(host) -> dict:
    return json.loads(host.file("/root/docker_facts.json").content_string)


def test_facts_say_pi(host):
    facts = _facts(host)
    assert facts["is_raspberry_pi"] is True
    assert facts["pi_model"] == "Raspberry Pi 4 Model B Rev 1.5"
    assert facts["architecture"] == "amd64", "dpkg's architecture, whatever the model says"
    assert facts["install_source"] == "distro"


def test_cmdline_tokens_are_on_line_one_and_the_blank_line_stays(host):
    content = host.file(CMDLINE).content_string
    first, rest = content.split("\n", 1)
    assert rest == "\n", repr(content)
    assert {"cgroup_enable=memory", "cgroup_memory=1"} <= set(first.split()), repr(content)


@pytest.mark.parametrize("token", ["cgroup_enable=memory", "cgroup_memory=1"])
def test_cmdline_token_added_exactly_once(host, token):
    count = run_ok(host, f"grep -o -w -c -- '{token}' {CMDLINE}").strip()
    assert count == "1"
    words = host.file(CMDLINE).content_string.split()
    assert words.count(token) == 1


def test_cmdline_keeps_the_original_tokens_in_order(host):
    line = host.file(CMDLINE).content_string.strip()
    assert line.startswith(ORIGINAL + " "), line
    assert host.file(CMDLINE).mode == 0o755


def test_dhcpcd_denies_veth_once(host):
    lines = host.file("/etc/dhcpcd.conf").content_string.splitlines()
    assert lines.count("denyinterfaces veth*") == 1
    assert lines[0] == "# A sample configuration for dhcpcd.", "existing content kept"


def test_operator_in_docker_group_can_use_docker(host):
    assert "docker" in host.user("pi").groups
    out = run_ok(host, "runuser -u pi -- docker info --format '{{.ServerVersion}}'")
    assert out.strip() == docker_info(host)["ServerVersion"]


def test_proxy_dropin(host):
    dropin = host.file("/etc/systemd/system/docker.service.d/10-pidock-proxy.conf")
    assert dropin.mode == 0o640
    assert dropin.content_string.startswith("#")
    env = run_ok(host, "systemctl show docker --property=Environment")
    assert "HTTP_PROXY=http://pidock:proxy-s3cret%40x@proxy.pidock.invalid:3128" in env, "% reaches dockerd as %"
    assert "NO_PROXY=localhost,127.0.0.1" in env
    assert "DOCKER_ALLOW_IPV6_ON_IPV4_INTERFACE=1" in env, "both drop-ins apply"


def test_invalid_daemon_option_fails_cleanly(host):
    result = json.loads(host.file("/root/failures/daemon_option.json").content_string)
    msg = result["msg"]
    assert "dockerd rejected the new daemon.json" in msg, msg
    assert "pidock-bogus-option" in msg, "dockerd's own reason is passed on"
    assert result["before"] == result["after"], "daemon.json was replaced"
    assert result["started_before"] == result["started_after"], "dockerd was restarted"
    assert "pidock-bogus-option" not in host.file("/etc/docker/daemon.json").content_string
    assert host.service("docker").is_running
    assert docker_info(host)["LiveRestoreEnabled"] is True


BAD_INPUTS = [
    "docker_install_source",
    "docker_upstream_channel",
    "docker_ipv6_workaround",
    "docker_compose_required",
    "docker_pi_reboot",
    "docker_packages",
    "docker_daemon_options",
    "docker_users",
    "docker_default_address_pools",
    "docker_proxy_env",
    "docker_upstream_gpg_fingerprint",
    "docker_data_root",
]


@pytest.mark.parametrize("variable", BAD_INPUTS)
def test_bad_input_rejected_naming_the_variable(host, variable):
    msg = host.file(f"/root/failures/{variable}.txt").content_string
    assert msg != "accepted"
    assert variable in msg, msg


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("docker_pi_cmdline_tokens", "must be one kernel parameter without whitespace"),
        ("docker_proxy_env_injection", "docker_proxy_env.HTTP_PROXY: a URL or host list without"),
        ("docker_upstream_repo_url", "docker_upstream_repo_url: http is refused"),
    ],
)
def test_injections_and_http_are_refused_before_anything_changes(host, case, expected):
    msg = host.file(f"/root/failures/{case}.txt").content_string
    assert expected in msg, msg
    assert not host.file("/root/pwned").exists
    assert "init=/bin/sh" not in host.file(CMDLINE).content_string
    assert "ExecStartPre" not in host.file("/etc/systemd/system/docker.service.d/10-pidock-proxy.conf").content_string


def test_data_root_moved_to_the_ssd(host):
    info = docker_info(host)
    assert info["DockerRootDir"] == "/mnt/ssd/docker"
    assert _facts(host)["data_root"] == "/mnt/ssd/docker"
    cfg = json.loads(host.file("/etc/docker/daemon.json").content_string)
    assert cfg["data-root"] == "/mnt/ssd/docker"
    assert host.file("/mnt/ssd/docker").mode == 0o710


def test_data_survived_the_move(host):
    tags = run_ok(host, "docker image ls --format '{{.Repository}}:{{.Tag}}'").split()
    assert "pidock/probe:latest" in tags
    run_ok(host, "docker run --rm pidock/probe:latest /usr/bin/sleep 0")


def test_old_data_root_kept(host):
    assert host.file("/var/lib/docker/image").is_directory, "the old copy stays until the operator removes it"


def test_too_old_compose_names_the_version_found(host):
    msg = host.file("/root/failures/compose_too_old.txt").content_string
    found = run_ok(host, "docker compose version --short").strip().lstrip("v")
    assert "Compose v2 >= 99.0 is required" in msg, msg
    assert f"version {found} was found" in msg, msg
