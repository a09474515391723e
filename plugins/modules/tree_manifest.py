#!/usr/bin/python
# Copyright: (c) 2026, pidock.stack maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: tree_manifest
short_description: Build and compare SHA-256 manifests of directory trees
version_added: 0.1.0
description:
  - Walks a directory tree without following symlinks and records, for every entry, its path relative to the root,
    its type (C(file), C(dir), C(symlink), C(fifo), C(socket), C(device)), its permission bits, the size and SHA-256
    of regular files, the target of symlinks (never followed), optionally the owner and group, and hardlink groups
    (files sharing an inode inside the tree name the same leader path in C(link)).
  - Paths are kept as bytes. In JSON a path is its UTF-8 text; a name that is not valid UTF-8 is written as
    C(\\xNN)-escaped text plus C(path_b64) with the exact bytes, so every name round-trips and compares exactly.
  - Optionally writes the manifest to O(dest) (atomically, only when the content differs) and compares the tree
    against another manifest file or directory given in O(compare_to).
  - With O(copy_to), copies the tree into another directory while hashing it, so the source is read once, then
    verifies the copy by reading it back and comparing it with the source manifest (see O(copy_to)).
  - Read-only on O(path). Without O(copy_to) the only file ever written is O(dest).
author:
  - pidock.stack maintainers (@pidock)
