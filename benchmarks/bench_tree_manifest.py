#!/usr/bin/env python3
"""Throughput of pidock.stack.tree_manifest's hashing against coreutils' sha256sum.

Usage: bench_tree_manifest.py DIR [--size-mb 1024] [--files 2000] [--jobs 1 2 4]
Creates DIR (a tree of --files files totalling --size-mb) unless it exists, then times
_build_manifest with each --jobs value and `find | xargs sha256sum` on the same files.
Run from the repository root with PYTHONPATH=collections. Page cache is warm after the first pass:
the first line is the cold(ish) run, compare like with like.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import time

from ansible_collections.pidock.stack.plugins.module_utils._manifest import _build_manifest


def _make(root: str, size_mb: int, files: int) -> None:
    per = size_mb * 1024 * 1024 // files
    block = os.urandom(1024 * 1024)
    for i in range(files):
        sub = os.path.join(root, f"d{i % 20:02d}", f"sub {i % 7}")
        os.makedirs(sub, exist_ok=True)
        with open(os.path.join(sub, f"file ü {i:05d}.bin"), "wb") as handle:
            left = per
            while left > 0:
                chunk = block[: min(left, len(block))]
                handle.write(bytes([i % 256]) + chunk[1:])
                left -= len(chunk)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("dir")
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2, 4])
    args = parser.parse_args()
    if not os.path.isdir(args.dir):
        _make(args.dir, args.size_mb, args.files)
    for jobs in args.jobs:
        start = time.monotonic()
        manifest = _build_manifest(args.dir, jobs=jobs)
        took = time.monotonic() - start
        mb = manifest["total_bytes"] / 1e6
        print(f"tree_manifest jobs={jobs}: {mb:.0f} MB in {took:.2f} s = {mb / took:.0f} MB/s")
    start = time.monotonic()
    subprocess.run(
        f"find {args.dir!r} -type f -print0 | xargs -0 sha256sum > /dev/null", shell=True, check=True
    )
    took = time.monotonic() - start
    print(f"find | xargs sha256sum: {mb:.0f} MB in {took:.2f} s = {mb / took:.0f} MB/s")
    start = time.monotonic()
    subprocess.run(
        f"find {args.dir!r} -type f -print0 | xargs -0 -P 2 -n 100 sha256sum > /dev/null", shell=True, check=True
    )
    took = time.monotonic() - start
    print(f"find | xargs -P 2 sha256sum: {mb:.0f} MB in {took:.2f} s = {mb / took:.0f} MB/s")


if __name__ == "__main__":
    main()
