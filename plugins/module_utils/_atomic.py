# Copyright: (c) 2026, pidock.stack maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one atomic file write of the collection's plugins.

Every plugin that replaces a file on a managed host goes through write_atomic: a temporary file in
the same directory, created with its final mode (so a secret is never readable by others, not even
for a moment), written, fsynced, renamed over the destination, and the directory fsynced so the
rename itself survives a power cut. One behaviour everywhere: callers cannot forget a step.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator


def write_atomic(path: str | bytes, data: str | bytes, mode: int = 0o644) -> None:
    """Replace ``path`` with ``data`` (text is UTF-8) atomically and durably, mode ``mode``.

    Raises OSError (FileNotFoundError when the directory is missing); on any error the
    destination is untouched and the temporary file is gone.
    """
    target = os.fsdecode(path)
    directory = os.path.dirname(target) or "."
    payload = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(target)}.", suffix=".tmp", dir=directory)
    try:
        try:
            os.fchmod(fd, mode)
            view = memoryview(payload)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def parse_mode(value: str | int) -> int:
    """A file mode as the collection's options take it: '0600', '600' or 0o600 -> 0o600.

    Raises ValueError naming the value when it is not an octal number in 0..07777.
    """
    if isinstance(value, int):
        mode = value
    else:
        text = str(value).strip()
        if not text or any(c not in "01234567" for c in text):
            raise ValueError(f"mode {value!r} is not an octal number such as '0640'")
        mode = int(text, 8)
    if not 0 <= mode <= 0o7777:
        raise ValueError(f"mode {value!r} is out of range")
    return mode


@contextlib.contextmanager
def temporary_copy(data: str | bytes, name: str = "") -> Iterator[str]:
    """A private (0600) temporary file holding ``data`` in the system's temporary directory, for a
    checker such as ``dockerd --validate``; removed on exit whatever happened."""
    payload = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(prefix=".pidock-check.", suffix=name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
        yield tmp
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
