"""docker_host_info: what the docker role reads on a host, in one call, parsed and never failing on a missing piece."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from ansible.module_utils import basic
from ansible_collections.pidock.stack.plugins.module_utils import _docker_host as dh
from ansible_collections.pidock.stack.plugins.module_utils import _dpkg
from ansible_collections.pidock.stack.plugins.modules import docker_host_info
from conftest import ModuleFailed, RunModule

INFO = {"ServerVersion": "26.1.5", "Driver": "overlay2", "DockerRootDir": "/var/lib/docker", "LoggingDriver": "local"}


@pytest.mark.parametrize(
    ("stdout", "expected"),
    [
        ("Docker version 26.1.5+dfsg1, build a72d7cd\n", "26.1.5"),
        ("Docker version 20.10.24+dfsg1, build 5d6db84\n", "20.10.24"),
        ("Docker version v27.3.1, build 41ca978\n", "27.3.1"),
        ("", None),
        ("dockerd: unknown flag\n", None),
    ],
)
def test_dockerd_version(stdout: str, expected: str | None) -> None:
    assert dh._dockerd_version(stdout) == expected


@pytest.mark.parametrize(
    ("rc", "stdout", "expected"),
    [(0, "v2.26.1\n", "2.26.1"), (0, "2.29.7\n", "2.29.7"), (1, "", None), (0, "  \n", None), (125, "v2.1.0", None)],
)
def test_compose_version(rc: int, stdout: str, expected: str | None) -> None:
    assert dh._compose_version(rc, stdout) == expected


@pytest.mark.parametrize(
    ("raw", "issue", "model", "is_pi"),
    [
        (b"Raspberry Pi 4 Model B Rev 1.4\x00", False, "Raspberry Pi 4 Model B Rev 1.4", True),
        (None, True, "", True),
        (None, False, "", False),
        (b"QEMU Virtual Machine\x00", False, "QEMU Virtual Machine", False),
    ],
)
def test_pi_detection(raw: bytes | None, issue: bool, model: str, is_pi: bool) -> None:
    assert dh._pi_model(raw) == model
    assert dh._is_pi(dh._pi_model(raw), issue) is is_pi


@pytest.mark.parametrize(("raw", "unavailable"), [(b"1\n", True), (b"0\n", False), (None, True)])
def test_ipv6(raw: bytes | None, unavailable: bool) -> None:
    assert dh._ipv6_unavailable(raw) is unavailable


@pytest.mark.parametrize(
    ("text", "config", "error"),
    [
        (None, {}, None),
        ("", {}, None),
        ('{"data-root": "/mnt/ssd/docker"}', {"data-root": "/mnt/ssd/docker"}, "ok"),
        ("{not json", {}, "not valid JSON"),
        ("[1, 2]", {}, "not a JSON object"),
    ],
)
def test_daemon_config(text: str | None, config: dict[str, Any], error: str | None) -> None:
    got, err = dh._daemon_config(text)
    assert got == config
    if error in (None, "ok"):
        assert err is None
    else:
        assert err is not None and error in err


@pytest.mark.parametrize(
    ("rc", "stdout", "expected"),
    [
        (0, json.dumps(INFO), INFO),
        # The client half alone: the daemon did not answer.
        (0, json.dumps({"ServerVersion": "", "ServerErrors": ["Cannot connect"]}), None),
        (1, "", None),
        (0, "not json", None),
    ],
)
def test_docker_info(rc: int, stdout: str, expected: dict[str, Any] | None) -> None:
    assert dh._docker_info(rc, stdout) == expected


@pytest.mark.parametrize(
    ("stdout", "installed"),
    [
        ("docker.io install ok installed\n", {"docker.io"}),
        ("docker.io deinstall ok config-files\nrunc:arm64 install ok installed\n", {"runc"}),
        ("", set()),
    ],
)
def test_installed(stdout: str, installed: set[str]) -> None:
    assert _dpkg.installed(stdout) == installed


@pytest.mark.parametrize(
    ("stamp", "lists", "age"), [(900.0, 100.0, 100.0), (None, 400.0, 600.0), (None, None, None), (1200.0, None, 0.0)]
)
def test_apt_lists_age(stamp: float | None, lists: float | None, age: float | None) -> None:
    assert dh._apt_lists_age(1000.0, stamp, lists) == age


def _fake_commands(
    monkeypatch: pytest.MonkeyPatch, commands: dict[str, tuple[int, str, str]], bins: set[str]
) -> list[list[str]]:
    calls: list[list[str]] = []

    def run_command(self: basic.AnsibleModule, argv: list[str], **_: Any) -> tuple[int, str, str]:
        calls.append(argv)
        key = " ".join([os.path.basename(argv[0]), *argv[1:]])
        return commands.get(key, (127, "", f"{key}: not found"))

    def get_bin_path(self: basic.AnsibleModule, name: str, required: bool = False, **_: Any) -> str | None:
        if name in bins:
            return f"/usr/bin/{name}"
        if required:
            self.fail_json(msg=f"Failed to find required executable {name}")
        return None

    monkeypatch.setattr(basic.AnsibleModule, "run_command", run_command)
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", get_bin_path)
    return calls


BASE_COMMANDS = {
    "dpkg --print-architecture": (0, "arm64\n", ""),
    "apt-mark showhold": (0, "docker-ce\ndocker-ce-cli\n", ""),
    "dockerd --version": (0, "Docker version 26.1.5+dfsg1, build a72d7cd\n", ""),
    "docker info --format {{json .}}": (0, json.dumps(INFO), ""),
    "docker compose version --short": (0, "v2.26.1\n", ""),
    "dpkg-query -W -f ${Package} ${Status}\n docker.io docker-compose python3-requests": (
        1,
        "docker.io install ok installed\ndocker-compose:amd64 install ok installed\n",
        "dpkg-query: no packages found matching python3-requests",
    ),
    "systemctl is-enabled docker.service": (0, "enabled\n", ""),
    "systemctl is-active docker.service": (3, "inactive\n", ""),
}


def _args(tmp_path: Path) -> dict[str, Any]:
    return {
        "pi_model_file": str(tmp_path / "model"),
        "pi_issue_file": str(tmp_path / "rpi-issue"),
        "pi_cmdline_files": [str(tmp_path / "firmware-cmdline.txt"), str(tmp_path / "cmdline.txt")],
        "dhcpcd_conf": str(tmp_path / "dhcpcd.conf"),
        "ipv6_sysctl_file": str(tmp_path / "disable_ipv6"),
        "daemon_json": str(tmp_path / "daemon.json"),
        "default_root": str(tmp_path / "var-lib-docker"),
    }


# (name, files to create, binaries present, engine, expected subset)
CASES: list[tuple[str, dict[str, Any], set[str], bool, dict[str, Any]]] = [
    (
        "converged Pi with an SSD data root",
        {
            "model": b"Raspberry Pi 5 Model B Rev 1.0\x00",
            "cmdline.txt": b"console=tty1\n",
            "dhcpcd.conf": b"",
            "disable_ipv6": b"1\n",
            "daemon.json": b'{"data-root": "DATA"}',
            "ssd/image/": None,
        },
        {"dpkg", "apt-mark", "dockerd", "docker", "dpkg-query", "systemctl"},
        True,
        {
            "packages_missing": ["python3-requests"],
            "service_enabled": True,
            "service_active": False,
            "dpkg_arch": "arm64",
            "is_pi": True,
            "pi_model": "Raspberry Pi 5 Model B Rev 1.0",
            "pi_cmdline_file": "cmdline.txt",
            "pi_cmdline_mode": "0644",
            "dhcpcd_conf_exists": True,
            "ipv6_unavailable": True,
            "held_packages": ["docker-ce", "docker-ce-cli"],
            "engine_version": "26.1.5",
            "data_root": "ssd",
            "data_root_has_data": True,
            "info": INFO,
            "compose_version": "2.26.1",
        },
    ),
    (
        "fresh Debian host without Docker",
        {"disable_ipv6": b"0\n"},
        {"dpkg", "apt-mark"},
        True,
        {
            "service_enabled": False,
            "service_active": False,
            "is_pi": False,
            "pi_cmdline_file": "",
            "pi_cmdline_mode": "",
            "dhcpcd_conf_exists": False,
            "ipv6_unavailable": False,
            "engine_version": None,
            "daemon_config": {},
            "data_root": "var-lib-docker",
            "data_root_has_data": False,
            "info": None,
            "compose_version": None,
        },
    ),
    (
        "engine not to be asked (docker_start_engine false)",
        {"rpi-issue": b"Raspberry Pi reference\n", "firmware-cmdline.txt": b"x\n", "cmdline.txt": b"y\n"},
        {"dpkg", "apt-mark", "dockerd", "docker"},
        False,
        {"is_pi": True, "pi_cmdline_file": "firmware-cmdline.txt", "info": None, "compose_version": "2.26.1"},
    ),
]


@pytest.mark.parametrize(("name", "files", "bins", "engine", "expected"), CASES, ids=[c[0] for c in CASES])
def test_module(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    run_module: RunModule,
    name: str,
    files: dict[str, Any],
    bins: set[str],
    engine: bool,
    expected: dict[str, Any],
) -> None:
    for rel, content in files.items():
        path = tmp_path / rel
        if content is None:
            path.mkdir(parents=True)
            continue
        text = content.replace(b"DATA", str(tmp_path / "ssd").encode())
        path.write_bytes(text)
        path.chmod(0o644)
    calls = _fake_commands(monkeypatch, BASE_COMMANDS, bins)
    packages = ["docker.io", "docker-compose=2.26.1+ds1-1", "python3-requests"] if "dpkg-query" in bins else []
    result = run_module(
        docker_host_info.main, {**_args(tmp_path), "engine": engine, "packages": packages}, check_mode=True
    )
    assert result["changed"] is False
    for key, want in expected.items():
        got = result[key]
        if key in ("pi_cmdline_file", "data_root") and want:
            want = str(tmp_path / want)
        assert got == want, f"{name}: {key}"
    asked_info = any(c[1:2] == ["info"] for c in calls)
    assert asked_info is (engine and "docker" in bins)


def test_fails_without_dpkg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run_module: RunModule) -> None:
    broken = {**BASE_COMMANDS, "dpkg --print-architecture": (2, "", "dpkg: broken")}
    _fake_commands(monkeypatch, broken, {"dpkg", "apt-mark"})
    with pytest.raises(ModuleFailed, match="dpkg --print-architecture failed"):
        run_module(docker_host_info.main, _args(tmp_path))


def test_docker_calls_are_bounded_and_retried_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run_module: RunModule
) -> None:
    """A hung `docker info` (timeout's 124) is asked twice, then read as no answer; others are wrapped too."""
    bound = f"timeout --kill-after=10 {docker_host_info.DOCKER_CALL_TIMEOUT}"
    commands = {
        **BASE_COMMANDS,
        f"{bound} /usr/bin/dockerd --version": BASE_COMMANDS["dockerd --version"],
        f"{bound} /usr/bin/docker info --format {{{{json .}}}}": (124, "", ""),
        f"{bound} /usr/bin/docker compose version --short": (137, "", ""),
    }
    calls = _fake_commands(monkeypatch, commands, {"dpkg", "apt-mark", "dockerd", "docker", "timeout"})
    result = run_module(docker_host_info.main, {**_args(tmp_path), "engine": True}, check_mode=True)
    assert result["engine_version"] == "26.1.5"
    assert result["info"] is None
    assert result["compose_version"] is None
    docker_calls = [c for c in calls if c[0] == "/usr/bin/timeout"]
    assert [c[3:] for c in docker_calls] == [
        ["/usr/bin/dockerd", "--version"],
        ["/usr/bin/docker", "info", "--format", "{{json .}}"],
        ["/usr/bin/docker", "info", "--format", "{{json .}}"],
        ["/usr/bin/docker", "compose", "version", "--short"],
        ["/usr/bin/docker", "compose", "version", "--short"],
    ]


IMAGE = {"Id": "sha256:aa", "RepoTags": ["local/app:1"], "Architecture": "arm64", "Config": {"Labels": None}}


@pytest.mark.parametrize(
    ("stdout", "expected"),
    [
        (json.dumps([IMAGE]), [IMAGE]),
        # Some names missing: docker prints the images it found and fails for the rest.
        (json.dumps([IMAGE, {"Id": ""}]), [IMAGE]),
        ("[]\n", []),
        ("", []),
        ("Error: No such image: local/app:1", []),
        (json.dumps({"Id": "sha256:aa"}), []),
    ],
)
def test_image_inspect(stdout: str, expected: list[dict[str, Any]]) -> None:
    assert dh._image_inspect(stdout) == expected


def test_free_kb() -> None:
    class Vfs:
        f_bavail = 2048
        f_frsize = 4096

    assert dh._free_kb(Vfs()) == 8192
    assert dh._free_kb(None) is None


@pytest.mark.parametrize(
    ("case", "engine_answers", "want_images", "asked_images"),
    [
        ("engine up: the images found, the sizes, the free space of its data root", True, [IMAGE], True),
        ("engine down: no image asked for, free space of the configured root", False, [], False),
    ],
)
def test_compose_preflight_read(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    run_module: RunModule,
    case: str,
    engine_answers: bool,
    want_images: list[dict[str, Any]],
    asked_images: bool,
) -> None:
    """What the compose role's preflight reads in the same call (was four module runs)."""
    engine_root = tmp_path / "engine-root"
    engine_root.mkdir()
    (tmp_path / "var-lib-docker").mkdir()
    tarball = tmp_path / "app.tar"
    tarball.write_bytes(b"x" * 3000)
    info = {**INFO, "DockerRootDir": str(engine_root)}
    commands = {
        **BASE_COMMANDS,
        "docker info --format {{json .}}": (0, json.dumps(info), "") if engine_answers else (1, "", "no engine"),
        "docker image inspect local/app:1 local/db:2": (1, json.dumps([IMAGE]), "Error: No such image: local/db:2"),
    }
    calls = _fake_commands(monkeypatch, commands, {"dpkg", "apt-mark", "docker"})
    result = run_module(
        docker_host_info.main,
        {
            **_args(tmp_path),
            "images": ["local/app:1", "local/db:2"],
            "sizes": [str(tarball), str(tmp_path / "missing.tar")],
        },
        check_mode=True,
    )
    assert result["images"] == want_images, case
    assert result["sizes"] == {str(tarball): 3000, str(tmp_path / "missing.tar"): None}, case
    vfs = os.statvfs(engine_root if engine_answers else tmp_path / "var-lib-docker")
    assert abs(result["data_root_free_kb"] - vfs.f_bavail * vfs.f_frsize // 1024) < 1024 * 64, case
    assert any(c[1:3] == ["image", "inspect"] for c in calls) is asked_images, case
