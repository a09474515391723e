"""Release directories of a pidock stack: the shared, side-effect free logic.

Layout under a stack root::

    <root>/releases/<release_id>/   immutable: the files of one release + release.json
    <root>/current                  symlink -> releases/<release_id>, switched atomically
    <root>/history.json             activations, newest last
    <root>/deploy.lock              JSON: owner, host, pid, time, token
    <root>/audit.log                one JSON line per deploy or rollback

Private to pidock.stack: names and signatures may change without notice.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterable, Mapping
from typing import Any

from ansible_collections.pidock.stack.plugins.module_utils._atomic import write_atomic

RELEASES_DIR = "releases"
CURRENT_LINK = "current"
HISTORY_FILE = "history.json"
LOCK_FILE = "deploy.lock"
AUDIT_FILE = "audit.log"
META_FILE = "release.json"
OUTCOMES = ("pending", "success", "failed", "rolled_back", "interrupted")
_SLUG_RE = re.compile(r"[^A-Za-z0-9._-]+")
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,80}$")
_FILE_RE = re.compile(r"^[A-Za-z0-9._-]+$")


class ReleaseError(Exception):
    """A request the release store cannot honour; the message is meant for the operator."""


def slug(text: str) -> str:
    """A version label made safe for a directory name: 'v2 (hotfix)' -> 'v2-hotfix'."""
    cleaned = _SLUG_RE.sub("-", text).strip("-.")
    return cleaned[:40] or "release"


def config_hash_of(files: Mapping[str, str], images: Mapping[str, Any] | None = None) -> str:
    """sha256 over file names + contents and the resolved images, independent of ordering."""
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode())
        digest.update(b"\0")
        digest.update(files[name].encode())
        digest.update(b"\0")
    digest.update(json.dumps(images or {}, sort_keys=True).encode())
    return digest.hexdigest()


def release_id_for(version: str, config_hash: str) -> str:
    """Deterministic: the same version label and configuration always give the same id."""
    if not re.fullmatch(r"[0-9a-fA-F]{12,}", config_hash):
        raise ReleaseError(f"config_hash must be hex (at least 12 digits), got {config_hash!r}")
    return f"{slug(version)}-{config_hash[:12].lower()}"


def check_release_id(release_id: str) -> str:
    if not _ID_RE.match(release_id) or release_id in (".", ".."):
        raise ReleaseError(f"invalid release id {release_id!r}")
    return release_id


def check_file_name(name: str) -> str:
    if not _FILE_RE.match(name) or name in (".", "..", META_FILE):
        raise ReleaseError(f"invalid release file name {name!r} (plain names only, not {META_FILE})")
    return name


def releases_dir(root: str) -> str:
    return os.path.join(root, RELEASES_DIR)


def release_path(root: str, release_id: str) -> str:
    return os.path.join(releases_dir(root), check_release_id(release_id))


def read_json(path: str, default: Any = None) -> Any:
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        return default
    except ValueError as exc:
        raise ReleaseError(f"{path} is not valid JSON: {exc}") from exc


def write_json_atomic(path: str, data: Any, mode: int = 0o644) -> None:
    """Write ``data`` as indented JSON to ``path`` through the shared atomic write (_atomic.write_atomic)."""
    write_atomic(path, json.dumps(data, indent=2, sort_keys=True) + "\n", mode)


def read_release(root: str, release_id: str) -> dict[str, Any] | None:
    return read_json(os.path.join(release_path(root, release_id), META_FILE))


def current_release(root: str) -> str | None:
    link = os.path.join(root, CURRENT_LINK)
    if not os.path.islink(link):
        return None
    return os.path.basename(os.readlink(link).rstrip("/"))


def read_history(root: str) -> list[dict[str, Any]]:
    history = read_json(os.path.join(root, HISTORY_FILE), [])
    return history if isinstance(history, list) else []


def list_releases(root: str) -> list[dict[str, Any]]:
    """Every release with its metadata, oldest first (by creation time, then id)."""
    base = releases_dir(root)
    if not os.path.isdir(base):
        return []
    found = []
    for name in os.listdir(base):
        if name.startswith(".") or not _ID_RE.match(name):
            continue
        meta = read_json(os.path.join(base, name, META_FILE))
        if isinstance(meta, dict):
            found.append(meta)
    return sorted(found, key=lambda m: (m.get("created_epoch", 0), m.get("id", "")))


def previous_release(root: str, history: list[dict[str, Any]] | None = None, current: str | None = None) -> str | None:
    """The newest activation of another release that did not fail: what a rollback goes back to."""
    history = read_history(root) if history is None else history
    current = current_release(root) if current is None else current
    for entry in reversed(history):
        candidate = entry.get("release")
        if not candidate or candidate == current:
            continue
        meta = read_release(root, candidate)
        if meta and meta.get("outcome") not in ("failed",):
            return candidate
    return None


def build_metadata(
    release_id: str,
    version: str,
    config_hash: str,
    files: Iterable[str],
    images: Mapping[str, Any],
    extra: Mapping[str, Any],
    now: float,
) -> dict[str, Any]:
    return {
        "id": release_id,
        "version": version,
        "config_hash": config_hash,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
        "created_epoch": now,
        "files": sorted(files),
        "images": dict(images),
        "extra": dict(extra),
        "outcome": "pending",
        "outcome_history": [],
    }


def write_release(
    root: str,
    release_id: str,
    files: Mapping[str, tuple[str, int]],
    metadata: Mapping[str, Any],
) -> str:
    """Create releases/<id>/ atomically: build it in a temporary directory, then rename."""
    final = release_path(root, release_id)
    base = releases_dir(root)
    os.makedirs(base, mode=0o755, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".tmp-{release_id}-", dir=base)
    try:
        for name, (content, mode) in files.items():
            path = os.path.join(staging, check_file_name(name))
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(content)
            os.chmod(path, mode)
        write_json_atomic(os.path.join(staging, META_FILE), dict(metadata))
        os.chmod(staging, 0o750)
        os.rename(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return final


def activate(root: str, release_id: str, now: float, note: str = "") -> None:
    """Point `current` at the release by renaming a fresh temporary symlink over it."""
    target = os.path.join(RELEASES_DIR, check_release_id(release_id))
    tmp = os.path.join(root, f".{CURRENT_LINK}.tmp-{os.getpid()}")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)
    os.symlink(target, tmp)
    os.replace(tmp, os.path.join(root, CURRENT_LINK))
    history = read_history(root)
    history.append(
        {
            "release": release_id,
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
            "epoch": now,
            "note": note,
        }
    )
    write_json_atomic(os.path.join(root, HISTORY_FILE), history[-200:])


def with_outcome(meta: Mapping[str, Any], outcome: str, message: str, now: float) -> dict[str, Any]:
    if outcome not in OUTCOMES:
        raise ReleaseError(f"outcome must be one of {', '.join(OUTCOMES)}, got {outcome!r}")
    updated = dict(meta)
    updated["outcome"] = outcome
    updated["outcome_message"] = message
    updated["outcome_time"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
    event = {"outcome": outcome, "time": updated["outcome_time"]}
    updated["outcome_history"] = [*meta.get("outcome_history", []), event]
    return updated


def image_ids(meta: Mapping[str, Any]) -> set[str]:
    ids = set()
    for image in (meta.get("images") or {}).values():
        if isinstance(image, Mapping) and image.get("id"):
            ids.add(str(image["id"]))
        elif isinstance(image, str) and image:
            ids.add(image)
    return ids


def plan_prune(
    releases: list[dict[str, Any]], keep: int, protected: Iterable[str | None]
) -> tuple[list[str], list[str], list[str], list[str]]:
    """Which releases to keep and remove, and which images the kept ones still need.

    Keeps the `keep` newest releases plus every protected one (current, previous): returns
    (kept ids, removed ids, image ids kept releases need, image ids only removed releases used).
    """
    if keep < 1:
        raise ReleaseError("keep must be at least 1")
    protected_ids = {p for p in protected if p}
    newest = [m["id"] for m in releases[-keep:]]
    kept = [m["id"] for m in releases if m["id"] in protected_ids or m["id"] in newest]
    removed = [m["id"] for m in releases if m["id"] not in kept]
    needed: set[str] = set()
    for meta in releases:
        if meta["id"] in kept:
            needed |= image_ids(meta)
    unneeded: set[str] = set()
    for meta in releases:
        if meta["id"] in removed:
            unneeded |= image_ids(meta) - needed
    return kept, removed, sorted(needed), sorted(unneeded)


def remove_release(root: str, release_id: str) -> None:
    """Rename out of the way first so a half-removed release is never listed."""
    path = release_path(root, release_id)
    trash = os.path.join(releases_dir(root), f".trash-{release_id}-{os.getpid()}")
    os.rename(path, trash)
    shutil.rmtree(trash)


# --- lock -------------------------------------------------------------------------------------


def lock_age(holder: Mapping[str, Any], now: float) -> float:
    try:
        return now - float(holder.get("epoch", 0))
    except (TypeError, ValueError):
        return float("inf")


def describe_holder(holder: Mapping[str, Any], now: float) -> str:
    return (
        f"{holder.get('owner', '?')}@{holder.get('host', '?')} pid {holder.get('pid', '?')} "
        f"since {holder.get('time', '?')} ({int(lock_age(holder, now))}s ago)"
    )


def try_create_lock(path: str, info: Mapping[str, Any]) -> bool:
    """O_EXCL create: exactly one concurrent caller wins."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(dict(info), handle, sort_keys=True)
        handle.write("\n")
    return True


