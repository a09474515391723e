"""Unit tests for the pidock.stack.docker_pgp_fingerprints filter."""

from __future__ import annotations

from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.pidock.stack.plugins.filter.docker_pgp_fingerprints import (
    FilterModule,
    docker_pgp_fingerprints,
)

FIXTURES = Path(__file__).parent / "fixtures"
DOCKER_RELEASE_KEY = "9DC858229FC7DD38854AE2D88D81803C0EBFCD88"
# As reported by `gpg --show-keys --with-colons` for the fixtures.
UNIT_KEY = ["7760430080390DDDA876B3AE157A7F20FFD5F57D", "6FF15E202E417C9033BD1B06A5FD0E75ECB7BE67"]


@pytest.mark.parametrize(
    ("fixture", "mode", "expected"),
    [
        ("docker-release-key.asc", "r", [DOCKER_RELEASE_KEY, "D3306A018370199E527AE7997EA0A9C3F273FCD8"]),
        ("pidock-unit-key.asc", "r", UNIT_KEY),
        ("pidock-unit-key.gpg", "rb", UNIT_KEY),
    ],
)
def test_fingerprints_match_gpg(fixture, mode, expected):
    with open(FIXTURES / fixture, mode) as fh:
        assert docker_pgp_fingerprints(fh.read()) == expected


def test_armor_headers_and_indentation_are_tolerated():
    text = (FIXTURES / "pidock-unit-key.asc").read_text()
    with_header = text.replace("-----\n\n", "-----\nComment: test\n\n", 1)
    indented = "\n".join("   " + line for line in with_header.splitlines())
    assert docker_pgp_fingerprints(indented) == UNIT_KEY


def test_tampered_key_gives_other_fingerprints():
    text = (FIXTURES / "pidock-unit-key.asc").read_text()
    lines = text.splitlines()
    # Flip one base64 character inside the primary key packet (first line of the armor body).
    body = lines[2]
    lines[2] = body[:30] + ("A" if body[30] != "A" else "B") + body[31:]
    try:
        got = docker_pgp_fingerprints("\n".join(lines))
    except AnsibleFilterError:
        return
    assert got != UNIT_KEY


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "not a key",
        "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n!!!!\n-----END PGP PUBLIC KEY BLOCK-----\n",
        "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nAAAA\n-----END PGP PUBLIC KEY BLOCK-----\n",
        42,
    ],
)
def test_garbage_raises(bad):
    with pytest.raises(AnsibleFilterError):
        docker_pgp_fingerprints(bad)


def test_registered():
    assert FilterModule().filters()["docker_pgp_fingerprints"] is docker_pgp_fingerprints
