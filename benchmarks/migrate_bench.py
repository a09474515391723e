#!/usr/bin/env python3
"""Benchmark of pidock.stack.migrate on a stand-alone test host (not run in CI).

Builds the bare-metal Inventory host of molecule/migrate (its prepare.yml) with a bigger database
(--items rows of vector(384) + HNSW) and --ballast-mb of extra image files, then measures on that
same host:

  files     presync (copy hashed on the way, copy read back and compared, HF cache check) against
            a raw `tar -cf - | tar -xf -; sync` of the same trees  target: throughput >= 0.9x raw
            (the phase's wall time from the ledger, Ansible's per-task cost included, and the copy
            module's own time)
  database  dump + restore phases (baseline, globals, pg_dump -Fc, sha256, restore with
            extensions first, pg_restore -j, ANALYZE) against a raw
            `pg_dump -Fc | pg_restore` into the same image, with pg_dump's default
            compression and with the role's                       target: <= 1.2x raw
  downtime  freeze -> the stack serves (its health gate passed through the front door),
            from the ledger                                      target: <= 60 s
            (and freeze -> cutover verified, which adds the checks of the served certificate);
            and as served: a client at 20 requests/s through the front door during each
            migration run prints its longest gaps between two answers
  online    (--methods dump,replicate, the default) after the rollback, the same host migrated
            again with migrate_db_method: replicate: the initial copy while the bare metal serves,
            then the downtime (freeze -> stack serving) and each frozen step side by side with the
            dump's, and the ratio                      target: <= 15 s and <= 0.5x the dump's;
            then the rollback again, from the replicated stack (its database by replication: the
            way back, against the dump path of the first rollback in the same run)
  rollback  after writes through the stack (--rollback-rows rows inserted, a tenth updated, a
            hundredth deleted; --rollback-files uploads added, a tenth changed, a tenth deleted),
            playbooks/migrate_rollback.yml carries them back: its wall time, the downtime a
            client saw (a probe at 20 requests/s through the front door: longest gap between
            two answers, failed requests) and what the ledger says was carried (rows per table,
            files and bytes per volume)

    PYTHONPATH=collections .venv/bin/python benchmarks/migrate_bench.py [--items 50000]
        [--ballast-mb 1024] [--rollback-rows 5000] [--rollback-files 200] [--no-rollback]
        [--methods dump,replicate] [--keep]

Prints one line per measure. Traffic stays inside the test host.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
HOST = "pidock-bench-migrate"
COMPRESSION = "zstd:1"  # migrate_dump_compression's default


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(list(argv), check=False, text=True, capture_output=True)
    if check and proc.returncode != 0:
        sys.exit(f"{' '.join(argv)[:200]} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def on_host(script: str) -> str:
    out = sh("docker", "exec", HOST, "bash", "-ec", script)
    return out.stdout.strip()


def timed_on_host(script: str) -> float:
    start = time.monotonic()
    on_host(script)
    return time.monotonic() - start


def playbook(inventory: Path, path: str, *extra: str, env: dict[str, str]) -> float:
    start = time.monotonic()
    proc = subprocess.run(
        [str(ROOT / ".venv/bin/ansible-playbook"), "-i", str(inventory), path, *extra],
        cwd=ROOT,
        env=env,
        text=True,
        capture_output=True,
    )
    took = time.monotonic() - start
    log = inventory.parent / (Path(path).stem + f"-{int(start)}.log")
    log.write_text(proc.stdout + proc.stderr, encoding="utf-8")
    print(f"{path}: {took:.1f} s, log {log}", file=sys.stderr)
    if proc.returncode != 0:
        sys.exit(f"{path} failed:\n{proc.stdout[-6000:]}\n{proc.stderr[-2000:]}")
    return took


def ledger() -> dict:
    return json.loads(on_host("cat /var/lib/pidock-migrate/ledger.json"))


def phase_seconds(entry: dict) -> float:
    fmt = "%Y-%m-%dT%H:%M:%S.%fZ"
    return (datetime.strptime(entry["verified"], fmt) - datetime.strptime(entry["started"], fmt)).total_seconds()


STACK_SQL = (
    "docker exec -i $(docker ps -q --filter label=com.docker.compose.project=inventory"
    " --filter label=com.docker.compose.service=postgres) psql -XtAq -v ON_ERROR_STOP=1 -U postgres -d inventory_db"
)


def write_through_the_stack(rows: int, files: int) -> None:
    """Rows inserted, updated and deleted in items (vector column) and images; uploads added,
    changed and deleted in the stack's images volume, from inside the app's container."""
    app = on_host(
        "docker ps --filter label=com.docker.compose.project=inventory"
        " --format '{{.ID}} {{.Label \"com.docker.compose.service\"}}' | awk '$2 ~ /^app/ { print $1; exit }'"
    )
    if not app:
        sys.exit("no app container of the stack is running")
    on_host(
        f"docker exec {app} sh -ec 'cd /var/lib/inventory/images; mkdir -p bench-after-cutover;"
        f" for i in $(seq 1 {files}); do head -c 100000 /dev/urandom > bench-after-cutover/$i.jpg; done;"
        f" for i in $(seq 1 {max(files // 10, 1)}); do head -c 5000 /dev/urandom > bench-after-cutover/$i.jpg; done;"
        f" for i in $(seq {files - max(files // 10, 1) + 1} {files}); do rm bench-after-cutover/$i.jpg; done'"
    )
    on_host(
        f"{STACK_SQL} <<'SQL'\n"
        "BEGIN;\n"
        "INSERT INTO items (name, category_id, quantity, price, attributes, embedding, created_at)"
        f" SELECT 'bench after cutover ' || g, 7, g, 1.5, '{{}}', (SELECT embedding FROM items"
        f" WHERE embedding IS NOT NULL LIMIT 1), now() FROM generate_series(1, {rows}) AS g;\n"
        "UPDATE items SET quantity = quantity + 1 WHERE id IN"
        f" (SELECT id FROM items ORDER BY id LIMIT {max(rows // 10, 1)});\n"
        f"DELETE FROM items WHERE id IN (SELECT id FROM items i WHERE NOT EXISTS"
        f" (SELECT 1 FROM images m WHERE m.item_id = i.id) ORDER BY id DESC LIMIT {max(rows // 100, 1)});\n"
        "COMMIT;\n"
        "SQL"
    )


class Probe:
    """A client at the front door while a playbook runs: 20 requests/s of /health over HTTPS
    (molecule/compose_deploy/files/probe.py on the host). Its longest gap between two answers is
    the downtime as served, whatever the run's own figures say."""

    def __init__(self, name: str) -> None:
        self.out = f"/root/probe-{name}.json"
        self.result: dict = {}

    def __enter__(self) -> Probe:
        sh("docker", "cp", str(ROOT / "molecule/compose_deploy/files/probe.py"), f"{HOST}:/root/probe.py")
        on_host(f"rm -f /root/probe.stop {self.out}")
        argv = ["python3", "/root/probe.py", "--rate", "20", "--max-seconds", "1800", "--out", self.out]
        sh("docker", "exec", "-d", HOST, *argv)
        time.sleep(2)
        return self

    def __exit__(self, *exc: object) -> None:
        on_host("touch /root/probe.stop")
        for _attempt in range(30):
            text = sh("docker", "exec", HOST, "cat", self.out, check=False).stdout.strip()
            if text:
                self.result = json.loads(text)
                return
            time.sleep(1)

    def summary(self) -> str:
        probe = self.result
        gaps = ", ".join(f"{length} s at {began} s" for length, began in probe.get("gaps", []))
        return (
            f"a client at 20 requests/s saw {probe.get('failed', '?')} of {probe.get('requests', '?')} requests fail,"
            f" longest gap between two answers {probe.get('longest_gap_s', '?')} s (longest gaps: {gaps or 'none'})"
        )


