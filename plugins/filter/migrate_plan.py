# Copyright: pidock.stack maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the pidock.stack.migrate role: the plan, and the parsers it relies on.

migrate_env_file(text)              -> {values, keys, errors}: an env file parsed as systemd's
                                       EnvironmentFile= reads it (quotes, escapes, comments, continuations)
migrate_env_report(text, secrets)   -> {keys, errors, missing}: the same without any value (safe to log)
migrate_volume_blockers(volumes, project)
                                    -> blockers for the stack's three target volumes
migrate_volume_users_blockers(containers, volumes, ledger, project)
                                    -> blockers for running containers that mount them
migrate_plan(facts)                 -> {host, target_host, source, target, estimate, blockers, warnings}
migrate_baseline_diff(source, target)
                                    -> messages, one per difference of two database baselines
migrate_restore_guard(current, recorded, database, volume)
                                    -> why restore must not drop the database the stack volume holds
migrate_baseline_changes(before, after)
                                    -> {changed, tables, sequences}: what was written between two baselines

The plan takes what tasks/plan_run.yml observed on the hosts (command results as registered) and
the role's settings, and decides everything in Python: the YAML only gathers and reports.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

# ---------------------------------------------------------------------------------------------
# Env files, as systemd's EnvironmentFile= reads them (src/basic/env-file.c, parse_env_file_internal)
# ---------------------------------------------------------------------------------------------

_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_NEWLINE = "\n\r"
_WHITESPACE = " \t\n\r"
_DQ_ESCAPABLE = '"\\`$'  # what a backslash escapes inside double quotes


def migrate_env_file(text: str) -> dict[str, Any]:
    """Parse an env file the way systemd's EnvironmentFile= does.

    - blank lines and lines whose first non-blank character is ``#`` or ``;`` are comments;
    - ``KEY=VALUE``: blanks around the key and before the value are dropped, and trailing blanks
      of an unquoted value;
    - unquoted: a backslash takes the next character literally; backslash-newline continues the line;
    - ``'...'``: literal, may span lines; ``"..."``: a backslash escapes ``" \\ ` $`` and a newline,
      before any other character it stays. A quote opens only where a value (or the part after a
      closing quote) starts; blanks after a closing quote are dropped and what follows joins.

    What systemd would skip or misread is reported in ``errors`` (line number and problem, never
    the value): a line without ``=``, a name that is not a valid variable name (``export KEY=``
    included: systemd does not know ``export``), an unterminated quote (systemd takes the rest of the
    file), a comment ending in a backslash (systemd before 254 continues it onto the next line).
    """
    values: dict[str, str] = {}
    errors: list[dict[str, Any]] = []
    state = "pre_key"
    key: list[str] = []
    value: list[str] = []
    keep = 0  # length of value up to its last non-blank character (unquoted trailing blanks drop)
    line = 1
    key_line = 1

    def push() -> None:
        name = "".join(key).rstrip(_WHITESPACE)
        if not _NAME_RE.match(name):
            shown = name if len(name) <= 40 else name[:40] + "..."
            errors.append({"line": key_line, "problem": f"{shown!r} is not a valid variable name"})
            return
        values[name] = "".join(value[:keep])

    for c in text:
        if state == "pre_key":
            if c in "#;":
                state = "comment"
            elif c not in _WHITESPACE:
                state, key, value, keep, key_line = "key", [c], [], 0, line
        elif state == "key":
            if c in _NEWLINE:
                errors.append({"line": key_line, "problem": "no '=' on the line"})
                state = "pre_key"
            elif c == "=":
                state = "pre_value"
            else:
                key.append(c)
        elif state == "pre_value":
            if c in _NEWLINE:
                push()
                state = "pre_key"
            elif c == "'":
                state = "single"
            elif c == '"':
                state = "double"
            elif c == "\\":
                state = "value_escape"
            elif c not in _WHITESPACE:
                value.append(c)
                keep = len(value)
                state = "value"
        elif state == "value":
            if c in _NEWLINE:
                push()
                state = "pre_key"
            elif c == "\\":
                state = "value_escape"
            else:
                value.append(c)
                if c not in _WHITESPACE:
                    keep = len(value)
        elif state == "value_escape":
            state = "value"
            if c not in _NEWLINE:
                value.append(c)
                keep = len(value)
        elif state == "single":
            if c == "'":
                keep = len(value)
                state = "pre_value"
            else:
                value.append(c)
        elif state == "double":
            if c == '"':
                keep = len(value)
                state = "pre_value"
            elif c == "\\":
                state = "double_escape"
            else:
                value.append(c)
        elif state == "double_escape":
            state = "double"
            if c in _DQ_ESCAPABLE:
                value.append(c)
            elif c != "\n":
                value.extend(("\\", c))
        elif state == "comment":
            if c == "\\":
                state = "comment_escape"
            elif c in _NEWLINE:
                state = "pre_key"
        elif state == "comment_escape":
            if c in _NEWLINE:  # systemd >= 254 ends the comment here; older ones continue it
                problem = "comment ends with a backslash (read differently by systemd < 254)"
                errors.append({"line": line, "problem": problem})
                state = "pre_key"
            else:
                state = "comment"
        if c == "\n":
            line += 1

    if state in ("single", "double", "double_escape"):
        errors.append({"line": key_line, "problem": "quote opened here is never closed"})
    elif state == "key":
        errors.append({"line": key_line, "problem": "no '=' on the line"})
    elif state in ("pre_value", "value", "value_escape"):
        push()
    return {"values": values, "keys": sorted(values), "errors": errors}


