"""The collection as users get it: build the tarball, install it into a temporary collections path
and run every playbook by its FQCN (`ansible-playbook pidock.stack.<name> --syntax-check`), away
from this checkout and its ansible.cfg. Also checks what the tarball must not ship."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("VIRTUAL_ENV", ROOT / ".venv")) / "bin"
PLAYBOOKS = sorted(p.stem for p in (ROOT / "playbooks").glob("*.yml"))

pytestmark = pytest.mark.skipif(
    not (BIN / "ansible-galaxy").exists() and shutil.which("ansible-galaxy") is None,
    reason="ansible-galaxy not installed",
)


def _tool(name: str) -> str:
    local = BIN / name
    return str(local) if local.exists() else name


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Build the tarball and install it; returns the tarball, the collections path and an env."""
    base = tmp_path_factory.mktemp("collection")
    cfg = base / "ansible.cfg"
    cfg.write_text("[defaults]\n", encoding="utf-8")  # not the checkout's ansible.cfg
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(cfg),
        "ANSIBLE_COLLECTIONS_PATH": str(base / "collections"),
        "ANSIBLE_LOCAL_TEMP": str(base / "tmp"),
        "ANSIBLE_HOME": str(base / "home"),
    }
    built = subprocess.run(
        [_tool("ansible-galaxy"), "collection", "build", "--output-path", str(base / "dist"), str(ROOT)],
        cwd=base,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    version = yaml.safe_load((ROOT / "galaxy.yml").read_text(encoding="utf-8"))["version"]
    tarball = base / "dist" / f"pidock-stack-{version}.tar.gz"
    # --no-deps: the dependencies come with the `ansible` package (Galaxy is not needed).
    done = subprocess.run(
        [_tool("ansible-galaxy"), "collection", "install", "--no-deps", "-p", str(base / "collections"), str(tarball)],
        cwd=base,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return {"tarball": tarball, "collections": base / "collections", "cwd": base, "env": env}  # type: ignore[dict-item]


def test_playbook_names_are_valid_fqcn_parts() -> None:
    bad = [name for name in PLAYBOOKS if not re.fullmatch(r"[a-z_][a-z0-9_]*", name)]
    assert not bad, f"playbook names not usable as pidock.stack.<name>: {bad}"


@pytest.mark.parametrize("name", PLAYBOOKS)
def test_installed_playbook_runs_by_fqcn(installed: dict, name: str) -> None:
    assert (installed["collections"] / "ansible_collections/pidock/stack/playbooks" / f"{name}.yml").is_file()
    done = subprocess.run(
        [_tool("ansible-playbook"), f"pidock.stack.{name}", "--syntax-check"],
        cwd=installed["cwd"],
        env=installed["env"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_tarball_ships_no_inventories_secrets_or_dev_files(installed: dict) -> None:
    with tarfile.open(installed["tarball"]) as tar:
        names = tar.getnames()
    top = {n.split("/", 1)[0] for n in names}
    for unwanted in ("inventories", "molecule", "tests", "scripts", "images", "benchmarks", "collections", ".cache"):
        assert unwanted not in top, f"the tarball ships {unwanted}/"
    assert not [n for n in names if "vault" in n.rsplit("/", 1)[-1]], "the tarball ships a vault file"
    with tarfile.open(installed["tarball"]) as tar:
        for member in tar.getmembers():
            if member.isfile():
                data = tar.extractfile(member).read()  # type: ignore[union-attr]
                assert b"$ANSIBLE_VAULT" not in data, f"{member.name} holds Vault data"
    for needed in ("README.md", "meta/runtime.yml", "meta/execution-environment.yml", "changelogs/changelog.yaml"):
        assert needed in names, f"the tarball lacks {needed}"
    for role in ("docker", "tls", "compose", "migrate"):
        assert f"roles/{role}/README.md" in names, f"the tarball lacks roles/{role}/README.md"
