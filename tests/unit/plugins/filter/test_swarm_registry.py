"""Unit tests for plugins/filter/swarm_registry.py: push names, digest pins, settings checks."""

from __future__ import annotations

from typing import Any

import pytest
from ansible_collections.pidock.stack.plugins.filter.swarm_registry import (
    FilterModule,
    swarm_registry_errors,
    swarm_registry_pins,
    swarm_registry_ref,
)

REG = "swarm-1:5000"
DIGEST_A = "sha256:" + "a" * 64
DIGEST_B = "sha256:" + "b" * 64


@pytest.mark.parametrize(
    ("image", "ref"),
    [
        ("local/inventory-app:latest", "swarm-1:5000/local/inventory-app:latest"),
        ("local/inventory-app", "swarm-1:5000/local/inventory-app:latest"),
        ("nginx:stable", "swarm-1:5000/nginx:stable"),
        ("ghcr.io/acme/api:1.2", "swarm-1:5000/acme/api:1.2"),
        ("localhost/app:2", "swarm-1:5000/app:2"),
        ("old-registry:5000/team/app:3", "swarm-1:5000/team/app:3"),
        ("postgres@" + DIGEST_A, "swarm-1:5000/postgres:latest"),
        ("library/postgres:17", "swarm-1:5000/library/postgres:17"),
    ],
)
def test_ref(image: str, ref: str) -> None:
    assert swarm_registry_ref(image, REG) == ref


APP_PUSHED = {
    "Id": "sha256:" + "1" * 64,
    "RepoTags": ["local/inventory-app:latest", "swarm-1:5000/local/inventory-app:latest"],
    "RepoDigests": ["swarm-1:5000/local/inventory-app@" + DIGEST_A, "elsewhere/app@" + DIGEST_B],
}
APP_TAGGED_ONLY = {**APP_PUSHED, "RepoDigests": ["elsewhere/app@" + DIGEST_B]}
NGINX_PUSHED = {
    "Id": "sha256:" + "2" * 64,
    "RepoTags": ["swarm-1:5000/nginx:stable"],
    "RepoDigests": ["swarm-1:5000/nginx@" + DIGEST_B],
}
SPECS = [
    {"service": "app", "image": "local/inventory-app:latest"},
    {"service": "worker", "image": "local/inventory-app"},
    {"service": "nginx", "image": "nginx:stable"},
]


@pytest.mark.parametrize(
    ("images", "pins", "errors"),
    [
        pytest.param(
            [APP_PUSHED, NGINX_PUSHED],
            {
                "app": "swarm-1:5000/local/inventory-app@" + DIGEST_A,
                "worker": "swarm-1:5000/local/inventory-app@" + DIGEST_A,
                "nginx": "swarm-1:5000/nginx@" + DIGEST_B,
            },
            [],
            id="all-pushed-the-digest-of-this-registry-only",
        ),
        pytest.param(
            [APP_TAGGED_ONLY, NGINX_PUSHED],
            {"nginx": "swarm-1:5000/nginx@" + DIGEST_B},
            [
                "app: swarm-1:5000/local/inventory-app:latest was not pushed",
                "worker: swarm-1:5000/local/inventory-app:latest was not pushed",
            ],
            id="tagged-not-pushed",
        ),
        pytest.param(
            [APP_PUSHED],
            {
                "app": "swarm-1:5000/local/inventory-app@" + DIGEST_A,
                "worker": "swarm-1:5000/local/inventory-app@" + DIGEST_A,
            },
            ["nginx: image nginx:stable is not tagged swarm-1:5000/nginx:stable"],
            id="not-on-the-manager",
        ),
        pytest.param([], {}, ["app:", "worker:", "nginx:"], id="nothing-read-check-mode"),
    ],
)
def test_pins(images: list[dict[str, Any]], pins: dict[str, str], errors: list[str]) -> None:
    out = swarm_registry_pins(images, SPECS, REG, "swarm-1")
    assert out["pins"] == pins
    assert len(out["errors"]) == len(errors)
    for got, want in zip(out["errors"], errors, strict=True):
        assert got.startswith(want)