def migrate_env_report(text: str, secrets: Mapping[str, str] | None = None) -> dict[str, Any]:
    """What the plan may show of an env file: its keys, its parse errors, the mapped keys it lacks."""
    parsed = migrate_env_file(text)
    wanted = list((secrets or {}).keys())
    return {
        "keys": parsed["keys"],
        "errors": parsed["errors"],
        "missing": [k for k in wanted if k not in parsed["values"]],
    }


def migrate_env_secrets(text: str, secrets: Mapping[str, str]) -> dict[str, str]:
    """The values of the mapped keys (env file key -> compose_secrets key) present in the file."""
    values = migrate_env_file(text)["values"]
    return {dst: values[src] for src, dst in secrets.items() if src in values}


# ---------------------------------------------------------------------------------------------
# Target volumes
# ---------------------------------------------------------------------------------------------

# The label the migration puts on the volumes it creates: its value is the volume's role.
MIGRATE_VOLUME_LABEL = "io.pidock.migrate.volume"
_VOLUME_ROLES = {
    "migrate_target_images_volume": "images",
    "migrate_target_ml_cache_volume": "ml_cache",
    "migrate_target_pgdata_volume": "pgdata",
}


def migrate_volume_blockers(volumes: Iterable[Mapping[str, Any]], project: str = "") -> list[str]:
    """Blockers for the stack's volumes, each naming the variable that points at the wrong volume.

    ``volumes``: one mapping per variable: ``var`` (e.g. migrate_target_images_volume), ``name``,
    ``exists``, ``labels`` and ``entries`` (how many entries its mount point holds; None unknown).
    A volume is fine when it does not exist yet, exists and is empty, or carries the migration's
    label for the same role (a volume this migration made on an earlier run). The three names must
    differ.
    """
    blockers: list[str] = []
    volumes = list(volumes)
    by_name: dict[str, list[str]] = {}
    for vol in volumes:
        by_name.setdefault(str(vol.get("name") or ""), []).append(str(vol["var"]))
    shared: set[str] = set()
    for name, names in by_name.items():
        if not name or len(names) < 2:
            continue
        # blame the variables whose volume name does not say their role (the typo), else all but the first
        culprits = [v for v in names if not name.endswith(_VOLUME_ROLES.get(v, v))] or names[1:]
        for var in culprits:
            others = " and ".join(v for v in names if v != var)
            blockers.append(f"{var}: {name} is also {others}; the three target volumes must be different volumes")
        shared.add(name)
    for vol in volumes:
        var, name = str(vol["var"]), str(vol.get("name") or "")
        role = _VOLUME_ROLES.get(var, var)
        if not name:
            blockers.append(f"{var} is empty: name the stack's {role} volume")
            continue
        if name in shared:
            continue
        if not vol.get("exists"):
            continue
        labels = vol.get("labels") or {}
        marked = labels.get(MIGRATE_VOLUME_LABEL)
        if marked == role:
            other_project = labels.get("com.docker.compose.project")
            if project and other_project and other_project != project:
                blockers.append(
                    f"{var}: {name} was made by a migration into compose project {other_project}, not {project}"
                )
            continue
        if marked:
            blockers.append(
                f"{var}: {name} holds the migration's {marked} volume (label {MIGRATE_VOLUME_LABEL}={marked}), "
                f"not its {role} volume; a copy into it would delete its files"
            )
            continue
        entries = vol.get("entries")
        if entries is None:
            blockers.append(f"{var}: {name} exists and its content could not be read; is it a local volume?")
        elif entries > 0:
            blockers.append(
                f"{var}: {name} exists, holds {entries} entr{'y' if entries == 1 else 'ies'} and was not made by "
                f"this migration (no {MIGRATE_VOLUME_LABEL} label); point {var} at a new or empty volume, or "
                "remove that volume after saving what it holds"
            )
    return blockers


