"""Make the shared testinfra helpers (molecule/_shared/tests) importable from every scenario."""

from __future__ import annotations

import sys
from pathlib import Path

_SHARED = str(Path(__file__).resolve().parent / "_shared" / "tests")
if _SHARED not in sys.path:
    sys.path.insert(0, _SHARED)
