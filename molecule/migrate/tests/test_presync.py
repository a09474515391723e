"""Presync: the images and the ML cache are in the stack's volumes, verified, owned by the container user."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from _db import load
from pidock_helpers import PROJECT, molecule_inventory, run_ok

_LEDGER = "/var/lib/pidock-migrate/ledger.json"
_TREES = {
    "images": ("/var/lib/inventory/images", "inventory_images"),
    "ml_cache": ("/var/lib/inventory/ml_cache", "inventory_ml_cache"),
}


def _mountpoint(host, volume: str) -> str:
    return run_ok(host, "docker volume inspect --format '{{.Mountpoint}}' %s", volume).strip()


def _files(host, root: str) -> dict[str, str]:
    out = run_ok(host, "cd %s && find . -type f -print0 | sort -z | xargs -0 sha256sum", root)
    return {line.split("  ", 1)[1]: line.split("  ", 1)[0] for line in out.splitlines()}


def _written_by_the_stack() -> set[str]:
    """Files the stack added, changed or deleted after cutover (test_migrated's last test): in the first
    verify they differ between the volume and the bare metal, which only the rollback brings together."""
    try:
        return {f"./{path}" for path in load().get("files", {})}
    except FileNotFoundError:
        return set()


@pytest.mark.parametrize("tree", sorted(_TREES))
def test_volume_holds_the_same_files(host, tree):
    source, volume = _TREES[tree]
    skip = _written_by_the_stack() if tree == "images" else set()
    in_volume = {p: h for p, h in _files(host, _mountpoint(host, volume)).items() if p not in skip}
    assert in_volume == {p: h for p, h in _files(host, source).items() if p not in skip}


@pytest.mark.parametrize("tree", sorted(_TREES))
def test_volume_is_owned_by_the_container_user(host, tree):
    root = _mountpoint(host, _TREES[tree][1])
    owners = set(run_ok(host, "find %s -printf '%%U:%%G\\n'", root).split())
    assert owners == {"1000:1000"}


def test_links_survive_the_copy(host):
    images = _mountpoint(host, "inventory_images")
    assert run_ok(host, "readlink %s", f"{images}/latest.jpg").strip() == "2024/01/Schrank ü 0001.jpg"
    a = host.file(f"{images}/thumbs/hardlinked copy.jpg")
    b = host.file(f"{images}/2024/01/Schrank ü 0001.jpg")
    assert run_ok(host, "stat -c %%i %s", a.path) == run_ok(host, "stat -c %%i %s", b.path)
    cache = _mountpoint(host, "inventory_ml_cache")
    links = run_ok(host, "find %s/hub -path '*/snapshots/*' -type l -lname '/*'", cache)
    assert links.strip() == "", "absolute links in the copied cache"
    dangling = run_ok(host, "find %s/hub -xtype l", cache)
    assert dangling.strip() == ""


def test_ledger_records_presync_verified(host):
    ledger = json.loads(host.file(_LEDGER).content_string)
    presync = ledger["phases"]["presync"]
    assert presync["status"] == "verified"
    assert set(presync["trees"]) == {"images", "ml_cache"}
    assert presync["trees"]["images"]["files"] == 301
    assert host.file(_LEDGER).mode == 0o600


def test_source_stays_owned_by_the_app_user(host):
    owners = set(run_ok(host, "find /var/lib/inventory/images -printf '%u\\n'").split())
    assert owners == {"inventory"}


def test_no_partial_files_or_strays_are_left(host):
    images = _mountpoint(host, "inventory_images")
    assert not host.file(f"{images}/stray file.txt").exists
    assert run_ok(host, "find %s -name .pidock-partial", images).strip() == ""


@pytest.mark.usefixtures("migrated")
def test_a_long_copy_prints_progress_lines(host):
    """A 1.5 GiB tree copied as presync copies (tree_manifest as an async job, async_progress waiting):
    at least five lines while it runs, those of the copy and the read-back with what is done of the
    whole, the rate and the time left."""
    playbook = Path(__file__).resolve().parents[1] / "files" / "progress.yml"
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=f"{PROJECT}/collections", ANSIBLE_NOCOLOR="true")
    done = subprocess.run(
        ["ansible-playbook", "-i", molecule_inventory("migrate"), str(playbook)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    result = json.loads(run_ok(host, "cat /var/tmp/progress-lines.json"))
    run_ok(host, "rm -f /var/tmp/progress-lines.json")
    lines = result["lines"]
    print("progress lines:\n  " + "\n  ".join(lines))
    # On this machine the copy runs at about 290 MiB/s: copy, flush and read-back take some 10 s.
    assert len(lines) >= 5, lines
    with_rate = [line for line in lines if "MiB/s" in line and " left" in line and " of 1.5 GiB" in line]
    assert len(with_rate) >= 2, lines
    # The lines reached the play's output as they were printed, not only the result.
    assert sum(line in done.stdout for line in lines) >= 5, done.stdout[-3000:]
