"""Filter pidock.stack.docker_upstream_repo: which of Docker's apt repositories fits a host."""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleFilterError

DOCUMENTATION = r"""
name: docker_upstream_repo
short_description: Choose Docker's apt repository flavour for a host, or explain why none fits
description:
  - Docker publishes C(debian), C(raspbian) and C(ubuntu) repositories. Raspberry Pi OS with a
    32-bit userland (dpkg architecture C(armhf)) must use C(raspbian); 64-bit Raspberry Pi OS uses
    C(debian).
  - The package architecture is the userland's (C(dpkg --print-architecture)), never the kernel's;
    a 64-bit kernel with a 32-bit userland is common on Pis.
  - ARMv6 CPUs (Pi Zero / Pi 1, C(armel) userland or C(armv6l) machine) are refused with a reason.
positional: _input
options:
  _input:
    description: Host facts, a dict with C(distribution), C(dpkg_arch), C(machine), C(is_pi).
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Pick the repository flavour
  ansible.builtin.set_fact:
    __repo: >-
      {{ {'distribution': ansible_facts['distribution'], 'dpkg_arch': 'armhf',
          'machine': ansible_facts['machine'], 'is_pi': true} | pidock.stack.docker_upstream_repo }}
"""

RETURN = r"""
_value:
  description: C(flavor) (debian, raspbian, ubuntu or null) and C(refusal) (empty when supported).
  type: dict
"""

_SUPPORTED_ARCHES = {
    "debian": {"amd64", "arm64", "armhf", "ppc64el", "s390x", "i386"},
    "raspbian": {"armhf"},
    "ubuntu": {"amd64", "arm64", "armhf", "ppc64el", "s390x"},
}


def docker_upstream_repo(host: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(host, dict):
        raise AnsibleFilterError("docker_upstream_repo: expects a dict of host facts")
    distribution = str(host.get("distribution", "")).lower()
    arch = str(host.get("dpkg_arch", "")).strip()
    machine = str(host.get("machine", "")).strip().lower()
    is_pi = bool(host.get("is_pi", False))

    if arch == "armel" or machine.startswith("armv6"):
        return {
            "flavor": None,
            "refusal": (
                f"ARMv6 CPU (machine {machine or '?'}, dpkg architecture {arch or '?'}: Raspberry Pi Zero/1): "
                "Docker's upstream packages are built for ARMv7 and later and crash on ARMv6. "
                "Use docker_install_source: distro (Raspberry Pi OS builds docker.io for ARMv6)."
            ),
        }
    if distribution == "ubuntu":
        flavor = "ubuntu"
    elif distribution in ("debian", "raspbian"):
        flavor = "raspbian" if arch == "armhf" and (is_pi or distribution == "raspbian") else "debian"
    else:
        return {
            "flavor": None,
            "refusal": f"distribution {host.get('distribution')!r} has no Docker upstream repository in this role",
        }
    if arch not in _SUPPORTED_ARCHES[flavor]:
        return {
            "flavor": None,
            "refusal": f"Docker's {flavor} repository has no packages for dpkg architecture {arch!r}",
        }
    return {"flavor": flavor, "refusal": ""}


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"docker_upstream_repo": docker_upstream_repo}
