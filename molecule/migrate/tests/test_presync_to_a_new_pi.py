"""A separate target host (migrate_target_host): presync pushes the bare metal's trees onto a second
host over SSH while the bare metal serves. The second host ("a new Pi") is made by this test with the
scenario's own create and destroy playbooks, on the same Docker network, and destroyed whatever
happens. Runs in the rolled-back stage: the bare metal serves then, as it does while an operator
prepares its successor."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import testinfra
import yaml
from pidock_helpers import PROJECT, http_json, run_ok, run_playbook

pytestmark = pytest.mark.usefixtures("rolled_back")

_NEW = "migrate-pi5"
_WORK = "/var/lib/pidock-migrate-pi5"
_TREES = {"inventory_images": "/var/lib/inventory/images", "inventory_ml_cache": "/var/lib/inventory/ml_cache"}
# Every entry of a tree as the container will see it: type, owner, mode, link target; each file's
# link count (hard links kept) and SHA-256.
_LISTING = (
    "cd %s && find . -mindepth 1 -not -path './.pidock-partial*' -printf '%%y %%U:%%G %%m %%l %%p\\n' | sort"
    " && find . -type f -not -path './.pidock-partial*' -printf '%%n %%p\\n' | sort"
    " && find . -type f -not -path './.pidock-partial*' -print0 | sort -z | xargs -0r sha256sum"
)
_INVENTORY = {"all": {"hosts": {_NEW: {"ansible_connection": "community.docker.docker"}}}}


def _molecule_yml() -> dict:
    config = yaml.safe_load((PROJECT / ".config" / "molecule" / "config.yml").read_text())
    return {
        "driver": config["driver"],
        "platforms": [{"name": _NEW, "image": "local/debian-docker:trixie"}],
        "scenario": {"name": "migrate"},
    }


def _hosts_playbook(playbook: str, extra: Path) -> None:
    done = subprocess.run(
        [
            "ansible-playbook",
            *("-i", "localhost,", "-e", f"ansible_python_interpreter={sys.executable}", "-e", f"@{extra}"),
            str(PROJECT / "molecule" / "_shared" / playbook),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, f"{playbook}: rc={done.returncode}\n{(done.stdout + done.stderr)[-4000:]}"


@pytest.fixture(scope="module")
def new_pi(host):
    """The second host: booted, sshd running, on the scenario host's network; destroyed afterwards."""
    with tempfile.TemporaryDirectory() as tmp:
        extra = Path(tmp) / "molecule_yml.json"
        extra.write_text(json.dumps({"molecule_yml": _molecule_yml()}))
        inventory = Path(tmp) / "new_pi.yml"
        inventory.write_text(yaml.safe_dump(_INVENTORY))
        try:
            _hosts_playbook("create.yml", extra)
            new = testinfra.get_host(f"docker://{_NEW}")
            apt = "DEBIAN_FRONTEND=noninteractive apt-get -qq -o Dpkg::Use-Pty=0"
            run_ok(new, f"{apt} update && {apt} install --no-install-recommends openssh-server >/dev/null")
            run_ok(new, "systemctl start ssh docker")
            # The source needs an SSH client (a Pi has one; this test host's image does not).
            run_ok(host, f"command -v ssh || ({apt} update && {apt} install --no-install-recommends openssh-client)")
            address = subprocess.run(
                ["docker", "inspect", "--format", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", _NEW],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
            yield new, inventory, address
        finally:
            _hosts_playbook("destroy.yml", extra)


def _presync(inventory: Path, address: str, *extra: str, phases: tuple[str, ...] = ("presync",), **more) -> str:
    settings = {
        "migrate_target_host": _NEW,
        "migrate_target_address": address,
        "migrate_work_dir": _WORK,
        "migrate_phases": list(phases),
        **more,
    }
    out, _took = run_playbook(
        "migrate", "migrate.yml", "-i", str(inventory), "-l", "migrate-pi", "-e", json.dumps(settings), *extra
    )
    return out


def test_presync_pushes_the_trees_to_a_new_pi_over_ssh_while_the_bare_metal_serves(host, new_pi):
    new, inventory, address = new_pi

    # Check mode predicts and changes nothing on either host: no volume, no grant, no ledger.
    out = _presync(inventory, address, "--check")
    text = " ".join(out.split())
    for volume, tree in _TREES.items():
        assert f"{volume} would be created and {tree} copied into it" in text, out[-3000:]
    assert run_ok(new, "docker volume ls -q").split() == []
    assert (
        not new.file("/root/.ssh/authorized_keys").exists
        or "pidock-migrate" not in new.file("/root/.ssh/authorized_keys").content_string
    )
    assert not host.file(f"{_WORK}/ledger.json").exists

    # The plan reads the new Pi (its engine, volumes and images: the stack's are not loaded there yet, which
    # it names as blockers; this run goes on to presync regardless), then presync copies.
    with tempfile.TemporaryDirectory() as reports:
        _presync(
            inventory,
            address,
            phases=("plan", "presync"),
            migrate_plan_fail_on_blockers=False,
            migrate_report_dir=reports,
        )
        plan = json.loads((Path(reports) / "migrate-pi.plan.json").read_text())
    assert plan["target_host"] == _NEW, plan
    assert f"image local/postgres:17-pgvector is not on {_NEW}" in " ".join(plan["blockers"]), plan["blockers"]
    source = run_ok(host, "ip -o route get %s", address).split(" src ")[1].split()[0]
    for volume, tree in _TREES.items():
        mountpoint = run_ok(new, "docker volume inspect --format '{{.Mountpoint}}' %s", volume).strip()
        copied = run_ok(new, _LISTING, mountpoint)
        # The source as the container sees it: every owner mapped to the container user (the role's default 1000:1000).
        expected = run_ok(host, _LISTING.replace("%%U:%%G", "1000:1000"), tree)
        assert copied == expected, f"{volume} on {_NEW} differs from {tree}"
        assert copied.count("\n") > 10, copied[:500]
        labels = json.loads(run_ok(new, "docker volume inspect --format '{{json .Labels}}' %s", volume))
        assert labels.get("com.docker.compose.project") == "inventory", labels

    # The copy went over SSH, from the source's address, under the key made for it; the grant is gone.
    assert f"Accepted publickey for root from {source}" in run_ok(new, "journalctl -u ssh --no-pager"), "no SSH login"
    assert "pidock-migrate" not in new.file("/root/.ssh/authorized_keys").content_string
    key = f"{_WORK}/transfer_ed25519"
    assert host.file(key).mode == 0o600
    refused = host.run(
        "ssh -i %s -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null root@%s true",
        key,
        address,
    )
    assert refused.rc != 0 and "Permission denied" in refused.stderr, refused.stderr

    ledger = json.loads(host.file(f"{_WORK}/ledger.json").content_string)
    assert ledger["phases"]["presync"]["status"] == "verified"
    assert ledger["phases"]["presync"]["method"] == "rsync"
    # The bare metal kept serving.
    status, body = http_json(host, "https://127.0.0.1/health", insecure=True)
    assert status == 200 and body.get("db") == "ok", body

    # A rollback of it leaves the bare metal serving and the copies on the new Pi (volumes are kept), and
    # looks for the stack's containers there, not on the bare metal.
    settings = {"migrate_target_host": _NEW, "migrate_target_address": address, "migrate_work_dir": _WORK}
    out, _took = run_playbook(
        "migrate", "migrate_rollback.yml", "-i", str(inventory), "-l", "migrate-pi", "-e", json.dumps(settings)
    )
    assert re.search(rf"Look for containers of the stack\] \*+\nok: \[migrate-pi -> {_NEW}\]", out), out[-3000:]
    assert sorted(run_ok(new, "docker volume ls -q").split()) == sorted(_TREES)
    status, body = http_json(host, "https://127.0.0.1/health", insecure=True)
    assert status == 200 and body.get("db") == "ok", body
    run_ok(host, "rm -rf %s", _WORK)
