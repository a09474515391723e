#!/usr/bin/python
# Copyright: (c) 2026, pidock.stack maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: docker_host_info
short_description: Everything pidock.stack.docker reads on a host, in one call
version_added: 0.1.0
description:
  - Reads, in one module call, what the docker role needs to decide what to change on a host,
    the userland's package architecture, Raspberry Pi detection, whether IPv6 is available, the
    packages apt holds, the age of apt's package lists, the installed engine's version, the current
    C(daemon.json) and whether the data root it names holds Docker data, the running engine's
    C(docker info), the compose v2 version, and the Raspberry Pi files the role edits.
  - The compose role's preflight reads its part in the same call, what was four module runs per
    deploy, the free space on the engine's data root, which of the stack's images are present
    (O(images)) and the size of the image tarballs still to load (O(sizes)).
  - Read-only; a missing engine or file is reported as such (V(null), V(false)), never as a failure.
    It fails only when C(dpkg) or C(apt-mark) cannot be run (not a Debian-family host).
author:
  - pidock.stack maintainers (@pidock)
options:
  pi_model_file:
    description: The device-tree model file (a Pi names itself there).
    type: path
    default: /proc/device-tree/model
  pi_issue_file:
    description: The Raspberry Pi OS issue file.
    type: path
    default: /etc/rpi-issue
  pi_cmdline_files:
    description: Kernel command line files, in order of preference; the first existing one is returned.
    type: list
    elements: path
    default: []
  dhcpcd_conf:
    description: dhcpcd's configuration file.
    type: path
    default: /etc/dhcpcd.conf
  ipv6_sysctl_file:
    description: The sysctl file that says whether IPv6 is disabled.
    type: path
    default: /proc/sys/net/ipv6/conf/all/disable_ipv6
  daemon_json:
    description: Docker's daemon configuration file.
    type: path
    default: /etc/docker/daemon.json
  default_root:
    description: The data root Docker uses when C(daemon.json) names none.
    type: path
    default: /var/lib/docker
  engine:
    description: Ask the running engine for its state (C(docker info)).
    type: bool
    default: true
  packages:
    description: Debian packages whose installation to check (RV(packages_missing)).
    type: list
    elements: str
    default: []
  service:
    description: The systemd unit whose enabled and active state to read (RV(service_enabled), RV(service_active)).
    type: str
    default: docker.service
  images:
    description:
      - Image references (name:tag, name@digest or ID) to look up in the local image store (RV(images)).
      - Needs O(engine=true).
    type: list
    elements: str
    default: []
  sizes:
    description: Paths whose size in bytes to report (RV(sizes)).
    type: list
    elements: path
    default: []
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Read-only; runs the same in check mode.
  diff_mode:
    support: none
  platform:
    platforms: posix
"""

EXAMPLES = r"""
- name: Read the host's Docker state in one call
  pidock.stack.docker_host_info:
    pi_cmdline_files: [/boot/firmware/cmdline.txt, /boot/cmdline.txt]
  register: __docker_host

- name: Show the engine
  ansible.builtin.debug:
    msg: "{{ __docker_host.engine_version }} on {{ __docker_host.dpkg_arch }}, data root {{ __docker_host.data_root }}"
"""

RETURN = r"""
dpkg_arch:
  description: The userland's package architecture (C(dpkg --print-architecture)), not the kernel's.
  type: str
  returned: always
  sample: arm64
is_pi:
  description: Whether the host is a Raspberry Pi (the model names one, or the issue file exists).
  type: bool
  returned: always
pi_model:
  description: The device-tree model, empty when there is none.
  type: str
  returned: always
  sample: Raspberry Pi 4 Model B Rev 1.4
pi_cmdline_file:
  description: The first existing file of O(pi_cmdline_files), empty when none exists.
  type: str
  returned: always
pi_cmdline_mode:
  description: That file's mode (octal), empty when none exists.
  type: str
  returned: always
  sample: "0755"
dhcpcd_conf_exists:
  description: Whether O(dhcpcd_conf) exists.
  type: bool
  returned: always
ipv6_unavailable:
  description: Whether IPv6 is disabled or absent on the host.
  type: bool
  returned: always
