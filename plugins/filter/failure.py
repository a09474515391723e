# Copyright: pidock.stack maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter pidock.stack.failure_text: what a rescue may print about the task that failed.

A rescue sees `ansible_failed_result` uncensored, even when the failed task had `no_log: true`
(its stdout, stderr, msg and arguments may hold secrets). This filter gives the message, stderr
and stdout of an ordinary failure, and only a notice for a no_log one; for a failed loop, also
what each failed item said (the loop's own message is only "One or more items failed").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

HIDDEN = "output hidden: the failed task is no_log (rerun it without no_log, on a test host, to see it)"


_FIELDS = ("msg", "stderr", "stdout")


def failure_text(result: Any, limit: int = 600, fields: tuple[str, ...] | list[str] = _FIELDS) -> str:
    """msg, stderr and stdout of a failed task's result, trimmed to `limit` characters; a notice for no_log."""
    if not isinstance(result, Mapping):
        return "unknown error"
    if result.get("_ansible_no_log") or "censored" in result:
        return HIDDEN
    text = " ".join(str(result.get(field) or "").strip() for field in fields).strip()
    # A loop's result says only "One or more items failed": add what each failed item said.
    items = result.get("results")
    if isinstance(items, list):
        said = [failure_text(item, limit, fields) for item in items if isinstance(item, Mapping) and item.get("failed")]
        text = "; ".join(part for part in [text, *said] if part)
    if len(text) > limit:
        text = text[: max(limit - 3, 0)] + "..."
    return text or "unknown error"


class FilterModule:
    """pidock.stack failure filter."""

    def filters(self) -> dict[str, Any]:
        return {"failure_text": failure_text}