def test_pins_record_what_the_release_keeps() -> None:
    out = swarm_registry_pins([APP_PUSHED], SPECS[:1], REG, "swarm-1")
    assert out["images"] == {
        "app": {
            "image": "local/inventory-app:latest",
            "ref": "swarm-1:5000/local/inventory-app:latest",
            "id": APP_PUSHED["Id"],
            "digests": ["swarm-1:5000/local/inventory-app@" + DIGEST_A],
            "nodes": {"swarm-1": APP_PUSHED["Id"]},
        }
    }
    assert swarm_registry_pins([APP_PUSHED], SPECS[:1], REG)["images"]["app"]["nodes"] == {}


TLS = {"fullchain_path": "/etc/reg/fullchain.pem", "privkey_path": "/etc/reg/privkey.pem", "ca_path": "/etc/reg/ca.pem"}
ON = {"enabled": True, "host": "swarm-1", "port": 5000, **TLS}


@pytest.mark.parametrize(
    ("registry", "names", "errors"),
    [
        pytest.param({**ON, "enabled": False, "host": ""}, None, [], id="off-nothing-checked"),
        pytest.param(ON, None, [], id="names-not-read-yet"),
        pytest.param(ON, ["DNS:swarm-1", "IP:10.0.0.1"], [], id="dns-name-in-cert"),
        pytest.param({**ON, "host": "10.0.0.1"}, ["DNS:swarm-1", "IP:10.0.0.1"], [], id="ip-in-cert"),
        pytest.param(
            {**ON, "host": "10.0.0.2"},
            ["DNS:swarm-1", "IP:10.0.0.1"],
            ["swarm_registry_tls: the certificate does not name the registry host 10.0.0.2"],
            id="ip-not-in-cert",
        ),
        pytest.param(
            {**ON, "host": ""},
            None,
            ["swarm_registry_host: empty"],
            id="no-host",
        ),
        pytest.param({**ON, "host": "bad host!"}, None, ["swarm_registry_host: 'bad host!' is neither"], id="bad-host"),
        pytest.param({**ON, "port": 70000}, None, ["swarm_registry_port: 70000 is not a port"], id="port-out-of-range"),
        pytest.param({**ON, "port": "x"}, None, ["swarm_registry_port: 'x' is not a port"], id="port-not-a-number"),
        pytest.param(
            {"enabled": True, "host": "swarm-1", "port": 5000},
            None,
            ["swarm_registry_tls.fullchain_path: required", "swarm_registry_tls.privkey_path: required"],
            id="no-certificate",
        ),
    ],
)
def test_errors(registry: dict[str, Any], names: list[str] | None, errors: list[str]) -> None:
    got = swarm_registry_errors(registry, names)
    assert len(got) == len(errors), got
    for message, want in zip(got, errors, strict=True):
        assert message.startswith(want)


@pytest.mark.parametrize(
    ("missing", "errors"),
    [
        ([], []),
        (["privkey_path"], ["swarm_registry_tls.privkey_path: /etc/reg/privkey.pem does not exist"]),
        (
            ["fullchain_path", "ca_path"],
            [
                "swarm_registry_tls.ca_path: /etc/reg/ca.pem does not exist",
                "swarm_registry_tls.fullchain_path: /etc/reg/fullchain.pem does not exist",
            ],
        ),
    ],
)
def test_missing_files_are_named(missing: list[str], errors: list[str]) -> None:
    paths = {
        "fullchain_path": "/etc/reg/fullchain.pem",
        "privkey_path": "/etc/reg/privkey.pem",
        "ca_path": "/etc/reg/ca.pem",
    }
    got = swarm_registry_errors({**ON, **paths}, None, missing)
    assert len(got) == len(errors), got
    for message, want in zip(got, errors, strict=True):
        assert message.startswith(want)


def test_filters_are_registered() -> None:
    assert set(FilterModule().filters()) == {"swarm_registry_ref", "swarm_registry_pins", "swarm_registry_errors"}
