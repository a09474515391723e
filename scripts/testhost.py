#!/usr/bin/env python3
"""Create or remove a stand-alone test host container outside Molecule (the `make demo` Pi).

It uses the same host-container settings as every Molecule scenario, read from
.config/molecule/config.yml (driver.host_defaults), so there is one place that says how a host
container that runs systemd and its own Docker engine is started on this machine.

    testhost.py create NAME IMAGE [--publish 127.0.0.1:8443:443 ...]
    testhost.py remove NAME
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent


def host_defaults() -> dict[str, Any]:
    config = yaml.safe_load((ROOT / ".config" / "molecule" / "config.yml").read_text(encoding="utf-8"))
    return config["driver"]["host_defaults"]


def docker(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], check=check, capture_output=True, text=True)


def create(name: str, image: str, publish: list[str]) -> None:
    if docker("container", "inspect", name, check=False).returncode == 0:
        print(f"{name}: already exists")
        return
    d = host_defaults()
    cache = os.environ.get("PIDOCK_CACHE", "/var/cache/pidock-testground")
    argv = ["run", "-d", "--name", name, "--hostname", name, "--label", "pidock.testhost=" + name]
    argv += [f"--cap-add={cap}" for cap in d["capabilities"]]
    argv += [f"--security-opt={opt}" for opt in d["security_opts"]]
    argv += [f"--cgroupns={d['cgroupns_mode']}"]
    argv += [f"--tmpfs={path}" for path in d["tmpfs"]]
    argv += [f"--volume={vol}" for vol in d["volumes"]]
    if d.get("docker_volume"):
        argv += [f"--volume={name}-var-lib-docker:/var/lib/docker"]
    argv += [f"--volume={cache}/images:{d['images_mount']}:ro"]
    argv += [f"--publish={p}" for p in publish]
    argv += ["--stop-signal=SIGRTMIN+3", image, d["command"]]
    docker(*argv)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        state = docker("exec", name, "systemctl", "is-system-running", check=False).stdout.strip()
        if state in ("running", "degraded"):
            print(f"{name}: up ({state})")
            return
        time.sleep(1)
    sys.exit(f"{name}: systemd did not finish booting within 120 s")


def remove(name: str) -> None:
    docker("rm", "-f", "-v", name, check=False)
    docker("volume", "rm", f"{name}-var-lib-docker", check=False)
    print(f"{name}: removed")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("create")
    c.add_argument("name")
    c.add_argument("image")
    c.add_argument("--publish", action="append", default=[])
    r = sub.add_parser("remove")
    r.add_argument("name")
    args = parser.parse_args()
    if args.cmd == "create":
        create(args.name, args.image, args.publish)
    else:
        remove(args.name)


if __name__ == "__main__":
    main()
