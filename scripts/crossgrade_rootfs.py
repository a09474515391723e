#!/usr/bin/env python3
"""Turn a configured Debian root file system into the same system for another architecture.

Building an arm64 test host by bootstrapping it under qemu-user runs every maintainer script
emulated, one process start at a time: 7 to 15 minutes here. This does the same job natively.
The amd64 host image is already installed and configured; what a maintainer script did there
(users, groups, alternatives, generated files under /etc and /var) does not depend on the
architecture. So, for every architecture-dependent package in the dpkg database:

1. the files its amd64 .list names are removed, except under /etc, where the configured
   conffiles stay as they are;
2. the files of the target architecture's .deb of the same package are written in their place
   (through the merged-/usr symlinks, never replacing a symlinked directory);
3. its dpkg database entry becomes the new package's: control fields, file list, md5sums and
   maintainer scripts, keeping the installed status and the conffile hashes.

Packages of architecture "all" are left alone. The result is checked afterwards, under
emulation but with a single process each (`dpkg --print-architecture`, `dpkg --audit`), by the
calling script.

Usage: crossgrade_rootfs.py ROOT DEBS_DIR ARCH
"""

from __future__ import annotations

import io
import os
import shutil
import stat
import subprocess
import sys
import tarfile
from pathlib import Path

CONTROL_SCRIPTS = ("preinst", "postinst", "prerm", "postrm", "config", "templates", "triggers",
                   "shlibs", "symbols", "conffiles", "md5sums")
# Fields dpkg keeps in /var/lib/dpkg/status that do not come from the package's control file.
STATUS_ONLY_FIELDS = ("Status", "Conffiles", "Config-Version")


def parse_deb822(text: str) -> list[dict[str, str]]:
    """Parse deb822 paragraphs, keeping field order and continuation lines verbatim."""
    paragraphs: list[dict[str, str]] = []
    current: dict[str, str] = {}
    last = None
    for line in text.splitlines():
        if not line.strip():
            if current:
                paragraphs.append(current)
            current, last = {}, None
        elif line[0] in " \t" and last is not None:
            current[last] += "\n" + line
        else:
            key, _colon, value = line.partition(":")
            last = key
            current[key] = value.strip()
    if current:
        paragraphs.append(current)
    return paragraphs


def format_deb822(paragraphs: list[dict[str, str]]) -> str:
    out = []
    for para in paragraphs:
        out.append("".join(f"{k}: {v}\n" if not v.startswith("\n") else f"{k}:{v}\n" for k, v in para.items()))
    return "\n".join(out)


def deb_members(deb: Path) -> tuple[dict[str, bytes], bytes]:
    """Return (control files by name, data tar as bytes) of a .deb, via dpkg-deb."""
    control_tar = subprocess.run(["dpkg-deb", "--ctrl-tarfile", str(deb)], check=True, capture_output=True).stdout
    control: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(control_tar)) as tar:
        for member in tar:
            if member.isfile():
                fh = tar.extractfile(member)
                assert fh is not None
                control[os.path.basename(member.name)] = fh.read()
    data_tar = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(deb)], check=True, capture_output=True).stdout
    return control, data_tar


def info_name(package: str, multi_arch: str, arch: str) -> str:
    """The name dpkg gives a package's files in /var/lib/dpkg/info."""
    return f"{package}:{arch}" if multi_arch == "same" else package


def remove_listed_files(root: Path, listed: list[str]) -> None:
    """Remove the files a package owned (not directories, nothing under /etc)."""
    for name in listed:
        if not name or name == "/." or name.startswith("/etc/"):
            continue
        path = root / name.lstrip("/")
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            continue
        if stat.S_ISDIR(mode):
            continue
        # A symlink to a directory (the merged-/usr links) belongs to base-files: keep it.
        if stat.S_ISLNK(mode) and path.is_dir():
            continue
        path.unlink()


