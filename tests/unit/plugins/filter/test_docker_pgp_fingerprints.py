"""Unit tests for the pidock.stack.docker_pgp_fingerprints filter."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.pidock.stack.plugins.filter.docker_pgp_fingerprints import (
    FilterModule,
    docker_pgp_fingerprints,
    docker_pgp_primary_key,
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


DOCKER_KEYS = [DOCKER_RELEASE_KEY, "D3306A018370199E527AE7997EA0A9C3F273FCD8"]


def _appended() -> list[tuple[str, object]]:
    docker = (FIXTURES / "docker-release-key.asc").read_text()
    other = (FIXTURES / "pidock-unit-key.asc").read_text()
    return [
        ("second armored block appended", docker + other),
        ("second armored block in front", other + docker),
    ]


@pytest.mark.parametrize(("case", "block"), _appended(), ids=[c for c, _block in _appended()])
def test_every_armored_block_is_seen(case, block):
    assert set(docker_pgp_fingerprints(block)) == set(DOCKER_KEYS + UNIT_KEY)


@pytest.mark.parametrize(("case", "block"), _appended(), ids=[c for c, _block in _appended()])
def test_only_the_pinned_primary_key_is_kept(case, block):
    kept = docker_pgp_primary_key(block, DOCKER_RELEASE_KEY.lower())
    assert docker_pgp_fingerprints(kept) == DOCKER_KEYS
    assert kept.startswith("-----BEGIN PGP PUBLIC KEY BLOCK-----\n")


def test_binary_concatenation_is_split_too():
    binary = (FIXTURES / "pidock-unit-key.gpg").read_bytes()
    kept = docker_pgp_primary_key(binary, UNIT_KEY[0])
    assert docker_pgp_fingerprints(kept) == UNIT_KEY


def test_the_kept_key_is_stable():
    text = (FIXTURES / "docker-release-key.asc").read_text()
    once = docker_pgp_primary_key(text, DOCKER_RELEASE_KEY)
    assert docker_pgp_primary_key(once, DOCKER_RELEASE_KEY) == once


@pytest.mark.skipif(shutil.which("gpg") is None, reason="gpg not installed")
def test_gpg_reads_the_kept_key_and_its_armor_checksum(tmp_path):
    block = _appended()[0][1]
    path = tmp_path / "docker.asc"
    path.write_text(docker_pgp_primary_key(block, DOCKER_RELEASE_KEY))
    out = subprocess.run(
        ["gpg", "--homedir", str(tmp_path), "--show-keys", "--with-colons", str(path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert [line.split(":")[9] for line in out.splitlines() if line.startswith("fpr:")] == DOCKER_KEYS
    assert "Docker Release" in out


@pytest.mark.parametrize("fingerprint", ["D3306A018370199E527AE7997EA0A9C3F273FCD8", "0" * 40])
def test_a_subkey_or_unknown_fingerprint_is_not_a_primary_key(fingerprint):
    with pytest.raises(AnsibleFilterError, match="no primary key with fingerprint"):
        docker_pgp_primary_key((FIXTURES / "docker-release-key.asc").read_text(), fingerprint)


def _gpg(home, *args, **kw):
    argv = ["gpg", "--homedir", str(home), "--batch", "--yes", *args]
    return subprocess.run(argv, capture_output=True, check=True, **kw)


@pytest.mark.skipif(shutil.which("gpg") is None or shutil.which("gpgv") is None, reason="gpg/gpgv not installed")
def test_gpgv_trusts_the_pinned_key_and_not_an_appended_one(tmp_path, request):
    """What apt does with Signed-By: the attacker's key appended to the block must not verify anything."""
    blocks, signed = [], {}
    for who in ("repo", "attacker"):
        home = tmp_path / who
        home.mkdir(mode=0o700)
        kill = ["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"]
        request.addfinalizer(lambda kill=kill: subprocess.run(kill, check=False))
        _gpg(home, "--passphrase", "", "--quick-gen-key", f"{who} <{who}@pidock.invalid>", "ed25519", "sign", "never")
        blocks.append(_gpg(home, "--armor", "--export", text=True).stdout)
        release = tmp_path / f"{who}.Release"
        release.write_text(f"signed by {who}\n")
        _gpg(home, "--detach-sign", "-o", str(release) + ".sig", str(release))
        signed[who] = release
    fingerprint = docker_pgp_fingerprints(blocks[0])[0]
    served = blocks[0] + blocks[1]  # the mirror appends its key

    def gpgv(keyring_text: str, who: str) -> int:
        asc = tmp_path / "keyring.asc"
        asc.write_text(keyring_text)
        keyring = tmp_path / "keyring.gpg"
        _gpg(tmp_path / "repo", "--dearmor", "-o", str(keyring), str(asc))
        return subprocess.run(
            ["gpgv", "--keyring", str(keyring), str(signed[who]) + ".sig", str(signed[who])],
            capture_output=True,
            check=False,
        ).returncode

    assert gpgv(served, "attacker") == 0, "installing the whole block trusts the attacker (the f5e7451 behaviour)"
    kept = docker_pgp_primary_key(served, fingerprint)
    assert gpgv(kept, "repo") == 0
    assert gpgv(kept, "attacker") != 0