def rollback(inventory: Path, env: dict[str, str], rows: int, files: int) -> None:
    """Writes through the stack, then migrate_rollback.yml with a probe at the front door."""
    write_through_the_stack(rows, files)
    with Probe("rollback") as probe:
        wall = playbook(inventory, "playbooks/migrate_rollback.yml", env=env)
    note = (ledger().get("rollbacks") or [{}])[-1]
    carried = note.get("carried") or {}
    by = note.get("database_by", "dump")
    print(f"rollback (database by {by}): playbook wall {wall:.0f} s; {probe.summary()} (the downtime as served)")
    for table in carried.get("tables") or []:
        print(
            f"  carried table {table['table']}: {table['change']}, rows {table['rows_before']} -> {table['rows_after']}"
        )
    for name, tree in sorted((carried.get("trees") or {}).items()):
        print(
            f"  carried volume tree {name}: {tree['files']} files, {tree['bytes'] / 1e6:.1f} MB copied,"
            f" {tree['removed']} removed"
        )
    print(
        f"  carried in all: rows +{carried.get('rows_added', 0)} -{carried.get('rows_removed', 0)},"
        f" {carried.get('files', 0)} files, {carried.get('bytes', 0) / 1e6:.1f} MB"
    )


FROZEN_DUMP = ("freeze", "dump", "restore", "delta", "verify", "cutover")
FROZEN_REPLICATE = ("freeze", "catchup", "delta", "verify", "cutover")