held_packages:
  description: The packages apt holds (C(apt-mark showhold)), sorted.
  type: list
  elements: str
  returned: always
apt_lists_age:
  description:
    - Seconds since the last successful C(apt-get update), as ansible.builtin.apt's cache_valid_time counts them.
    - Null when apt never updated its lists.
  type: float
  returned: always
engine_version:
  description: The installed engine's version (C(dockerd --version)); null when dockerd is not installed.
  type: str
  returned: always
  sample: 26.1.5
daemon_config:
  description: The current C(daemon.json), V({}) when there is none.
  type: dict
  returned: always
daemon_config_error:
  description: Why the current C(daemon.json) could not be read as a JSON object; null when it could.
  type: str
  returned: always
data_root:
  description: The data root the current C(daemon.json) names, or O(default_root).
  type: str
  returned: always
data_root_has_data:
  description: Whether that data root holds Docker data (an C(image) directory).
  type: bool
  returned: always
packages_missing:
  description: The packages of O(packages) that are not installed.
  type: list
  elements: str
  returned: always
service_enabled:
  description: Whether O(service) is enabled (C(systemctl is-enabled) says C(enabled)).
  type: bool
  returned: always
service_active:
  description: Whether O(service) is active (C(systemctl is-active) says C(active)).
  type: bool
  returned: always
info:
  description: The running engine's C(docker info) as JSON; null when it did not answer, or with O(engine=false).
  type: dict
  returned: always
compose_version:
  description: The compose v2 plugin's version without a leading C(v); null when it is missing.
  type: str
  returned: always
  sample: 2.26.1
data_root_free_kb:
  description:
    - Free KiB on the running engine's data root (C(DockerRootDir) of RV(info)), as C(df --output=avail)
      counts them; on RV(data_root) when the engine did not answer; null when that path does not exist.
  type: int
  returned: always
images:
  description:
    - The images of O(images) that are present, each as C(docker image inspect) prints it (the same
      keys community.docker.docker_image_info returns). An absent image is simply not in the list.
  type: list
  elements: dict
  returned: always
sizes:
  description: Each path of O(sizes) with its size in bytes, null when it does not exist.
  type: dict
  returned: always
  sample: {"/opt/images/app.tar": 104857600}
