"""_host_reads: /proc/net/tcp parsing, units from cgroups, space at the nearest ancestor, the engine API client."""

from __future__ import annotations

import json
import os
import socket
import socketserver
import threading
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from ansible_collections.pidock.stack.plugins.module_utils import _host_reads as hr

_TCP_HEAD = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
_TCP6_HEAD = (
    "  sl  local_address                         remote_address                        st tx_queue rx_queue tr "
    "tm->when retrnsmt   uid  timeout inode\n"
)


def _row(local: str, state: str, inode: str) -> str:
    return f"   0: {local} 00000000:0000 {state} 00000000:00000000 00:00000000 00000000     0    0 {inode} 1 0 0 10 0\n"


def _row6(local: str, state: str, inode: str) -> str:
    return (
        f"   0: {local} 00000000000000000000000000000000:0000 {state} 00000000:00000000 00:00000000 00000000"
        f"     0        0 {inode} 1 0 0 10 0\n"
    )


SOCKET_CASES: list[tuple[str, str, str, list[dict[str, Any]]]] = [
    ("nothing listens", _TCP_HEAD, _TCP6_HEAD, []),
    (
        "any address and loopback, sorted by port",
        _TCP_HEAD + _row("0100007F:20FB", "0A", "222") + _row("00000000:0050", "0A", "111"),
        _TCP6_HEAD,
        [
            {"port": 80, "address": "0.0.0.0:80", "inode": "111"},
            {"port": 8443, "address": "127.0.0.1:8443", "inode": "222"},
        ],
    ),
    (
        "established and time-wait sockets are left out",
        _TCP_HEAD + _row("0100007F:20FB", "01", "1") + _row("0100007F:01BB", "06", "0"),
        _TCP6_HEAD,
        [],
    ),
    (
        "IPv6 any and loopback",
        _TCP_HEAD,
        _TCP6_HEAD
        + _row6("00000000000000000000000000000000:01BB", "0A", "333")
        + _row6("00000000000000000000000001000000:0016", "0A", "444"),
        [
            {"port": 22, "address": "[::1]:22", "inode": "444"},
            {"port": 443, "address": "[::]:443", "inode": "333"},
        ],
    ),
    ("a short line is skipped", _TCP_HEAD + "   0: 00000000:0050 00000000:0000 0A\n", _TCP6_HEAD, []),
]


@pytest.mark.parametrize(("name", "tcp", "tcp6", "expected"), SOCKET_CASES, ids=[c[0] for c in SOCKET_CASES])
def test_listening_sockets(name: str, tcp: str, tcp6: str, expected: list[dict[str, Any]]) -> None:
    assert hr.listening_sockets(tcp, tcp6) == expected, name


UNIT_CASES = [
    ("cgroup v2 host", "0::/system.slice/nginx.service\n", "nginx.service"),
    (
        "a host that is itself a container (the scenarios' hosts)",
        "9:name=systemd:/docker/caa34ab9/system.slice/docker.service\n0::/docker/caa34ab9/system.slice/docker.service\n",
        "docker.service",
    ),
    ("a unit's own sub-cgroup", "0::/system.slice/postgresql@17-main.service/payload\n", "postgresql@17-main.service"),
    ("a login session", "0::/user.slice/user-1000.slice/session-3.scope\n", "session-3.scope"),
    ("the user manager", "0::/user.slice/user-1000.slice/user@1000.service/app.slice/x.service\n", "user@1000.service"),
    ("cgroup v1 only", "4:memory:/system.slice/a.service\n1:name=systemd:/system.slice/ssh.service\n", "ssh.service"),
    ("hybrid with an empty unified path", "1:name=systemd:/system.slice/cron.service\n0::/\n", "cron.service"),
    ("the root cgroup", "0::/\n", ""),
    ("unreadable", "", ""),
]


@pytest.mark.parametrize(("name", "cgroup", "unit"), UNIT_CASES, ids=[c[0] for c in UNIT_CASES])
def test_unit_of(name: str, cgroup: str, unit: str) -> None:
    assert hr.unit_of(cgroup) == unit, name


def _fake_proc(root: Path, pids: dict[int, dict[str, Any]], tcp: str, tcp6: str) -> Path:
    (root / "net").mkdir(parents=True)
    (root / "net" / "tcp").write_text(tcp)
    (root / "net" / "tcp6").write_text(tcp6)
    for pid, info in pids.items():
        fd = root / str(pid) / "fd"
        fd.mkdir(parents=True)
        (root / str(pid) / "comm").write_text(info["comm"] + "\n")
        (root / str(pid) / "cgroup").write_text(info["cgroup"])
        for n, target in enumerate(info["fds"]):
            os.symlink(target, fd / str(n))
    (root / "self").mkdir()  # not a pid: skipped
    return root


def test_listeners_name_the_lowest_pid_its_process_and_unit(tmp_path: Path) -> None:
    proc = _fake_proc(
        tmp_path / "proc",
        {
            30: {"comm": "nginx", "cgroup": "0::/system.slice/nginx.service\n", "fds": ["socket:[111]", "/dev/null"]},
            12: {"comm": "nginx", "cgroup": "0::/system.slice/nginx.service\n", "fds": ["socket:[111]"]},
            40: {"comm": "python3", "cgroup": "0::/system.slice/squat.service\n", "fds": ["pipe:[9]", "socket:[222]"]},
        },
        _TCP_HEAD
        + _row("00000000:0050", "0A", "111")
        + _row("0100007F:20FB", "0A", "222")
        # a socket nobody here holds (another namespace's, or a process gone meanwhile)
        + _row("00000000:01BB", "0A", "999"),
        _TCP6_HEAD,
    )
    assert hr.listeners(str(proc)) == [
        {"port": 80, "address": "0.0.0.0:80", "process": "nginx", "unit": "nginx.service"},
        {"port": 443, "address": "0.0.0.0:443", "process": "-", "unit": "-"},
        {"port": 8443, "address": "127.0.0.1:8443", "process": "python3", "unit": "squat.service"},
    ]
    assert hr.socket_owners(str(proc), ["111"]) == {"111": 12}


