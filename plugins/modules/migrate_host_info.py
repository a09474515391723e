#!/usr/bin/python
# Copyright: (c) 2026, pidock.stack maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: migrate_host_info
short_description: Read what a migration's plan needs to know about a host, in one call
version_added: 0.1.0
description:
  - Reads, on the bare-metal host or on the host that receives the stack, the facts that
    P(pidock.stack.migrate_plan#filter) turns into blockers and estimates for the P(pidock.stack.migrate#role) role.
    One call replaces a task per fact (about twenty module runs per plan, each costing a Python start on the host).
  - Only the parts whose options are given are read. The Docker Engine is asked through its API on a unix socket,
    never through the C(docker) CLI; listening sockets come from C(/proc/net/tcp) and C(/proc/net/tcp6) with the
    process that holds each and that process's systemd unit, as C(ss -ltnp) and C(ps -o unit=) would show them.
  - Read-only.
author:
  - pidock.stack maintainers (@pidock)
options:
  paths:
    description: Paths whose existence is reported in RV(facts.paths) (symlinks followed).
    type: list
    elements: path
    default: []
  units:
    description:
      - systemd units whose C(Id), C(ActiveState) and C(UnitFileState) are reported in RV(facts.units), as the text
        of C(systemctl show) (parsed by the plan's filter).
    type: list
    elements: str
    default: []
  arch:
    description: Report the userland architecture (C(dpkg --print-architecture)) in RV(facts.arch).
    type: bool
    default: false
  image:
    description: An image whose inspect document is reported in RV(facts.image).
    type: str
  engine:
    description:
      - Report the engine in RV(facts.engine) - its version, whether IPv6 is disabled on the host, and
        C(docker.service)'s C(Environment=).
    type: bool
    default: false
  space:
    description:
      - Paths whose free space is reported in RV(facts.space), each measured at its nearest existing ancestor (a
        directory still to be created lives there).
    type: list
    elements: path
    default: []
  listeners:
    description: Report the listening TCP sockets in RV(facts.listeners).
    type: bool
    default: false
  volumes:
    description:
      - Named volumes reported in RV(facts.volumes) (whether each exists, its labels and how many entries its top
        directory holds), and the running containers that mount any of them in RV(facts.volume_users).
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: The volume's name.
        type: str
        required: true
      var:
        description: The variable that names it, for the plan's messages.
        type: str
  docker_host:
    description: The engine's socket.
    type: str
    default: unix:///var/run/docker.sock
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: none
notes:
  - An engine that does not answer is not an error here. The version is then empty, the image and the volumes are
    missing, and the plan says so.
"""

EXAMPLES = r"""
- name: Read the target host for the plan
  pidock.stack.migrate_host_info:
    arch: true
    image: local/postgres:17-pgvector
    engine: true
    space: [/var/lib/docker, /var/lib/pidock-migrate]
    listeners: true
    volumes:
      - {var: migrate_target_pgdata_volume, name: inventory_pgdata}
  register: target

- name: Read the bare-metal host for the plan
  pidock.stack.migrate_host_info:
    paths: [/var/lib/inventory/images, /var/lib/inventory/config/inventory.env]
    units: [inventory.service, nginx.service, postgresql@17-main.service]
  register: source
"""

RETURN = r"""
facts:
  description: One key per part read; parts not asked for are left out.
  returned: success
  type: dict
  contains:
    paths:
      description: Path -> whether it exists.
      type: dict
      sample: {/var/lib/inventory/images: true}
    units:
      description: The text of C(systemctl show --property=Id,ActiveState,UnitFileState) for the units.
      type: str
    arch:
      description: The userland architecture as dpkg names it.
      type: str
      sample: arm64
    image:
      description: V(found), the inspect document as V(inspect) when found, and the engine's V(error) otherwise.
      type: dict
      sample: {found: true, inspect: {Architecture: arm64}, error: ""}
    engine:
      description: V(version) (empty when the engine does not answer), V(ipv6_disabled), V(environment).
      type: dict
      sample: {version: 28.1.1, ipv6_disabled: false, environment: "Environment="}
    space:
      description: Per path, the mount point that holds it and the bytes available there.
      type: list
      elements: dict
      sample: [{path: /var/lib/docker, mount: /, available_bytes: 10737418240}]
    listeners:
      description: Listening TCP sockets with the process that holds each and its unit (V(-) when unknown).
      type: list
      elements: dict
      sample: [{port: 443, address: "0.0.0.0:443", process: nginx, unit: nginx.service}]
    volumes:
      description: Per volume asked for - V(var), V(name), V(exists), V(labels), V(entries) (null when unreadable).
      type: list
      elements: dict
    volume_users:
      description: The running containers that mount any of the volumes, as the engine API lists containers.
      type: list
      elements: dict
"""

import os
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.pidock.stack.plugins.module_utils import _host_reads as hr


def _engine_reads(module: AnsibleModule, api: hr.DockerApi, params: dict[str, Any], facts: dict[str, Any]) -> None:
    """The parts that ask the engine: each tolerates an engine that does not answer."""
    version, unreachable = "", ""
    try:
        version = api.version() if params["engine"] else ""
    except (OSError, hr.DockerApiError, ValueError) as exc:
        unreachable = str(exc) or type(exc).__name__
    if params["engine"]:
        facts["engine"] = {"version": version, "ipv6_disabled": _ipv6_disabled(), "environment": _dockerd_env(module)}
    if params["image"]:
        if unreachable:
            facts["image"] = {"found": False, "inspect": {}, "error": f"the engine did not answer ({unreachable})"}
        else:
            try:
                inspect = api.image(params["image"])
                error = "" if inspect else f"No such image: {params['image']}"
            except (OSError, hr.DockerApiError, ValueError) as exc:
                inspect, error = None, f"the engine did not answer ({exc})"
            facts["image"] = {"found": inspect is not None, "inspect": inspect or {}, "error": error}
    if params["volumes"]:
        volumes, users = [], []
        try:
            for vol in params["volumes"]:
                found = api.volume(vol["name"])
                entries = hr.count_entries(found["Mountpoint"]) if found and found.get("Mountpoint") else None
                volumes.append(hr.volume_entry(vol["name"], vol.get("var"), found, entries))
            users = api.containers_using([vol["name"] for vol in params["volumes"]])
        except (OSError, hr.DockerApiError, ValueError):
            volumes = [hr.volume_entry(vol["name"], vol.get("var"), None, None) for vol in params["volumes"]]
        facts["volumes"] = volumes
        facts["volume_users"] = users


def _ipv6_disabled() -> bool:
    try:
        with open("/proc/sys/net/ipv6/conf/all/disable_ipv6", encoding="ascii") as handle:
            return handle.read().strip() != "0"
    except OSError:
        return True  # no IPv6 in the kernel


def _dockerd_env(module: AnsibleModule) -> str:
    rc, out, _err = module.run_command(["systemctl", "show", "docker.service", "--property=Environment"])
    return out if rc == 0 else ""


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "paths": {"type": "list", "elements": "path", "default": []},
            "units": {"type": "list", "elements": "str", "default": []},
            "arch": {"type": "bool", "default": False},
            "image": {"type": "str"},
            "engine": {"type": "bool", "default": False},
            "space": {"type": "list", "elements": "path", "default": []},
            "listeners": {"type": "bool", "default": False},
            "volumes": {
                "type": "list",
                "elements": "dict",
                "default": [],
                "options": {"name": {"type": "str", "required": True}, "var": {"type": "str"}},
            },
            "docker_host": {"type": "str", "default": "unix:///var/run/docker.sock"},
        },
        supports_check_mode=True,
    )
    params = module.params
    facts: dict[str, Any] = {}
    if params["paths"]:
        facts["paths"] = {path: os.path.exists(path) for path in params["paths"]}
    if params["units"]:
        argv = ["systemctl", "show", "--property=Id,ActiveState,UnitFileState", *params["units"]]
        rc, out, err = module.run_command(argv)
        if rc != 0:
            module.fail_json(msg=f"systemctl show failed (rc {rc}): {err.strip()}", cmd=argv)
        facts["units"] = out
    if params["arch"]:
        rc, out, err = module.run_command(["dpkg", "--print-architecture"])
        if rc != 0:
            module.fail_json(msg=f"dpkg --print-architecture failed (rc {rc}): {err.strip()}")
        facts["arch"] = out.strip()
    if params["space"]:
        facts["space"] = hr.space(params["space"])
    if params["listeners"]:
        facts["listeners"] = hr.listeners()
    if params["engine"] or params["image"] or params["volumes"]:
        try:
            api = hr.DockerApi(hr.socket_path(params["docker_host"]))
        except ValueError as exc:
            module.fail_json(msg=f"docker_host: {exc}")
        _engine_reads(module, api, params, facts)
    module.exit_json(changed=False, facts=facts)


if __name__ == "__main__":
    main()
