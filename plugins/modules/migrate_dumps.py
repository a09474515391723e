#!/usr/bin/python
# Copyright: (c) 2026, pidock.stack maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: migrate_dumps
short_description: Keep the migration's database dumps private, and retire them after a verified cutover
version_added: 0.1.0
description:
  - The migration's dumps hold the whole database and the roles' password hashes. While they exist they are
    mode C(0600) (the module corrects any other mode).
  - With O(retire=true) (after a verified cutover) the files are moved into O(retired_dir)C(/<stamp>/), a
    directory of their own named for the time, or removed at once when O(keep_days=0).
  - Every run removes the retired directories older than O(keep_days) days, and with O(tmpfiles) writes a
    systemd-tmpfiles rule that ages O(retired_dir) out after O(keep_days) days, so the dumps go even if the role
    never runs again (systemd-tmpfiles-clean.timer).
author:
  - pidock.stack maintainers (@pidock)
options:
  path:
    description: Directory holding the dumps.
    type: path
    required: true
  files:
    description: Names (in O(path)) of the dump files. Missing ones are ignored.
    type: list
    elements: str
    required: true
  retire:
    description: Move the files out of O(path) into O(retired_dir) (or remove them when O(keep_days=0)).
    type: bool
    default: false
  keep_days:
    description: Days a retired dump is kept. V(0) removes the dumps at retirement.
    type: int
    default: 3
  retired_dir:
    description: Where retired dumps wait for their removal (created 0700).
    type: path
    required: true
  tmpfiles:
    description:
      - A systemd-tmpfiles.d file to write (0644) with the age rule for O(retired_dir); not written when omitted.
    type: path
  sums:
    description:
      - Name (in O(path)) of a C(sha256sum) output file listing the dump files. The module reads it and returns
        each listed file's digest and size as RV(files), so the dump's digests are computed once (while the dump
        is written) and never parsed in a template.
      - Every listed file must exist; a malformed line fails the module.
    type: str
  now:
    description: The current time (UTC, C(%Y%m%dT%H%M%SZ)); for tests. Defaults to the clock.
    type: str
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: posix
"""

EXAMPLES = r"""
- name: Retire the dumps after the verified cutover
  pidock.stack.migrate_dumps:
    path: /var/lib/pidock-migrate/dump
    files: [inventory_db.dump, globals.sql, SHA256SUMS]
    retire: true
    keep_days: 3
    retired_dir: /var/lib/pidock-migrate/retired-dumps
    tmpfiles: /etc/tmpfiles.d/pidock-migrate-dumps.conf

- name: Keep fresh dumps private and read their digests
  pidock.stack.migrate_dumps:
    path: /var/lib/pidock-migrate/dump
    files: [inventory_db.dump, globals.sql, SHA256SUMS]
    sums: SHA256SUMS
    retired_dir: /var/lib/pidock-migrate/retired-dumps
  register: dumps
"""

RETURN = r"""
protected:
  description: Files whose mode was set to 0600.
  type: list
  elements: str
  returned: always
retired:
  description: Files moved into RV(retired_to).
  type: list
  elements: str
  returned: always
retired_to:
  description: The directory the files were moved into (empty when nothing was retired or they were removed).
  type: str
  returned: always
removed:
  description: Files and retired directories removed.
  type: list
  elements: str
  returned: always
files:
  description: For each file listed in O(sums), its C(sha256) and C(bytes).
  type: dict
  returned: when O(sums) is given
  sample: {"inventory_db.dump": {"sha256": "9f86d081884c7d65...", "bytes": 91234567}}
