"""Unit tests for plugins/filter/docker_checks.py: input checks, cmdline.txt editing, proxy values."""

from __future__ import annotations

from typing import Any

import pytest
from ansible_collections.pidock.stack.plugins.filter.docker_checks import (
    FilterModule,
    docker_cmdline,
    docker_input_errors,
    docker_proxy_value,
)

TOKENS = ["cgroup_enable=memory", "cgroup_memory=1"]
BASE = "console=serial0,115200 root=PARTUUID=1234-02 rootwait"
ADDED = f"{BASE} cgroup_enable=memory cgroup_memory=1"


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (f"{BASE}\n", f"{ADDED}\n"),
        (f"{BASE}", ADDED),  # no newline at the end: none added
        # a trailing blank line: f5e7451 put the tokens on line 2, which the firmware ignores
        (f"{BASE}\n\n", f"{ADDED}\n\n"),
        (f"{BASE}\n   \n", f"{ADDED}\n   \n"),
        (f"{BASE}\r\n", f"{ADDED}\r\n"),  # CRLF kept
        (f"{BASE}\r\n\r\n", f"{ADDED}\r\n\r\n"),
        (f"{BASE} cgroup_enable=memory\n", f"{ADDED}\n"),  # one present: only the other added
        (f"{ADDED}\n", f"{ADDED}\n"),  # both present: unchanged
        (f"{ADDED}\r\n\n", f"{ADDED}\r\n\n"),
        (f"{BASE} cgroup_enable=memoryX\n", f"{BASE} cgroup_enable=memoryX cgroup_enable=memory cgroup_memory=1\n"),
        (f"{BASE}  \n", f"{ADDED}\n"),  # trailing spaces folded into the separator
        (f"{BASE}\n# a comment line\n", f"{ADDED}\n# a comment line\n"),
        ("", "cgroup_enable=memory cgroup_memory=1"),
        ("\n", "cgroup_enable=memory cgroup_memory=1\n"),
    ],
)
def test_cmdline_tokens_go_on_line_one_only(before: str, after: str) -> None:
    assert docker_cmdline(before, TOKENS) == after
    assert docker_cmdline(after, TOKENS) == after, "idempotent"


def test_cmdline_token_repeated_in_the_list_is_added_once() -> None:
    assert docker_cmdline(f"{BASE}\n", ["a=1", "a=1"]) == f"{BASE} a=1\n"


GOOD: dict[str, Any] = {
    "docker_install_source": "upstream",
    "docker_upstream_gpg_fingerprint": "9DC8 5822 9FC7 DD38 854A E2D8 8D81 803C 0EBF CD88",
    "docker_upstream_repo_url": "https://download.docker.com/linux",
    "docker_upstream_gpg_key_url": "",
    "docker_upstream_allow_http": False,
    "docker_data_root": "",
    "docker_compose_min_version": "2.18.0",
    "docker_proxy_env": {"HTTP_PROXY": "http://user:p%40ss@proxy:3128", "no_proxy": "localhost,127.0.0.1,.lan"},
    "docker_pi_cmdline_tokens": TOKENS,
    "docker_users": ["pi", "deploy-bot"],
}


def test_good_settings_pass() -> None:
    assert docker_input_errors(GOOD) == []


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"docker_upstream_gpg_fingerprint": "not-a-fingerprint"}, "docker_upstream_gpg_fingerprint: must be 40 or 64"),
        ({"docker_upstream_repo_url": "http://mirror.lan/linux"}, "docker_upstream_repo_url: http is refused"),
        ({"docker_upstream_repo_url": "http://mirror.lan/linux", "docker_upstream_allow_http": True}, None),
        ({"docker_upstream_repo_url": "ftp://mirror.lan/x"}, "docker_upstream_repo_url: must be an https or file URL"),
        ({"docker_upstream_repo_url": "file:///srv/mirror"}, None),
        ({"docker_upstream_gpg_key_url": "http://mirror.lan/gpg"}, "docker_upstream_gpg_key_url: http is refused"),
        ({"docker_upstream_gpg_key_url": "file:///srv/gpg"}, "docker_upstream_gpg_key_url: must be an https URL"),
        ({"docker_install_source": "distro", "docker_upstream_repo_url": "http://x"}, None),
        ({"docker_data_root": "var/lib/docker"}, "docker_data_root: must be an absolute path"),
        ({"docker_compose_min_version": "2.18\n"}, "docker_compose_min_version: must look like 2.18.0"),
        (
            {"docker_proxy_env": {"HTTP_PROXY": 'http://p:3128"\nExecStartPre=/bin/sh -c id'}},
            "docker_proxy_env.HTTP_PROXY: a URL or host list without spaces, quotes",
        ),
        ({"docker_proxy_env": {"HTTPS_PROXY": "http://p:3128\\"}}, "docker_proxy_env.HTTPS_PROXY"),
        ({"docker_proxy_env": {"LD_PRELOAD": "/tmp/x.so"}}, "docker_proxy_env: 'LD_PRELOAD' is not one of"),
        (
            {"docker_pi_cmdline_tokens": ["cgroup_enable=memory\ninit=/bin/sh"]},
            "docker_pi_cmdline_tokens: 'cgroup_enable=memory\\ninit=/bin/sh' must be one kernel parameter",
        ),
        ({"docker_pi_cmdline_tokens": ["a b"]}, "docker_pi_cmdline_tokens: 'a b'"),
        ({"docker_pi_cmdline_tokens": [""]}, "docker_pi_cmdline_tokens: ''"),
        ({"docker_users": ["root; rm"]}, "docker_users: 'root; rm' is not a user name"),
        (
            {"docker_swarm_node": True, "docker_daemon_options": {"live-restore": True}},
            "docker_daemon_options: live-restore: true contradicts docker_swarm_node: true",
        ),
        ({"docker_swarm_node": True, "docker_daemon_options": {"log-driver": "local"}}, None),
        ({"docker_swarm_node": False, "docker_daemon_options": {"live-restore": True}}, None),
    ],
)
def test_bad_settings_are_named(changes: dict[str, Any], expected: str | None) -> None:
    errors = docker_input_errors({**GOOD, **changes})
    if expected is None:
        assert errors == []
    else:
        assert any(expected in e for e in errors), errors


def test_proxy_messages_never_echo_the_value() -> None:
    secret = 'http://user:hunter2"@proxy:3128'
    errors = docker_input_errors({**GOOD, "docker_proxy_env": {"HTTP_PROXY": secret}})
    assert errors and all("hunter2" not in e for e in errors)


def test_proxy_value_escapes_systemd_specifiers() -> None:
    assert docker_proxy_value("http://user:p%40ss@proxy:3128") == "http://user:p%%40ss@proxy:3128"


def test_filters_exported() -> None:
    assert set(FilterModule().filters()) == {"docker_input_errors", "docker_cmdline", "docker_proxy_value"}