# ---------------------------------------------------------------------------------------------
# Writes of the stack that only the stack holds (after a rollback that did not carry them back)
# ---------------------------------------------------------------------------------------------


def migrate_stack_writes_blockers(
    ledger: Mapping[str, Any] | None, volumes: Iterable[str], discard: bool = False
) -> list[str]:
    """A blocker when the last rollback put the bare metal back after the stack had served.

    From the stack's cutover to that rollback, the app wrote to the stack's database and volumes;
    unless the rollback carried those writes back (its ledger note says ``carried_back``), they
    exist only in the stack's volumes, and a new migration would overwrite them: restore drops
    the database, delta deletes files the bare metal lacks. ``discard`` (migrate_discard_stack_writes)
    is the operator saying they are not wanted.
    """
    rollbacks = list((ledger or {}).get("rollbacks") or [])
    if not rollbacks or discard:
        return []
    last = rollbacks[-1]
    since = last.get("stack_served_since")
    if not since or last.get("carried_back"):
        return []
    names = ", ".join(volumes)
    return [
        f"the stack served from {since} until the rollback at {last.get('time', '?')}, and what it wrote then was "
        f"not carried back to the bare metal: it exists only in the stack's volumes ({names}), which a new "
        "migration overwrites (restore drops the database, delta deletes files the bare metal lacks). Save what "
        "you need from them, then set migrate_discard_stack_writes: true to migrate anyway"
    ]


_WRITING_PHASES = ("presync", "restore", "delta")


def migrate_volume_users_blockers(
    containers: Iterable[Mapping[str, Any]] | None,
    volumes: Iterable[str],
    ledger: Mapping[str, Any] | None,
    project: str = "",
) -> list[str]:
    """A blocker per running container, not the migration's own, that has a target volume mounted.

    The migration's own: its restore and verification containers (label ``pidock.migrate``), and the
    stack of compose project ``project`` once the ledger says the replicate method's prestart phase
    started it (before the freeze, on the replicating database).

    Read from the engine, not the ledger: a stack that serves from the volumes (a ledger removed or
    edited by hand, or a stack deployed before the migration) would have its database dropped and its
    files deleted by restore and delta, and two PostgreSQL servers must never share one data
    directory. Only while a phase that writes the volumes (presync, restore, delta) is still to be
    verified: after a verified cutover the stack serving from them is the migration's outcome.
    """
    phases = (ledger or {}).get("phases") or {}
    if all((phases.get(p) or {}).get("status") == "verified" for p in _WRITING_PHASES):
        return []
    wanted = set(volumes)
    prestarted = str((phases.get("prestart") or {}).get("status") or "") in ("started", "verified")
    blockers = []
    for container in containers or []:
        labels = container.get("Labels") or {}
        if str(labels.get("pidock.migrate", "")).lower() == "true":
            continue
        if prestarted and project and labels.get("com.docker.compose.project") == project:
            continue
        state = str(container.get("State") or "running")
        if state not in ("running", "restarting", "paused"):
            continue
        mounts = container.get("Mounts") or []
        mounted = sorted(str(m.get("Name")) for m in mounts if m.get("Type") == "volume" and m.get("Name") in wanted)
        if not mounted:
            continue
        name = ",".join(n.lstrip("/") for n in container.get("Names") or []) or str(container.get("Id", "?"))[:12]
        project = labels.get("com.docker.compose.project")
        blockers.append(
            f"container {name}{f' (compose project {project})' if project else ''} is running with "
            f"{', '.join(mounted)} mounted: a stack serves from the target volumes, and restore would drop its "
            "database and delta delete its files (and two PostgreSQL servers must never share a data directory). "
            "If it holds writes you need, roll back with playbooks/migrate_rollback.yml or save them; then stop it "
            "and run the migration again"
        )
    return blockers


# ---------------------------------------------------------------------------------------------
# Small parsers of the probes' output
# ---------------------------------------------------------------------------------------------


