"""pidock.stack.docker on an emulated arm64 host (qemu-user-static)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from pidock_helpers import run_ok


def _facts(host) -> dict:
    # converge.yml writes them on the controller (a copy onto the emulated host is slow).
    name = host.backend.get_hostname()
    return json.loads((Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / f"docker_facts-{name}.json").read_text())


def test_host_really_is_arm64(host):
    assert run_ok(host, "uname -m").strip() == "aarch64"
    assert run_ok(host, "dpkg --print-architecture").strip() == "arm64"


def test_packages_installed_for_arm64(host):
    for pkg in ("docker.io", "docker-cli", "docker-compose"):
        assert host.package(pkg).is_installed, pkg
        arch = run_ok(host, f"dpkg-query -W -f '${{Architecture}}' {pkg}").strip()
        assert arch == "arm64", (pkg, arch)


def test_facts_report_arm64(host):
    facts = _facts(host)
    assert facts["architecture"] == "arm64"
    assert facts["install_source"] == "distro"
    assert facts["is_raspberry_pi"] is False


def test_daemon_json_written(host):
    cfg = json.loads(host.file("/etc/docker/daemon.json").content_string)
    assert cfg["live-restore"] is True
    assert cfg["log-opts"]["max-file"] == "3"


def test_facts_come_from_the_binaries(host):
    facts = _facts(host)
    version = run_ok(host, "dockerd --version")
    assert facts["engine_version"] and facts["engine_version"] in version, (facts, version)
    compose = run_ok(host, "docker compose version --short").strip().lstrip("v")
    assert facts["compose_version"] == compose
    # Engine-only facts are null when the engine is not started.
    assert facts["storage_driver"] is None
    assert facts["data_root"] is None


def test_engine_enabled_for_a_real_boot(host):
    assert host.service("docker").is_enabled
