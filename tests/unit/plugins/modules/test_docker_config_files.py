"""docker_config_files: daemon.json and the drop-ins in one call; validated before anything changes, only what
differs touched, check mode predicts it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from ansible.module_utils import basic
from ansible_collections.pidock.stack.plugins.modules import docker_config_files
from conftest import ModuleFailed, RunModule

DAEMON = '{\n  "log-driver": "local"\n}\n'
IPV6 = "[Service]\nEnvironment=DOCKER_ALLOW_IPV6_ON_IPV4_INTERFACE=1\n"
PROXY = '[Service]\nEnvironment="HTTPS_PROXY=http://user:s3cret@proxy:3128"\n'


def _files(tmp_path: Path, **over: Any) -> list[dict[str, Any]]:
    files = [
        {"path": str(tmp_path / "etc/docker/daemon.json"), "content": DAEMON, "backup": True, "validate": "true %s"},
        {"path": str(tmp_path / "dropins/10-ipv6.conf"), "content": over.get("ipv6", IPV6)},
        {"path": str(tmp_path / "dropins/10-proxy.conf"), "content": over.get("proxy"), "mode": "0640"},
    ]
    if "daemon" in over:
        files[0]["content"] = over["daemon"]
    return files


@pytest.fixture
def fake_validate(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    calls: list[list[str]] = []

    def run_command(self: basic.AnsibleModule, argv: list[str], **_: Any) -> tuple[int, str, str]:
        calls.append(argv)
        content = Path(argv[-1]).read_text()
        return (1, "", "unknown option") if "bogus" in content else (0, "", "")

    monkeypatch.setattr(basic.AnsibleModule, "run_command", run_command)
    return calls


def test_check_real_idempotent(tmp_path: Path, run_module: RunModule, fake_validate: list[list[str]]) -> None:
    checked = run_module(docker_config_files.main, {"files": _files(tmp_path)}, check_mode=True)
    assert checked["changed"] and set(checked["files"].values()) == {"write"} and len(checked["files"]) == 2
    assert not (tmp_path / "etc").exists()

    real = run_module(docker_config_files.main, {"files": _files(tmp_path)})
    assert real["files"] == checked["files"] and real["backup_files"] == {}
    assert (tmp_path / "etc/docker/daemon.json").read_text() == DAEMON
    assert (tmp_path / "dropins/10-ipv6.conf").stat().st_mode & 0o7777 == 0o644
    assert not (tmp_path / "dropins/10-proxy.conf").exists()

    again = run_module(docker_config_files.main, {"files": _files(tmp_path)})
    assert again == {"changed": False, "files": {}, "backup_files": {}}


@pytest.mark.parametrize(
    ("over", "expected"),
    [
        ({"proxy": PROXY}, {"10-proxy.conf": "write"}),
        ({"ipv6": None}, {"10-ipv6.conf": "remove"}),
        ({"daemon": '{\n  "log-driver": "json-file"\n}\n'}, {"daemon.json": "write"}),
    ],
)
def test_only_what_differs(
    tmp_path: Path,
    run_module: RunModule,
    fake_validate: list[list[str]],
    over: dict[str, Any],
    expected: dict[str, str],
) -> None:
    run_module(docker_config_files.main, {"files": _files(tmp_path)})
    result = run_module(docker_config_files.main, {"files": _files(tmp_path, **over)})
    assert {os.path.basename(k): v for k, v in result["files"].items()} == expected
    if "daemon" in over:
        backup = result["backup_files"][str(tmp_path / "etc/docker/daemon.json")]
        assert Path(backup).read_text() == DAEMON
    if "proxy" in over:
        assert (tmp_path / "dropins/10-proxy.conf").stat().st_mode & 0o7777 == 0o640


def test_mode_drift_is_set_back(tmp_path: Path, run_module: RunModule, fake_validate: list[list[str]]) -> None:
    run_module(docker_config_files.main, {"files": _files(tmp_path)})
    os.chmod(tmp_path / "dropins/10-ipv6.conf", 0o600)
    result = run_module(docker_config_files.main, {"files": _files(tmp_path)})
    assert list(result["files"].values()) == ["mode"]
    assert (tmp_path / "dropins/10-ipv6.conf").stat().st_mode & 0o7777 == 0o644


def test_rejected_daemon_json_changes_no_file(
    tmp_path: Path, run_module: RunModule, fake_validate: list[list[str]]
) -> None:
    run_module(docker_config_files.main, {"files": _files(tmp_path)})
    with pytest.raises(ModuleFailed, match="rejected") as failed:
        run_module(docker_config_files.main, {"files": _files(tmp_path, daemon='{"bogus": 1}\n', proxy=PROXY)})
    assert failed.value.result["stderr"] == "unknown option"
    assert (tmp_path / "etc/docker/daemon.json").read_text() == DAEMON
    # The proxy drop-in after it in the list was not written either.
    assert not (tmp_path / "dropins/10-proxy.conf").exists()
    # The validator saw a temporary copy, never the live file.
    assert fake_validate[-1][0] == "true" and fake_validate[-1][1] != str(tmp_path / "etc/docker/daemon.json")


def test_bad_mode(tmp_path: Path, run_module: RunModule) -> None:
    files = _files(tmp_path)
    files[1]["mode"] = "u+rw"
    with pytest.raises(ModuleFailed, match="octal"):
        run_module(docker_config_files.main, {"files": files})
