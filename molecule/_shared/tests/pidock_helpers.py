"""Assertions shared by the scenarios' testinfra tests.

Everything here runs commands inside a test host through testinfra's ``host`` fixture and
returns parsed results, so a test states the expected state in one line.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parents[3]


def run_ok(host: Any, command: str, *args: str) -> str:
    """Run a command in the host; fail the test with its output if it exits non-zero."""
    result = host.run(command, *args)
    shown = command % args if args else command
    assert result.rc == 0, f"{shown!r} failed rc={result.rc}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def http(host: Any, url: str, *, insecure: bool = False, resolve: str | None = None) -> tuple[int, str]:
    """GET a URL with curl from inside the host; return (status, body)."""
    opts = "-sS --max-time 10 -o /root/.pidock-http-body -w '%{http_code}'"
    if insecure:
        opts += " -k"
    if resolve:
        opts += f" --resolve {resolve}"
    status = run_ok(host, f"curl {opts} {url}").strip()
    body = host.file("/root/.pidock-http-body").content_string
    return int(status), body


def http_json(host: Any, url: str, **kwargs: Any) -> tuple[int, dict[str, Any]]:
    status, body = http(host, url, **kwargs)
    return status, json.loads(body)


def docker_inspect(host: Any, name: str) -> dict[str, Any]:
    return json.loads(run_ok(host, "docker inspect %s", name))[0]


def docker_info(host: Any) -> dict[str, Any]:
    return json.loads(run_ok(host, "docker info --format '{{json .}}'"))


def version_tuple(text: str) -> tuple[int, ...]:
    """'2.26.1+ds1-1' -> (2, 26, 1)."""
    core = text.strip().lstrip("v").split("+")[0].split("-")[0]
    return tuple(int(p) for p in core.split(".") if p.isdigit())


def served_fingerprint(host: Any, tls_dir: str, servername: str, cafile: str, port: int = 9443) -> str:
    """Serve tls_dir's fullchain.pem/privkey.pem with `openssl s_server` on loopback, connect with
    a verifying client (chain to cafile, hostname servername) and return the SHA-256 fingerprint
    of the certificate presented, as `openssl x509 -fingerprint -sha256` prints it after the '='.
    """
    unit = f"pidock-tls-probe-{port}"
    host.run("systemctl stop %s", unit)
    run_ok(
        host,
        "systemd-run --unit %s --collect openssl s_server -quiet -accept 127.0.0.1:%s "
        "-cert %s -cert_chain %s -key %s -www",
        unit,
        str(port),
        f"{tls_dir}/fullchain.pem",
        f"{tls_dir}/fullchain.pem",
        f"{tls_dir}/privkey.pem",
    )
    try:
        run_ok(
            host,
            f"bash -c 'for i in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/{port}) 2>/dev/null && exit 0; "
            "sleep 0.2; done; exit 1'",
        )
        out = run_ok(
            host,
            "openssl s_client -connect 127.0.0.1:%s -servername %s -CAfile %s "
            "-verify_hostname %s -verify_return_error </dev/null 2>/dev/null "
            "| openssl x509 -noout -fingerprint -sha256",
            str(port),
            servername,
            cafile,
            servername,
        )
        return out.strip().split("=", 1)[1]
    finally:
        host.run("systemctl stop %s", unit)


def molecule_inventory(scenario: str) -> str:
    """The inventory Molecule wrote for a scenario, for tests that run ansible-playbook themselves."""
    found = os.environ.get("MOLECULE_INVENTORY_FILE")
    if found and os.path.exists(found):
        return found
    candidates = sorted(glob.glob(os.path.expanduser(f"~/.ansible/tmp/molecule.*.{scenario}/inventory")))
    assert candidates, f"cannot find the molecule inventory of {scenario}"
    return candidates[-1]


def _playbook(scenario: str, playbook: str, *extra: str) -> tuple[list[str], dict[str, str]]:
    """The command line and environment that run one of the collection's playbooks on a scenario's hosts."""
    env = dict(os.environ)
    env.setdefault("ANSIBLE_COLLECTIONS_PATH", f"{PROJECT}/collections")
    env.update(ANSIBLE_FORCE_COLOR="false", ANSIBLE_NOCOLOR="true")
    cmd = ["ansible-playbook", "-i", molecule_inventory(scenario), str(PROJECT / "playbooks" / playbook), *extra]
    return cmd, env


def run_playbook(
    scenario: str, playbook: str, *extra: str, expect_rc: int = 0, timeout: int = 900
) -> tuple[str, float]:
    """Run one of the collection's playbooks against a scenario's hosts, as an operator would.

    Returns the output and the wall time; fails the test (with the output's tail) on another exit code.
    """
    cmd, env = _playbook(scenario, playbook, *extra)
    start = time.monotonic()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    took = time.monotonic() - start
    out = done.stdout + done.stderr
    assert done.returncode == expect_rc, f"{playbook} {extra} rc={done.returncode}:\n{out[-8000:]}"
    print(f"\n[{scenario}] {playbook} {' '.join(extra)}: rc={done.returncode} in {took:.1f} s")
    return out, took


def start_playbook(scenario: str, playbook: str, *extra: str, output: Path) -> subprocess.Popen[bytes]:
    """Start a playbook as run_playbook runs it, in its own process group (a test kills it with
    os.killpg), its output going to the file ``output``."""
    cmd, env = _playbook(scenario, playbook, *extra)
    with open(output, "wb") as sink:
        return subprocess.Popen(cmd, env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (children, their children, ...), read from /proc."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def kill_controller(proc: subprocess.Popen[Any]) -> None:
    """SIGKILL a playbook started in its own session, as a dead controller: its process group and
    every process below it. ansible-playbook's workers call setsid() (a group of their own), so
    os.killpg alone left a worker blocked on its pipe to the dead parent, for good."""
    below = _descendants(proc.pid)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    for pid in below:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    proc.wait(30)
    remove_local_temp(proc.pid)


def remove_local_temp(pid: int, root: Path | None = None) -> list[Path]:
    """Remove the local temporary directory of a killed ansible-playbook (pid): a clean exit removes
    it, a SIGKILL leaves it behind (its module cache, a few MB), one per kill in every suite run.
    Ansible names it ansible-local-<pid> plus mkdtemp's eight characters. Returns what was removed."""
    root = root or Path(os.environ.get("ANSIBLE_LOCAL_TEMP", "~/.ansible/tmp")).expanduser()
    prefix = f"ansible-local-{pid}"
    removed = []
    for path in root.glob(f"{prefix}*"):
        if len(path.name) == len(prefix) + 8 and path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def live_and_file_fingerprints(host: Any, cert: str, servername: str, port: int = 443) -> tuple[str, str]:
    """SHA-256 fingerprints of the certificate served on 127.0.0.1:port and of the PEM file cert."""
    served = run_ok(
        host,
        f"openssl s_client -connect 127.0.0.1:{port} -servername %s </dev/null 2>/dev/null"
        " | openssl x509 -noout -fingerprint -sha256",
        servername,
    )
    on_disk = run_ok(host, "openssl x509 -noout -fingerprint -sha256 -in %s", cert)
    return served.strip(), on_disk.strip()


def wait_inside(
    container: str, look: str, *, step: float = 0.2, timeout: float = 300, beside: subprocess.Popen[Any] | None = None
) -> str:
    """Wait until the shell command ``look`` prints something inside ``container``; return what it printed.

    One ``docker exec`` runs the loop inside the container, instead of one exec per look from here:
    each exec costs the controller, dockerd and runc tens of milliseconds of CPU, and a look every
    0.3 s for a minute adds up across a suite that runs two scenarios on two cores. The loop inside
    ends by itself after ``timeout``. Returns '' when the timeout passed, or when the process
    ``beside`` (the run being watched) ended first.
    """
    rounds = max(1, int(timeout / step))
    pidfile = f"/tmp/.pidock-wait-{os.getpid()}-{time.monotonic_ns()}.pid"
    script = (
        f'echo $$ > {pidfile}; i=0; while [ "$i" -lt {rounds} ]; do out=$({look}); '
        f'if [ -n "$out" ]; then rm -f {pidfile}; printf %s "$out"; exit 0; fi; sleep {step}; i=$((i+1)); done; '
        f"rm -f {pidfile}; exit 1"
    )
    watcher = subprocess.Popen(
        ["docker", "exec", container, "sh", "-c", script], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    deadline = time.monotonic() + timeout + 10
    while watcher.poll() is None and time.monotonic() < deadline and (beside is None or beside.poll() is None):
        time.sleep(0.05)
    if watcher.poll() is None:  # stop the loop inside too, not only the docker CLI
        subprocess.run(
            ["docker", "exec", container, "sh", "-c", f"kill $(cat {pidfile}) 2>/dev/null; rm -f {pidfile}"],
            capture_output=True,
            check=False,
        )
        watcher.kill()
        watcher.wait(10)
        return ""
    return watcher.stdout.read() if watcher.stdout else ""
