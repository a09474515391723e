#!/usr/bin/python
# Copyright: (c) 2026, pidock.stack maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: tls_bundle_info
short_description: Read a stack's live TLS files and whether the crypto bindings are installed, in one call
version_added: 0.1.0
description:
  - Reads C(privkey.pem), C(fullchain.pem), C(ca.pem) and the record C(.pidock-tls.json) of O(dir), and asks
    dpkg which of O(packages) are not installed. What pidock.stack.tls decides on before it builds a bundle.
  - Read-only. A missing directory or file is reported as empty, never as a failure.
  - The result holds the private key, so register it under C(no_log).
author:
  - pidock.stack maintainers (@pidock)
options:
  dir:
    description: The stack's TLS directory.
    type: path
    required: true
  packages:
    description: Debian packages whose installation to check.
    type: list
    elements: str
    default: []
  renew_days:
    description:
      - Inspect the live certificate and key as well (RV(certificate)), and say whether the
        certificate is still valid this many days from now (C(valid_at.renew) of RV(certificate)).
      - Omitted, nothing is inspected.
    type: int
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Read-only; runs the same in check mode.
  diff_mode:
    support: none
  platform:
    platforms: posix
"""

EXAMPLES = r"""
- name: Read the current bundle
  pidock.stack.tls_bundle_info:
    dir: /opt/pidock/stacks/inventory/tls
    packages: [python3-cryptography]
  register: __tls_read
  no_log: true
"""

RETURN = r"""
privkey:
  description: The current C(privkey.pem), empty when there is none.
  type: str
  returned: always
fullchain:
  description: The current C(fullchain.pem), empty when there is none.
  type: str
  returned: always
ca:
  description: The current C(ca.pem), empty when there is none.
  type: str
  returned: always
record:
  description: What produced the live files (C(.pidock-tls.json)); V({}) when absent or unreadable.
  type: dict
  returned: always
packages_missing:
  description: The packages of O(packages) that are not installed.
  type: list
  elements: str
  returned: always
certificate:
  description:
    - The live leaf certificate, with the keys of community.crypto.x509_certificate_info that
      pidock.stack.tls reads (C(fingerprints.sha256), C(not_after), C(serial_number),
      C(subject_alt_name), C(valid_at.renew)) and what its keep-or-reissue decision compares
      (C(common_name), C(self_signed), C(key_matches), C(key_type), C(key_size), C(key_curve), C(ca),
      C(key_usage), C(extended_key_usage), C(critical)).
    - Null without O(renew_days), when the key or the certificate is missing or cannot be read
      (an encrypted key, say), or when python3-cryptography is not installed.
  type: dict
  returned: always
"""

import time
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.pidock.stack.plugins.module_utils import _dpkg
from ansible_collections.pidock.stack.plugins.module_utils import _tls_bundle as tb


def read(module: AnsibleModule) -> dict[str, Any]:
    have = tb._read_bundle(module.params["dir"])
    packages = module.params["packages"]
    missing: list[str] = []
    if packages:
        dpkg_query = module.get_bin_path("dpkg-query", required=True)
        # rc 1 only says that some package is unknown; the ones known are still printed.
        out = module.run_command([dpkg_query, "-W", "-f", _dpkg.DPKG_QUERY_FORMAT, *packages])[1]
        installed = _dpkg.installed(out)
        missing = [p for p in packages if p not in installed]
    renew_days = module.params["renew_days"]
    certificate = None
    if renew_days is not None:
        certificate = tb._inspect(have["privkey"].content, have["fullchain"].content, renew_days * 86400, time.time())
    return {
        "privkey": tb._text(have["privkey"]),
        "fullchain": tb._text(have["fullchain"]),
        "ca": tb._text(have["ca"]),
        "record": tb._record(have["record"]),
        "packages_missing": missing,
        "certificate": certificate,
    }


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "dir": {"type": "path", "required": True},
            "packages": {"type": "list", "elements": "str", "default": []},
            "renew_days": {"type": "int"},
        },
        supports_check_mode=True,
    )
    module.exit_json(changed=False, **read(module))


if __name__ == "__main__":
    main()
