"""Test hosts only: keep the code Python compiles for modules it imports from a zip file.

Every Ansible module run ships its code as a zip (AnsiballZ) and Python imports
``ansible.module_utils`` from it. ``zipimport`` never writes ``.pyc`` files, so each run compiles
the same sources again: about 40 % of a module run's CPU on a test host (measured: 380 ms -> 220 ms
of the host's CPU per ``stat``), and 10-50 s per run on the emulated arm64 host.

scripts/build-base-images.sh copies this file into the test host images with a ``.pth`` line that
calls ``install()`` at interpreter start. It wraps ``zipimport._compile_source``: the code object is stored under
``/var/cache/pidock-zipimport``, keyed by the source and its path inside the zip (the zip's own
path is a fresh temporary directory each run), and loaded from there the next time. What a module
does is unchanged: the same source gives the same code; a changed source is a new key. Any
failure (no such function in this Python, unreadable or foreign cache file, read-only disk) falls
back to compiling, as Python would have.

Real hosts never get this file; it is not part of the collection.
"""

from __future__ import annotations

import contextlib
import hashlib
import marshal
import os
import sys
import zipimport

CACHE_DIR = os.environ.get("PIDOCK_ZIPIMPORT_CACHE", "/var/cache/pidock-zipimport")


def cache_key(pathname: str, source: bytes) -> str:
    """The cache file name for one source: its bytes, its path inside the zip, this Python."""
    inner = pathname.replace(os.sep, "/").rpartition(".zip/")[2]
    digest = hashlib.sha256()
    digest.update(sys.version.encode())
    digest.update(b"\0" + inner.encode() + b"\0")
    digest.update(source)
    return digest.hexdigest()


def load(path: str, pathname: str):
    """The stored code object with its file names set to this run's path, or None."""
    try:
        with open(path, "rb") as handle:
            code = marshal.load(handle)
    except Exception:  # a missing, partial or foreign file: compile again
        return None
    if not hasattr(code, "co_code"):
        return None
    import _imp

    _imp._fix_co_filename(code, pathname)
    return code


def store(path: str, code) -> None:
    """Write atomically (two hosts' runs may compile the same source at once); ignore failures."""
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
        with open(tmp, "wb") as handle:
            marshal.dump(code, handle)
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def install(cache_dir: str = CACHE_DIR) -> bool:
    """Wrap zipimport's compile step; False when this Python has no such step to wrap."""
    compile_source = getattr(zipimport, "_compile_source", None)
    if compile_source is None or getattr(compile_source, "pidock_cached", False):
        return False

    def cached_compile_source(pathname, source):
        path = os.path.join(cache_dir, cache_key(pathname, source))
        code = load(path, pathname)
        if code is None:
            code = compile_source(pathname, source)
            store(path, code)
        return code

    cached_compile_source.pidock_cached = True
    zipimport._compile_source = cached_compile_source
    return True
