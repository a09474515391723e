#!/usr/bin/python
# Copyright: (c) 2026, pidock.stack maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: hf_cache_check
short_description: Check the integrity of a Hugging Face hub cache
version_added: 0.1.0
description:
  - Checks every C(models--*) (also C(datasets--*), C(spaces--*)) repository of a Hugging Face hub cache, the layout
    C(huggingface_hub) writes and reads offline (C(HF_HUB_OFFLINE=1)).
  - Every file under C(refs/) names a commit whose C(snapshots/<commit>) directory exists.
  - Every snapshot entry is a relative symlink that resolves to a file directly inside the repository's C(blobs/);
    absolute links (which break when the cache moves, as in a migration into a container volume), links escaping
    C(blobs/) and dangling links are errors.
  - Every blob's content matches its name, the SHA-256 of the file for 64-hex names (LFS files) and the git blob
    SHA-1 (C(sha1("blob <size>\\0" + content))) for 40-hex names (small files).
  - Read-only; unreferenced blobs, C(.incomplete) downloads and repositories without refs are warnings.
author:
  - pidock.stack maintainers (@pidock)
options:
  path:
    description: C(HF_HOME) or C(HF_HOME/hub) (the C(hub) subdirectory is used when present).
    type: path
    required: true
  models:
    description:
      - Check only these repositories, as C(org/name) or in cache form C(models--org--name). A listed repository
        missing from the cache is an error.
      - Default is every repository in the cache.
    type: list
    elements: str
    default: []
  verify_blobs:
    description: Hash every blob and compare with its name. With V(false) only the link structure is checked.
    type: bool
    default: true
  jobs:
    description: Blobs hashed in parallel (threads). V(0) picks the number of CPUs, at most 8.
    type: int
    default: 0
  fail_on_error:
    description: Fail when any repository has an error.
    type: bool
    default: true
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: The module never changes anything; it runs the same in check mode.
  diff_mode:
    support: none
  platform:
    platforms: posix
"""

EXAMPLES = r"""
- name: The bare-metal ML cache is sound before it is copied
  pidock.stack.hf_cache_check:
    path: /var/lib/inventory/ml_cache
    models: [sentence-transformers/all-MiniLM-L6-v2]

- name: Report on a cache without failing
  pidock.stack.hf_cache_check:
    path: /srv/stack/ml_cache
    fail_on_error: false
  register: hf
"""

RETURN = r"""
ok:
  description: Whether every checked repository is free of errors.
  returned: always
  type: bool
hub:
  description: The directory holding the repositories.
  returned: always
  type: str
error_count:
  description: Number of errors over all repositories.
  returned: always
  type: int
dangling:
  description: Absolute paths of dangling snapshot symlinks.
  returned: always
  type: list
  elements: str
repos:
  description: One result per repository.
  returned: always
  type: list
  elements: dict
  contains:
    repo_id:
      description: C(org/name).
      type: str
    ok:
      description: No errors in this repository.
      type: bool
    refs:
      description: Ref name to commit.
      type: dict
    snapshots:
      description: Snapshot (commit) directories.
      type: list
    files:
      description: Entries in all snapshots.
      type: int
    blobs:
      description: Number of blobs.
      type: int
    bytes:
      description: Total size of the blobs.
      type: int
    errors:
      description: >-
        C(kind) (ref_without_snapshot, no_snapshots, not_a_symlink, absolute_symlink, outside_blobs,
        dangling_symlink, blob_not_a_file, blob_hash_mismatch, repo_missing), C(path) relative to the repository,
        C(detail).
      type: list
      elements: dict
    warnings:
      description: C(kind) (no_refs, unreferenced_blob, incomplete_download), C(path), C(detail).
      type: list
      elements: dict
  sample:
    - repo_id: sentence-transformers/all-MiniLM-L6-v2
      ok: true
      refs: {main: c9745ed1d9f207416be6d2e6f8de32d1f16199bf}
      files: 13
      blobs: 13
      bytes: 91656000
      errors: []
      warnings: []
"""

import os
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.pidock.stack.plugins.module_utils._hf_cache import _check_cache


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "models": {"type": "list", "elements": "str", "default": []},
            "verify_blobs": {"type": "bool", "default": True},
            "jobs": {"type": "int", "default": 0},
            "fail_on_error": {"type": "bool", "default": True},
        },
        supports_check_mode=True,
    )
    params = module.params
    jobs = params["jobs"] if params["jobs"] > 0 else min(8, os.cpu_count() or 1)
    try:
        result: dict[str, Any] = _check_cache(
            params["path"], models=params["models"], verify_blobs=params["verify_blobs"], jobs=jobs
        )
    except OSError as exc:
        module.fail_json(msg=f"cannot read {params['path']}: {exc}")
    if params["fail_on_error"] and not result["ok"]:
        bad = [
            f"{r['repo_id']}: " + ", ".join(f"{e['kind']} {e['path']}" for e in r["errors"][:5])
            for r in result["repos"]
            if not r["ok"]
        ]
        module.fail_json(msg="Hugging Face cache has errors: " + "; ".join(bad), changed=False, **result)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