def lock_decision(
    holder: Mapping[str, Any] | None, token: str, stale_after: float, now: float, take_over: str = ""
) -> str:
    """'free', 'ours', 'dead', 'stale' or 'held' for the lock as it is now. `take_over` is the token of
    a holder the caller knows is gone (its controller process died): 'dead', taken over at once."""
    if holder is None:
        return "free"
    if holder.get("token") == token:
        return "ours"
    if take_over and holder.get("token") == take_over:
        return "dead"
    if lock_age(holder, now) > stale_after:
        return "stale"
    return "held"


def audit_entry(entry: Mapping[str, Any], now: float) -> str:
    line = {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))}
    line.update(entry)
    return json.dumps(line, sort_keys=True)


def release_summaries(root: str) -> list[dict[str, Any]]:
    """Every release's metadata for listings, with whether it is the current or the previous one."""
    current = current_release(root)
    previous = previous_release(root, current=current)
    return [
        {
            "id": m.get("id"),
            "version": m.get("version"),
            "created": m.get("created"),
            "outcome": m.get("outcome"),
            "config_hash": m.get("config_hash"),
            "images": m.get("images", {}),
            "extra": m.get("extra", {}),
            "current": m.get("id") == current,
            "previous": m.get("id") == previous,
        }
        for m in list_releases(root)
    ]