def write_data(root: Path, data_tar: bytes) -> list[str]:
    """Write a package's files under root; return the dpkg .list entries."""
    listed: list[str] = []
    with tarfile.open(fileobj=io.BytesIO(data_tar)) as tar:
        for member in tar:
            rel = os.path.normpath(member.name)
            rel = "" if rel == "." else rel.removeprefix("/")
            entry = "/" + rel if rel else "/."
            listed.append(entry)
            if not rel:
                continue
            dest = root / rel
            if member.isdir():
                if not dest.is_dir():  # follows symlinks: a symlinked directory counts
                    dest.mkdir(parents=True, exist_ok=True)
                    os.chmod(dest, member.mode)
                continue
            if rel.startswith("etc/") and os.path.lexists(dest):
                continue  # the configured conffile stays
            dest.parent.mkdir(parents=True, exist_ok=True)
            if os.path.lexists(dest):
                if dest.is_dir() and not dest.is_symlink():
                    shutil.rmtree(dest)
                else:
                    dest.unlink()
            if member.issym():
                os.symlink(member.linkname, dest)
            elif member.islnk():
                target = root / os.path.normpath(member.linkname).removeprefix("/")
                os.link(target, dest)
            elif member.isfile():
                fh = tar.extractfile(member)
                assert fh is not None
                with open(dest, "wb") as out:
                    shutil.copyfileobj(fh, out)
            else:
                continue  # device nodes and FIFOs do not occur in Debian packages
            os.lchown(dest, member.uid, member.gid)
            if member.isfile():
                os.chmod(dest, member.mode)  # after chown, which clears setuid bits
            # The package's mtimes, as dpkg sets them: byte-code compiled on the amd64 host
            # stays valid for the same source (it records the source's mtime).
            os.utime(dest, (member.mtime, member.mtime), follow_symlinks=False)
    return listed


def crossgrade(root: Path, debs: Path, arch: str) -> int:
    admin = root / "var/lib/dpkg"
    info = admin / "info"
    overrides = admin / "statoverride"
    if overrides.exists() and overrides.read_text().strip():
        # dpkg would apply these owners and modes to the new files; this tool does not.
        raise SystemExit(f"{overrides} is not empty: dpkg-statoverride entries are not supported")
    status = parse_deb822((admin / "status").read_text())
    by_name: dict[str, Path] = {}
    for deb in debs.glob("*.deb"):
        package = deb.name.split("_", 1)[0]
        by_name[package] = deb
    old_arch = None
    changed = 0
    for para in status:
        if para.get("Architecture") in (None, "all") or "installed" not in para.get("Status", ""):
            continue
        package = para["Package"]
        old_arch = para["Architecture"]
        deb = by_name.get(package)
        if deb is None:
            raise SystemExit(f"no {arch} package for {package} in {debs}")
        control, data_tar = deb_members(deb)
        fields = parse_deb822(control["control"].decode())[0]
        old_info = info_name(package, para.get("Multi-Arch", ""), old_arch)
        new_info = info_name(package, fields.get("Multi-Arch", ""), arch)
        list_file = info / f"{old_info}.list"
        remove_listed_files(root, list_file.read_text().splitlines() if list_file.exists() else [])
        for suffix in ("list", *CONTROL_SCRIPTS):
            (info / f"{old_info}.{suffix}").unlink(missing_ok=True)
        listed = write_data(root, data_tar)
        (info / f"{new_info}.list").write_text("\n".join(listed) + "\n")
        for name in CONTROL_SCRIPTS:
            if name in control:
                target = info / f"{new_info}.{name}"
                target.write_bytes(control[name])
                os.chmod(target, 0o755 if name in ("preinst", "postinst", "prerm", "postrm", "config") else 0o644)
        kept = {k: para[k] for k in STATUS_ONLY_FIELDS if k in para}
        para.clear()
        para["Package"] = fields.pop("Package")
        para["Status"] = kept.pop("Status")
        para.update(fields)
        para.update(kept)
        changed += 1
    (admin / "status").write_text(format_deb822(status))
    # A foreign-architecture list naming the old native one would make it foreign now.
    arch_file = admin / "arch"
    if arch_file.exists():
        arch_file.unlink()
    print(f"crossgraded {changed} packages from {old_arch} to {arch}")
    return changed


def main(argv: list[str]) -> int:
    if len(argv) != 4:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    crossgrade(Path(argv[1]), Path(argv[2]), argv[3])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
