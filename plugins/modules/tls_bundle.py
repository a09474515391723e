#!/usr/bin/python
# Copyright: (c) 2026, pidock.stack maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: tls_bundle
short_description: Install a stack's TLS bundle (directory, key, chain, CA, record) in one call
version_added: 0.1.0
description:
  - Makes the stack's TLS directory O(dir) hold exactly the given bundle, C(privkey.pem), C(fullchain.pem),
    C(ca.pem) (removed when O(ca) is empty) and the record C(.pidock-tls.json), each with its owner, group and
    mode. Only what differs is touched.
  - Each file is replaced atomically, created with its final mode, so a key is never readable by others, not
    even for a moment; the private key is written before the chain that matches it.
  - Used by pidock.stack.tls once the new bundle passed its checks; the options carry the private key, so the
    task runs under C(no_log).
author:
  - pidock.stack maintainers (@pidock)
options:
  dir:
    description: The stack's TLS directory (created when missing).
    type: path
    required: true
  dir_owner:
    description: Owner of O(dir).
    type: str
    default: root
  dir_group:
    description: Group of O(dir).
    type: str
    default: root
  dir_mode:
    description: Mode of O(dir), an octal string.
    type: str
    default: "0750"
  privkey:
    description: The private key (PEM).
    type: str
    required: true
  fullchain:
    description: The certificate chain, leaf first (PEM).
    type: str
    required: true
  ca:
    description: The CA certificate (PEM); empty removes C(ca.pem).
    type: str
    default: ""
  record:
    description: What produced the files (mode, names, ACME directory), written as C(.pidock-tls.json). No secrets.
    type: dict
    required: true
  key_owner:
    description: Owner of C(privkey.pem).
    type: str
    default: root
  key_group:
    description: Group of C(privkey.pem).
    type: str
    default: root
  key_mode:
    description: Mode of C(privkey.pem), an octal string.
    type: str
    default: "0600"
  cert_owner:
    description: Owner of C(fullchain.pem), C(ca.pem) and the record.
    type: str
    default: root
  cert_group:
    description: Group of C(fullchain.pem), C(ca.pem) and the record.
    type: str
    default: root
  cert_mode:
    description: Mode of C(fullchain.pem), C(ca.pem) and the record, an octal string.
    type: str
    default: "0644"
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
    details: The bundle holds a private key; RV(files) names what changed instead.
  platform:
    platforms: posix
"""

EXAMPLES = r"""
- name: Install the files
  pidock.stack.tls_bundle:
    dir: /opt/pidock/stacks/inventory/tls
    privkey: "{{ __tls_new.privkey }}"
    fullchain: "{{ __tls_new.fullchain }}"
    ca: "{{ __tls_new.ca }}"
    record: {mode: selfsigned, names: ["DNS:pi"], acme_directory: null}
  no_log: true
"""

RETURN = r"""
files:
  description: The parts that changed, each with what was done (V(write), V(attributes), V(remove)), and V(dir)
    when the directory was created or its owner or mode set.
  type: dict
  returned: always
  sample: {fullchain: write, record: write}
"""

import grp
import os
import pwd
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.pidock.stack.plugins.module_utils import _tls_bundle as tb
from ansible_collections.pidock.stack.plugins.module_utils._atomic import parse_mode, write_atomic


def _ids(module: AnsibleModule, owner: str, group: str) -> tuple[int, int]:
    try:
        uid = int(owner) if owner.isdigit() else pwd.getpwnam(owner).pw_uid
        gid = int(group) if group.isdigit() else grp.getgrnam(group).gr_gid
    except KeyError as exc:
        module.fail_json(msg=f"tls_bundle: unknown user or group {exc}; nothing was changed")
    return uid, gid


def _modes(module: AnsibleModule) -> dict[str, int]:
    out = {}
    for name in ("dir_mode", "key_mode", "cert_mode"):
        try:
            out[name] = parse_mode(module.params[name])
        except ValueError as exc:
            module.fail_json(msg=f"tls_bundle: {name}: {exc}; nothing was changed")
    return out


def run(module: AnsibleModule) -> dict[str, Any]:
    p = module.params
    modes = _modes(module)
    d_uid, d_gid = _ids(module, p["dir_owner"], p["dir_group"])
    k_uid, k_gid = _ids(module, p["key_owner"], p["key_group"])
    c_uid, c_gid = _ids(module, p["cert_owner"], p["cert_group"])
    want = {
        # The key first: the chain that matches it never goes live before it.
        "privkey": tb._Want(tb._pem(p["privkey"]), k_uid, k_gid, modes["key_mode"]),
        "fullchain": tb._Want(tb._pem(p["fullchain"]), c_uid, c_gid, modes["cert_mode"]),
        "ca": tb._Want(tb._pem(p["ca"]), c_uid, c_gid, modes["cert_mode"]),
        "record": tb._Want(tb._record_bytes(p["record"]), c_uid, c_gid, modes["cert_mode"]),
    }
    # In check mode an ACME certificate (and a key generated with it) is not known yet: the bundle
    # will be written, which is the prediction. A real run without them is refused.
    unknown = [part for part in ("privkey", "fullchain") if want[part].content is None]
    if unknown and not module.check_mode:
        module.fail_json(msg="tls_bundle: privkey and fullchain must not be empty; nothing was changed")

    directory = p["dir"]
    files: dict[str, str] = {}
    try:
        st = os.stat(directory)
        dir_ok = (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (d_uid, d_gid, modes["dir_mode"])
        have = tb._read_bundle(directory)
    except FileNotFoundError:
        dir_ok, have = False, {}
    if not dir_ok:
        files["dir"] = "create" if not have else "attributes"
    actions = tb._plan(have, {part: w for part, w in want.items() if part not in unknown})
    files.update(dict(actions))
    files.update({part: "write" for part in unknown})
    if module.check_mode or not files:
        return {"changed": bool(files), "files": files}

    if files.get("dir") == "create":
        os.makedirs(directory, mode=modes["dir_mode"], exist_ok=True)
    if "dir" in files:
        os.chown(directory, d_uid, d_gid)
        os.chmod(directory, modes["dir_mode"])
    for part, action in actions:
        path = tb._path(directory, part)
        w = want[part]
        if action == "remove":
            os.unlink(path)
            continue
        if action == "write":
            write_atomic(path, w.content or b"", w.mode)
        os.chown(path, w.uid, w.gid)
        os.chmod(path, w.mode)
    return {"changed": True, "files": files}


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "dir": {"type": "path", "required": True},
            "dir_owner": {"type": "str", "default": "root"},
            "dir_group": {"type": "str", "default": "root"},
            "dir_mode": {"type": "str", "default": "0750"},
            "privkey": {"type": "str", "required": True, "no_log": True},
            "fullchain": {"type": "str", "required": True},
            "ca": {"type": "str", "default": ""},
            "record": {"type": "dict", "required": True},
            "key_owner": {"type": "str", "default": "root", "no_log": False},
            "key_group": {"type": "str", "default": "root", "no_log": False},
            "key_mode": {"type": "str", "default": "0600", "no_log": False},
            "cert_owner": {"type": "str", "default": "root"},
            "cert_group": {"type": "str", "default": "root"},
            "cert_mode": {"type": "str", "default": "0644"},
        },
        supports_check_mode=True,
    )
    module.exit_json(**run(module))


if __name__ == "__main__":
    main()
