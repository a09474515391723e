"""scripts/crossgrade_rootfs.py: an installed amd64 package replaced by its arm64 build, natively.

Builds tiny real .debs with dpkg-deb and a root with the dpkg database dpkg itself would write.
"""

from __future__ import annotations

import hashlib
import importlib.util
import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "crossgrade_rootfs.py"
spec = importlib.util.spec_from_file_location("crossgrade_rootfs", SCRIPT)
assert spec and spec.loader
xg = importlib.util.module_from_spec(spec)
spec.loader.exec_module(xg)

pytestmark = pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs dpkg-deb")

TRIPLET = {"amd64": "x86_64-linux-gnu", "arm64": "aarch64-linux-gnu"}


def build_deb(tmp: Path, arch: str, version: str, conf: str = "setting = packaged\n") -> Path:
    """libdemo1 (Multi-Arch: same): a library, a tool, a conffile and a postinst."""
    src = tmp / f"src-{arch}"
    (src / "DEBIAN").mkdir(parents=True)
    lib = src / "usr/lib" / TRIPLET[arch]
    lib.mkdir(parents=True)
    (lib / "libdemo.so.1").write_bytes(f"ELF for {arch}".encode())
    (src / "usr/bin").mkdir(parents=True)
    tool = src / "usr/bin/demo"
    tool.write_text(f"#!/bin/sh\necho {arch}\n")
    tool.chmod(0o755)
    helper = src / "usr/bin/demo-helper"
    helper.write_text("setuid\n")
    helper.chmod(0o4755)
    (src / "usr/bin/demo-link").symlink_to("demo")
    (src / "etc").mkdir()
    (src / "etc/demo.conf").write_text(conf)
    (src / "DEBIAN/control").write_text(
        "Package: libdemo1\n"
        f"Version: {version}\n"
        f"Architecture: {arch}\n"
        "Multi-Arch: same\n"
        "Maintainer: Test <test@example.invalid>\n"
        "Description: demo library\n"
        " A second line of description.\n"
    )
    (src / "DEBIAN/conffiles").write_text("/etc/demo.conf\n")
    (src / "DEBIAN/postinst").write_text(f"#!/bin/sh\n# {arch}\nexit 0\n")
    (src / "DEBIAN/postinst").chmod(0o755)
    out = tmp / f"libdemo1_{version}_{arch}.deb"
    subprocess.run(
        ["dpkg-deb", "--root-owner-group", "-Zgzip", "-b", str(src), str(out)], check=True, capture_output=True
    )
    return out


def install_fake(root: Path, deb: Path, configured_conf: str) -> None:
    """Lay out the deb's files and the dpkg database entries as an installed package."""
    subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    (root / "etc/demo.conf").write_text(configured_conf)  # edited by the admin / a postinst
    admin = root / "var/lib/dpkg"
    (admin / "info").mkdir(parents=True)
    listing = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(deb)], check=True, capture_output=True).stdout
    names = subprocess.run(["tar", "-tf", "-"], input=listing, check=True, capture_output=True).stdout.decode()
    entries = ["/." if n in ("./", ".") else "/" + n.lstrip("./").rstrip("/") for n in names.split()]
    (admin / "info/libdemo1:amd64.list").write_text("\n".join(entries) + "\n")
    (admin / "info/libdemo1:amd64.postinst").write_text("#!/bin/sh\n# amd64\n")
    conf_md5 = hashlib.md5(b"setting = packaged\n").hexdigest()
    (admin / "status").write_text(
        "Package: base-thing\n"
        "Status: install ok installed\n"
        "Architecture: all\n"
        "Version: 1\n"
        "\n"
        "Package: libdemo1\n"
        "Status: install ok installed\n"
        "Architecture: amd64\n"
        "Multi-Arch: same\n"
        "Version: 1.0\n"
        "Conffiles:\n"
        f" /etc/demo.conf {conf_md5}\n"
        "Description: demo library\n"
        " A second line of description.\n"
    )


