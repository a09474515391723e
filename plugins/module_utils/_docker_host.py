# Copyright: (c) 2026, pidock.stack maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What pidock.stack.docker reads on a host, parsed: pure functions, no I/O (docker_host_info does that)."""

from __future__ import annotations

import json
import re
from typing import Any

_DOCKERD_VERSION = re.compile(r"version v?([0-9]+\.[0-9]+\.[0-9]+)")
# Where apt records a successful `apt-get update` (what ansible.builtin.apt's cache_valid_time reads).
_APT_UPDATE_STAMP = "/var/lib/apt/periodic/update-success-stamp"
_APT_LISTS = "/var/lib/apt/lists"


def _dockerd_version(stdout: str) -> str | None:
    """`dockerd --version` -> '26.1.5' (None when it names no version)."""
    match = _DOCKERD_VERSION.search(stdout or "")
    return match.group(1) if match else None


def _compose_version(rc: int, stdout: str) -> str | None:
    """`docker compose version --short` -> '2.26.1' (None when the plugin is missing)."""
    text = (stdout or "").strip()
    if rc != 0 or not text:
        return None
    return text[1:] if text.startswith("v") else text


def _pi_model(raw: bytes | None) -> str:
    """The device-tree model, NUL terminator and whitespace stripped."""
    return (raw or b"").decode("utf-8", "replace").replace("\x00", "").strip()


def _is_pi(model: str, issue_exists: bool) -> bool:
    return issue_exists or "Raspberry Pi" in model


def _ipv6_unavailable(raw: bytes | None) -> bool:
    """True when the sysctl file is missing (no IPv6 in the kernel) or says it is disabled."""
    return raw is None or raw.decode("ascii", "replace").strip() == "1"


def _daemon_config(text: str | None) -> tuple[dict[str, Any], str | None]:
    """The current daemon.json as a dict, and an error when it is not a JSON object."""
    if text is None or not text.strip():
        return {}, None
    try:
        data = json.loads(text)
    except ValueError as exc:
        return {}, f"not valid JSON ({exc})"
    if not isinstance(data, dict):
        return {}, "not a JSON object"
    return data, None


def _docker_info(rc: int, stdout: str) -> dict[str, Any] | None:
    """`docker info --format '{{json .}}'` -> dict, None when the engine did not answer."""
    if rc != 0:
        return None
    try:
        data = json.loads(stdout or "")
    except ValueError:
        return None
    if not isinstance(data, dict) or not data.get("ServerVersion"):
        # The client prints its half even when the daemon is down; without ServerVersion nothing answered.
        return None
    return data


def _image_inspect(stdout: str) -> list[dict[str, Any]]:
    """`docker image inspect NAME...` -> the images found (it prints those and fails for the others)."""
    try:
        data = json.loads(stdout or "")
    except ValueError:
        return []
    if not isinstance(data, list):
        return []
    return [image for image in data if isinstance(image, dict) and image.get("Id")]


def _free_kb(statvfs: Any | None) -> int | None:
    """Free KiB for an unprivileged writer, as `df --output=avail` counts them; None without a filesystem."""
    if statvfs is None:
        return None
    return statvfs.f_bavail * statvfs.f_frsize // 1024


def _held(stdout: str) -> list[str]:
    return sorted({line.strip() for line in (stdout or "").splitlines() if line.strip()})


def _apt_lists_age(now: float, stamp_mtime: float | None, lists_mtime: float | None) -> float | None:
    """Seconds since the last `apt-get update`, as ansible.builtin.apt's cache_valid_time counts them."""
    mtime = stamp_mtime if stamp_mtime is not None else lists_mtime
    if mtime is None:
        return None
    return max(0.0, now - mtime)


def _package_name(spec: str) -> str:
    """'docker-ce=5:27.1.1-1~debian.12~bookworm' or 'docker.io' -> the package name."""
    return spec.split("=", 1)[0].strip()
