"""images/testhost/prewarm_zipimport_cache.py: a cache filled ahead of time is what the host's hook loads."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from test_zipimport_cache import HOOK_DIR, SOURCE, run

sys.path.insert(0, str(HOOK_DIR))
import pidock_zipimport_cache as hook
import prewarm_zipimport_cache as prewarm


def _tree(root: Path, files: dict[str, bytes]) -> Path:
    for inner, source in files.items():
        path = root / inner
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(source)
    return root


@pytest.mark.parametrize("inner", ["demo.py", "ansible/module_utils/basic.py"])
def test_the_key_is_the_hooks_for_this_python(inner: str) -> None:
    source = b"VALUE = 1\r\n"
    assert prewarm.cache_key(sys.version, inner, source) == hook.cache_key(f"/tmp/x/p.zip/{inner}", source)
    assert prewarm.cache_key("3.13.5 (main, Jun 25 2025) [GCC 14.2.0]", inner, source) != hook.cache_key(
        f"/tmp/x/p.zip/{inner}", source
    )


def test_a_prewarmed_source_is_loaded_not_compiled(tmp_path: Path) -> None:
    source = SOURCE.format(value="one").encode()
    tree = _tree(tmp_path / "site", {"demo.py": source, "pkg/skip.txt": b"not python"})
    cache = tmp_path / "cache"
    assert prewarm.prewarm(sys.version, str(cache), [str(tree)], ["."]) == (1, 0)
    first = run(tmp_path, cache, "a")
    assert first["compiled"] == 0 and first["value"] == "one"
    assert first["where"] == f"{first['zip']}/demo.py", "the traceback names this run's zip"


def test_only_the_prefixes_and_syntax_errors_are_skipped(tmp_path: Path) -> None:
    tree = _tree(
        tmp_path / "site",
        {"ansible/module_utils/a.py": b"A = 1\n", "ansible/module_utils/bad.py": b"def (:\n", "other/b.py": b"B = 2\n"},
    )
    cache = tmp_path / "cache"
    assert prewarm.prewarm(sys.version, str(cache), [str(tree)], ["ansible/module_utils"]) == (1, 1)
    assert [p.name for p in cache.iterdir()] == [
        prewarm.cache_key(sys.version, "ansible/module_utils/a.py", b"A = 1\n")
    ]


def test_another_python_version_is_refused(tmp_path: Path) -> None:
    other = "2.7.18 (default, Apr 20 2020) [GCC 9.3.0]"
    with pytest.raises(SystemExit, match=r"the target runs 2\.7\.18"):
        prewarm.prewarm(other, str(tmp_path / "cache"), [str(tmp_path)], ["."])


def test_the_script_runs(tmp_path: Path) -> None:
    tree = _tree(tmp_path / "site", {"x/y.py": b"Y = 1\n"})
    out = subprocess.run(
        [
            sys.executable,
            str(HOOK_DIR / "prewarm_zipimport_cache.py"),
            "--python-version",
            sys.version,
            "--cache",
            str(tmp_path / "c"),
            "--tree",
            str(tree),
            "--prefix",
            "x",
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    assert out.stdout.strip() == "prewarmed 1 code objects (0 sources skipped)"