@pytest.fixture
def crossgraded(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    (root / "usr").mkdir(parents=True)
    (root / "usr/lib").mkdir()
    (root / "lib").symlink_to("usr/lib")  # merged /usr, owned by base-files
    install_fake(root, build_deb(tmp_path, "amd64", "1.0"), "setting = configured\n")
    debs = tmp_path / "debs"
    debs.mkdir()
    shutil.move(str(build_deb(tmp_path, "arm64", "1.0+b1")), debs)
    assert xg.crossgrade(root, debs, "arm64") == 1
    return root


def test_amd64_files_replaced_by_arm64_ones(crossgraded: Path) -> None:
    assert not (crossgraded / "usr/lib/x86_64-linux-gnu/libdemo.so.1").exists()
    assert (crossgraded / "usr/lib/aarch64-linux-gnu/libdemo.so.1").read_bytes() == b"ELF for arm64"
    assert "arm64" in (crossgraded / "usr/bin/demo").read_text()
    assert (crossgraded / "usr/bin/demo").stat().st_mode & 0o7777 == 0o755
    assert (crossgraded / "usr/bin/demo-helper").stat().st_mode & 0o7777 == 0o4755
    assert (crossgraded / "usr/bin/demo-link").readlink() == Path("demo")


def test_merged_usr_symlink_survives(crossgraded: Path) -> None:
    assert (crossgraded / "lib").is_symlink()


def test_configured_conffile_kept(crossgraded: Path) -> None:
    assert (crossgraded / "etc/demo.conf").read_text() == "setting = configured\n"


def test_dpkg_database_names_the_arm64_package(crossgraded: Path) -> None:
    admin = crossgraded / "var/lib/dpkg"
    status = xg.parse_deb822((admin / "status").read_text())
    assert [p["Package"] for p in status] == ["base-thing", "libdemo1"]
    demo = status[1]
    assert demo["Architecture"] == "arm64"
    assert demo["Version"] == "1.0+b1"
    assert demo["Status"] == "install ok installed"
    assert "/etc/demo.conf" in demo["Conffiles"]
    assert demo["Description"].endswith("A second line of description.")
    info = sorted(p.name for p in (admin / "info").iterdir())
    assert info == ["libdemo1:arm64.conffiles", "libdemo1:arm64.list", "libdemo1:arm64.postinst"]
    listed = (admin / "info/libdemo1:arm64.list").read_text().splitlines()
    assert "/usr/lib/aarch64-linux-gnu/libdemo.so.1" in listed
    assert not any("x86_64" in line for line in listed)
    assert "# arm64" in (admin / "info/libdemo1:arm64.postinst").read_text()


def test_dpkg_reads_the_result(crossgraded: Path) -> None:
    out = subprocess.run(
        [
            "dpkg-query",
            f"--admindir={crossgraded}/var/lib/dpkg",
            "-W",
            "-f",
            "${Package} ${Architecture} ${Version}\n",
            "libdemo1",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert out == "libdemo1 arm64 1.0+b1\n"


def test_missing_target_package_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    install_fake(root, build_deb(tmp_path, "amd64", "1.0"), "x\n")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit, match="no arm64 package for libdemo1"):
        xg.crossgrade(root, tmp_path / "empty", "arm64")


@pytest.mark.parametrize(
    ("text", "fields"),
    [
        ("A: 1\nB: two\n", [{"A": "1", "B": "two"}]),
        ("A: 1\n\nA: 2\n", [{"A": "1"}, {"A": "2"}]),
        ("C:\n x y\n z\n", [{"C": "\n x y\n z"}]),
        ("D: short\n long line\n", [{"D": "short\n long line"}]),
    ],
)
def test_deb822_round_trip(text: str, fields: list[dict[str, str]]) -> None:
    assert xg.parse_deb822(text) == fields
    assert xg.parse_deb822(xg.format_deb822(fields)) == fields
