# Copyright: (c) 2026, pidock.stack maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Integrity checks for a Hugging Face hub cache (private helpers for ``hf_cache_check``).

Hub layout, per repository ``<hub>/models--<org>--<name>``::

    blobs/<hash>                 content, named by sha256 (LFS files) or git blob sha1 (small files)
    refs/<ref>                   a commit hash (refs/main, refs/pr/1, ...)
    snapshots/<commit>/<file>    relative symlinks into ../../blobs/<hash>
"""

from __future__ import annotations

import os
import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ansible_collections.pidock.stack.plugins.module_utils._manifest import _git_blob_sha1, _hash_file

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_SHA1 = re.compile(r"^[0-9a-f]{40}$")
_KINDS = ("models", "datasets", "spaces")


def _hub_dir(path: str) -> str:
    """HF_HOME or HF_HOME/hub: the directory holding the models--* repositories."""
    hub = os.path.join(path, "hub")
    return hub if os.path.isdir(hub) else path


def _repo_dir_name(name: str) -> str:
    """'org/name' -> 'models--org--name'; a name already in cache form is kept."""
    if name.startswith(tuple(k + "--" for k in _KINDS)):
        return name
    return "models--" + name.replace("/", "--")


def _repo_id(dir_name: str) -> str:
    parts = dir_name.split("--")
    return "/".join(parts[1:])


def _blob_check(path: str) -> str | None:
    """None when a blob's content matches its name, else what is wrong."""
    name = os.path.basename(path)
    if _SHA256.match(name):
        actual = _hash_file(path)
        algo = "sha256"
    elif _SHA1.match(name):
        actual = _git_blob_sha1(path)
        algo = "git-sha1"
    else:
        return "name is neither a sha256 nor a git blob sha1"
    return None if actual == name else f"{algo} is {actual}"


def _check_repo(repo: str, *, verify_blobs: bool, jobs: int) -> dict[str, Any]:
    errors: list[dict[str, str]] = []
    warnings: list[dict[str, str]] = []
    dangling: list[str] = []
    name = os.path.basename(repo)
    blobs_dir = os.path.join(repo, "blobs")
    snaps_dir = os.path.join(repo, "snapshots")
    refs_dir = os.path.join(repo, "refs")
    blobs_real = os.path.realpath(blobs_dir)

    def err(kind: str, rel: str, detail: str = "") -> None:
        errors.append({"kind": kind, "path": rel, "detail": detail})

    refs: dict[str, str] = {}
    if os.path.isdir(refs_dir):
        for base, _dirs, files in os.walk(refs_dir):
            for f in sorted(files):
                full = os.path.join(base, f)
                ref = os.path.relpath(full, refs_dir)
                try:
                    with open(full, encoding="ascii") as handle:
                        commit = handle.read().strip()
                except (OSError, UnicodeDecodeError) as exc:
                    err("ref_unreadable", f"refs/{ref}", str(exc))
                    continue
                refs[ref] = commit
                if not os.path.isdir(os.path.join(snaps_dir, commit)):
                    err("ref_without_snapshot", f"refs/{ref}", f"snapshot {commit} is missing")
    if not refs:
        warnings.append({"kind": "no_refs", "path": "refs", "detail": "offline loads must name a revision"})

    snapshots = sorted(os.listdir(snaps_dir)) if os.path.isdir(snaps_dir) else []
    if not snapshots:
        err("no_snapshots", "snapshots")
    referenced: set[str] = set()
    files = 0
    for snap in snapshots:
        snap_dir = os.path.join(snaps_dir, snap)
        for base, dirs, names in os.walk(snap_dir):
            for entry in sorted(names + [d for d in dirs if os.path.islink(os.path.join(base, d))]):
                full = os.path.join(base, entry)
                rel = os.path.relpath(full, repo)
                files += 1
                if not os.path.islink(full):
                    err("not_a_symlink", rel, "snapshot entries must link into blobs/")
                    continue
                target = os.readlink(full)
                if os.path.isabs(target):
                    err("absolute_symlink", rel, target)
                resolved = os.path.realpath(full)
                if os.path.dirname(resolved) != blobs_real:
                    err("outside_blobs", rel, f"{target} resolves to {resolved}")
                if not os.path.exists(full):
                    dangling.append(rel)
                    err("dangling_symlink", rel, target)
                    continue
                referenced.add(os.path.basename(resolved))

    blob_names = sorted(os.listdir(blobs_dir)) if os.path.isdir(blobs_dir) else []
    size = 0
    to_verify: list[str] = []
    for blob in blob_names:
        full = os.path.join(blobs_dir, blob)
        if blob.endswith(".incomplete"):
            warnings.append({"kind": "incomplete_download", "path": f"blobs/{blob}", "detail": ""})
            continue
        if not os.path.isfile(full) or os.path.islink(full):
            err("blob_not_a_file", f"blobs/{blob}")
            continue
        size += os.path.getsize(full)
        if blob not in referenced:
            warnings.append({"kind": "unreferenced_blob", "path": f"blobs/{blob}", "detail": ""})
        if verify_blobs:
            to_verify.append(full)
    if to_verify:
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            for full, problem in zip(to_verify, pool.map(_blob_check, to_verify), strict=True):
                if problem:
                    err("blob_hash_mismatch", os.path.relpath(full, repo), problem)

    return {
        "repo_id": _repo_id(name),
        "path": repo,
        "ok": not errors,
        "refs": refs,
        "snapshots": snapshots,
        "files": files,
        "blobs": len(blob_names),
        "bytes": size,
        "errors": errors,
        "warnings": warnings,
        "dangling": dangling,
    }


def _check_cache(path: str, *, models: list[str], verify_blobs: bool = True, jobs: int = 1) -> dict[str, Any]:
    hub = _hub_dir(path)
    if not os.path.isdir(hub):
        raise NotADirectoryError(f"{path} is not a directory")
    present = sorted(d for d in os.listdir(hub) if d.startswith(tuple(k + "--" for k in _KINDS)))
    wanted = [_repo_dir_name(m) for m in models] if models else present
    repos: list[dict[str, Any]] = []
    for dir_name in wanted:
        repo = os.path.join(hub, dir_name)
        if not os.path.isdir(repo):
            repos.append(
                {
                    "repo_id": _repo_id(dir_name),
                    "path": repo,
                    "ok": False,
                    "errors": [{"kind": "repo_missing", "path": dir_name, "detail": "not in the cache"}],
                    "warnings": [],
                    "dangling": [],
                }
            )
            continue
        repos.append(_check_repo(repo, verify_blobs=verify_blobs, jobs=jobs))
    return {
        "hub": hub,
        "ok": all(r["ok"] for r in repos),
        "repos": repos,
        "dangling": [os.path.join(r["path"], d) for r in repos for d in r["dangling"]],
        "error_count": sum(len(r["errors"]) for r in repos),
    }
