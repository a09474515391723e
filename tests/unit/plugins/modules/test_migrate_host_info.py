"""migrate_host_info: one call per host reads what the plan needs; only the parts asked for."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from ansible.module_utils import basic
from ansible_collections.pidock.stack.plugins.module_utils import _host_reads as hr
from ansible_collections.pidock.stack.plugins.modules import migrate_host_info
from conftest import ModuleFailed, RunModule

UNITS_TEXT = "Id=inventory.service\nActiveState=active\nUnitFileState=enabled\n"


class FakeCommands:
    """run_command answers by argv[0:2]; the argvs are recorded."""

    def __init__(self, answers: dict[tuple[str, ...], tuple[int, str, str]]) -> None:
        self.answers = answers
        self.calls: list[list[str]] = []

    def run_command(self, argv: list[str], **kwargs: Any) -> tuple[int, str, str]:
        """Stands in for AnsibleModule.run_command (set on the class as this bound method: no module argument)."""
        self.calls.append(list(argv))
        return self.answers.get(tuple(argv[:2]), (0, "", ""))


class FakeApi:
    """hr.DockerApi's reads from a dict; None as the whole answer: the engine does not answer."""

    def __init__(self, path: str, timeout: float = 30.0) -> None:
        self.path = path

    state: dict[str, Any] | None = None

    def _engine(self) -> dict[str, Any]:
        if FakeApi.state is None:
            raise FileNotFoundError(2, "No such file or directory")
        return FakeApi.state

    def version(self) -> str:
        return self._engine()["version"]

    def image(self, name: str) -> dict[str, Any] | None:
        return self._engine()["images"].get(name)

    def volume(self, name: str) -> dict[str, Any] | None:
        return self._engine()["volumes"].get(name)

    def containers_using(self, volumes: list[str]) -> list[dict[str, Any]]:
        return [c for c in self._engine()["containers"] if set(c["volumes"]) & set(volumes)]


@pytest.fixture
def host(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    def _install(engine: dict[str, Any] | None, commands: dict[tuple[str, ...], tuple[int, str, str]] | None = None):
        fake = FakeCommands(commands or {})
        monkeypatch.setattr(basic.AnsibleModule, "run_command", fake.run_command)
        monkeypatch.setattr(hr, "DockerApi", FakeApi)
        monkeypatch.setattr(FakeApi, "state", engine)
        monkeypatch.setattr(hr, "listeners", lambda proc_root="/proc": [{"port": 80, "address": "0.0.0.0:80"}])
        return fake

    return _install


def test_nothing_asked_reads_nothing(run_module: RunModule, host) -> None:
    fake = host(None)
    res = run_module(migrate_host_info.main, {})
    assert res["changed"] is False and res["facts"] == {}
    assert fake.calls == []


def test_source_paths_and_units(run_module: RunModule, host, tmp_path: Path) -> None:
    fake = host(None, {("systemctl", "show"): (0, UNITS_TEXT, "")})
    (tmp_path / "images").mkdir()
    os.symlink(tmp_path / "gone", tmp_path / "dangling")
    paths = [str(tmp_path / "images"), str(tmp_path / "env"), str(tmp_path / "dangling")]
    res = run_module(migrate_host_info.main, {"paths": paths, "units": ["inventory.service"]}, check_mode=True)
    assert res["facts"] == {"paths": dict(zip(paths, [True, False, False], strict=True)), "units": UNITS_TEXT}
    assert fake.calls == [["systemctl", "show", "--property=Id,ActiveState,UnitFileState", "inventory.service"]]


def test_target_reads_in_one_call(run_module: RunModule, host, tmp_path: Path) -> None:
    mount = tmp_path / "vol"
    (mount / "a").mkdir(parents=True)
    (mount / ".b").write_text("")
    engine = {
        "version": "28.1.1",
        "images": {"pg:17": {"Architecture": "arm64"}},
        "volumes": {"inv_pgdata": {"Name": "inv_pgdata", "Labels": {"l": "1"}, "Mountpoint": str(mount)}},
        "containers": [{"Names": ["/user"], "volumes": ["inv_pgdata"]}],
    }
    host(
        engine,
        {
            ("dpkg", "--print-architecture"): (0, "arm64\n", ""),
            ("systemctl", "show"): (0, "Environment=A=1\n", ""),
        },
    )
    res = run_module(
        migrate_host_info.main,
        {
            "arch": True,
            "engine": True,
            "image": "pg:17",
            "space": [str(tmp_path / "later")],
            "listeners": True,
            "volumes": [{"name": "inv_images", "var": "images_var"}, {"name": "inv_pgdata", "var": "pg_var"}],
        },
    )
    facts = res["facts"]
    assert facts["arch"] == "arm64"
    assert facts["engine"]["version"] == "28.1.1" and facts["engine"]["environment"] == "Environment=A=1\n"
    assert isinstance(facts["engine"]["ipv6_disabled"], bool)
    assert facts["image"] == {"found": True, "inspect": {"Architecture": "arm64"}, "error": ""}
    assert facts["space"][0]["path"] == str(tmp_path / "later") and facts["space"][0]["available_bytes"] > 0
    assert facts["listeners"] == [{"port": 80, "address": "0.0.0.0:80"}]
    assert facts["volumes"] == [
        {"var": "images_var", "name": "inv_images", "exists": False, "labels": {}, "entries": 0},
        {"var": "pg_var", "name": "inv_pgdata", "exists": True, "labels": {"l": "1"}, "entries": 2},
    ]
    assert facts["volume_users"] == [{"Names": ["/user"], "volumes": ["inv_pgdata"]}]


def test_a_missing_image_says_so(run_module: RunModule, host) -> None:
    host({"version": "28.1.1", "images": {}, "volumes": {}, "containers": []})
    res = run_module(migrate_host_info.main, {"image": "pg:17"})
    assert res["facts"]["image"] == {"found": False, "inspect": {}, "error": "No such image: pg:17"}


def test_an_engine_that_does_not_answer_is_reported_not_failed(run_module: RunModule, host) -> None:
    host(None)
    res = run_module(
        migrate_host_info.main,
        {"engine": True, "image": "pg:17", "volumes": [{"name": "inv_pgdata"}]},
    )
    facts = res["facts"]
    assert facts["engine"]["version"] == ""
    assert facts["image"]["found"] is False and "the engine did not answer" in facts["image"]["error"]
    assert facts["volumes"] == [{"var": None, "name": "inv_pgdata", "exists": False, "labels": {}, "entries": 0}]
    assert facts["volume_users"] == []


@pytest.mark.parametrize(
    ("args", "commands", "message"),
    [
        ({"arch": True}, {("dpkg", "--print-architecture"): (127, "", "dpkg: not found")}, "dpkg --print-architecture"),
        ({"units": ["x.service"]}, {("systemctl", "show"): (1, "", "Failed to connect to bus")}, "systemctl show"),
        ({"engine": True, "docker_host": "tcp://10.0.0.1:2376"}, {}, "docker_host: docker_host must be a unix://"),
    ],
)
def test_failures_name_what_failed(run_module: RunModule, host, args, commands, message) -> None:
    host(None, commands)
    with pytest.raises(ModuleFailed) as failed:
        run_module(migrate_host_info.main, args)
    assert message in failed.value.result["msg"]
