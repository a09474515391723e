#!/usr/bin/env python3
"""Throughput of pidock.stack.tree_manifest's hashing against coreutils' sha256sum, and of its copy mode.

Usage: bench_tree_manifest.py DIR [--size-mb 1024] [--files 2000] [--jobs 1 2 4]
Creates DIR (a tree of --files files totalling --size-mb) unless it exists, then times
_build_manifest with each --jobs value and `find | xargs sha256sum` on the same files.
Run from the repository root with PYTHONPATH=collections. Page cache is warm after the first pass:
the first line is the cold(ish) run, compare like with like.

Usage: bench_tree_manifest.py --copy [--base /var/tmp] [--big 64] [--big-mb 16] [--small 300] [--rounds 1]
Generates a tree (--big files of --big-mb random MiB plus --small small files with awkward names) under
--base, warms the page cache, then per round times a raw `tar -cf - | tar -xf -; sync` copy and
tree_manifest's copy mode (copy_to: source read once, sync, copy read back and compared) into a fresh
directory, and prints seconds, MB/s and the ratio of the two throughputs (target >= 0.9). Removes it all.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

from ansible_collections.pidock.stack.plugins.module_utils._manifest import _build_manifest
from ansible_collections.pidock.stack.plugins.module_utils._tree_copier import _TreeCopier


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


def _make_copy_tree(root: str, big: int, big_mb: int, small: int) -> int:
    """A tree like an image store plus a model cache: big random files, many small ones, links."""
    total = 0
    os.makedirs(os.path.join(root, "blobs"))
    for i in range(big):
        with open(os.path.join(root, "blobs", f"blob {i:03d}.bin"), "wb") as handle:
            for _ in range(big_mb):
                handle.write(os.urandom(1024 * 1024))
        total += big_mb * 1024 * 1024
    for i in range(small):
        sub = os.path.join(root, "images", f"2026-{i % 12 + 1:02d}")
        os.makedirs(sub, exist_ok=True)
        data = os.urandom(1024 + (i * 7919) % (256 * 1024))
        with open(os.path.join(sub, f"photo ü {i:04d}.jpg"), "wb") as handle:
            handle.write(data)
        total += len(data)
    os.symlink("../blobs/blob 000.bin", os.path.join(root, "images", "latest"))
    os.link(os.path.join(root, "blobs", "blob 001.bin"), os.path.join(root, "blobs", "hardlink.bin"))
    return total


def _cpu() -> float:
    """CPU seconds (user + system) of this process and its finished children so far."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _timed(action, settle: float = 0.0) -> tuple[float, float]:
    """Wall and CPU seconds of ``action``."""
    subprocess.run(["sync"], check=True)  # start each measure with nothing dirty
    time.sleep(settle)  # and let the (virtual) disk finish what the previous measure left it
    start, cpu = time.monotonic(), _cpu()
    action()
    return time.monotonic() - start, _cpu() - cpu


def bench_copy(args: argparse.Namespace) -> None:
    work = tempfile.mkdtemp(prefix="pidock-bench-copy.", dir=args.base)
    try:
        src, dst = os.path.join(work, "src"), os.path.join(work, "dst")
        size = _make_copy_tree(src, args.big, args.big_mb, args.small)
        subprocess.run(f"tar -C {src!r} -cf - . | cat > /dev/null", shell=True, check=True)  # warm cache
        mb = size / 1e6
        jobs = args.jobs[-1] if args.jobs_given else min(8, os.cpu_count() or 1)  # the module's default
        print(f"tree: {mb:.0f} MB in {args.big + args.small} files under {work}; copy mode jobs={jobs}")
        measures = ["tar", "copy_to"]
        for number in range(1, args.rounds + 1):
            # rotate the order each round: whatever runs first or last must not always be the same one
            shift = (number - 1) % len(measures)
            times: dict[str, tuple[float, float]] = {}
            notes: dict[str, str] = {}
            for name in measures[shift:] + measures[:shift]:
                shutil.rmtree(dst, ignore_errors=True)
                if name == "tar":
                    os.mkdir(dst)
                    tar = f"tar -C {src!r} -cf - . | tar -C {dst!r} -xf -; sync"
                    times[name] = _timed(lambda tar=tar: subprocess.run(tar, shell=True, check=True), args.settle)
                    continue
                copier = _TreeCopier(src, dst, jobs=jobs, ownership=True)
                result: dict = {}
                times[name] = _timed(lambda c=copier, r=result: r.update(cmp=c.run()[1]), args.settle)
                assert result["cmp"] is not None and result["cmp"]["equal"], result["cmp"]
                stats = copier.stats
                notes[name] = f"copy+sync {stats.copy_seconds:.2f} s, read-back {stats.verify_seconds:.2f} s, equal"
            raw, raw_cpu = times["tar"]
            line = f"round {number}: tar|tar;sync {raw:.2f} s = {mb / raw:.0f} MB/s (cpu {raw_cpu:.2f} s)"
            for name in measures[1:]:
                took, cpu = times[name]
                line += (
                    f" | {name} {took:.2f} s = {mb / took:.0f} MB/s ({notes[name]}, cpu {cpu:.2f} s)"
                    f" ratio {raw / took:.2f}x"
                )
            load = os.getloadavg()[0]
            print(f"{line} | load {load:.2f} on {os.cpu_count()} CPUs", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("dir", nargs="?")
    parser.add_argument("--copy", action="store_true", help="measure copy mode against tar | tar; sync")
    parser.add_argument("--base", default="/var/tmp")
    parser.add_argument("--big", type=int, default=64)
    parser.add_argument("--big-mb", type=int, default=16)
    parser.add_argument("--small", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--settle", type=float, default=3.0, help="seconds of rest after the sync before each measure")
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument(
        "--jobs", type=int, nargs="+", default=[1, 2, 4], help="with --copy the last one is used (default: CPUs)"
    )
    args = parser.parse_args()
    args.jobs_given = any(a.startswith("--jobs") for a in sys.argv[1:])
    if args.copy:
        bench_copy(args)
        return
    if not args.dir:
        parser.error("DIR is needed (or --copy)")
    if not os.path.isdir(args.dir):
        _make(args.dir, args.size_mb, args.files)
    for jobs in args.jobs:
        start = time.monotonic()
        manifest = _build_manifest(args.dir, jobs=jobs)
        took = time.monotonic() - start
        mb = manifest["total_bytes"] / 1e6
        print(f"tree_manifest jobs={jobs}: {mb:.0f} MB in {took:.2f} s = {mb / took:.0f} MB/s")
    start = time.monotonic()
    subprocess.run(f"find {args.dir!r} -type f -print0 | xargs -0 sha256sum > /dev/null", shell=True, check=True)
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