def _version_tuple(text: str) -> tuple[int, ...]:
    parts = re.findall(r"\d+", str(text))
    return tuple(int(p) for p in parts) or (0,)


def _probe(lines: Iterable[str]) -> tuple[str, dict[str, str], list[str]]:
    """(version, extensions, locales) from probe_image.sh's ``key=value`` lines."""
    version = ""
    extensions: dict[str, str] = {}
    locales: list[str] = []
    for line in lines:
        key, _eq, rest = line.partition("=")
        if key == "version":
            found = re.search(r"PostgreSQL\) ([0-9][0-9.]*)", rest)
            version = found.group(1) if found else ""
        elif key == "extension":
            name, _eq2, ver = rest.partition("=")
            extensions[name] = ver
        elif key == "locale":
            locales.append(_locale(rest))
    return version, extensions, locales


def _locale(name: str) -> str:
    return name.strip().lower().replace("utf-8", "utf8")


def _units(text: str) -> list[dict[str, str]]:
    """systemctl show's blocks (Id, ActiveState, UnitFileState) as a list."""
    units = []
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        props = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        units.append(
            {
                "unit": props.get("Id", ""),
                "active": props.get("ActiveState", ""),
                "enabled": props.get("UnitFileState", ""),
            }
        )
    return units


def _size(value: float) -> str:
    """Bytes in binary units, as Ansible's filesizeformat(true) writes them."""
    units = ["Bytes", "KiB", "MiB", "GiB", "TiB", "PiB"]
    amount = float(value)
    for unit in units:
        if abs(amount) < 1024 or unit == units[-1]:
            return f"{int(amount)} Bytes" if unit == "Bytes" else f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{amount:.1f} PiB"


_EMPTY_TREE = {"files": 0, "dirs": 0, "symlinks": 0, "hardlink_groups": 0, "bytes": 0}


_IPV6_ENV = "DOCKER_ALLOW_IPV6_ON_IPV4_INTERFACE=1"


