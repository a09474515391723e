"""A separate target host (migrate_target_host): presync pushes the bare metal's trees onto a second
host over SSH while the bare metal serves. The second host ("a new Pi") is made by this test with the
scenario's own create and destroy playbooks, on the same Docker network, and destroyed whatever
happens. Runs in the rolled-back stage: the bare metal serves then, as it does while an operator
prepares its successor. presync, then replicate (over TLS, host to host), then a rollback of both."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import testinfra
import yaml
from pidock_helpers import PROJECT, http_json, kill_controller, run_ok, run_playbook, start_playbook, wait_inside

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


def _inventory(**host_vars: str) -> dict:
    return {"all": {"hosts": {_NEW: {"ansible_connection": "community.docker.docker", **host_vars}}}}


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
def new_pi(host, stage):
    """The second host: booted, sshd running, on the scenario host's network; destroyed afterwards.
    Made only in the rolled-back stage (a module fixture is set up before the function-scoped skip
    of pytestmark: the first verify made and destroyed it for nothing, about 40 s)."""
    if stage != "rolled-back":
        pytest.skip("runs in the rolled-back stage; the host is migrated now")
    with tempfile.TemporaryDirectory() as tmp:
        extra = Path(tmp) / "molecule_yml.json"
        extra.write_text(json.dumps({"molecule_yml": _molecule_yml()}))
        inventory = Path(tmp) / "new_pi.yml"
        inventory.write_text(yaml.safe_dump(_inventory()))
        try:
            _hosts_playbook("create.yml", extra)
            new = testinfra.get_host(f"docker://{_NEW}")
            apt = "DEBIAN_FRONTEND=noninteractive apt-get -qq -o Dpkg::Use-Pty=0"
            run_ok(new, f"{apt} update && {apt} install --no-install-recommends openssh-server >/dev/null")
            # What pidock.stack.docker does for an engine >= 26 on a host without IPv6 (as here); the plan names it
            # as a blocker until then. Written directly: running the role costs this test half a minute.
            run_ok(
                new,
                "mkdir -p /etc/systemd/system/docker.service.d && printf '%%s' %s"
                " > /etc/systemd/system/docker.service.d/10-pidock-ipv6.conf && systemctl daemon-reload",
                "[Service]\nEnvironment=DOCKER_ALLOW_IPV6_ON_IPV4_INTERFACE=1\n",
            )
            run_ok(new, "systemctl start ssh && systemctl restart docker")
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


_SRC_PSQL = "runuser -u postgres -- psql -XtAq -v ON_ERROR_STOP=1 -d inventory_db -c %s"
_NEW_PSQL = "docker exec pidock-migrate-postgres psql -XtAq -v ON_ERROR_STOP=1 -U postgres -d inventory_db -c %s"


def _until(check, what: str, seconds: float = 30.0) -> None:
    end = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < end, f"not within {seconds:.0f} s: {what}"
        time.sleep(0.5)


def test_replicate_to_a_new_pi_over_tls_then_roll_back(host, new_pi):
    """After presync (the test above), the replicate phase subscribes the new Pi's PostgreSQL to the bare metal over
    TLS; a rollback takes it all down on both hosts."""
    new, inventory, address = new_pi
    run_ok(new, "docker load --quiet --input /opt/pidock-images/postgres.tar")
    replicate = {
        "migrate_target_host": _NEW,
        "migrate_target_address": address,
        "migrate_work_dir": _WORK,
        "migrate_phases": ["replicate"],
        "migrate_db_method": "replicate",
        "migrate_replication_allow_restart": True,
    }
    # The controller dies once the new Pi subscribes (its link to the old Pi dropped, say); the next run resumes
    # the phase: it takes down what the dead run made on both hosts and starts afresh.
    with tempfile.TemporaryDirectory() as tmp:
        output = Path(tmp) / "replicate.out"
        run = start_playbook(
            "migrate",
            "migrate.yml",
            "-i",
            str(inventory),
            "-l",
            "migrate-pi",
            "-e",
            json.dumps(replicate),
            output=output,
        )
        try:
            seen = wait_inside(
                _NEW, _NEW_PSQL % shlex.quote("SELECT subname FROM pg_subscription") + " 2>/dev/null", beside=run
            )
        finally:
            kill_controller(run)
        assert seen.strip() == "pidock_migrate", output.read_text()[-3000:]
    ledger = json.loads(host.file(f"{_WORK}/ledger.json").content_string)
    assert ledger["phases"]["replicate"]["status"] == "started", ledger["phases"]["replicate"]
    run_playbook("migrate", "migrate.yml", "-i", str(inventory), "-l", "migrate-pi", "-e", json.dumps(replicate))
    ledger = json.loads(host.file(f"{_WORK}/ledger.json").content_string)
    replicate = ledger["phases"]["replicate"]
    assert replicate["status"] == "verified" and replicate["resumed"] is True, replicate
    assert replicate["target_host"] == _NEW, replicate

    # The bare metal lets the replication role in from the new Pi's address only, over TLS only; the new Pi's
    # PostgreSQL streams from there, encrypted (it checked the bare metal's certificate: sslmode=verify-ca).
    hba = run_ok(host, _SRC_PSQL, "SHOW hba_file").strip()
    lines = [
        " ".join(line.split()[:5]) for line in host.file(hba).content_string.splitlines() if "pidock_migrate" in line
    ]
    assert lines == [f"hostssl inventory_db pidock_migrate {address}/32 scram-sha-256"], lines
    stream = (
        "SELECT s.ssl, r.client_addr, r.state FROM pg_stat_replication r JOIN pg_stat_ssl s USING (pid)"
        " WHERE r.application_name = 'pidock_migrate'"
    )
    _until(lambda: run_ok(host, _SRC_PSQL, stream).strip() == f"t|{address}|streaming", "a TLS stream from the new Pi")
    conninfo = run_ok(new, _NEW_PSQL, "SELECT subconninfo FROM pg_subscription")
    assert "sslmode=verify-ca" in conninfo and "sslrootcert=" in conninfo, "subscription without verify-ca"

    # The initial copy is whole, and a write on the bare metal (then its deletion) reaches the new Pi.
    for table in ("categories", "items", "images"):
        count = f"SELECT count(*) FROM {table}"
        assert run_ok(new, _NEW_PSQL, count) == run_ok(host, _SRC_PSQL, count), table
    present = "SELECT count(*) FROM categories WHERE name = 'pidock-test: onto the new Pi'"
    # The sequence goes back to where it was (logical replication does not carry it): the later tests compare
    # the bare metal's baseline, sequences included, with what the stack held.
    sequence = run_ok(host, _SRC_PSQL, "SELECT last_value || ',' || is_called FROM categories_id_seq").strip()
    run_ok(host, _SRC_PSQL, "INSERT INTO categories (name) VALUES ('pidock-test: onto the new Pi')")
    _until(lambda: run_ok(new, _NEW_PSQL, present).strip() == "1", "the insert on the new Pi")
    run_ok(host, _SRC_PSQL, "DELETE FROM categories WHERE name = 'pidock-test: onto the new Pi'")
    _until(lambda: run_ok(new, _NEW_PSQL, present).strip() == "0", "the delete on the new Pi")
    last_value, is_called = sequence.split(",")
    run_ok(host, _SRC_PSQL, f"SELECT setval('categories_id_seq', {last_value}, {is_called})")

    # A rollback that cannot reach the new Pi (its link is down; it still runs and subscribes) takes the bare
    # metal's side down regardless: no slot keeps the serving Pi's WAL, no role or pg_hba.conf line is left. It
    # says what is left on the new Pi, and fails.
    settings = {"migrate_target_host": _NEW, "migrate_target_address": address, "migrate_work_dir": _WORK}
    left = (
        "SELECT (SELECT count(*) FROM pg_replication_slots) + (SELECT count(*) FROM pg_publication)"
        " + (SELECT count(*) FROM pg_roles WHERE rolname = 'pidock_migrate')"
    )
    cut_off = inventory.with_name("new_pi_cut_off.yml")
    cut_off.write_text(yaml.safe_dump(_inventory(ansible_host=f"{_NEW}-link-down")))
    out, _took = run_playbook(
        "migrate",
        "migrate_rollback.yml",
        *("-i", str(cut_off), "-l", "migrate-pi", "-e", json.dumps(settings)),
        expect_rc=2,
    )
    text = " ".join(out.split())
    assert f"{_NEW} did not answer" in text and "its subscription, restore container and network are left there" in text
    assert run_ok(host, _SRC_PSQL, left).strip() == "0"
    assert "pidock_migrate" not in host.file(hba).content_string
    status, body = http_json(host, "https://127.0.0.1/health", insecure=True)
    assert status == 200 and body.get("db") == "ok", body
    assert run_ok(new, _NEW_PSQL, "SELECT count(*) FROM pg_subscription").strip() == "1"
    ledger = json.loads(host.file(f"{_WORK}/ledger.json").content_string)
    assert ledger["rollbacks"][-1].get("target_left") is True, ledger["rollbacks"][-1]
    assert host.file(f"{_WORK}/replication.target-left").exists

    # The next rollback reaches it and takes the rest down there (the stack's side on the new Pi), leaves the bare
    # metal serving and the copies on the new Pi (volumes are kept).
    out, _took = run_playbook(
        "migrate", "migrate_rollback.yml", "-i", str(inventory), "-l", "migrate-pi", "-e", json.dumps(settings)
    )
    assert re.search(
        rf"Drop the subscription in the stack's PostgreSQL.*\] \*+\nchanged: \[migrate-pi -> {_NEW}\]", out
    ), out[-3000:]
    assert re.search(rf"Look for containers of the stack\] \*+\nok: \[migrate-pi -> {_NEW}\]", out), out[-3000:]
    assert run_ok(host, _SRC_PSQL, left).strip() == "0"
    assert not host.file(f"{_WORK}/replication.target-left").exists
    assert run_ok(new, "docker ps --all --quiet").strip() == ""
    assert sorted(run_ok(new, "docker volume ls -q").split()) == sorted([*_TREES, "inventory_pgdata"])
    status, body = http_json(host, "https://127.0.0.1/health", insecure=True)
    assert status == 200 and body.get("db") == "ok", body
    run_ok(host, "rm -rf %s", _WORK)
