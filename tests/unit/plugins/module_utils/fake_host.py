"""A fake Docker host for the transaction tests: compose up/rm/config, nginx -t/reload, ps/inspect, the front door.

Release directories hold compose.yml as JSON (so `config` just reads it) and nginx.conf naming the
upstream service and the version it serves. Services whose definition has ``x-broken`` never
become healthy; ``x-slow`` ones need one more look before they are.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ansible_collections.pidock.stack.plugins.module_utils import _release


class FakeHost:
    def __init__(self, root: Path, project: str = "inventory") -> None:
        self.root = root
        self.project = project
        self.containers: dict[str, dict[str, Any]] = {}
        self.created: dict[str, int] = {}
        self.loaded_conf = ""
        self.now = 1_000_000.0
        self.calls: list[list[str]] = []
        self.nginx_t_fails = False
        # old nginx workers still holding requests after a reload, counted down by each drain query
        self.workers_after_reload = 0
        self.draining = 0
        self.drain_queries = 0
        # seconds a `compose up` spends stopping a container it replaces (the clock moves on)
        self.replace_seconds = 0.0
        # answers the front door gives first, whatever runs (e.g. 503s of an app whose pooled
        # connections met a restarted database), one per probe
        self.front_script: list[int] = []

    # clock
    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(seconds, 0.01)
        self.tick_health()

    # releases
    def release(
        self,
        version: str,
        colour: str,
        *,
        broken: bool = False,
        db: dict | None = None,
        front: str | None = "nginx:1",
        reports: str = "",
    ) -> str:
        app = {"image": f"app:{version}", "environment": {"RELEASE": version}}
        if broken:
            app["x-broken"] = True
        services = {
            f"app-{colour}": app,
            "postgres": db or {"image": "pg:17", "volumes": [{"type": "volume", "source": "pgdata"}]},
            "nginx": {"image": front},
        }
        if front is None:  # a release without the front (the migration's prestart runs one)
            del services["nginx"]
        files = {
            "compose.yml": (json.dumps({"name": self.project, "services": services}), 0o644),
            "nginx.conf": (f"upstream app-{colour}; version {reports or version}\n", 0o644),
            ".env": ("POSTGRES_PASSWORD=s3cret\n", 0o600),
        }
        config_hash = _release.config_hash_of({k: v[0] for k, v in files.items()})
        release_id = _release.release_id_for(version, config_hash)
        meta = _release.build_metadata(release_id, version, config_hash, files, {}, {"colour": colour}, self.now)
        _release.write_release(str(self.root), release_id, files, meta)
        self.now += 1
        return release_id

    # docker
    def run(self, argv: Sequence[str], cwd: str | None) -> tuple[int, str, str]:
        argv = list(argv)
        self.calls.append(argv)
        if argv[:2] == ["docker", "compose"]:
            return self._compose(argv[2:], cwd)
        if argv[:2] == ["docker", "ps"]:
            return 0, "".join(f"{name}\n" for name in self.containers), ""
        if argv[:2] == ["docker", "inspect"]:
            lines = []
            for name in argv[4:]:
                c = self.containers[name]
                state: dict[str, Any] = {"Status": c["status"], "ExitCode": 0}
                if c["health"]:
                    state["Health"] = {"Status": c["health"], "Log": [{"Output": c.get("output", "")}]}
                labels = {"com.docker.compose.project": self.project, "com.docker.compose.service": c["service"]}
                lines.append(f"{json.dumps(state)}\t{json.dumps(labels)}\t/{name}")
            return 0, "\n".join(lines) + "\n", ""
        return 127, "", f"unexpected command {argv}"

    def _compose(self, args: list[str], cwd: str | None) -> tuple[int, str, str]:
        args = args[2:]  # -p project
        path = None
        if args[0] == "-f":
            path, args = args[1], args[2:]
        while args and args[0] == "--profile":
            args = args[2:]
        if args[0] == "config":
            full = path if os.path.isabs(path or "") else os.path.join(cwd or "", path or "compose.yml")
            with open(full, encoding="utf-8") as handle:
                return 0, handle.read(), ""
        if args[0] == "exec":
            if "sh" in args:  # the drain query: workers of the replaced configuration still busy
                self.drain_queries += 1
                left = self.draining
                self.draining = max(0, self.draining - 1)
                return 0, f"{left}\n", ""
            if args[-1] == "-t":
                return (1, "", "nginx: [emerg] bad") if self.nginx_t_fails else (0, "", "ok")
            with open(self.root / "front" / "conf.d" / "default.conf", encoding="utf-8") as handle:
                self.loaded_conf = handle.read()
            self.draining = self.workers_after_reload
            return 0, "", ""
        with open(os.path.join(cwd or "", "compose.yml"), encoding="utf-8") as handle:
            services = json.load(handle)["services"]
        if args[0] == "rm":
            for name in args[3:]:
                self.containers.pop(name, None)
            return 0, "", ""
        if args[0] == "up":
            for name, spec in services.items():
                have = self.containers.get(name)
                if have is not None and (have["spec"] == spec or "--no-recreate" in args):
                    continue
                if have is not None:
                    self.now += self.replace_seconds
                self.created[name] = self.created.get(name, 0) + 1
                self.containers[name] = {
                    "service": name,
                    "spec": spec,
                    "status": "running",
                    "health": "unhealthy" if spec.get("x-broken") else "starting",
                    "output": "boom" if spec.get("x-broken") else "",
                }
                if name == "nginx":  # a starting nginx reads the live config
                    self.loaded_conf = (self.root / "front" / "conf.d" / "default.conf").read_text()
            if "--remove-orphans" in args:
                for name in [n for n in self.containers if n not in services]:
                    del self.containers[name]
            return 0, "", ""
        return 127, "", f"unexpected compose {args}"

    def tick_health(self) -> None:
        for c in self.containers.values():
            if c["health"] == "starting":
                c["health"] = "healthy"

    # the front door
    def probe(self, url: str, validate: bool, timeout: float) -> tuple[int, Any, str]:
        self.tick_health()
        if self.front_script and url:
            status = self.front_script.pop(0)
            if status != 200:
                return status, None, f"scripted {status}"
        if not self.loaded_conf:
            return 0, None, "connection refused"
        upstream = self.loaded_conf.split(";")[0].split()[1]
        version = self.loaded_conf.split("version ")[1].strip()
        app = self.containers.get(upstream)
        if "nginx" not in self.containers or app is None or app["health"] != "healthy":
            return 502, None, "bad gateway"
        return 200, {"release": version}, json.dumps({"release": version})

    def served(self) -> str | None:
        status, parsed, _ = self.probe("", False, 1)
        return parsed["release"] if status == 200 else None
