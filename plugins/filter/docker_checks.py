# Copyright: pidock.stack maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the pidock.stack.docker role.

docker_input_errors(settings)     -> list of messages naming the variable (empty when valid)
docker_cmdline(content, tokens)   -> the kernel command line file with the tokens on its first line
docker_proxy_value(value)         -> a proxy value quoted for a systemd Environment= line
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

_FINGERPRINT_RE = re.compile(r"[0-9A-Fa-f]{40}|[0-9A-Fa-f]{64}")
_VERSION_RE = re.compile(r"[0-9]+(?:\.[0-9]+){1,2}")
# One kernel parameter: printable, no whitespace (a space or newline would add parameters or lines).
_TOKEN_RE = re.compile(r"[!-~]+")
_USER_RE = re.compile(r"[a-z_][a-z0-9_.-]{0,31}\$?")
_PROXY_BASES = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY", "FTP_PROXY")
_PROXY_NAMES = frozenset(name for base in _PROXY_BASES for name in (base, base.lower()))
# Characters a value may not hold in a drop-in line: quotes and backslashes end or escape the
# quoted assignment, control characters (a newline above all) start new directives.
_PROXY_BAD = re.compile(r'["\\\x00-\x1f\x7f]')


def _url_errors(name: str, url: Any, allow_http: bool, allow_file: bool) -> list[str]:
    if not isinstance(url, str) or not url:
        return [f"{name}: must be a URL"]
    if _PROXY_BAD.search(url) or " " in url:
        return [f"{name}: must not contain spaces, quotes, backslashes or control characters"]
    scheme = urlsplit(url).scheme
    allowed = ["https"] + (["http"] if allow_http else []) + (["file"] if allow_file else [])
    if scheme == "http" and not allow_http:
        return [
            f"{name}: http is refused ({url}): anyone on the path can swap the key or the packages. Use https, "
            "or set docker_upstream_allow_http: true for a local mirror you trust"
        ]
    if scheme not in allowed:
        return [f"{name}: must be an {' or '.join(allowed)} URL (got {url})"]
    return []


def docker_input_errors(settings: Mapping[str, Any]) -> list[str]:
    """Problems argument_specs cannot express, each naming the variable and the rule."""
    errors: list[str] = []
    allow_http = settings.get("docker_upstream_allow_http") is True
    fingerprint = str(settings.get("docker_upstream_gpg_fingerprint", "")).replace(" ", "")
    if not _FINGERPRINT_RE.fullmatch(fingerprint):
        errors.append(
            "docker_upstream_gpg_fingerprint: must be 40 or 64 hex digits, got "
            f"{settings.get('docker_upstream_gpg_fingerprint')!r}"
        )
    if settings.get("docker_install_source", "upstream") == "upstream":
        repo_url = settings.get("docker_upstream_repo_url")
        errors.extend(_url_errors("docker_upstream_repo_url", repo_url, allow_http, True))
        if settings.get("docker_upstream_gpg_key_url"):
            errors.extend(
                _url_errors("docker_upstream_gpg_key_url", settings["docker_upstream_gpg_key_url"], allow_http, False)
            )
    data_root = settings.get("docker_data_root") or ""
    if data_root and (not isinstance(data_root, str) or not data_root.startswith("/") or _PROXY_BAD.search(data_root)):
        errors.append(f"docker_data_root: must be an absolute path or empty, got {data_root!r}")
    version = settings.get("docker_compose_min_version")
    if not isinstance(version, str) or not _VERSION_RE.fullmatch(version):
        errors.append(f"docker_compose_min_version: must look like 2.18.0, got {version!r}")
    proxy = settings.get("docker_proxy_env") or {}
    for name, value in proxy.items() if isinstance(proxy, Mapping) else []:
        if name not in _PROXY_NAMES:
            errors.append(
                f"docker_proxy_env: {name!r} is not one of {', '.join(_PROXY_BASES)} (or their lower-case forms)"
            )
        # The value is a secret (credentials): name the rule, never echo it.
        if not isinstance(value, str) or _PROXY_BAD.search(value) or " " in value:
            errors.append(
                f"docker_proxy_env.{name}: a URL or host list without spaces, quotes, backslashes or control characters"
            )
    for token in settings.get("docker_pi_cmdline_tokens") or []:
        if not isinstance(token, str) or not _TOKEN_RE.fullmatch(token):
            errors.append(f"docker_pi_cmdline_tokens: {token!r} must be one kernel parameter without whitespace")
    for user in settings.get("docker_users") or []:
        if not isinstance(user, str) or not _USER_RE.fullmatch(user):
            errors.append(f"docker_users: {user!r} is not a user name")
    options = settings.get("docker_daemon_options") or {}
    swarm = settings.get("docker_swarm_node") is True
    if swarm and isinstance(options, Mapping) and options.get("live-restore") is True:
        errors.append(
            "docker_daemon_options: live-restore: true contradicts docker_swarm_node: true (dockerd refuses swarm mode"
            " with live-restore); drop live-restore from docker_daemon_options on swarm nodes"
        )
    return errors


def docker_cmdline(content: str, tokens: list[str]) -> str:
    """The kernel command line file with every token on its first line, each once.

    The firmware reads line 1 only: tokens go there whatever follows (blank lines, comments), the
    line ending (LF or CRLF) is kept, and the rest of the file is left byte for byte.
    """
    text = content or ""
    end = text.find("\n")
    first, rest = (text, "") if end < 0 else (text[:end], text[end:])
    crlf = first.endswith("\r")
    line = first[:-1] if crlf else first
    present = line.split()
    missing = [t for t in dict.fromkeys(tokens) if t not in present]
    if not missing:
        return text
    line = " ".join([line.rstrip(), *missing]) if line.strip() else " ".join(missing)
    return line + ("\r" if crlf else "") + rest


def docker_proxy_value(value: Any) -> str:
    """A validated proxy value for `Environment="NAME=value"`: systemd expands `%` specifiers, so `%%`."""
    return str(value).replace("%", "%%")


class FilterModule:
    """pidock.stack docker filters."""

    def filters(self) -> dict[str, Any]:
        return {
            "docker_input_errors": docker_input_errors,
            "docker_cmdline": docker_cmdline,
            "docker_proxy_value": docker_proxy_value,
        }
