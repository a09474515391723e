"""Unit tests for the host-to-host transfer's filters: the grant on the target and rrsync's paths."""

from __future__ import annotations

import pytest
from ansible_collections.pidock.stack.plugins.filter.migrate_transfer import (
    FilterModule,
    migrate_replication_client,
    migrate_transfer_dest,
    migrate_transfer_grant,
)

_ROOT = "/var/lib/docker/volumes"


def test_filters_are_registered() -> None:
    assert set(FilterModule().filters()) == {
        "migrate_transfer_grant",
        "migrate_transfer_dest",
        "migrate_replication_client",
    }


@pytest.mark.parametrize(
    ("route", "override", "address"),
    [
        ("10.0.0.7 via 10.0.0.1 dev eth0 src 10.0.0.5 uid 0 \\    cache ", "", "10.0.0.5"),
        ("172.17.0.3 dev eth0 src 172.17.0.2 uid 0 \\    cache ", "", "172.17.0.2"),
        ("local 10.0.0.5 dev lo table local src 10.0.0.5 uid 0", "", "10.0.0.5"),
        ("fd00::7 from :: dev eth0 proto kernel src fd00::5 metric 256 pref medium", "", "fd00::5"),
        ("10.0.0.7 via 10.0.0.1 dev eth0 src 10.0.0.5 uid 0", "192.168.1.20", "192.168.1.20"),
        ("", " 192.168.1.20 ", "192.168.1.20"),
    ],
    ids=["via-gateway", "same-link", "local", "ipv6", "override", "override-no-route"],
)
def test_grant(route, override, address) -> None:
    got = migrate_transfer_grant(route, _ROOT, override)
    assert got["source_address"] == address
    assert got["key_options"] == f'from="{address}",restrict,command="/usr/bin/rrsync -wo {_ROOT}"'


@pytest.mark.parametrize(
    ("route", "root", "override", "message"),
    [
        ("10.0.0.7 via 10.0.0.1 dev eth0 uid 0", _ROOT, "", "set migrate_source_address"),
        ("", _ROOT, "", "set migrate_source_address"),
        ("10.0.0.7 dev eth0 src eth0 uid 0", _ROOT, "", "not an IP address"),
        ("", _ROOT, "pi.local", "migrate_source_address is not an IP address"),
        ("10.0.0.7 dev eth0 src 10.0.0.5", "/srv/docker data/volumes", "", "no quotes"),
        ("10.0.0.7 dev eth0 src 10.0.0.5", 'relative/"x"', "", "absolute path"),
        ("10.0.0.7 dev eth0 src 10.0.0.5", "/", "", "below /"),
    ],
    ids=["no-src", "empty", "src-not-ip", "override-name", "root-space", "root-relative", "root-slash"],
)
def test_grant_refuses(route, root, override, message) -> None:
    with pytest.raises(ValueError, match=message):
        migrate_transfer_grant(route, root, override)


@pytest.mark.parametrize(
    ("mountpoint", "root", "dest"),
    [
        ("/var/lib/docker/volumes/inventory_images/_data", _ROOT, "inventory_images/_data/"),
        ("/var/lib/docker/volumes/inventory_images/_data/", _ROOT + "/", "inventory_images/_data/"),
        ("/srv/docker/volumes/x/_data", "/srv/docker/volumes", "x/_data/"),
    ],
    ids=["default", "trailing-slashes", "other-data-dir"],
)
def test_dest(mountpoint, root, dest) -> None:
    assert migrate_transfer_dest(mountpoint, root) == dest


@pytest.mark.parametrize(
    "mountpoint",
    [
        "/mnt/nfs/images",
        "/var/lib/docker/volumes",
        "/var/lib/docker/volumes/../x/_data",
        "relative/_data",
        "",
        "/var/lib/docker/volumes2/x/_data",
    ],
    ids=["elsewhere", "the-root-itself", "dot-dot", "relative", "empty", "prefix-not-parent"],
)
def test_dest_refuses(mountpoint) -> None:
    with pytest.raises(ValueError, match="cannot write it"):
        migrate_transfer_dest(mountpoint, _ROOT)


@pytest.mark.parametrize(
    ("route", "address", "network"),
    [
        ("172.18.0.2 dev eth0 src 172.18.0.3 uid 0 \\    cache ", "172.18.0.3", "172.18.0.3/32"),
        ("10.0.0.5 via 10.0.1.1 dev wlan0 src 10.0.1.9 uid 0", "10.0.1.9", "10.0.1.9/32"),
        ("fd00::5 from :: dev eth0 proto kernel src fd00::7 metric 256 pref medium", "fd00::7", "fd00::7/128"),
    ],
    ids=["same-link", "via-gateway", "ipv6"],
)
def test_replication_client(route, address, network) -> None:
    assert migrate_replication_client(route) == {"address": address, "network": network}


@pytest.mark.parametrize(
    ("route", "message"),
    [
        ("", "names no source address"),
        ("172.18.0.2 dev eth0 uid 0", "names no source address"),
        ("172.18.0.2 dev eth0 src eth0 uid 0", "is not an IP address"),
    ],
    ids=["empty", "no-src", "not-an-address"],
)
def test_replication_client_refuses(route, message) -> None:
    with pytest.raises(ValueError, match=message):
        migrate_replication_client(route)