def test_listeners_find_a_real_socket_of_this_process() -> None:
    """Against this machine's /proc: a socket this test opens is found with this process's name."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        port = sock.getsockname()[1]
        found = [s for s in hr.listeners() if s["port"] == port]
    comm = Path("/proc/self/comm").read_text().strip()
    assert found == [{"port": port, "address": f"127.0.0.1:{port}", "process": comm, "unit": found[0]["unit"]}]


def test_space_is_measured_at_the_nearest_existing_ancestor(tmp_path: Path) -> None:
    missing = tmp_path / "not" / "yet"
    (entry,) = hr.space([str(missing)])
    stat = os.statvfs(tmp_path)
    assert entry["path"] == str(missing)
    assert entry["available_bytes"] == pytest.approx(stat.f_bavail * stat.f_frsize, rel=0.01)
    assert os.path.ismount(entry["mount"]) and str(tmp_path).startswith(entry["mount"])


@pytest.mark.parametrize(
    ("path", "existing", "expected"),
    [
        ("/var/lib/docker", {"/var/lib/docker", "/var/lib", "/var", "/"}, "/var/lib/docker"),
        ("/var/lib/pidock-migrate", {"/var/lib", "/var", "/"}, "/var/lib"),
        ("/srv/a/b", {"/"}, "/"),
    ],
)
def test_nearest_existing(path: str, existing: set[str], expected: str) -> None:
    assert hr.nearest_existing(path, exists=existing.__contains__) == expected


def test_mount_point_walks_up_to_the_mount() -> None:
    mounts = {"/", "/srv"}
    assert hr.mount_point("/srv/data/x", ismount=mounts.__contains__) == "/srv"
    assert hr.mount_point("/var/lib", ismount=mounts.__contains__) == "/"


def test_volume_entry_and_count(tmp_path: Path) -> None:
    (tmp_path / ".hidden").write_text("x")
    (tmp_path / "dir").mkdir()
    assert hr.count_entries(str(tmp_path)) == 2
    assert hr.count_entries(str(tmp_path / "gone")) is None
    assert hr.volume_entry("v", "var_v", None, None) == {
        "var": "var_v",
        "name": "v",
        "exists": False,
        "labels": {},
        "entries": 0,
    }
    found = {"Name": "v", "Labels": None, "Mountpoint": "/m"}
    assert hr.volume_entry("v", "var_v", found, 3) == {
        "var": "var_v",
        "name": "v",
        "exists": True,
        "labels": {},
        "entries": 3,
    }


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("unix:///var/run/docker.sock", "/var/run/docker.sock"),
        ("unix:///run/user/1000/docker.sock", "/run/user/1000/docker.sock"),
    ],
)
def test_socket_path(host: str, expected: str) -> None:
    assert hr.socket_path(host) == expected


def test_socket_path_refuses_tcp() -> None:
    with pytest.raises(ValueError, match="must be a unix:// socket"):
        hr.socket_path("tcp://10.0.0.1:2376")


class FakeEngine:
    """A Docker Engine API on a unix socket: path -> (status, body); the requests are recorded."""

    def __init__(self, path: Path, answers: dict[str, tuple[int, Any]]) -> None:
        self.requests: list[str] = []
        engine = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                engine.requests.append(self.path)
                status, body = answers.get(self.path, (404, {"message": f"no route {self.path}"}))
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = socketserver.UnixStreamServer(str(path), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def engine(tmp_path: Path):
    started: list[FakeEngine] = []

    def _start(answers: dict[str, tuple[int, Any]]) -> tuple[FakeEngine, hr.DockerApi]:
        sock = tmp_path / "docker.sock"
        fake = FakeEngine(sock, answers)
        started.append(fake)
        return fake, hr.DockerApi(str(sock), timeout=5)

    yield _start
    for fake in started:
        fake.close()


def test_api_reads_version_image_volume_and_users(engine) -> None:
    volume_filter = "/containers/json?filters=%7B%22volume%22%3A+%5B%22a%22%2C+%22b%22%5D%7D"
    fake, api = engine(
        {
            "/version": (200, {"Version": "28.1.1"}),
            "/images/local/postgres:17-pgvector/json": (200, {"Architecture": "arm64"}),
            "/volumes/a": (200, {"Name": "a", "Labels": {"x": "y"}, "Mountpoint": "/m"}),
            volume_filter: (200, [{"Names": ["/c"], "State": "running"}]),
        }
    )
    assert api.version() == "28.1.1"
    assert api.image("local/postgres:17-pgvector") == {"Architecture": "arm64"}
    assert api.image("missing:1") is None
    assert api.volume("a") == {"Name": "a", "Labels": {"x": "y"}, "Mountpoint": "/m"}
    assert api.volume("b") is None
    assert api.containers_using(["a", "b"]) == [{"Names": ["/c"], "State": "running"}]
    assert api.containers_using([]) == []
    assert volume_filter in fake.requests


def test_api_error_other_than_not_found_is_raised(engine) -> None:
    _fake, api = engine({"/images/x/json": (500, {"message": "  the engine broke  "})})
    with pytest.raises(hr.DockerApiError) as caught:
        api.image("x")
    assert caught.value.status == 500 and caught.value.message == "the engine broke"


def test_api_without_an_engine_raises_oserror(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        hr.DockerApi(str(tmp_path / "none.sock"), timeout=1).version()
