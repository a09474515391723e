"""scripts/role_docs.py turns Ansible's documentation markup into Markdown."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
_spec = importlib.util.spec_from_file_location("role_docs", ROOT / "scripts" / "role_docs.py")
assert _spec and _spec.loader
role_docs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(role_docs)


@pytest.mark.parametrize(
    ("markup", "markdown"),
    [
        ("plain text", "plain text"),
        ("C(docker info) and C(x)", "`docker info` and `x`"),
        ("O(tls_mode=ca) or O(tls_dir)", "`tls_mode=ca` or `tls_dir`"),
        ("V(previous)", "`previous`"),
        ("RV(release_id)", "`release_id`"),
        ("E(HF_HOME)", "`HF_HOME`"),
        ("I(userland) B(never)", "*userland* **never**"),
        ("M(community.docker.docker_image_info)", "`community.docker.docker_image_info`"),
        ("P(pidock.stack.compose#role)", "`pidock.stack.compose`"),
        ("U(https://example.org/x)", "<https://example.org/x>"),
        ("L(the docs, https://example.org/d)", "[the docs](https://example.org/d)"),
        ("a HORIZONTALLINE b", "a --- b"),
        # Not markup: a word ending in a capital letter before a parenthesis, and plain parentheses.
        ("the ABC(x) and (C) stay", "the ABC(x) and (C) stay"),
    ],
)
def test_markdown(markup: str, markdown: str) -> None:
    assert role_docs.markdown(markup) == markdown


def test_every_entry_point_is_rendered() -> None:
    text = role_docs.render("compose")
    for entry in ("main", "rollback", "list"):
        assert f"### Entry point `{entry}`" in text
    assert "tasks_from: rollback" in text
