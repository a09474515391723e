# Copyright: (c) 2026, pidock.stack maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which Debian packages dpkg has installed: the one parser of `dpkg-query -W` output."""

from __future__ import annotations

# The format to pass to `dpkg-query -W -f`: one line per package.
DPKG_QUERY_FORMAT = "${Package} ${Status}\n"


def installed(stdout: str) -> set[str]:
    """`dpkg-query -W -f DPKG_QUERY_FORMAT ...` output -> names whose status is 'install ok installed'."""
    found = set()
    for line in (stdout or "").splitlines():
        name, _sep, status = line.strip().partition(" ")
        if status.strip() == "install ok installed":
            found.add(name.split(":", 1)[0])
    return found
