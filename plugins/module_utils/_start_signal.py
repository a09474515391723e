# Copyright: (c) 2026, pidock.stack maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A job started ahead of the moment it may act, waiting for a one-word file.

The migrate role starts the frozen catch-up's background jobs (the file delta's copies, the baselines)
before the freeze, so that the downtime does not pay for starting them: each waits until its start file
holds ``go`` (then it works) or ``cancel`` (then it exits having done nothing). The file is written
whole (a temporary file renamed over it), so a reader never sees part of a word. A file that does not
appear within the timeout means the run that started the job is gone: the job does nothing either.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

GO = "go"
CANCEL = "cancel"
POLL_SECONDS = 0.05


class StartTimeout(Exception):
    """The start file did not appear in time."""


def wait_for_start(
    path: str,
    timeout: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[bool, float]:
    """Wait for ``path``; (True when it says go, the seconds waited). Anything but ``go`` means cancel.

    Raises StartTimeout when the file is still missing after ``timeout`` seconds.
    """
    started = clock()
    while True:
        try:
            with open(path, encoding="utf-8") as handle:
                word = handle.read().strip()
        except FileNotFoundError:
            word = None
        if word:
            return word == GO, round(clock() - started, 3)
        if clock() - started >= timeout:
            raise StartTimeout(f"{path} did not appear within {timeout:g} s")
        sleep(POLL_SECONDS)


def give_word(path: str, word: str = GO) -> None:
    """Write ``word`` into the start file whole (a temporary file renamed over it), mode 0600."""
    tmp = f"{path}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(word + "\n")
    os.replace(tmp, path)
