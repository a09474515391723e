"""Test hosts only: fill the zipimport cache of an emulated host ahead of time, natively.

The emulated arm64 test host compiles every ``ansible.module_utils`` source it imports from a
module's zip under qemu, about twenty times slower than natively (the first module runs of the
docker_arm64 scenario spent most of their time there). Python's bytecode does not depend on the
machine, only on the Python version, so scripts/build-arm64-image.sh runs this file with the
amd64 host's Python (the same Debian package version) and stores each code object where the
emulated host's ``pidock_zipimport_cache`` looks for it: the key is the target interpreter's
``sys.version`` (given with --python-version), the path inside the zip and the source.

    python3 prewarm_zipimport_cache.py --python-version "$(arm64 python3 -c 'import sys; print(sys.version)')" \
        --cache ROOT/var/cache/pidock-zipimport --tree SITE_PACKAGES --prefix ansible/module_utils ...

A source that later changes simply misses (it is compiled on the host, as before). Never on a real host.
"""

from __future__ import annotations

import argparse
import hashlib
import marshal
import os
import re
import sys


def cache_key(version: str, inner: str, source: bytes) -> str:
    """The same key as pidock_zipimport_cache.cache_key, for another interpreter's sys.version."""
    digest = hashlib.sha256()
    digest.update(version.encode())
    digest.update(b"\0" + inner.encode() + b"\0")
    digest.update(source)
    return digest.hexdigest()


def compile_like_zipimport(source: bytes, inner: str):
    """What zipimport._compile_source returns for this source (line endings normalised first)."""
    normalised = source.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    return compile(normalised, inner, "exec", dont_inherit=True)


def sources(tree: str, prefixes: list[str]):
    """(path inside the zip, source bytes) of every .py file under tree/prefix."""
    for prefix in prefixes:
        top = os.path.join(tree, prefix)
        for current, dirs, files in os.walk(top):
            dirs.sort()
            for name in sorted(files):
                if name.endswith(".py"):
                    path = os.path.join(current, name)
                    with open(path, "rb") as handle:
                        yield os.path.relpath(path, tree).replace(os.sep, "/"), handle.read()


def prewarm(version: str, cache: str, trees: list[str], prefixes: list[str]) -> tuple[int, int]:
    """Store the code of every source; returns (stored, skipped: syntax this Python cannot compile)."""
    wanted = re.match(r"(\d+)\.(\d+)", version)
    if not wanted or (int(wanted.group(1)), int(wanted.group(2))) != sys.version_info[:2]:
        raise SystemExit(f"this is Python {sys.version.split()[0]}; the target runs {version.split()[0]}")
    os.makedirs(cache, mode=0o755, exist_ok=True)
    stored = skipped = 0
    for tree in trees:
        for inner, source in sources(tree, prefixes):
            try:
                code = compile_like_zipimport(source, inner)
            except SyntaxError:
                skipped += 1
                continue
            path = os.path.join(cache, cache_key(version, inner, source))
            with open(f"{path}.tmp", "wb") as handle:
                marshal.dump(code, handle)
            os.replace(f"{path}.tmp", path)
            stored += 1
    return stored, skipped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--python-version", required=True, help="the target interpreter's sys.version")
    parser.add_argument("--cache", required=True, help="the cache directory inside the target's root")
    parser.add_argument("--tree", action="append", required=True, help="a directory the zip's paths start from")
    parser.add_argument("--prefix", action="append", required=True, help="a folder under each tree to compile")
    args = parser.parse_args()
    stored, skipped = prewarm(args.python_version, args.cache, args.tree, args.prefix)
    print(f"prewarmed {stored} code objects ({skipped} sources skipped)")


if __name__ == "__main__":
    main()
