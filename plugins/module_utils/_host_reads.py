# Copyright: (c) 2026, pidock.stack maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What migrate_host_info reads on a host, parsed: pure functions over /proc text and the Docker
Engine API's answers, plus a small client for that API over its unix socket. No Ansible imports."""

from __future__ import annotations

import http.client
import json
import os
import socket
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import quote, urlencode

_LISTEN = "0A"
# A process's unit: the first cgroup path component with one of these suffixes (slices are only
# containers of units, and a prefix such as /docker/<id> of a host that is itself a container is skipped).
_UNIT_SUFFIXES = (".service", ".scope", ".socket", ".mount", ".swap", ".timer", ".path", ".target", ".device")


def _ipv4(hex_addr: str) -> str:
    """/proc/net/tcp's address word (host byte order on little-endian machines) -> dotted quad."""
    raw = bytes.fromhex(hex_addr)
    return ".".join(str(b) for b in reversed(raw))


def _ipv6(hex_addr: str) -> str:
    """/proc/net/tcp6's four 32-bit words, each in host byte order -> the compressed IPv6 text."""
    raw = b"".join(bytes.fromhex(hex_addr[i : i + 8])[::-1] for i in range(0, 32, 8))
    return socket.inet_ntop(socket.AF_INET6, raw)


def listening_sockets(tcp: str, tcp6: str) -> list[dict[str, Any]]:
    """The listening TCP sockets of /proc/net/tcp and /proc/net/tcp6: [{port, address, inode}], sorted by port.

    address is shown as ss shows it: 0.0.0.0:80, 127.0.0.1:8443, [::]:443.
    """
    out = []
    for text, family in ((tcp, 4), (tcp6, 6)):
        for line in text.splitlines()[1:]:
            fields = line.split()
            if len(fields) < 10 or fields[3] != _LISTEN:
                continue
            addr_hex, _sep, port_hex = fields[1].partition(":")
            port = int(port_hex, 16)
            address = f"{_ipv4(addr_hex)}:{port}" if family == 4 else f"[{_ipv6(addr_hex)}]:{port}"
            out.append({"port": port, "address": address, "inode": fields[9]})
    return sorted(out, key=lambda s: (s["port"], s["address"]))


def unit_of(cgroup: str) -> str:
    """The systemd unit of a process from /proc/<pid>/cgroup ('' when none): from the unified (0::)
    line, else from the name=systemd line of a cgroup v1 host."""
    paths = {}
    for line in cgroup.splitlines():
        hierarchy, _sep, rest = line.partition(":")
        controllers, _sep, cg_path = rest.partition(":")
        if hierarchy == "0" and controllers == "":
            paths["unified"] = cg_path
        elif controllers == "name=systemd":
            paths["systemd"] = cg_path
    for key in ("unified", "systemd"):
        for part in paths.get(key, "").split("/"):
            if part.endswith(".slice"):
                continue
            if part.endswith(_UNIT_SUFFIXES):
                return part
    return ""


def socket_owners(proc_root: str, inodes: Iterable[str]) -> dict[str, int]:
    """inode -> the lowest pid with that socket open (ss names every user; the plan names one)."""
    wanted = {f"socket:[{inode}]" for inode in inodes}
    owners: dict[str, int] = {}
    if not wanted:
        return owners
    try:
        pids = sorted(int(p) for p in os.listdir(proc_root) if p.isdigit())
    except OSError:
        return owners
    for pid in pids:
        fd_dir = os.path.join(proc_root, str(pid), "fd")
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue  # gone, or not ours to read
        for fd in fds:
            try:
                target = os.readlink(os.path.join(fd_dir, fd))
            except OSError:
                continue
            if target in wanted:
                owners.setdefault(target[len("socket:[") : -1], pid)
        if len(owners) == len(wanted):
            break
    return owners


def listeners(proc_root: str = "/proc") -> list[dict[str, Any]]:
    """Every listening TCP socket with its process (comm, as ss prints it) and that process's unit."""

    def read(path: str) -> str:
        try:
            with open(path, encoding="ascii", errors="replace") as handle:
                return handle.read()
        except OSError:
            return ""

    sockets = listening_sockets(read(f"{proc_root}/net/tcp"), read(f"{proc_root}/net/tcp6"))
    owners = socket_owners(proc_root, [s["inode"] for s in sockets])
    out = []
    for sock in sockets:
        pid = owners.get(sock["inode"])
        process = read(f"{proc_root}/{pid}/comm").strip() if pid else ""
        unit = unit_of(read(f"{proc_root}/{pid}/cgroup")) if pid else ""
        out.append({"port": sock["port"], "address": sock["address"], "process": process or "-", "unit": unit or "-"})
    return out


