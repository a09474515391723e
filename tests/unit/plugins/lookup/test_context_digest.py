"""pidock.stack.context_digest: what changes a build context's digest and what does not."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from ansible.errors import AnsibleLookupError
from ansible.parsing.dataloader import DataLoader
from ansible_collections.pidock.stack.plugins.lookup.context_digest import LookupModule, tree_digest


def _tree(root: Path) -> Path:
    (root / "app").mkdir(parents=True)
    (root / "Dockerfile").write_text("FROM scratch\nCOPY app /app\n")
    (root / "app" / "main.py").write_text("print('hi')\n")
    (root / "run.sh").write_text("#!/bin/sh\n")
    return root


def _change_content(root: Path) -> None:
    (root / "app" / "main.py").write_text("print('bye')\n")


def _rename(root: Path) -> None:
    (root / "app" / "main.py").rename(root / "app" / "other.py")


def _executable(root: Path) -> None:
    (root / "run.sh").chmod(0o755)


def _add_empty_dir(root: Path) -> None:
    (root / "data").mkdir()


def _add_link(root: Path) -> None:
    (root / "link").symlink_to("app/main.py")


def _move_between_dirs(root: Path) -> None:
    # Same bytes, same name, another directory.
    (root / "app" / "main.py").rename(root / "main.py")


@pytest.mark.parametrize(
    "change", [_change_content, _rename, _executable, _add_empty_dir, _add_link, _move_between_dirs]
)
def test_a_change_changes_the_digest(tmp_path, change):
    root = _tree(tmp_path / "ctx")
    before = tree_digest(str(root))
    change(root)
    assert tree_digest(str(root)) != before


def _touch(root: Path) -> None:
    os.utime(root / "Dockerfile", (1, 1))


def _group_write(root: Path) -> None:
    (root / "Dockerfile").chmod(0o664)


@pytest.mark.parametrize("change", [_touch, _group_write])
def test_times_and_non_exec_mode_bits_do_not_count(tmp_path, change):
    root = _tree(tmp_path / "ctx")
    before = tree_digest(str(root))
    change(root)
    assert tree_digest(str(root)) == before


def test_same_tree_elsewhere_same_digest(tmp_path):
    assert tree_digest(str(_tree(tmp_path / "a"))) == tree_digest(str(_tree(tmp_path / "b")))
    assert tree_digest(str(tmp_path / "a")).startswith("sha256:")


def test_lookup_returns_one_digest_per_term_in_order(tmp_path):
    a, b = _tree(tmp_path / "a"), _tree(tmp_path / "b")
    _change_content(b)
    got = LookupModule(loader=DataLoader()).run([str(a), str(b)], variables={})
    assert got == [tree_digest(str(a)), tree_digest(str(b))]
    assert got[0] != got[1]
    # lookup('pidock.stack.context_digest', a_list) passes the list as a single term.
    assert LookupModule(loader=DataLoader()).run([[str(a), str(b)]], variables={}) == got


def test_a_relative_path_is_found_in_the_playbook_files_dir(tmp_path):
    _tree(tmp_path / "files" / "web")
    loader = DataLoader()
    loader.set_basedir(str(tmp_path))
    got = LookupModule(loader=loader).run(["web"], variables={})
    assert got == [tree_digest(str(tmp_path / "files" / "web"))]


def test_missing_directory_is_refused_by_name(tmp_path):
    with pytest.raises(AnsibleLookupError, match="is not a directory on the controller"):
        tree_digest(str(tmp_path / "nope"))