def _engine(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The engine facts from what migrate_host_info read: version (a string, quotes tolerated),
    ipv6_disabled (a bool, or the sysctl's text) and environment (systemctl show docker -p Environment)."""
    if not raw:
        return {}
    version = str(raw.get("version") or "").strip().strip('"')
    disabled = raw.get("ipv6_disabled")
    if isinstance(disabled, str):
        disabled = disabled.strip() != "0"  # unreadable or "1": IPv6 is off
    workaround = raw.get("ipv6_workaround")
    if workaround is None:
        text = str(raw.get("environment") or "")
        workaround = re.search(r"(?:^|[\s=])" + re.escape(_IPV6_ENV) + r"(?:\s|$)", text) is not None
    return {"version": version, "ipv6_disabled": bool(disabled), "ipv6_workaround": bool(workaround)}


def _engine_blockers(engine: Mapping[str, Any], min_version: str) -> list[str]:
    """An engine that would fail the restore container (Docker >= 26 with IPv6 off) needs provision.yml first."""
    if not engine:
        return []
    version = str(engine.get("version") or "")
    if not version:
        return ["Docker does not answer on the target; run playbooks/provision.yml (pidock.stack.docker) first"]
    needs = engine.get("ipv6_disabled") and _version_tuple(version) >= _version_tuple(min_version)
    if needs and not engine.get("ipv6_workaround"):
        return [
            f"Docker {version} on a host with IPv6 disabled cannot start containers on the migration's network "
            "(DOCKER_ALLOW_IPV6_ON_IPV4_INTERFACE is not set for dockerd); run playbooks/provision.yml "
            "(pidock.stack.docker) on the target first"
        ]
    return []


# ---------------------------------------------------------------------------------------------
# The plan
# ---------------------------------------------------------------------------------------------


def migrate_plan(facts: Mapping[str, Any]) -> dict[str, Any]:
    """The plan: what the source holds, what the target offers, an estimate, blockers and warnings.

    ``facts`` keys (see tasks/plan_run.yml): host, target_host, config (the role's settings), db
    (plan.sql's JSON), probe (lines), trees ({path: {counts, total_bytes}}), hf (hf_cache_check
    result or None), env (migrate_env_report or None), ledger (the migration ledger: its rollbacks and
    phases), and what migrate_host_info read: image ({found, inspect, error}), arch, paths ({path:
    exists}), units (systemctl show text), space ([{path, mount, available_bytes}]), listeners
    ([{port, address, process, unit}]), volumes (see migrate_volume_blockers), volume_users (the
    engine's containers that mount a target volume, see migrate_volume_users_blockers), engine
    ({version, ipv6_disabled, ipv6_workaround or environment}, see _engine).
    """
    cfg = facts["config"]
    blockers: list[str] = []
    warnings: list[str] = []
    image_name = cfg["postgres_image"]

    # ---- source database
    db = facts["db"]
    src_major = int(db["server_version_num"]) // 10000
    src_exts = {e["name"]: e["version"] for e in db.get("extensions", [])}
    for role in db.get("roles", []):
        if role.get("login") and role.get("password") == "md5":
            warnings.append(
                f"role {role['name']} has an md5 password hash; the stack authenticates with scram-sha-256, "
                "set its password again after restore"
            )
    if db.get("encoding") == "SQL_ASCII":
        warnings.append("database encoding is SQL_ASCII: bytes are restored as they are, without validation")

    # ---- target engine and image
    engine = _engine(facts.get("engine") or {})
    blockers.extend(_engine_blockers(engine, cfg.get("ipv6_bug_min_version", "26.0.0")))
    image_result = facts.get("image") or {}
    image_present = bool(image_result.get("found"))
    image: dict[str, Any] = dict(image_result.get("inspect") or {}) if image_present else {}
    version, tgt_exts, tgt_locales = _probe(facts.get("probe") or [])
    tgt_major = _version_tuple(version.split(".")[0])[0] if version else 0
    host_arch = str(facts.get("arch", "")).strip()
    want_arch = cfg.get("docker_arch", {}).get(host_arch, host_arch)
    if not image_present:
        reason = str(image_result.get("error", "")).strip()
        blockers.append(
            f"image {image_name} is not on {facts['target_host']}"
            + (f" ({reason})" if reason else "")
            + "; obtain it with the compose role's image step (compose_stack service source: pull, build or load, "
            "as playbooks/deploy.yml does) or docker load it, then plan again"
        )
    else:
        if image.get("Architecture", "") != want_arch:
            blockers.append(f"image {image_name} is {image.get('Architecture') or '?'}, the target runs {want_arch}")
        if tgt_major == 0:
            blockers.append(f"no postgres server found in image {image_name}")
        elif tgt_major < src_major:
            blockers.append(
                f"target PostgreSQL {tgt_major} is older than the source {src_major} "
                "(dumps do not restore into older servers)"
            )
        for name, ver in src_exts.items():
            if name == "plpgsql":
                continue
            if name not in tgt_exts:
                blockers.append(f"image {image_name} lacks the extension {name} ({ver} on the source)")
            elif _version_tuple(tgt_exts[name]) < _version_tuple(ver):
                blockers.append(f"image {image_name} has {name} {tgt_exts[name]}, older than the source {ver}")
        builtin = {_locale(x) for x in cfg.get("builtin_locales", ["c", "posix"])}
        for what in ("collate", "ctype"):
            loc = _locale(db[what])
            if loc not in builtin and loc not in tgt_locales:
                blockers.append(
                    f"locale {db[what]} (LC_{what.upper()} of {db['database']}) is missing from image {image_name}"
                )

    # ---- files
    paths: Mapping[str, bool] = facts.get("paths") or {}
    trees: dict[str, dict[str, int]] = {}
    for path, tree in (facts.get("trees") or {}).items():
        counts = tree.get("counts", {})
        trees[path] = {
            "files": counts.get("file", 0),
            "dirs": counts.get("dir", 0),
            "symlinks": counts.get("symlink", 0),
            "hardlink_groups": counts.get("hardlink_groups", 0),
            "bytes": tree.get("total_bytes", 0),
        }
    images = trees.get(cfg["images_dir"], dict(_EMPTY_TREE))
    ml = trees.get(cfg["ml_cache_dir"], dict(_EMPTY_TREE))
    for path, exists in paths.items():
        if not exists:
            warnings.append(f"{path} does not exist on the source")

    # ---- env file
    env = facts.get("env")
    if env is not None:
        for err in env.get("errors", []):
            blockers.append(
                f"{cfg['env_file']} line {err['line']}: {err['problem']}; systemd's EnvironmentFile= would not read "
                'it as written: fix the line (quote the value, escape \\ and " inside double quotes)'
            )
        if env.get("missing"):
            blockers.append(f"migrate_env_secrets: {', '.join(env['missing'])} missing from {cfg['env_file']}")

    # ---- ML cache
    hf = facts.get("hf") or {"repos": [], "dangling": [], "ok": False}
    repos = {r["repo_id"]: r for r in hf.get("repos", [])}
    for model in cfg.get("ml_models", []):
        repo = repos.get(model)
        if repo is None:
            blockers.append(f"model {model} is not in the ML cache {cfg['ml_cache_dir']}")
        elif not repo.get("ok"):
            kinds = ", ".join(dict.fromkeys(e.get("kind", "?") for e in repo.get("errors", [])))
            blockers.append(f"model {model} is broken in the ML cache: {kinds}")
    for repo_id, repo in repos.items():
        if repo_id not in cfg.get("ml_models", []) and not repo.get("ok"):
            kinds = ", ".join(dict.fromkeys(e.get("kind", "?") for e in repo.get("errors", [])))
            warnings.append(f"ML cache repository {repo_id} has errors ({kinds}); copied as it is")
    ml_repos = [
        {
            "repo_id": r["repo_id"],
            "ok": r.get("ok", False),
            "refs": r.get("refs", {}),
            "files": r.get("files", 0),
            "blobs": r.get("blobs", 0),
            "bytes": r.get("bytes", 0),
            "errors": len(r.get("errors", [])),
            "dangling": len(r.get("dangling", [])),
        }
        for r in hf.get("repos", [])
    ]

    # ---- space
    space: dict[str, dict[str, Any]] = {}
    for entry in facts.get("space") or []:
        space[entry["path"]] = {"mount": entry["mount"], "available_bytes": int(entry["available_bytes"])}
    margin = 1 + float(cfg.get("space_margin", 0.2))
    size = int(db.get("size_bytes", 0))
    data_need = int((images["bytes"] + ml["bytes"] + size) * margin)
    work_need = int(size * margin)
    data_dir, work_dir = cfg["data_dir"], cfg["work_dir"]
    data = space.get(data_dir, {"mount": "?", "available_bytes": 0})
    work = space.get(work_dir, {"mount": "?", "available_bytes": 0})
    if data["mount"] == work["mount"] and data["mount"] != "?":
        checks = [{"path": f"{data_dir} + {work_dir}", "need": data_need + work_need, "have": data["available_bytes"]}]
    else:
        checks = [
            {"path": data_dir, "need": data_need, "have": data["available_bytes"]},
            {"path": work_dir, "need": work_need, "have": work["available_bytes"]},
        ]
    for check in checks:
        if check["need"] > check["have"]:
            blockers.append(
                f"too little space on {check['path']}: {_size(check['need'])} needed, {_size(check['have'])} free"
            )

    # ---- ports
    ports = []
    stack_ports = {int(p) for p in cfg.get("stack_ports", [])}
    source_units = set(cfg.get("source_units", []))
    # Once the cutover has begun, the stack's switch may have started its front: Docker's proxy on the
    # stack's ports is then the stack itself (a controller that died in the switch), not a conflict.
    switching = ((facts.get("ledger") or {}).get("phases") or {}).get("cutover", {}).get("status") == "started"
    for sock in facts.get("listeners") or []:
        port, unit, process = int(sock["port"]), str(sock.get("unit") or "-"), str(sock.get("process") or "-")
        if port not in stack_ports:
            continue
        freed = unit in source_units
        stack = switching and unit == "docker.service"
        ports.append(
            {
                "port": port,
                "address": sock.get("address", ""),
                "process": process,
                "unit": unit,
                "freed_at_cutover": freed,
                "held_by_stack": stack,
            }
        )
        if not freed and not stack:
            blockers.append(f"port {port} is held by {process} ({unit}), not by a bare-metal unit")

    # ---- writes only the stack holds
    blockers.extend(
        migrate_stack_writes_blockers(
            facts.get("ledger"), cfg.get("stack_write_volumes", []), bool(cfg.get("discard_stack_writes", False))
        )
    )

    # ---- volumes
    volumes = list(facts.get("volumes") or [])
    blockers.extend(migrate_volume_blockers(volumes, cfg.get("project", "")))
    blockers.extend(
        migrate_volume_users_blockers(
            facts.get("volume_users"),
            [str(v.get("name")) for v in volumes if v.get("name")],
            facts.get("ledger"),
            cfg.get("project", ""),
        )
    )

    # ---- estimate
    copy_rate, dump_rate = float(cfg["copy_rate"]), float(cfg["dump_rate"])
    presync = math.ceil((images["bytes"] + ml["bytes"]) / 1e6 / copy_rate)
    dump = math.ceil(size / 1e6 / dump_rate)
    delta = max(5, math.ceil(presync * 0.1))
    downtime = dump * 2 + delta + int(cfg.get("overhead_seconds", 45))
    if int(db.get("connections", 0)) > 0:
        warnings.append(f"{db['connections']} client connection(s) to {db['database']} now; freeze stops the writers")

    return {
        "host": facts["host"],
        "target_host": facts["target_host"],
        "source": {
            "postgresql": db.get("server_version"),
            "major": src_major,
            "database": db.get("database"),
            "encoding": db.get("encoding"),
            "collate": db.get("collate"),
            "ctype": db.get("ctype"),
            "size_bytes": size,
            "extensions": db.get("extensions", []),
            "roles": db.get("roles", []),
            "tables": db.get("tables", []),
            "rows": sum(int(t.get("rows", 0)) for t in db.get("tables", [])),
            "sequences": db.get("sequences", []),
            "connections": db.get("connections", 0),
            "databases": db.get("databases", []),
            "units": _units(facts.get("units") or ""),
            "images": images,
            "ml_cache": ml,
            "ml_repos": ml_repos,
            "ml_dangling": hf.get("dangling", []),
            "ssl_dir_exists": bool(paths.get(cfg.get("ssl_dir", ""), False)),
            "env_file_exists": bool(paths.get(cfg["env_file"], False)),
            "env_keys": (env or {}).get("keys", []),
        },
        "target": {
            "image": image_name,
            "image_present": image_present,
            "image_architecture": image.get("Architecture", ""),
            "host_architecture": want_arch,
            "postgresql": version,
            "major": tgt_major,
            "extensions": tgt_exts,
            "locales": tgt_locales,
            "space": checks,
            "ports": ports,
            "volumes": [
                {k: v.get(k) for k in ("var", "name", "exists", "entries")} | {"labels": v.get("labels") or {}}
                for v in volumes
            ],
            "engine": engine,
        },
        "estimate": {
            "presync_seconds": presync,
            "dump_seconds": dump,
            "restore_seconds": dump,
            "delta_seconds": delta,
            "downtime_seconds": downtime,
            "total_seconds": presync + downtime,
            "assumed_copy_mb_s": cfg["copy_rate"],
            "assumed_dump_mb_s": cfg["dump_rate"],
        },
        "blockers": blockers,
        "warnings": warnings,
    }


# ---------------------------------------------------------------------------------------------
# Baselines (files/baseline.sql): what the restored database must match
# ---------------------------------------------------------------------------------------------


def migrate_baseline_diff(source: Mapping[str, Any], target: Mapping[str, Any]) -> list[str]:
    """Every way ``target``'s baseline differs from ``source``'s, one message each (empty: equal).

    Tables by row count then checksum, sequences by position (and any sequence of the target
    behind its column), nearest-neighbour probes, database settings, owner, encoding, locales and
    extensions.
    """
    diff: list[str] = []
    tgt_tables = {t["table"]: t for t in target.get("tables", [])}
    for table in source.get("tables", []):
        other = tgt_tables.get(table["table"])
        if other is None:
            diff.append(f"{table['table']} is missing")
        elif other["rows"] != table["rows"]:
            diff.append(f"{table['table']} has {other['rows']} rows, source {table['rows']}")
        elif other.get("checksum") != table.get("checksum"):
            diff.append(f"{table['table']} checksum differs")
    src_names = {t["table"] for t in source.get("tables", [])}
    for name in sorted(set(tgt_tables) - src_names):
        diff.append(f"{name} is not in the source")
    tgt_seqs = {s["sequence"]: s for s in target.get("sequences", [])}
    for seq in source.get("sequences", []):
        other = tgt_seqs.get(seq["sequence"])
        if other is None:
            diff.append(f"sequence {seq['sequence']} is missing")
        elif other.get("last_value") != seq.get("last_value") or other.get("is_called") != seq.get("is_called"):
            diff.append(f"sequence {seq['sequence']} is at {other.get('last_value')}, source {seq.get('last_value')}")
    for seq in target.get("sequences", []):
        if seq.get("behind"):
            diff.append(
                f"sequence {seq['sequence']} ({seq.get('last_value')}) is behind {seq.get('column')} "
                f"(max {seq.get('column_max')})"
            )
    if source.get("probes") != target.get("probes"):
        diff.append(
            f"nearest-neighbour probes differ: source {json.dumps(source.get('probes'))}, "
            f"target {json.dumps(target.get('probes'))}"
        )
    if (source.get("settings") or []) != (target.get("settings") or []):
        diff.append(
            f"database settings differ: source {json.dumps(source.get('settings'))}, "
            f"target {json.dumps(target.get('settings'))}"
        )
    for key in ("owner", "encoding", "collate", "ctype"):
        if source.get(key) != target.get(key):
            diff.append(f"database {key} is {target.get(key)}, source {source.get(key)}")
    if source.get("extensions") != target.get("extensions"):
        diff.append(
            f"extensions differ: source {json.dumps(source.get('extensions'))}, "
            f"target {json.dumps(target.get('extensions'))}"
        )
    return diff


RESTORING = {"restoring": True}


def migrate_restore_guard(
    current: Mapping[str, Any] | None, recorded: Mapping[str, Any] | None, database: str = "", volume: str = ""
) -> list[str]:
    """Why restore must not drop the database the stack's volume holds now (empty: it may).

    ``current`` is the baseline of that database (None or empty: there is none); ``recorded`` what
    the migration last recorded for it (the ``stack-baseline.<volume>.json`` file): the baseline verify took
    (the stack served from it after cutover), the one a rollback carried back to the bare metal,
    ``{"restoring": true}`` while a restore of this migration is under way (nothing served from it),
    or None when the migration never recorded one. Read from the data, not the ledger: a removed or
    edited ledger cannot make restore drop writes that exist only in the stack.
    """
    if not current:
        return []
    where = f"{database or 'the database'} in {volume or 'the stack volume'}"
    if recorded and recorded.get("restoring"):
        return []
    if not recorded:
        tables = [t for t in current.get("tables", []) if int(t.get("rows") or 0) > 0]
        if not tables:
            return []
        rows = sum(int(t["rows"]) for t in tables)
        return [
            f"{where} holds {rows} row(s) in {len(tables)} table(s) ({', '.join(t['table'] for t in tables[:5])}"
            f"{', ...' if len(tables) > 5 else ''}) that this migration never recorded there; restore would drop "
            "them. Save what you need (or point migrate_target_pgdata_volume at another volume), then set "
            "migrate_discard_stack_writes: true to migrate anyway"
        ]
    diff = migrate_baseline_diff(recorded, current)
    if not diff:
        return []
    shown = "; ".join(diff[:5]) + ("; ..." if len(diff) > 5 else "")
    return [
        f"{where} changed since the migration last recorded it (its cutover, or a rollback that carried the "
        f"stack's writes back): {shown}. Those writes exist only in the stack and restore would drop them; roll "
        "back with playbooks/migrate_rollback.yml to carry them to the bare metal first, or save them and set "
        "migrate_discard_stack_writes: true"
    ]


def migrate_baseline_changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """What was written between two baselines of one database (e.g. the stack's since cutover):
    tables added, dropped or changed (rows before and after), sequences moved. The summary a
    lossless rollback reports, and what a re-migration must not overwrite unnoticed."""
    old = {t["table"]: t for t in before.get("tables", [])}
    new = {t["table"]: t for t in after.get("tables", [])}
    tables = []
    for name in sorted(old.keys() | new.keys()):
        a, b = old.get(name), new.get(name)
        if a is not None and b is not None and (a["rows"], a.get("checksum")) == (b["rows"], b.get("checksum")):
            continue
        tables.append(
            {
                "table": name,
                "change": "added" if a is None else "dropped" if b is None else "changed",
                "rows_before": a["rows"] if a else 0,
                "rows_after": b["rows"] if b else 0,
            }
        )
    old_seq = {s["sequence"]: s.get("last_value") for s in before.get("sequences", [])}
    sequences = [
        {"sequence": s["sequence"], "before": old_seq.get(s["sequence"]), "after": s.get("last_value")}
        for s in after.get("sequences", [])
        if old_seq.get(s["sequence"]) != s.get("last_value")
    ]
    return {"changed": bool(tables or sequences), "tables": tables, "sequences": sequences}


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "migrate_env_file": migrate_env_file,
            "migrate_env_report": migrate_env_report,
            "migrate_env_secrets": migrate_env_secrets,
            "migrate_volume_blockers": migrate_volume_blockers,
            "migrate_stack_writes_blockers": migrate_stack_writes_blockers,
            "migrate_restore_guard": migrate_restore_guard,
            "migrate_plan": migrate_plan,
            "migrate_baseline_diff": migrate_baseline_diff,
            "migrate_baseline_changes": migrate_baseline_changes,
        }
