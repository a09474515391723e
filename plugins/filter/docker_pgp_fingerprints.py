"""Filter pidock.stack.docker_pgp_fingerprints: fingerprints of the keys in an OpenPGP key block."""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import Any

from ansible.errors import AnsibleFilterError

DOCUMENTATION = r"""
name: docker_pgp_fingerprints
short_description: Fingerprints of the primary keys and subkeys in an OpenPGP public key block
description:
  - Parses an ASCII-armored (or raw binary) OpenPGP public key block in pure Python, so that a
    downloaded apt signing key can be checked against a pinned fingerprint before it is installed
    and before apt is touched, without needing gpg on the target.
  - Returns version 4 (SHA-1) and version 6 (SHA-256) fingerprints as upper-case hex.
positional: _input
options:
  _input:
    description: The key block (armored text or bytes).
    type: raw
    required: true
"""

EXAMPLES = r"""
- name: Fail unless the key carries the pinned fingerprint
  ansible.builtin.assert:
    that: docker_upstream_gpg_fingerprint in (key_text | pidock.stack.docker_pgp_fingerprints)
"""

RETURN = r"""
_value:
  description: Fingerprints, primary key first, in the order the packets appear.
  type: list
  elements: str
"""

_PUBLIC_KEY_TAGS = (6, 14)  # public key, public subkey


def _dearmor(text: str) -> bytes:
    """Every armored public key block in the text, decoded and concatenated (a mirror can append one)."""
    lines = [line.strip() for line in text.strip().splitlines()]
    starts = [i for i, line in enumerate(lines) if line.startswith("-----BEGIN PGP PUBLIC KEY BLOCK")]
    ends = [i for i, line in enumerate(lines) if line.startswith("-----END PGP PUBLIC KEY BLOCK")]
    if not starts or len(starts) != len(ends):
        raise AnsibleFilterError("docker_pgp_fingerprints: input is not an armored OpenPGP public key block")
    data = b""
    for start, end in zip(starts, ends, strict=True):
        body = lines[start + 1 : end]
        # Armor headers end at the first empty line (when there are any).
        if "" in body:
            first_blank = body.index("")
            if all(":" in line for line in body[:first_blank]):
                body = body[first_blank + 1 :]
        encoded = "".join(line for line in body if line and not line.startswith("="))
        try:
            data += base64.b64decode(encoded, validate=True)
        except binascii.Error as exc:
            raise AnsibleFilterError(f"docker_pgp_fingerprints: bad base64 in key block: {exc}") from exc
    return data


def _crc24(data: bytes) -> int:
    """The armor checksum of RFC 4880 section 6.1."""
    crc = 0xB704CE
    for byte in data:
        crc ^= byte << 16
        for _round in range(8):
            crc <<= 1
            if crc & 0x1000000:
                crc ^= 0x1864CFB
    return crc & 0xFFFFFF


def _armor(data: bytes) -> str:
    encoded = base64.b64encode(data).decode()
    body = "\n".join(encoded[i : i + 64] for i in range(0, len(encoded), 64))
    checksum = base64.b64encode(_crc24(data).to_bytes(3, "big")).decode()
    return f"-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n{body}\n={checksum}\n-----END PGP PUBLIC KEY BLOCK-----\n"


def _new_format(tag: int, body: bytes) -> bytes:
    """A packet re-encoded with a new-format header (five-octet length: valid for any size)."""
    return bytes((0xC0 | tag, 255)) + len(body).to_bytes(4, "big") + body


def _packets(data: bytes) -> list[tuple[int, bytes]]:
    out: list[tuple[int, bytes]] = []
    pos = 0
    while pos < len(data):
        head = data[pos]
        pos += 1
        if not head & 0x80:
            raise AnsibleFilterError(f"docker_pgp_fingerprints: invalid packet header at offset {pos - 1}")
        if head & 0x40:  # new format
            tag = head & 0x3F
            first = data[pos]
            if first < 192:
                length, pos = first, pos + 1
            elif first < 224:
                length, pos = ((first - 192) << 8) + data[pos + 1] + 192, pos + 2
            elif first == 255:
                length, pos = int.from_bytes(data[pos + 1 : pos + 5], "big"), pos + 5
            else:
                raise AnsibleFilterError("docker_pgp_fingerprints: partial body lengths are not valid in keys")
        else:  # old format
            tag = (head >> 2) & 0x0F
            kind = head & 0x03
            if kind == 3:
                length = len(data) - pos
            else:
                size = (1, 2, 4)[kind]
                length, pos = int.from_bytes(data[pos : pos + size], "big"), pos + size
        if pos + length > len(data):
            raise AnsibleFilterError("docker_pgp_fingerprints: truncated key block")
        out.append((tag, data[pos : pos + length]))
        pos += length
    return out


def _fingerprint(body: bytes) -> str | None:
    version = body[0] if body else 0
    if version == 4:
        return hashlib.sha1(b"\x99" + len(body).to_bytes(2, "big") + body, usedforsecurity=False).hexdigest().upper()
    if version == 6:
        return hashlib.sha256(b"\x9b" + len(body).to_bytes(4, "big") + body).hexdigest().upper()
    return None


def _data(key: Any) -> bytes:
    if isinstance(key, (bytes, bytearray)):
        raw = bytes(key)
        return _dearmor(raw.decode("ascii", "replace")) if raw.lstrip().startswith(b"-----") else raw
    if isinstance(key, str):
        return _dearmor(key)
    raise AnsibleFilterError(f"docker_pgp_fingerprints: expected a key block string, got {type(key).__name__}")


def docker_pgp_primary_key(key: Any, fingerprint: str) -> str:
    """Only the transferable public key whose primary key has this fingerprint (its user IDs,
    signatures and subkeys), armored: what apt may trust. Other keys in the block are dropped."""
    wanted = str(fingerprint).replace(" ", "").upper()
    kept: list[bytes] = []
    keeping = False
    for tag, body in _packets(_data(key)):
        if tag == 6:  # a primary key starts the next transferable key
            keeping = _fingerprint(body) == wanted
        if keeping and tag in (2, 6, 13, 14, 17):  # signature, key, user ID, subkey, user attribute
            kept.append(_new_format(tag, body))
    if not kept:
        raise AnsibleFilterError(f"docker_pgp_primary_key: no primary key with fingerprint {wanted} in the block")
    return _armor(b"".join(kept))


def docker_pgp_fingerprints(key: Any) -> list[str]:
    data = _data(key)
    fingerprints = [fp for tag, body in _packets(data) if tag in _PUBLIC_KEY_TAGS if (fp := _fingerprint(body))]
    if not fingerprints:
        raise AnsibleFilterError("docker_pgp_fingerprints: no v4 or v6 public key found in the key block")
    return fingerprints


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"docker_pgp_fingerprints": docker_pgp_fingerprints, "docker_pgp_primary_key": docker_pgp_primary_key}
