# Copyright: pidock.stack maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Lookup pidock.stack.context_digest: the content digest of a build context on the controller."""

from __future__ import annotations

DOCUMENTATION = r"""
name: context_digest
version_added: 0.2.0
author: pidock.stack maintainers (@pidock)
short_description: Content digest of a Docker build context directory on the controller
description:
  - Reads each directory named in the terms, on the controller, and returns one digest per term, in the
    same order.
  - The digest covers every file under the directory, its path relative to the directory, whether it is
    executable and its bytes; a symbolic link counts by its target's text, an empty directory by its path.
    Owners, timestamps and other mode bits do not count, so a fresh checkout of the same tree has the same
    digest.
  - The P(pidock.stack.compose#role) role labels each image it builds with the digest of its context and
    copies and rebuilds only when the label differs, so an unchanged context costs no task on the host.
options:
  _terms:
    description:
      - Paths of build context directories on the controller.
      - A relative path is searched for as M(ansible.builtin.copy) searches its O(ansible.builtin.copy#module:src).
    type: list
    elements: path
    required: true
notes:
  - Nothing is excluded. C(.dockerignore) is read by the build, not by this lookup, so a change to an ignored
    file changes the digest and causes one rebuild.
"""

EXAMPLES = r"""
- name: Digest of two build contexts
  ansible.builtin.debug:
    msg: "{{ lookup('pidock.stack.context_digest', 'files/web', 'files/worker', wantlist=true) }}"
"""

RETURN = r"""
_raw:
  description: One C(sha256:<hex>) digest per term, in the order of the terms.
  type: list
  elements: str
"""

import hashlib
import os
import stat

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase


def tree_digest(root: str) -> str:
    """sha256 over (kind, relative path, executable bit, content) of everything under ``root``."""
    if not os.path.isdir(root):
        raise AnsibleLookupError(f"context_digest: {root!r} is not a directory on the controller")
    digest = hashlib.sha256()
    for path in sorted(_walk(root)):
        rel = os.path.relpath(path, root).encode("utf-8", "surrogateescape")
        info = os.lstat(path)
        if stat.S_ISLNK(info.st_mode):
            entry = [b"L", rel, os.readlink(path).encode("utf-8", "surrogateescape")]
        elif stat.S_ISDIR(info.st_mode):
            entry = [b"D", rel]
        elif stat.S_ISREG(info.st_mode):
            executable = b"x" if info.st_mode & 0o111 else b"-"
            entry = [b"F", rel, executable, _file_sha256(path)]
        else:
            raise AnsibleLookupError(f"context_digest: {path!r} is neither a file, a directory nor a symbolic link")
        for part in entry:
            # Length-prefixed, so no two different trees can produce the same byte stream.
            digest.update(len(part).to_bytes(8, "big") + part)
    return "sha256:" + digest.hexdigest()


def _walk(root: str):
    for top, dirs, files in os.walk(root, followlinks=False):
        for name in dirs:
            path = os.path.join(top, name)
            # A directory is listed only when it is empty or a link: its files name it otherwise.
            if os.path.islink(path) or not os.listdir(path):
                yield path
        for name in files:
            yield os.path.join(top, name)


def _file_sha256(path: str) -> bytes:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest().encode("ascii")


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        # lookup('...', a_list) hands the list over as one term: take its items.
        flat = [item for term in terms for item in (term if isinstance(term, (list, tuple)) else [term])]
        digests = []
        for term in flat:
            # A relative path is looked for where ansible.builtin.copy looks for its src: the role's
            # and the playbook's files/ directories, then beside them.
            found = self.find_file_in_search_path(variables, "files", str(term), ignore_missing=True)
            digests.append(tree_digest(found or str(term)))
        return digests
