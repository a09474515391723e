"""Unit tests for the pidock.stack.docker_upstream_repo filter."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.pidock.stack.plugins.filter.docker_upstream_repo import FilterModule, docker_upstream_repo


@pytest.mark.parametrize(
    ("distribution", "dpkg_arch", "machine", "is_pi", "flavor"),
    [
        ("Debian", "amd64", "x86_64", False, "debian"),
        ("Debian", "arm64", "aarch64", False, "debian"),
        # Raspberry Pi OS 64-bit (reports Debian): debian repository.
        ("Debian", "arm64", "aarch64", True, "debian"),
        # Raspberry Pi OS 32-bit userland on a 64-bit kernel: raspbian, despite the aarch64 machine.
        ("Debian", "armhf", "aarch64", True, "raspbian"),
        ("Raspbian", "armhf", "armv7l", False, "raspbian"),
        # A generic armhf Debian board that is not a Pi uses Docker's debian repository.
        ("Debian", "armhf", "armv7l", False, "debian"),
        ("Ubuntu", "amd64", "x86_64", False, "ubuntu"),
        ("Ubuntu", "arm64", "aarch64", True, "ubuntu"),
    ],
)
def test_flavor(distribution, dpkg_arch, machine, is_pi, flavor):
    got = docker_upstream_repo(
        {"distribution": distribution, "dpkg_arch": dpkg_arch, "machine": machine, "is_pi": is_pi}
    )
    assert got == {"flavor": flavor, "refusal": ""}


@pytest.mark.parametrize(
    ("host", "reason"),
    [
        ({"distribution": "Raspbian", "dpkg_arch": "armhf", "machine": "armv6l", "is_pi": True}, "ARMv6"),
        ({"distribution": "Debian", "dpkg_arch": "armel", "machine": "armv6l", "is_pi": True}, "ARMv6"),
        ({"distribution": "Debian", "dpkg_arch": "armel", "machine": "armv7l", "is_pi": False}, "ARMv6"),
        ({"distribution": "Debian", "dpkg_arch": "riscv64", "machine": "riscv64", "is_pi": False}, "riscv64"),
        ({"distribution": "Ubuntu", "dpkg_arch": "i386", "machine": "i686", "is_pi": False}, "i386"),
        ({"distribution": "Fedora", "dpkg_arch": "amd64", "machine": "x86_64", "is_pi": False}, "Fedora"),
    ],
)
def test_refusals_say_why(host, reason):
    got = docker_upstream_repo(host)
    assert got["flavor"] is None
    assert reason in got["refusal"]


def test_armv6_refusal_points_to_distro():
    got = docker_upstream_repo({"distribution": "Raspbian", "dpkg_arch": "armhf", "machine": "armv6l"})
    assert "docker_install_source: distro" in got["refusal"]


def test_not_a_dict():
    with pytest.raises(AnsibleFilterError):
        docker_upstream_repo("Debian")


def test_registered():
    assert FilterModule().filters()["docker_upstream_repo"] is docker_upstream_repo
