"""The whole migrate scenario runs at -v with ANSIBLE_LOG_PATH (molecule.yml): none of the test
secrets may appear in that log (scripts/secret_leaks.py scan)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[3]


def test_the_run_log_holds_no_test_secret():
    log = os.environ.get("ANSIBLE_LOG_PATH") or f"{os.environ['MOLECULE_EPHEMERAL_DIRECTORY']}/ansible.log"
    text = Path(log).read_text(errors="replace")
    assert "TASK [pidock.stack.migrate" in text or "pidock.stack.migrate" in text, "the log covers the migration"
    scan = subprocess.run([sys.executable, str(PROJECT / "scripts" / "secret_leaks.py"), "scan", log],
                          capture_output=True, text=True)
    assert scan.returncode == 0, scan.stderr
