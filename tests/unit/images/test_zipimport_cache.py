"""images/testhost/pidock_zipimport_cache.py: code imported from a zip is compiled once per source.

Each case runs fresh interpreters (as module runs on a test host do) that import a module from a
new zip path, with the cache installed the way the test host images install it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

HOOK_DIR = Path(__file__).resolve().parents[3] / "images" / "testhost"

# Run in a child: install the cache, count real compiles, import `demo` from the zip, report.
CHILD = """
import json, sys, zipimport
sys.path.insert(0, sys.argv[1])
import pidock_zipimport_cache as cache
compiled = []
real = zipimport._compile_source
def counting(pathname, source):
    compiled.append(pathname)
    return real(pathname, source)
zipimport._compile_source = counting
installed = cache.install(sys.argv[2])
sys.path.insert(0, sys.argv[3])
import demo
try:
    demo.fail()
except RuntimeError as exc:
    where = exc.__traceback__.tb_next.tb_frame.f_code.co_filename
json.dump({"installed": installed, "compiled": len(compiled), "value": demo.VALUE, "where": where}, sys.stdout)
"""

SOURCE = "VALUE = {value!r}\n\ndef fail():\n    raise RuntimeError('boom')\n"


def run(tmp: Path, cache: Path, run_id: str, value: str = "one") -> dict:
    """One interpreter importing demo.py from a zip under a per-run directory (as AnsiballZ does)."""
    zdir = tmp / f"ansible_payload_{run_id}"
    zdir.mkdir()
    zpath = zdir / "payload.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        zf.writestr("demo.py", SOURCE.format(value=value))
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(HOOK_DIR), str(cache), str(zpath)],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    result = json.loads(out.stdout)
    result["zip"] = str(zpath)
    return result


@pytest.mark.parametrize(
    ("case", "second_value", "spoil", "compiled_second"),
    [
        ("same source, new zip path: loaded, not compiled", "one", None, 0),
        ("changed source: compiled again", "two", None, 1),
        ("unreadable cache entry: compiled again", "one", b"not marshal data", 1),
        ("empty cache entry: compiled again", "one", b"", 1),
    ],
)
def test_compiled_once_per_source(
    tmp_path: Path, case: str, second_value: str, spoil: bytes | None, compiled_second: int
) -> None:
    cache = tmp_path / "cache"
    first = run(tmp_path, cache, "1")
    assert first["installed"] is True and first["compiled"] == 1 and first["value"] == "one"
    assert len(list(cache.iterdir())) == 1
    if spoil is not None:
        next(cache.iterdir()).write_bytes(spoil)
    second = run(tmp_path, cache, "2", second_value)
    assert second["compiled"] == compiled_second, case
    assert second["value"] == second_value, case
    # A traceback names this run's zip, not the run that filled the cache.
    assert second["where"] == second["zip"] + os.sep + "demo.py", case


def test_unwritable_cache_directory_only_costs_the_compile(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the cache directory should be\n")
    for run_id in ("1", "2"):
        result = run(tmp_path, blocker / "cache", run_id)
        # Nothing stored, so every lookup compiles (zipimport may ask twice per import).
        assert result["compiled"] >= 1 and result["value"] == "one"
    assert blocker.read_text().startswith("a file")
    assert not list(tmp_path.glob("**/*.tmp"))