options:
  path:
    description: Root of the tree to describe.
    type: path
    required: true
  dest:
    description:
      - Write the manifest as JSON to this file on the managed host.
      - Written through a temporary file in the same directory and renamed, and only when the content differs.
    type: path
  compare_to:
    description:
      - A manifest file written earlier by this module, or a directory (whose manifest is built with the same
        options, except that O(uid_map) and O(gid_map) apply to O(path) only).
      - Entries only in O(path) are C(missing), only in O(compare_to) are C(extra); entries in both whose recorded
        fields differ are C(changed) with the fields named.
      - Ownership and hashes are compared only when both sides recorded them.
      - Mutually exclusive with O(copy_to).
    type: path
  copy_to:
    description:
      - Copy the tree at O(path) into this directory, reading every source file once and hashing it on the way,
        then sync (O(sync)), read the copy back, hash it and compare it with the source manifest exactly as
        O(compare_to) would (ownership as mapped by O(uid_map) and O(gid_map)). RV(equal) and the other comparison
        values describe the copy; O(fail_on_difference) applies; O(dest) still receives the manifest of O(path).
      - Created (mode 0700 until the source directory's metadata is applied) when missing; its parent must exist.
        It must not be inside O(path), nor contain it.
        It may hold an earlier, partial copy, which is completed (resume).
      - A regular file whose copy already has the same size and modification time (ns) is not copied again (the
        quick check of rsync); only its mode and owner are corrected. Every other file is streamed in 1 MiB chunks
        into C(.pidock-partial/<name>) beside its destination (created 0600), given the source's mode, owner and
        times, and renamed over the destination. C(.pidock-partial) is the directory C(rsync --partial-dir) uses,
        so both tools resume each other's work; it is always excluded in copy mode and removed, with anything left
        in it, when the copy is complete.
      - Hardlink groups are copied once and linked; symlinks are recreated with the same target (never followed);
        FIFOs, sockets and devices are recreated with C(mknod); directory modes, owners and times are applied after
        their contents. Owners (mapped) are set only when running as root, as C(tar) and C(rsync -a) do.
      - A file kept by the quick check whose read-back hash differs from the source is copied again and verified
        once more (C(recopied) in RV(copy)).
      - Entries of the copy that are not in the source stay (and are C(extra) differences) unless O(delete) is set;
        entries whose type differs from the source's are replaced.
      - On an error the module fails naming the path; partial files stay in C(.pidock-partial) for the next run.
      - Requires O(checksum=true).
    type: path
  stat_cache:
    description:
      - With O(copy_to), a stat cache of the last verified copy, read before copying and rewritten (0600, atomically)
        once the copy is verified equal.
      - It holds, for every regular file of both trees, its size, mtime, ctime and inode with its SHA-256. A file
        whose four values still match is not read again; its hash is taken from the cache. ctime changes with every
        write, chmod, chown or rename of the file and cannot be set back, so a file changed since (even with its
        size and mtime forged back) is hashed as usual. A second pass over a tree that barely changed, such as the
        migration's delta after its presync, then reads only what changed.
      - A missing or unreadable file is an empty cache. Never written in check mode or when the copy differs.
    type: path
  delete:
    description: With O(copy_to), remove entries of the copy that are not in the source (excluded paths are kept).
    type: bool
    default: false
  guard_file:
    description:
      - With O(copy_to), a file whose modification time is the moment after which nothing but this copy may have
        written to O(copy_to). When it exists and an entry of O(copy_to) changed later (its ctime, which cannot be set
        back), the module fails naming the entries, before writing anything.
      - The migrate role points it at the marker its cutover writes (the stack serves from the volume since then), so
        a copy never removes or overwrites what the stack wrote, whatever the migration ledger says.
      - A missing file means no guard.
    type: path
  sync:
    description:
      - With O(copy_to), flush all file systems (C(sync)) after copying and before reading the copy back, so the copy
        is on disk when the module reports it verified.
    type: bool
    default: true
  ignore:
    description: Fields not to compare.
    type: list
    elements: str
    choices: [type, size, sha256, target, mode, uid, gid, link]
    default: []
  ownership:
    description: Record the numeric uid and gid of each entry.
    type: bool
    default: false
  uid_map:
    description:
      - Map the uids found under O(path) before recording or comparing them, for a tree copied with ownership mapped
        to a container user. Keys are source uids (as strings); the key C(*) maps every other uid.
    type: dict
    default: {}
  gid_map:
    description: As O(uid_map), for gids.
    type: dict
    default: {}
  exclude:
    description: Shell-style patterns matched against each relative path and its last component; matches are skipped.
    type: list
    elements: str
    default: []
  checksum:
    description: Hash regular files. With V(false) only the structure, sizes, modes and links are recorded.
    type: bool
    default: true
  jobs:
    description:
      - Files hashed (and with O(copy_to), copied) in parallel (threads). V(0) picks the number of CPUs, at most 8.
    type: int
    default: 0
  max_differences:
    description: At most this many differences are returned; RV(difference_count) still counts all.
    type: int
    default: 100
  vanished:
    description:
      - With O(copy_to), what to do with a regular file the scan listed but that is gone when the copy opens it.
      - V(fail) fails the copy; right when nothing should write to the tree.
      - V(skip) leaves it out of the copy and of the source manifest, as if the tree had been listed a moment
        later, and removes an older copy of it with O(delete). Meant for a copy taken while the tree is live (an
        application renaming its temporary files); a later copy of the quiet tree brings it up to date.
        Counted in C(vanished) of RV(copy). A hard-linked file that vanished still fails the copy.
      - Whatever the choice, an entry gone between the listing of its directory and its lstat is left out.
    type: str
    choices: [fail, skip]
    default: fail
    version_added: 0.2.0
  fail_on_difference:
    description: Fail when O(compare_to) or O(copy_to) is set and the trees differ.
    type: bool
    default: false
  return_entries:
    description: Return the full list of entries as RV(manifest). Off by default, as trees can be large.
    type: bool
    default: false
  progress_file:
    description:
      - Report progress in this JSON file on the managed host while the module works, for a task run with C(async)
        and C(poll=0) and waited for with M(pidock.stack.async_progress), which prints one line per look.
      - The file holds the phase (C(scan) while a tree is walked, C(copy) with O(copy_to), C(sync), C(hash) without
        it, C(verify) while the copy or the O(compare_to) directory is read back), the files and bytes done and to
        do in that phase (the walk the module makes anyway gives the totals), the seconds elapsed, the rate in
        bytes per second, the seconds left (C(null) while unknown) and C(done).
      - Rewritten atomically (mode 0600) at most once a second and at every phase change; the byte counts move
        with every 1 MiB read, so a big file moves them while it is read. Left with C(done=true) at the end, for
        the caller to remove (M(pidock.stack.async_progress) does). Written in check mode too.
      - Its directory must exist, and it must not be inside O(path), O(copy_to) or O(compare_to).
    type: path
    version_added: 0.2.0
  start_file:
    description:
      - Wait, before reading anything, until this file exists. When it holds V(go) the module works as asked; when it
        holds anything else (V(cancel)) it returns at once having done nothing (RV(start) V(cancel), not changed).
      - For a job started ahead with C(async) and C(poll=0) that may only act from a later moment on, which the
        caller marks by writing the file (whole, by renaming a temporary file over it).
      - Fails when the file does not appear within O(start_timeout) seconds, having done nothing.
    type: path
    version_added: 0.2.0
  start_timeout:
    description: Seconds to wait for O(start_file).
    type: int
    default: 600
    version_added: 0.2.0
extends_documentation_fragment:
  - ansible.builtin.files
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details:
      - The tree is read and compared as usual; O(dest) is not written, C(changed) predicts whether it would be.
      - With O(copy_to) nothing is written there either; the quick check predicts RV(copy) and C(changed). The copy
        is read back and compared (RV(equal) and the differences returned) only when nothing would be copied,
        linked, created, removed or fixed; otherwise those values are not returned, and only the files kept by the
        quick check are hashed to predict C(recopied) in RV(copy).
  diff_mode:
    support: full
    details: Shows the old and new manifest text of O(dest).
  platform:
    platforms: posix
notes:
  - File hashing is streamed in 1 MiB chunks; with O(jobs) above 1 several files are hashed at once, which pays off on
    SSDs and trees of many files.
  - Modification times are not recorded, so a copy made without preserving them compares equal.
  - With O(copy_to) files are copied with O(jobs) threads, biggest first; hashing and file I/O release the GIL on the
    1 MiB buffers, so big files do not serialize the copy.
"""

EXAMPLES = r"""
- name: Record the images before the migration
  pidock.stack.tree_manifest:
    path: /var/lib/inventory/images
    dest: /var/lib/pidock-migrate/images.source.json
    ownership: true
    uid_map: {"*": 1000}
    gid_map: {"*": 1000}

- name: The copy in the volume matches the recorded manifest
  pidock.stack.tree_manifest:
    path: /var/lib/docker/volumes/inventory_images/_data
    compare_to: /var/lib/pidock-migrate/images.source.json
    ownership: true
    fail_on_difference: true

- name: Copy the images into the stack's volume, read once, verified by reading the copy back
  pidock.stack.tree_manifest:
    path: /var/lib/inventory/images
    copy_to: /var/lib/docker/volumes/inventory_images/_data
    dest: /var/lib/pidock-migrate/images.source.json
    ownership: true
    uid_map: {"*": 1000}
    gid_map: {"*": 1000}
    delete: true
    fail_on_difference: true
  register: images_copy

- name: Copy the ML cache in the background, reporting progress
  pidock.stack.tree_manifest:
    path: /var/lib/inventory/ml_cache
    copy_to: /var/lib/docker/volumes/inventory_ml_cache/_data
    progress_file: /var/tmp/pidock-ml-cache.progress.json
  async: 7200
  poll: 0
  register: ml_copy

- name: Wait for the copy, printing a progress line every 10 seconds
  pidock.stack.async_progress:
    jid: "{{ ml_copy.ansible_job_id }}"
    progress_file: /var/tmp/pidock-ml-cache.progress.json
    label: ml_cache
    timeout: 7200

- name: Compare two trees directly
  pidock.stack.tree_manifest:
    path: /var/lib/inventory/ml_cache
    compare_to: /srv/stack/ml_cache
    ignore: [mode]
  register: cache_cmp
"""

RETURN = r"""
root:
  description: The tree described.
  returned: always
  type: str
counts:
  description: Entries by type (the root directory counts as one C(dir)) and the number of hardlink groups.
  returned: always
  type: dict
  sample: {"file": 300, "dir": 12, "symlink": 4, "other": 0, "hardlink_groups": 2}
total_bytes:
  description: Sum of the sizes of regular files.
  returned: always
  type: int
digest:
  description: SHA-256 of the manifest's entries (stable across runs; equal trees have equal digests).
  returned: always
  type: str
dest:
  description: Where the manifest was written.
  returned: when O(dest) is set
  type: str
equal:
  description: Whether the tree matches O(compare_to), or the copy read back from O(copy_to) matches the tree.
  returned: when O(compare_to) is set, or O(copy_to) is set and the copy was verified (see check mode)
  type: bool
difference_count:
  description: Number of differences found.
  returned: as RV(equal)
  type: int
difference_counts:
  description: Differences by kind.
  returned: as RV(equal)
  type: dict
  sample: {"missing": 1, "extra": 0, "changed": 2}
differences:
  description: The first O(max_differences) differences.
  returned: as RV(equal)
  type: list
  elements: dict
  sample:
    - {"path": "ü.jpg", "kind": "changed", "fields": ["mode"], "source": {"mode": "0644"}, "target": {"mode": "0600"}}
    - {"path": "new.jpg", "kind": "extra"}
truncated:
  description: Whether RV(differences) was cut at O(max_differences).
  returned: as RV(equal)
  type: bool
copy:
  description:
    - What copy mode did to O(copy_to) (in check mode, would do). C(links) counts hardlinks and symlinks made,
      C(specials) FIFOs, sockets and devices made, C(removed) entries deleted (strays with O(delete), entries of
      another type, leftovers in C(.pidock-partial)), C(metadata_fixed) entries whose mode, owner or (directories)
      times were corrected, C(files_unchanged) regular files left alone by the quick check or already linked,
      C(hashes_reused) file hashes (source or copy) taken from O(stat_cache) instead of reading the file,
      C(vanished) files left out because they were gone when opened (O(vanished=skip)).
    - C(copy_seconds) covers reading the source, copying and syncing; C(verify_seconds) the read-back and compare.
  returned: when O(copy_to) is set
  type: dict
  sample:
    files_copied: 379
    bytes_copied: 1166016512
    files_unchanged: 0
    links: 4
    specials: 0
    dirs_created: 21
    removed: 0
    metadata_fixed: 0
    recopied: 0
    hashes_reused: 0
    vanished: 0
    copy_seconds: 2.61
    verify_seconds: 0.52
seconds:
  description: Wall time spent building the manifest(s).
  returned: always
  type: float
start:
  description:
    - With O(start_file) - V(go), or V(cancel) when the file said anything else and nothing was done.
    - Not named C(started), which C(async) keeps for its own bookkeeping (a job whose result holds it never ends).
  returned: when O(start_file) is set
  type: str
  sample: go
waited:
  description: With O(start_file) - the seconds waited for it.
  returned: when O(start_file) is set
  type: float
  sample: 2.35
manifest:
  description: The entries.
  returned: when O(return_entries=true)
  type: list
  elements: dict
"""

import hashlib
import json
import os
import time
from dataclasses import asdict
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.pidock.stack.plugins.module_utils._atomic import write_atomic
from ansible_collections.pidock.stack.plugins.module_utils._manifest import (
    _build_manifest,
    _compare,
    _dumps,
    _load,
)
from ansible_collections.pidock.stack.plugins.module_utils._progress import ProgressMeter
from ansible_collections.pidock.stack.plugins.module_utils._start_signal import StartTimeout, wait_for_start
from ansible_collections.pidock.stack.plugins.module_utils._tree_copier import _CopyError, _TreeCopier

_FIELD_CHOICES = ["type", "size", "sha256", "target", "mode", "uid", "gid", "link"]
_PROGRESS_INTERVAL = 1.0  # seconds between two rewrites of progress_file (phase changes write at once)


def _argument_spec() -> dict[str, Any]:
    return {
        "path": {"type": "path", "required": True},
        "dest": {"type": "path"},
        "compare_to": {"type": "path"},
        "copy_to": {"type": "path"},
        "stat_cache": {"type": "path"},
        "delete": {"type": "bool", "default": False},
        "guard_file": {"type": "path"},
        "sync": {"type": "bool", "default": True},
        "ignore": {"type": "list", "elements": "str", "choices": _FIELD_CHOICES, "default": []},
        "ownership": {"type": "bool", "default": False},
        "uid_map": {"type": "dict", "default": {}},
        "gid_map": {"type": "dict", "default": {}},
        "exclude": {"type": "list", "elements": "str", "default": []},
        "checksum": {"type": "bool", "default": True},
        "jobs": {"type": "int", "default": 0},
        "max_differences": {"type": "int", "default": 100},
        "vanished": {"type": "str", "choices": ["fail", "skip"], "default": "fail"},
        "fail_on_difference": {"type": "bool", "default": False},
        "return_entries": {"type": "bool", "default": False},
        "progress_file": {"type": "path"},
        "start_file": {"type": "path"},
        "start_timeout": {"type": "int", "default": 600},
    }


def _id_map(module: AnsibleModule, name: str) -> dict[str, int]:
    result: dict[str, int] = {}
    for key, value in module.params[name].items():
        try:
            result[str(key).strip()] = int(value)
        except (TypeError, ValueError):
            module.fail_json(msg=f"{name}: {key!r} maps to {value!r}, which is not a number")
    return result


def _write(module: AnsibleModule, dest: str, text: str, result: dict[str, Any]) -> None:
    """Write ``text`` to ``dest`` atomically when it differs; honour check and diff mode."""
    try:
        with open(dest, encoding="utf-8") as handle:
            before: str | None = handle.read()
    except FileNotFoundError:
        before = None
    except (OSError, UnicodeDecodeError):
        before = ""
    changed = before != text
    if module._diff and changed:
        result["diff"] = {
            "before_header": dest,
            "after_header": dest,
            "before": before or "",
            "after": text,
        }
    if changed and not module.check_mode:
        directory = os.path.dirname(dest) or "."
        if not os.path.isdir(directory):
            module.fail_json(msg=f"dest directory {directory} does not exist")
        try:
            write_atomic(dest, text, 0o644)
        except OSError as exc:
            module.fail_json(msg=f"cannot write dest {dest}: {exc}")
    file_args = module.load_file_common_arguments(module.params, path=dest)
    if not module.check_mode or before is not None:
        changed = module.set_fs_attributes_if_different(file_args, changed)
    result["changed"] = result["changed"] or changed
    result["dest"] = dest


def _guard_time(path: str | None) -> float | None:
    """The guard file's modification time, or None (no guard) when it is not given or does not exist."""
    if not path:
        return None
    try:
        return os.stat(path).st_mtime
    except FileNotFoundError:
        return None


def _inside(path: str, root: str) -> bool:
    """Whether ``path`` is ``root`` or below it, symlinks resolved."""
    real, top = os.path.realpath(path), os.path.realpath(root)
    return real == top or real.startswith(top.rstrip("/") + "/")


def _meter(module: AnsibleModule) -> ProgressMeter | None:
    """The progress meter of progress_file, or None; fails when the file could not be written or would be copied."""
    params = module.params
    path = params["progress_file"]
    if not path:
        return None
    directory = os.path.dirname(path) or "."
    if not os.path.isdir(directory):
        module.fail_json(msg=f"progress_file directory {directory} does not exist")
    for option in ("path", "copy_to", "compare_to"):
        if params[option] and _inside(path, params[option]):
            module.fail_json(msg=f"progress_file {path} is inside {option} {params[option]}")
    return ProgressMeter(path, interval=_PROGRESS_INTERVAL)


def _copy(
    module: AnsibleModule,
    uid_map: dict[str, int],
    gid_map: dict[str, int],
    jobs: int,
    result: dict[str, Any],
    meter: ProgressMeter | None = None,
) -> dict[str, Any]:
    """Copy mode: copy path into copy_to, verify by reading back; fill result; return the source manifest."""
    params = module.params
    copier = _TreeCopier(
        params["path"],
        params["copy_to"],
        ownership=params["ownership"],
        uid_map=uid_map,
        gid_map=gid_map,
        excludes=params["exclude"],
        jobs=jobs,
        delete=params["delete"],
        sync=params["sync"],
        check_mode=module.check_mode,
        ignore=params["ignore"],
        limit=params["max_differences"],
        stat_cache=params["stat_cache"],
        changed_since=_guard_time(params["guard_file"]),
        meter=meter,
        vanished=params["vanished"],
    )
    try:
        manifest, comparison = copier.run()
    except _CopyError as exc:
        module.fail_json(
            msg=f"copy of {params['path']} to {params['copy_to']} failed: {exc}", copy=asdict(copier.stats)
        )
    except OSError as exc:
        module.fail_json(msg=f"cannot read {params['path']}: {exc}", copy=asdict(copier.stats))
    if copier.stat_cache_text is not None:
        try:
            write_atomic(params["stat_cache"], copier.stat_cache_text, 0o600)
        except OSError as exc:
            module.fail_json(msg=f"cannot write stat_cache {params['stat_cache']}: {exc}", copy=asdict(copier.stats))
    result["copy"] = asdict(copier.stats)
    result["changed"] = copier.stats.changes() > 0
    if comparison is not None:
        result.update(comparison)
    return manifest


def main() -> None:
    module = AnsibleModule(
        argument_spec=_argument_spec(),
        supports_check_mode=True,
        add_file_common_args=True,
        mutually_exclusive=[("compare_to", "copy_to")],
    )
    params = module.params
    if params["stat_cache"] and not params["copy_to"]:
        module.fail_json(msg="stat_cache needs copy_to")
    if params["delete"] and not params["copy_to"]:
        module.fail_json(msg="delete needs copy_to")
    if params["guard_file"] and not params["copy_to"]:
        module.fail_json(msg="guard_file needs copy_to")
    if params["copy_to"] and not params["checksum"]:
        module.fail_json(msg="copy_to needs checksum=true: the copy is verified by its hashes")
    waited = None
    if params["start_file"]:
        try:
            go, waited = wait_for_start(params["start_file"], params["start_timeout"])
        except StartTimeout as exc:
            module.fail_json(msg=f"not started, nothing done: {exc}", start="timeout")
        if not go:
            module.exit_json(changed=False, start="cancel", waited=waited, msg=f"cancelled by {params['start_file']}")
    jobs = params["jobs"] if params["jobs"] > 0 else min(8, os.cpu_count() or 1)
    options = {
        "ownership": params["ownership"],
        "hash_files": params["checksum"],
        "excludes": params["exclude"],
        "jobs": jobs,
    }
    result: dict[str, Any] = {"changed": False}
    started = time.monotonic()
    uid_map, gid_map = _id_map(module, "uid_map"), _id_map(module, "gid_map")
    meter = _meter(module)
    if params["copy_to"]:
        manifest = _copy(module, uid_map, gid_map, jobs, result, meter)
    else:
        try:
            manifest = _build_manifest(params["path"], uid_map=uid_map, gid_map=gid_map, meter=meter, **options)
        except OSError as exc:
            module.fail_json(msg=f"cannot read {params['path']}: {exc}")
    text = _dumps(manifest)
    entries_text = json.dumps(manifest["entries"], sort_keys=True, ensure_ascii=False)
    result.update(
        root=manifest["root"],
        counts=manifest["counts"],
        total_bytes=manifest["total_bytes"],
        digest=hashlib.sha256(entries_text.encode("utf-8")).hexdigest(),
    )

    if params["compare_to"]:
        other_path = params["compare_to"]
        try:
            if os.path.isdir(other_path):
                other = _build_manifest(other_path, meter=meter, hash_phase="verify", **options)
            else:
                other = _load(other_path)
        except (OSError, ValueError) as exc:
            module.fail_json(msg=f"cannot read compare_to {other_path}: {exc}", **result)
        result.update(_compare(manifest, other, ignore=params["ignore"], limit=params["max_differences"]))
    result["seconds"] = round(time.monotonic() - started, 3)
    if waited is not None:
        result.update(start="go", waited=waited)
    if meter is not None:
        meter.finish()

    if params["dest"]:
        _write(module, params["dest"], text, result)
    if params["return_entries"]:
        result["manifest"] = manifest["entries"]

    if params["fail_on_difference"] and result.get("equal") is False:
        counts = result["difference_counts"]
        other = params["compare_to"] or f"its copy {params['copy_to']}"
        module.fail_json(
            msg=(
                f"{manifest['root']} differs from {other}: {counts['missing']} missing, "
                f"{counts['extra']} extra, {counts['changed']} changed"
            ),
            **result,
        )
    module.exit_json(**result)


if __name__ == "__main__":
    main()
