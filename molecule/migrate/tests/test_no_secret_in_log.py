"""The whole migrate scenario runs at -v with ANSIBLE_LOG_PATH (molecule.yml): none of the test
secrets may appear in that log (scripts/secret_leaks.py scan). The log also takes the verifier's own
`ansible-inventory --list` (testinfra reads the inventory that way): the inventory holds the test
password only as a file lookup (molecule.yml)."""

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
    scan = subprocess.run(
        [sys.executable, str(PROJECT / "scripts" / "secret_leaks.py"), "scan", log], capture_output=True, text=True
    )
    if scan.returncode != 0:
        # Name the tasks around each occurrence, so the next run says where the leak is.
        task = "?"
        for number, line in enumerate(text.splitlines(), start=1):
            if "TASK [" in line:
                task = line
            if "bare-metal-secret" in line:  # migrate_test_db_password (molecule.yml)
                print(f"{log}:{number}: in {task}")
    assert scan.returncode == 0, scan.stderr
