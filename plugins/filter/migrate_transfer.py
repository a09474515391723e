# Copyright: pidock.stack maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the migrate role's host-to-host transfer (migrate_target_host names another host): the
source pushes the trees to the target with rsync over SSH, under a key the target accepts only from
the source's address and only for rrsync writing below its Docker volumes.

- ``migrate_transfer_grant``: the source's address (from ``ip -o route get <target>``, unless given) and
  the ``authorized_keys`` options that confine the source's key.
- ``migrate_transfer_dest``: a volume's mount point as rrsync's path, relative to the confined root.
- ``migrate_replication_client``: the address the target's PostgreSQL connects to the bare metal's from, as
  the one-address network of the replication role's ``hostssl`` line in ``pg_hba.conf``.
"""

from __future__ import annotations

import ipaddress
import posixpath
import re
from typing import Any

# "10.0.0.7 via 10.0.0.1 dev eth0 src 10.0.0.5 uid 0", "local 10.0.0.5 dev lo table local src 10.0.0.5"
_ROUTE_SRC = re.compile(r"(?:^|\s)src\s+(\S+)")
# A path that goes into authorized_keys' command="..." as it is: no quote, backslash or white space.
_PLAIN_PATH = re.compile(r"^/[^\s\"'\\]*$")
RRSYNC = "/usr/bin/rrsync"


def _address(value: str, what: str) -> str:
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError as exc:
        raise ValueError(f"{what} is not an IP address: {value!r}") from exc


def _root(root: str) -> str:
    text = str(root or "")
    if not _PLAIN_PATH.match(text) or text == "/":
        raise ValueError(
            f"the target's volumes directory must be an absolute path below / with no quotes, backslashes or "
            f"white space (it goes into authorized_keys as rrsync's root): {text!r}"
        )
    return posixpath.normpath(text)


def migrate_transfer_grant(route: str, root: str, source_address: str = "") -> dict[str, str]:
    """``{source_address, key_options}`` for the source's key in the target's ``authorized_keys``.

    ``route`` is what the source answered to ``ip -o route get <target address>``: its ``src`` is the
    address the target sees the source's connections come from. ``source_address`` (the role's
    migrate_source_address) overrides it, for a path through NAT. The options refuse anything but rrsync
    writing below ``root`` (no shell, forwarding or pty: ``restrict``), and from that address only.
    """
    if str(source_address or "").strip():
        address = _address(str(source_address), "migrate_source_address")
    else:
        found = _ROUTE_SRC.search(str(route or ""))
        if not found:
            raise ValueError(
                "the source's route to the target names no source address (ip -o route get answered "
                f"{str(route or '').strip()!r}); set migrate_source_address"
            )
        address = _address(found.group(1), "the route's source address")
    options = f'from="{address}",restrict,command="{RRSYNC} -wo {_root(root)}"'
    return {"source_address": address, "key_options": options}


def migrate_transfer_dest(mountpoint: str, root: str) -> str:
    """The volume's mount point as rrsync sees it (relative to ``root``, with a trailing slash).

    rrsync confines the key to ``root``: a volume mounted elsewhere (another driver, another data
    directory) cannot be written through it, and says so.
    """
    base = _root(root)
    path = posixpath.normpath(str(mountpoint or ""))
    if not path.startswith("/") or not path.startswith(base + "/"):
        raise ValueError(
            f"the volume's mount point {mountpoint!r} is not below {base} (migrate_target_data_dir/volumes): "
            "the transfer key cannot write it"
        )
    return posixpath.relpath(path, base) + "/"


def migrate_replication_client(route: str) -> dict[str, str]:
    """``{address, network}``: where the target's replication connection comes from.

    ``route`` is what the target answered to ``ip -o route get <source address>``; its ``src`` is the
    address the bare metal sees. ``network`` holds that address alone (``/32``, or ``/128`` for IPv6), for
    the ``hostssl`` line that lets the replication role in from the target and nowhere else.
    """
    found = _ROUTE_SRC.search(str(route or ""))
    if not found:
        raise ValueError(
            "the target's route to the bare metal names no source address (ip -o route get answered "
            f"{str(route or '').strip()!r})"
        )
    address = _address(found.group(1), "the target's route source address")
    return {"address": address, "network": str(ipaddress.ip_network(address))}


class FilterModule:
    """pidock.stack migrate host-to-host transfer filters."""

    def filters(self) -> dict[str, Any]:
        return {
            "migrate_transfer_grant": migrate_transfer_grant,
            "migrate_transfer_dest": migrate_transfer_dest,
            "migrate_replication_client": migrate_replication_client,
        }