"""

import os
import re
import shutil
import stat
from datetime import UTC, datetime, timedelta
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.pidock.stack.plugins.module_utils._atomic import write_atomic

_STAMP = "%Y%m%dT%H%M%SZ"
_STAMP_RE = re.compile(r"^\d{8}T\d{6}Z$")


def _retired_dirs(retired_dir: str) -> list[tuple[str, datetime]]:
    try:
        names = sorted(os.listdir(retired_dir))
    except FileNotFoundError:
        return []
    out = []
    for name in names:
        if _STAMP_RE.match(name):
            out.append((name, datetime.strptime(name, _STAMP).replace(tzinfo=UTC)))
    return out


def _tmpfiles_text(retired_dir: str, keep_days: int) -> str:
    return (
        "# Managed by pidock.stack.migrate: retired database dumps of the migration are removed after "
        f"{keep_days} day(s).\n"
        f"d {retired_dir} 0700 root root {keep_days}d\n"
    )


_SUM_LINE = re.compile(r"^([0-9a-f]{64}) [ *](.+)$")


def read_sums(path: str, name: str) -> dict[str, dict[str, Any]]:
    """Digest and size of every file a sha256sum output file in ``path`` lists."""
    with open(os.path.join(path, name), encoding="utf-8") as handle:
        text = handle.read()
    files: dict[str, dict[str, Any]] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        match = _SUM_LINE.match(line)
        if not match or "/" in match.group(2):
            raise ValueError(f"{name} line {number} is not '<sha256>  <file name>': {line[:120]!r}")
        listed = match.group(2)
        files[listed] = {"sha256": match.group(1), "bytes": os.stat(os.path.join(path, listed)).st_size}
    if not files:
        raise ValueError(f"{name} lists no files")
    return files


def run(params: dict[str, Any], check: bool) -> dict[str, Any]:
    """Do (or in check mode, tell) what the parameters ask; returns the module result."""
    now = datetime.strptime(params["now"], _STAMP).replace(tzinfo=UTC) if params.get("now") else datetime.now(UTC)
    keep_days = params["keep_days"]
    if keep_days < 0:
        raise ValueError(f"keep_days must be 0 or more, not {keep_days}")
    result: dict[str, Any] = {"changed": False, "protected": [], "retired": [], "retired_to": "", "removed": []}
    present = []
    for name in params["files"]:
        if "/" in name or name in ("", ".", ".."):
            raise ValueError(f"files: {name!r} is not a file name")
        path = os.path.join(params["path"], name)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            continue
        if not stat.S_ISREG(st.st_mode):
            raise ValueError(f"{path} is not a regular file")
        present.append(path)
        if stat.S_IMODE(st.st_mode) != 0o600:
            result["protected"].append(path)
            if not check:
                os.chmod(path, 0o600)

    retired_dir = params["retired_dir"]
    if params["retire"] and present:
        if keep_days == 0:
            result["removed"].extend(present)
            if not check:
                for path in present:
                    os.unlink(path)
        else:
            target = os.path.join(retired_dir, now.strftime(_STAMP))
            result["retired"] = present
            result["retired_to"] = target
            if not check:
                os.makedirs(target, mode=0o700, exist_ok=True)
                os.chmod(retired_dir, 0o700)
                for path in present:
                    os.rename(path, os.path.join(target, os.path.basename(path)))

    for name, when in _retired_dirs(retired_dir):
        if now - when >= timedelta(days=keep_days) and os.path.join(retired_dir, name) != result["retired_to"]:
            result["removed"].append(os.path.join(retired_dir, name))
            if not check:
                shutil.rmtree(os.path.join(retired_dir, name))

    if params.get("tmpfiles") and keep_days > 0:
        text = _tmpfiles_text(retired_dir, keep_days)
        try:
            with open(params["tmpfiles"], encoding="utf-8") as handle:
                current = handle.read()
        except FileNotFoundError:
            current = None
        if current != text:
            result["tmpfiles_written"] = True
            if not check:
                write_atomic(params["tmpfiles"], text, 0o644)
    result["changed"] = bool(
        result["protected"] or result["retired"] or result["removed"] or result.get("tmpfiles_written")
    )
    if params.get("sums"):
        result["files"] = read_sums(params["path"], params["sums"])
    return result


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "files": {"type": "list", "elements": "str", "required": True},
            "retire": {"type": "bool", "default": False},
            "keep_days": {"type": "int", "default": 3},
            "retired_dir": {"type": "path", "required": True},
            "tmpfiles": {"type": "path"},
            "sums": {"type": "str"},
            "now": {"type": "str"},
        },
        supports_check_mode=True,
    )
    try:
        result = run(module.params, module.check_mode)
    except (OSError, ValueError) as exc:
        module.fail_json(msg=f"migrate_dumps: {exc}")
    module.exit_json(**result)


if __name__ == "__main__":
    main()