"""

import os
import time
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.pidock.stack.plugins.module_utils import _docker_host as dh
from ansible_collections.pidock.stack.plugins.module_utils import _dpkg


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError:
        return None


def _stat(path: str, call: Any = os.stat) -> Any | None:
    """os.stat (or os.statvfs) of path, None when it cannot be read."""
    try:
        return call(path)
    except OSError:
        return None


# Seconds one call of a Docker binary may take before it is killed.
DOCKER_CALL_TIMEOUT = 120


def read_host(module: AnsibleModule) -> dict[str, Any]:
    p = module.params

    def run(argv: list[str], required: bool) -> tuple[int, str]:
        rc, out, err = module.run_command(argv, environ_update={"LC_ALL": "C"})
        if required and rc != 0:
            module.fail_json(msg=f"{' '.join(argv)} failed (rc {rc}): {(err or out).strip()[:500]}")
        return rc, out

    arch = run([module.get_bin_path("dpkg", required=True), "--print-architecture"], True)[1]
    holds = run([module.get_bin_path("apt-mark", required=True), "showhold"], True)[1]

    model = dh._pi_model(_read(p["pi_model_file"]))
    cmdline = next((f for f in p["pi_cmdline_files"] if os.path.isfile(f)), "")
    raw_config = _read(p["daemon_json"])
    config_text = raw_config.decode("utf-8", "replace") if raw_config is not None else None
    config, config_error = dh._daemon_config(config_text)
    root = config.get("data-root") or p["default_root"]

    # The Docker binaries are bounded in time: `docker info` waits forever on a wedged engine, and
    # a Go program can hang under emulation. A run that timed out (124, or 137 after the kill) is
    # tried once more, then read as "no answer".
    timeout = module.get_bin_path("timeout")

    def run_bounded(argv: list[str]) -> tuple[int, str]:
        if timeout:
            argv = [timeout, "--kill-after=10", str(DOCKER_CALL_TIMEOUT), *argv]
        rc, out = run(argv, False)
        if rc in (124, 137):
            rc, out = run(argv, False)
        return rc, out

    engine_version = None
    dockerd = module.get_bin_path("dockerd")
    if dockerd:
        engine_version = dh._dockerd_version(run_bounded([dockerd, "--version"])[1])

    info = compose = None
    images: list[dict[str, Any]] = []
    docker = module.get_bin_path("docker")
    if docker:
        if p["engine"]:
            info = dh._docker_info(*run_bounded([docker, "info", "--format", "{{json .}}"]))
        compose = dh._compose_version(*run_bounded([docker, "compose", "version", "--short"]))
        if p["engine"] and info is not None and p["images"]:
            # rc 1 when some are missing: the ones found are still printed.
            images = dh._image_inspect(run_bounded([docker, "image", "inspect", *p["images"]])[1])
    free_root = (info or {}).get("DockerRootDir") or root

    missing: list[str] = []
    if p["packages"]:
        names = [dh._package_name(spec) for spec in p["packages"]]
        # rc 1 only says that some package is unknown; the ones dpkg knows are still printed.
        query = [module.get_bin_path("dpkg-query", required=True), "-W", "-f", _dpkg.DPKG_QUERY_FORMAT, *names]
        installed = _dpkg.installed(run(query, False)[1])
        missing = [n for n in names if n not in installed]

    enabled = active = False
    systemctl = module.get_bin_path("systemctl")
    if systemctl:
        enabled = run([systemctl, "is-enabled", p["service"]], False)[1].strip() == "enabled"
        active = run([systemctl, "is-active", p["service"]], False)[1].strip() == "active"

    return {
        "dpkg_arch": arch.strip(),
        "is_pi": dh._is_pi(model, os.path.exists(p["pi_issue_file"])),
        "pi_model": model,
        "pi_cmdline_file": cmdline,
        "pi_cmdline_mode": f"{os.stat(cmdline).st_mode & 0o7777:04o}" if cmdline else "",
        "dhcpcd_conf_exists": os.path.exists(p["dhcpcd_conf"]),
        "ipv6_unavailable": dh._ipv6_unavailable(_read(p["ipv6_sysctl_file"])),
        "held_packages": dh._held(holds),
        "apt_lists_age": dh._apt_lists_age(
            time.time(),
            getattr(_stat(dh._APT_UPDATE_STAMP), "st_mtime", None),
            getattr(_stat(dh._APT_LISTS), "st_mtime", None),
        ),
        "engine_version": engine_version,
        "daemon_config": config,
        "daemon_config_error": config_error,
        "data_root": root,
        "data_root_has_data": os.path.isdir(os.path.join(root, "image")),
        "packages_missing": missing,
        "service_enabled": enabled,
        "service_active": active,
        "info": info,
        "compose_version": compose,
        "data_root_free_kb": dh._free_kb(_stat(free_root, os.statvfs)),
        "images": images,
        "sizes": {path: getattr(_stat(path), "st_size", None) for path in p["sizes"]},
    }


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "pi_model_file": {"type": "path", "default": "/proc/device-tree/model"},
            "pi_issue_file": {"type": "path", "default": "/etc/rpi-issue"},
            "pi_cmdline_files": {"type": "list", "elements": "path", "default": []},
            "dhcpcd_conf": {"type": "path", "default": "/etc/dhcpcd.conf"},
            "ipv6_sysctl_file": {"type": "path", "default": "/proc/sys/net/ipv6/conf/all/disable_ipv6"},
            "daemon_json": {"type": "path", "default": "/etc/docker/daemon.json"},
            "default_root": {"type": "path", "default": "/var/lib/docker"},
            "engine": {"type": "bool", "default": True},
            "packages": {"type": "list", "elements": "str", "default": []},
            "service": {"type": "str", "default": "docker.service"},
            "images": {"type": "list", "elements": "str", "default": []},
            "sizes": {"type": "list", "elements": "path", "default": []},
        },
        supports_check_mode=True,
    )
    module.exit_json(changed=False, **read_host(module))


if __name__ == "__main__":
    main()
