#!/usr/bin/python3
"""Write the bare-metal host's uploaded images: deterministic names and content (test data).

Names include spaces, non-ASCII characters and nested directories; one hardlink and one relative
symlink make the tree as awkward as a real upload directory that has been tidied by hand. Writes a
TSV (item_id, path, sha256, bytes) for the images table. Does nothing when the tree exists.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys

_DIRS = ["", "2024/01", "2024/02", "Küche", "日本語 写真", "thumbs"]
_STEMS = ["item", "Schrank ü", "café crème", "写真", "photo with spaces"]


def _content(index: int) -> bytes:
    header = b"\xff\xd8\xff\xe0" if index % 2 else b"\x89PNG\r\n\x1a\n"
    size = 512 + (index * 137) % 6000
    block = hashlib.sha256(f"image-{index}".encode()).digest()
    return (header + block * (size // len(block) + 1))[:size]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dest", required=True)
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--items", type=int, default=10000)
    parser.add_argument("--tsv", required=True)
    parser.add_argument("--uid", type=int, default=0)
    parser.add_argument("--gid", type=int, default=0)
    args = parser.parse_args()
    if os.path.isdir(args.dest) and os.listdir(args.dest):
        print("unchanged")
        return 0
    rows = []
    for index in range(1, args.count + 1):
        folder = _DIRS[index % len(_DIRS)]
        ext = "jpg" if index % 2 else "png"
        rel = os.path.join(folder, f"{_STEMS[index % len(_STEMS)]} {index:04d}.{ext}")
        full = os.path.join(args.dest, rel)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        data = _content(index)
        with open(full, "wb") as handle:
            handle.write(data)
        item_id = (index * 37) % args.items + 1
        rows.append(f"{item_id}\t{rel}\t{hashlib.sha256(data).hexdigest()}\t{len(data)}\n")
    # A hand-made hardlink and a relative symlink, as a tidied upload directory has.
    first = os.path.join(args.dest, rows[0].split("\t")[1])
    os.link(first, os.path.join(args.dest, "thumbs", "hardlinked copy.jpg"))
    os.symlink(os.path.relpath(first, args.dest), os.path.join(args.dest, "latest.jpg"))
    os.makedirs(os.path.join(args.dest, "empty upload dir"))
    for base, dirs, files in os.walk(args.dest):
        for name in dirs + files:
            os.lchown(os.path.join(base, name), args.uid, args.gid)
    os.lchown(args.dest, args.uid, args.gid)
    with open(args.tsv, "w", encoding="utf-8") as handle:
        handle.writelines(rows)
    print("changed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
