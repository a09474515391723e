"""The top README stays a short entry page: at most 15 KB, the sections a collection user looks
for, no ansible-doc markup, and links that point at files that exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
SECTIONS = [
    "## Two commands",
    "## Installing the collection",
    "## External requirements",
    "## Included content",
    "## Runbooks",
    "### First migration of a Pi",
    "### Routine deploy",
    "### Rollback",
    "### Adding a host",
    "### Rotating certificates",
    "## Testing",
    "## Release notes",
]


def test_readme_is_at_most_15_kb() -> None:
    assert README.stat().st_size <= 15 * 1024


@pytest.mark.parametrize("heading", SECTIONS)
def test_readme_has_section(heading: str) -> None:
    assert re.search(rf"^{re.escape(heading)}$", README.read_text(encoding="utf-8"), re.M)


def test_readme_has_no_ansible_doc_markup() -> None:
    leaks = re.findall(r"\b(?:RV|[CIBMOPVEUL])\([^)]*\)", README.read_text(encoding="utf-8"))
    assert not leaks, leaks[:5]


@pytest.mark.parametrize("doc", ["README.md", "docs/playbooks.md", "docs/development.md"])
def test_relative_links_point_at_files(doc: str) -> None:
    path = ROOT / doc
    for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", path.read_text(encoding="utf-8")):
        assert (path.parent / target).exists(), f"{doc}: link to missing {target}"
