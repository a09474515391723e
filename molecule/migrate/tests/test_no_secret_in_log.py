"""The whole migrate scenario runs at -v with ANSIBLE_LOG_PATH (molecule.yml): none of the test
secrets may appear in that log (scripts/secret_leaks.py scan)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[3]


# Known leak, being located (issue 14 stays open): the compose diagnosis's `docker inspect` printed the
# database password twice and is no_log now; one occurrence remains, written to the log by a
# playbook that a test runs (its output is not on the scenario's stdout). Not strict, so the day
# it passes shows as XPASS.
@pytest.mark.xfail(strict=False, reason="one remaining occurrence of the database password in the -v log (issue 14)")
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
