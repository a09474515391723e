"""Unit tests for the hf_cache_check module, on hub-layout caches built in tmp_path."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from ansible_collections.pidock.stack.plugins.modules import hf_cache_check
from conftest import ModuleFailed, RunModule

_COMMIT = "c9745ed1d9f207416be6d2e6f8de32d1f16199bf"
_FILES = {
    "config.json": (b'{"hidden_size": 384}\n', False),
    "1_Pooling/config.json": (b'{"pooling_mode_mean_tokens": true}\n', False),
    "model.safetensors": (b"\x00weights" * 4096, True),
}


def _git_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _make_repo(hub: Path, repo_id: str = "sentence-transformers/all-MiniLM-L6-v2") -> Path:
    """A faithful hub-layout repository: blobs by sha256 (LFS) or git sha1, relative snapshot links, refs/main."""
    repo = hub / ("models--" + repo_id.replace("/", "--"))
    (repo / "blobs").mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(_COMMIT)
    snap = repo / "snapshots" / _COMMIT
    for rel, (data, lfs) in _FILES.items():
        name = hashlib.sha256(data).hexdigest() if lfs else _git_sha1(data)
        (repo / "blobs" / name).write_bytes(data)
        link = snap / rel
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(os.path.relpath(repo / "blobs" / name, link.parent), link)
    return repo


@pytest.fixture
def home(tmp_path: Path) -> Path:
    _make_repo(tmp_path / "hf" / "hub")
    return tmp_path / "hf"


def _repo(home: Path) -> Path:
    return home / "hub" / "models--sentence-transformers--all-MiniLM-L6-v2"


def _blob_of(home: Path, rel: str) -> Path:
    link = _repo(home) / "snapshots" / _COMMIT / rel
    return Path(os.path.realpath(link))


def test_sound_cache_is_ok(home: Path, run_module: RunModule) -> None:
    result = run_module(hf_cache_check.main, {"path": str(home)})
    assert result["ok"] is True
    assert result["changed"] is False
    assert result["hub"] == str(home / "hub")
    (repo,) = result["repos"]
    assert repo["repo_id"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert repo["refs"] == {"main": _COMMIT}
    assert repo["files"] == 3
    assert repo["blobs"] == 3
    assert repo["bytes"] == sum(len(d) for d, _lfs in _FILES.values())
    assert repo["errors"] == [] and repo["warnings"] == []


def test_hub_dir_itself_and_check_mode(home: Path, run_module: RunModule) -> None:
    assert run_module(hf_cache_check.main, {"path": str(home / "hub")}, check_mode=True)["ok"] is True


def _corrupt_lfs_blob(home: Path) -> None:
    _blob_of(home, "model.safetensors").write_bytes(b"\x00weightz" * 4096)


def _corrupt_small_blob(home: Path) -> None:
    _blob_of(home, "config.json").write_bytes(b'{"hidden_size": 385}\n')


def _dangling(home: Path) -> None:
    _blob_of(home, "1_Pooling/config.json").unlink()


def _absolute(home: Path) -> None:
    link = _repo(home) / "snapshots" / _COMMIT / "config.json"
    target = os.path.realpath(link)
    link.unlink()
    os.symlink(target, link)


def _escaping(home: Path) -> None:
    link = _repo(home) / "snapshots" / _COMMIT / "config.json"
    link.unlink()
    outside = home / "outside.json"
    outside.write_text("{}")
    os.symlink(os.path.relpath(outside, link.parent), link)


def _absolute_escaping(home: Path) -> None:
    link = _repo(home) / "snapshots" / _COMMIT / "config.json"
    link.unlink()
    outside = home / "outside.json"
    outside.write_text("{}")
    os.symlink(str(outside), link)


def _regular_file(home: Path) -> None:
    link = _repo(home) / "snapshots" / _COMMIT / "config.json"
    link.unlink()
    link.write_text("{}")


def _ref_to_nowhere(home: Path) -> None:
    (_repo(home) / "refs" / "main").write_text("0" * 40)


def _bad_blob_name(home: Path) -> None:
    (_repo(home) / "blobs" / "not-a-hash").write_text("x")


@pytest.mark.parametrize(
    ("break_it", "kinds"),
    [
        (_corrupt_lfs_blob, ["blob_hash_mismatch"]),
        (_corrupt_small_blob, ["blob_hash_mismatch"]),
        (_dangling, ["dangling_symlink"]),
        (_absolute, ["absolute_symlink"]),
        (_escaping, ["outside_blobs"]),
        (_absolute_escaping, ["absolute_symlink", "outside_blobs"]),
        (_regular_file, ["not_a_symlink"]),
        (_ref_to_nowhere, ["ref_without_snapshot"]),
        (_bad_blob_name, ["blob_hash_mismatch"]),
    ],
    ids=[
        "corrupt-lfs",
        "corrupt-git-sha1",
        "dangling",
        "absolute",
        "relative-escape",
        "absolute-escape",
        "regular-file",
        "ref-to-nowhere",
        "bad-blob-name",
    ],
)
def test_errors_are_found(home: Path, run_module: RunModule, break_it, kinds: list[str]) -> None:
    break_it(home)
    result = run_module(hf_cache_check.main, {"path": str(home), "fail_on_error": False})
    assert result["ok"] is False
    (repo,) = result["repos"]
    assert sorted({e["kind"] for e in repo["errors"]}) == kinds
    with pytest.raises(ModuleFailed, match="Hugging Face cache has errors"):
        run_module(hf_cache_check.main, {"path": str(home)})


def test_dangling_links_are_listed(home: Path, run_module: RunModule) -> None:
    _dangling(home)
    result = run_module(hf_cache_check.main, {"path": str(home), "fail_on_error": False})
    assert result["dangling"] == [str(_repo(home) / "snapshots" / _COMMIT / "1_Pooling" / "config.json")]


def test_corrupt_blob_passes_without_verify_blobs(home: Path, run_module: RunModule) -> None:
    _corrupt_lfs_blob(home)
    assert run_module(hf_cache_check.main, {"path": str(home), "verify_blobs": False})["ok"] is True


@pytest.mark.parametrize(
    ("models", "ok", "count"),
    [
        (["sentence-transformers/all-MiniLM-L6-v2"], True, 1),
        (["models--sentence-transformers--all-MiniLM-L6-v2"], True, 1),
        (["org/absent"], False, 1),
        ([], True, 2),
    ],
)
def test_models_restricts(home: Path, run_module: RunModule, models: list[str], ok: bool, count: int) -> None:
    other = _make_repo(home / "hub", "org/other")
    (other / "blobs" / next(os.scandir(other / "blobs")).name).write_bytes(b"corrupt")
    if not models:
        # the corrupt second repository counts once everything is checked
        ok = False
    result = run_module(hf_cache_check.main, {"path": str(home), "models": models, "fail_on_error": False})
    assert result["ok"] is ok
    assert len(result["repos"]) == count


@pytest.mark.parametrize(
    ("extra", "kind"),
    [("unreferenced", "unreferenced_blob"), ("incomplete", "incomplete_download"), ("norefs", "no_refs")],
)
def test_warnings_do_not_fail(home: Path, run_module: RunModule, extra: str, kind: str) -> None:
    repo = _repo(home)
    if extra == "unreferenced":
        data = b"old revision"
        (repo / "blobs" / hashlib.sha256(data).hexdigest()).write_bytes(data)
    elif extra == "incomplete":
        (repo / "blobs" / ("a" * 64 + ".incomplete")).write_bytes(b"partial")
    else:
        (repo / "refs" / "main").unlink()
    result = run_module(hf_cache_check.main, {"path": str(home)})
    assert result["ok"] is True
    assert [w["kind"] for w in result["repos"][0]["warnings"]] == [kind]


def test_missing_path_fails(tmp_path: Path, run_module: RunModule) -> None:
    with pytest.raises(ModuleFailed, match="cannot read"):
        run_module(hf_cache_check.main, {"path": str(tmp_path / "absent")})