def frozen_steps(phases: dict, names: tuple[str, ...]) -> dict[str, float]:
    """Seconds of each frozen phase, and of the catch-up's own steps when there is one."""
    out = {name: round(phase_seconds(phases[name]), 1) for name in names}
    for step, seconds in (phases.get("catchup", {}).get("seconds") or {}).items():
        out[f"catchup.{step}"] = float(seconds)
    return out


def migrate_online(
    inventory: Path, env: dict[str, str], dump_downtime: float, dump_steps: dict[str, float], dump_served: str
) -> None:
    """The bare metal serves again (after the rollback): migrate it with the replicate method."""
    with Probe("online") as probe:
        wall = playbook(
            inventory,
            "playbooks/migrate.yml",
            "-e",
            json.dumps({"migrate_db_method": "replicate", "migrate_replication_allow_restart": True}),
            env=env,
        )
    phases = ledger()["phases"]
    steps = frozen_steps(phases, FROZEN_REPLICATE)
    downtime = float(phases["cutover"]["downtime_seconds"])
    repl = phases["replicate"]
    print(
        f"online: replicate phase {phase_seconds(repl):.1f} s while the bare metal served (restart"
        f" {repl.get('restart_seconds')} s, initial copy {repl.get('copy_seconds')} s); the stack started before the"
        f" freeze (prestart) in {phase_seconds(phases['prestart']):.1f} s; playbook wall {wall:.0f} s"
    )
    print("  frozen step           dump (s)   replicate (s)")
    order = ["freeze", "dump", "restore", "catchup", "delta", "verify", "cutover"]
    for name in sorted(set(dump_steps) | set(steps), key=lambda n: (order.index(n.split(".")[0]), n)):
        print(f"  {name:<20} {dump_steps.get(name, '-')!s:>9} {steps.get(name, '-')!s:>15}")
    print(
        f"downtime freeze -> stack serving: dump {dump_downtime} s, replicate {downtime} s"
        f" -> {downtime / dump_downtime:.2f}x (target <= 15 s and <= 0.5x)"
    )
    print(f"  as served, dump: {dump_served}")
    print(f"  as served, replicate (the whole run, its restart of PostgreSQL included): {probe.summary()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=50000)
    parser.add_argument("--ballast-mb", type=int, default=1024)
    parser.add_argument("--rollback-rows", type=int, default=5000, help="rows the stack writes before the rollback")
    parser.add_argument("--rollback-files", type=int, default=200, help="uploads the stack adds before the rollback")
    parser.add_argument("--no-rollback", action="store_true", help="stop after the migration")
    parser.add_argument("--methods", default="dump,replicate", help="dump, or dump,replicate (after the rollback)")
    parser.add_argument("--keep", action="store_true", help="keep the test host")
    args = parser.parse_args()

    scenario = yaml.safe_load((ROOT / "molecule/migrate/molecule.yml").read_text(encoding="utf-8"))
    group_vars = scenario["provisioner"]["inventory"]["group_vars"]["all"]
    group_vars["migrate_test_item_count"] = args.items
    # Without the scenario's writer that ignores SIGTERM: its kill would add the stop timeout to each freeze.
    group_vars["migrate_test_stubborn_writer"] = False
    group_vars["migrate_freeze_units"] = ["inventory.service"]
    group_vars["migrate_source_units"] = [
        unit for unit in group_vars["migrate_source_units"] if unit != "inventory-sweeper.service"
    ]
    # The scenario's inventory reads its test password from the scenario's files (Molecule sets this).
    group_vars["molecule_scenario_directory"] = str(ROOT / "molecule" / "migrate")
    work = Path(tempfile.mkdtemp(prefix="pidock-bench-migrate-"))
    inventory = work / "inventory.yml"
    inventory.write_text(
        yaml.safe_dump(
            {
                "all": {
                    "hosts": {HOST: {"ansible_connection": "community.docker.docker"}},
                    "vars": group_vars,
                }
            }
        ),
        encoding="utf-8",
    )
    env = dict(
        os.environ,
        ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
        ANSIBLE_PIPELINING="true",
        MOLECULE_PROJECT_DIRECTORY=str(ROOT),
        MOLECULE_EPHEMERAL_DIRECTORY=str(work),
        PATH=f"{ROOT / '.venv/bin'}:{os.environ['PATH']}",
        ANSIBLE_CALLBACKS_ENABLED="ansible.posix.profile_tasks",
        PROFILE_TASKS_TASK_OUTPUT_LIMIT="all",
    )

    print(
        sh(sys.executable, str(ROOT / "scripts/testhost.py"), "create", HOST, "local/debian-docker:trixie").stdout,
        end="",
        file=sys.stderr,
    )
    try:
        print(f"== building the bare-metal host ({args.items} items)", file=sys.stderr)
        took = playbook(inventory, "molecule/migrate/prepare.yml", env=env)
        print(f"prepare: {took:.0f} s", file=sys.stderr)
        on_host(
            "mkdir -p /var/lib/inventory/images/ballast; cd /var/lib/inventory/images/ballast;"
            f' for i in $(seq 1 {args.ballast_mb // 16}); do head -c 16M /dev/urandom > "upload $i.bin"; done;'
            " chown -R inventory:inventory /var/lib/inventory/images"
        )
        tree_bytes = int(
            on_host(
                "du -sb --apparent-size /var/lib/inventory/images /var/lib/inventory/ml_cache"
                " | awk '{s+=$1} END {print s}'"
            )
        )
        db_bytes = int(on_host("runuser -u postgres -- psql -XtAq -c \"SELECT pg_database_size('inventory_db')\""))
        files = int(on_host("find /var/lib/inventory/images /var/lib/inventory/ml_cache -type f | wc -l"))
        print(f"data: {tree_bytes / 1e6:.0f} MB in {files} files; database {db_bytes / 1e6:.0f} MB")

        # Warm the page cache once, so the raw copy and presync read the same way.
        on_host("tar -C /var/lib/inventory -cf - images ml_cache > /dev/null")
        raw_files = timed_on_host(
            "rm -rf /var/lib/docker/bench-tar; mkdir -p /var/lib/docker/bench-tar;"
            " tar -C /var/lib/inventory -cf - images ml_cache | tar -C /var/lib/docker/bench-tar -xf -; sync"
        )
        on_host("rm -rf /var/lib/docker/bench-tar")

        on_host(
            "docker rm -f bench-raw-pg >/dev/null 2>&1 || true;"
            " docker run -d --name bench-raw-pg -e POSTGRES_PASSWORD=bench local/postgres:17-pgvector >/dev/null;"
            " for i in $(seq 60); do docker exec bench-raw-pg pg_isready -q -h 127.0.0.1 && break; sleep 1; done;"
            # The roles first, as pg_dumpall --globals-only would bring them (a setting names one).
            " docker exec bench-raw-pg psql -qU postgres -c 'CREATE ROLE inventory'"
        )
        raw_db = timed_on_host(
            "set -o pipefail; runuser -u postgres -- pg_dump -Fc inventory_db"
            " | docker exec -i bench-raw-pg pg_restore -U postgres -d postgres --create --no-owner --exit-on-error"
        )
        # The same pipe with the role's compression, into a fresh database of the same container.
        raw_db_zstd = timed_on_host(
            "set -o pipefail; docker exec bench-raw-pg psql -qU postgres -c 'DROP DATABASE inventory_db WITH (FORCE)';"
            f" runuser -u postgres -- pg_dump -Fc --compress={COMPRESSION} inventory_db"
            " | docker exec -i bench-raw-pg pg_restore -U postgres -d postgres --create --no-owner --exit-on-error"
        )
        on_host("docker rm -f -v bench-raw-pg >/dev/null")

        playbook(inventory, "playbooks/migrate.yml", "-e", json.dumps({"migrate_phases": ["presync"]}), env=env)
        presync = phase_seconds(ledger()["phases"]["presync"])
        with Probe("dump") as dump_probe:
            wall = playbook(
                inventory,
                "playbooks/migrate.yml",
                "-e",
                json.dumps(
                    {
                        "migrate_db_method": "dump",
                        "migrate_phases": ["freeze", "dump", "restore", "delta", "verify", "cutover"],
                    }
                ),
                env=env,
            )
        phases = ledger()["phases"]
        db = phase_seconds(phases["dump"]) + phase_seconds(phases["restore"])
        downtime = phases["cutover"]["downtime_seconds"]

        def rate(seconds: float) -> float:
            return tree_bytes / 1e6 / seconds

        work = sum(tree.get("seconds") or 0 for tree in ledger()["phases"]["presync"]["trees"].values())
        print(
            f"files: raw tar|tar {raw_files:.1f} s ({rate(raw_files):.0f} MB/s); presync phase {presync:.1f} s"
            f" ({rate(presync):.0f} MB/s, verification included) -> {raw_files / presync:.2f}x raw throughput"
            f" (target >= 0.9x); copy module work {work:.1f} s ({rate(work):.0f} MB/s) -> {raw_files / work:.2f}x"
        )
        print(
            f"database: raw pg_dump -Fc | pg_restore {raw_db:.1f} s (gzip, the default),"
            f" {raw_db_zstd:.1f} s (--compress={COMPRESSION}); dump + restore phases {db:.1f} s"
            f" (dump {phase_seconds(phases['dump']):.1f}, restore {phase_seconds(phases['restore']):.1f})"
            f" -> {db / raw_db:.2f}x / {db / raw_db_zstd:.2f}x raw time (target <= 1.2x)"
        )
        for name in ("freeze", "dump", "restore", "delta", "verify", "cutover"):
            print(f"  phase {name}: {phase_seconds(phases[name]):.1f} s")
        fmt = "%Y-%m-%dT%H:%M:%S.%fZ"
        until_verified = (
            datetime.strptime(phases["cutover"]["verified"], fmt) - datetime.strptime(phases["freeze"]["started"], fmt)
        ).total_seconds()
        print(
            f"downtime freeze -> stack serving: {downtime} s (target <= 60 s); freeze -> cutover verified"
            f" {until_verified:.1f} s; playbook wall {wall:.0f} s"
        )
        print(f"  as served: {dump_probe.summary()}")
        if not args.no_rollback:
            rollback(inventory, env, args.rollback_rows, args.rollback_files)
            if "replicate" in args.methods.split(","):
                migrate_online(
                    inventory, env, float(downtime), frozen_steps(phases, FROZEN_DUMP), dump_probe.summary()
                )
                # And back again: the replicated stack's writes carried back to the bare metal.
                rollback(inventory, env, args.rollback_rows, args.rollback_files)
    finally:
        if not args.keep:
            sh(sys.executable, str(ROOT / "scripts/testhost.py"), "remove", HOST, check=False)


if __name__ == "__main__":
    main()