def _up_to(path: str, found: Callable[[str], bool]) -> str:
    """The path itself or its nearest ancestor for which ``found`` holds (the root at the latest)."""
    here = path
    while not found(here):
        parent = os.path.dirname(here)
        if parent == here:
            break
        here = parent
    return here


def nearest_existing(path: str, exists: Callable[[str], bool] = os.path.exists) -> str:
    """The path itself or its nearest existing ancestor: a directory the migration will create is
    measured where it will live."""
    return _up_to(path, exists)


def mount_point(path: str, ismount: Callable[[str], bool] = os.path.ismount) -> str:
    """The mount point that holds an existing path."""
    return _up_to(os.path.realpath(path), ismount)


def space(paths: Iterable[str]) -> list[dict[str, Any]]:
    """[{path, mount, available_bytes}] for each path, measured at its nearest existing ancestor
    (the space an unprivileged user may use, as df's Available column)."""
    out = []
    for path in paths:
        here = nearest_existing(path)
        stat = os.statvfs(here)
        out.append({"path": path, "mount": mount_point(here), "available_bytes": stat.f_bavail * stat.f_frsize})
    return out


def volume_entry(name: str, var: str | None, found: Mapping[str, Any] | None, entries: int | None) -> dict[str, Any]:
    """One stack volume as migrate_plan reads it: {var, name, exists, labels, entries}."""
    if not found:
        return {"var": var, "name": name, "exists": False, "labels": {}, "entries": 0}
    return {"var": var, "name": name, "exists": True, "labels": dict(found.get("Labels") or {}), "entries": entries}


def count_entries(path: str) -> int | None:
    """How many entries (hidden ones too) a directory holds at its top; None when it cannot be read."""
    try:
        with os.scandir(path) as entries:
            return sum(1 for _entry in entries)
    except OSError:
        return None


class DockerApiError(Exception):
    """The engine answered with an error status (status and its message kept)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._path)
        self.sock = sock


def socket_path(docker_host: str) -> str:
    """unix:///var/run/docker.sock -> /var/run/docker.sock (only unix sockets are read here)."""
    if not docker_host.startswith("unix://"):
        raise ValueError(f"docker_host must be a unix:// socket, not {docker_host!r}")
    return docker_host[len("unix://") :]


class DockerApi:
    """GET requests to the Docker Engine API over its unix socket: JSON in, JSON out."""

    def __init__(self, path: str, timeout: float = 30.0) -> None:
        self.path = path
        self.timeout = timeout

    def get(self, url: str, query: Mapping[str, str] | None = None) -> Any:
        if query:
            url = f"{url}?{urlencode(query)}"
        conn = _UnixConnection(self.path, self.timeout)
        try:
            conn.request("GET", url)
            resp = conn.getresponse()
            body = resp.read().decode("utf-8", "replace")
        finally:
            conn.close()
        if resp.status >= 400:
            try:
                message = json.loads(body).get("message", body)
            except ValueError:
                message = body
            raise DockerApiError(resp.status, str(message).strip())
        return json.loads(body) if body else None

    def version(self) -> str:
        return str((self.get("/version") or {}).get("Version", ""))

    def get_or_none(self, url: str) -> Any:
        """GET, None when the engine answers 404 (no such object)."""
        try:
            return self.get(url)
        except DockerApiError as exc:
            if exc.status == 404:
                return None
            raise

    def image(self, name: str) -> dict[str, Any] | None:
        """The image's inspect document, None when the engine has no such image."""
        return self.get_or_none(f"/images/{quote(name, safe='/:@')}/json")

    def volume(self, name: str) -> dict[str, Any] | None:
        """The volume's inspect document, None when there is no such volume."""
        return self.get_or_none(f"/volumes/{quote(name, safe='')}")

    def containers_using(self, volumes: list[str]) -> list[dict[str, Any]]:
        """Running containers that mount any of the volumes (the API's container list entries)."""
        if not volumes:
            return []
        return list(self.get("/containers/json", {"filters": json.dumps({"volume": volumes})}) or [])
