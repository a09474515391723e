"""Unit tests for plugins/filter/swarm_release.py: images pinned per release, rollback plans."""

from __future__ import annotations

from typing import Any

import pytest
from ansible_collections.pidock.stack.plugins.filter.swarm_release import (
    FilterModule,
    swarm_release_images,
    swarm_rollback_plan,
    swarm_served_release,
    swarm_stale_objects,
)

APP = {"Id": "sha256:" + "a" * 64, "RepoTags": ["local/inventory-app:latest"], "RepoDigests": []}
APP_OTHER = {"Id": "sha256:" + "b" * 64, "RepoTags": ["local/inventory-app:latest"], "RepoDigests": []}
NGINX = {"Id": "sha256:" + "c" * 64, "RepoTags": ["nginx:stable"], "RepoDigests": ["nginx@sha256:" + "d" * 64]}
PG = {"Id": "sha256:" + "e" * 64, "RepoTags": ["local/postgres:17"], "RepoDigests": []}
SPECS_ALL = [{"service": "app", "image": "local/inventory-app:latest"}, {"service": "nginx", "image": "nginx:stable"}]
SPECS_DB = [*SPECS_ALL, {"service": "postgres", "image": "local/postgres:17"}]


@pytest.mark.parametrize(
    ("node_images", "node_specs", "pins", "errors"),
    [
        pytest.param(
            {"m1": [APP, NGINX, PG], "w1": [APP, NGINX]},
            {"m1": SPECS_DB, "w1": SPECS_ALL},
            {"app": APP["Id"], "nginx": NGINX["Id"], "postgres": PG["Id"]},
            [],
            id="same-ids-everywhere-db-only-on-its-node",
        ),
        pytest.param(
            {"m1": [APP, NGINX], "w1": [APP_OTHER, NGINX]},
            {"m1": SPECS_ALL, "w1": SPECS_ALL},
            {"nginx": NGINX["Id"]},
            ["app: image local/inventory-app:latest differs between the nodes"],
            id="nodes-disagree",
        ),
        pytest.param(
            {"m1": [APP, NGINX], "w1": [NGINX]},
            {"m1": SPECS_ALL, "w1": SPECS_ALL},
            {"app": APP["Id"], "nginx": NGINX["Id"]},
            ["app: image local/inventory-app:latest is not on node w1"],
            id="missing-on-a-node",
        ),
        pytest.param(
            {"m1": [{**APP, "RepoTags": ["local/inventory-app:latest"]}]},
            {"m1": [{"service": "app", "image": "local/inventory-app"}]},
            {"app": APP["Id"]},
            [],
            id="untagged-name-means-latest",
        ),
        pytest.param({}, {}, {}, [], id="nothing"),
    ],
)
def test_release_images(node_images: Any, node_specs: Any, pins: dict[str, str], errors: list[str]) -> None:
    got = swarm_release_images(node_images, node_specs)
    assert got["pins"] == pins
    assert len(got["errors"]) == len(errors)
    for found, wanted in zip(got["errors"], errors, strict=True):
        assert found.startswith(wanted), found


def test_release_images_records_nodes_and_digests() -> None:
    got = swarm_release_images({"m1": [APP, NGINX], "w1": [APP, NGINX]}, {"m1": SPECS_ALL, "w1": SPECS_ALL})
    assert got["images"]["nginx"] == {
        "image": "nginx:stable",
        "id": NGINX["Id"],
        "digests": NGINX["RepoDigests"],
        "nodes": {"m1": NGINX["Id"], "w1": NGINX["Id"]},
    }


def _release(rid: str, version: str, outcome: str = "success", **flags: Any) -> dict[str, Any]:
    return {
        "id": rid,
        "version": version,
        "outcome": outcome,
        "current": flags.get("current", False),
        "previous": flags.get("previous", False),
        "images": {"app": {"image": "local/inventory-app:latest", "nodes": {"m1": APP["Id"], "w1": APP["Id"]}}},
        "extra": {"secrets": ["inv_PW_1"], "configs": ["inv_nginx_1"]},
    }


RELEASES = [
    _release("v1-aaa", "v1", previous=True),
    _release("v2-bbb", "v2", current=True),
    _release("v3-ccc", "v3", outcome="rolled_back"),
    _release("v4-ddd", "v4", outcome="failed"),
]
PRESENT = {"secrets": ["inv_PW_1"], "configs": ["inv_nginx_1"]}
HELD = {"m1": [APP["Id"], NGINX["Id"]], "w1": [APP["Id"]]}


@pytest.mark.parametrize(
    ("releases", "wanted", "present", "held", "target", "errors"),
    [
        pytest.param(RELEASES, "previous", PRESENT, HELD, "v1-aaa", [], id="previous"),
        pytest.param(RELEASES, "v2-bbb", PRESENT, HELD, "v2-bbb", [], id="by-id"),
        pytest.param(RELEASES, "v1", PRESENT, HELD, "v1-aaa", [], id="by-version"),
        pytest.param(
            RELEASES, "v9", PRESENT, HELD, "", ["swarm_rollback_to: 'v9' names no stored release"], id="unknown"
        ),
        pytest.param(
            [*RELEASES, _release("v1-zzz", "v1")],
            "v1",
            PRESENT,
            HELD,
            "",
            ["swarm_rollback_to: 'v1' names more than one release"],
            id="ambiguous-version",
        ),
        pytest.param(
            [_release("v2-bbb", "v2", current=True)],
            "previous",
            PRESENT,
            HELD,
            "",
            ["swarm_rollback_to: there is no previous release"],
            id="no-previous",
        ),
        pytest.param(
            RELEASES, "v4-ddd", PRESENT, HELD, "v4-ddd", ["swarm_rollback_to: release v4-ddd failed"], id="failed"
        ),
        pytest.param(
            RELEASES,
            "previous",
            {"secrets": [], "configs": ["inv_nginx_1"]},
            HELD,
            "v1-aaa",
            ["release v1-aaa needs Swarm secret inv_PW_1, which no longer exists"],
            id="secret-gone",
        ),
        pytest.param(
            RELEASES,
            "previous",
            PRESENT,
            {"m1": [APP["Id"]], "w1": []},
            "v1-aaa",
            ["release v1-aaa: app needs image local/inventory-app:latest (sha256:aaaaaaaaaaaa) on w1"],
            id="image-gone-on-a-node",
        ),
        pytest.param(
            RELEASES, "previous", PRESENT, {"m1": [APP["Id"]]}, "v1-aaa", [], id="node-not-in-play-not-judged"
        ),
    ],
)
def test_rollback_plan(releases: Any, wanted: str, present: Any, held: Any, target: str, errors: list[str]) -> None:
    got = swarm_rollback_plan(releases, wanted, present, held)
    assert got["target"] == target
    assert len(got["errors"]) == len(errors), got["errors"]
    for found, prefix in zip(got["errors"], errors, strict=True):
        assert found.startswith(prefix), found
    if target:
        assert got["current"] == "v2-bbb"


def test_filters_registered() -> None:
    assert set(FilterModule().filters()) == {
        "swarm_release_images",
        "swarm_rollback_plan",
        "swarm_stale_objects",
        "swarm_served_release",
    }


KEPT = [
    {"id": "v1-a", "extra": {"secrets": ["inv_PW_1", "inv_tls_key_1"], "configs": ["inv_nginx_1"]}},
    {"id": "v2-b", "extra": {"secrets": ["inv_PW_2", "inv_tls_key_1"], "configs": ["inv_nginx_1"]}},
    {"id": "v0-old", "extra": {}},
]


@pytest.mark.parametrize(
    ("present", "stale"),
    [
        pytest.param(
            {"secrets": ["inv_PW_1", "inv_PW_2", "inv_tls_key_1"], "configs": ["inv_nginx_1"]},
            {"secrets": [], "configs": []},
            id="every-version-used-by-a-stored-release",
        ),
        pytest.param(
            {
                "secrets": ["inv_PW_0", "inv_PW_1", "inv_PW_2", "inv_tls_key_1", ""],
                "configs": ["inv_nginx_0", "inv_nginx_1"],
            },
            {"secrets": ["inv_PW_0"], "configs": ["inv_nginx_0"]},
            id="versions-of-pruned-releases-go",
        ),
        pytest.param({}, {"secrets": [], "configs": []}, id="nothing-listed"),
    ],
)
def test_stale_objects(present: dict[str, list[str]], stale: dict[str, list[str]]) -> None:
    assert swarm_stale_objects(KEPT, present) == stale


def test_stale_objects_without_releases_keeps_nothing_named() -> None:
    """No stored release: every listed version is unused (the caller runs it only after a deploy stored one)."""
    assert swarm_stale_objects([], {"secrets": ["a"], "configs": ["b"]}) == {"secrets": ["a"], "configs": ["b"]}


def _rel(rid: str, specs: dict[str, str] | None, outcome: str = "success", current: bool = False) -> dict[str, Any]:
    return {
        "id": rid,
        "version": rid.split("-")[0],
        "outcome": outcome,
        "current": current,
        "extra": {"specs": specs} if specs is not None else {},
    }


V1 = {"app": "a1", "db": "d1"}
V2 = {"app": "a2", "db": "d1"}
SERVED = [
    # (releases, what runs, serving, activate, succeeded, interrupted)
    # The record agrees: nothing to do.
    ([_rel("v1-x", V1), _rel("v2-y", V2, current=True)], V2, "v2-y", False, False, []),
    # Killed after `docker stack deploy` of v2: Swarm finished, the record still says v1.
    ([_rel("v1-x", V1, current=True), _rel("v2-y", V2, "pending")], V2, "v2-y", True, True, []),
    # Killed while Swarm rolled v2 back: v1 serves and is current; v2 never served.
    ([_rel("v1-x", V1, current=True), _rel("v2-y", V2, "pending")], V1, "v1-x", False, False, ["v2-y"]),
    # A rollback re-deployed v1 and was killed before recording it.
    ([_rel("v1-x", V1), _rel("v2-y", V2, current=True)], V1, "v1-x", True, False, []),
    # Two releases with the same services (only the version differs): the current one wins, else the newest.
    ([_rel("v1-x", V1, current=True), _rel("v1b-z", V1)], V1, "v1-x", False, False, []),
    ([_rel("v0-w", V2, current=True), _rel("v1-x", V1), _rel("v1b-z", V1)], V1, "v1b-z", True, False, []),
    # Releases from before the labels, a stack changed by hand, an empty stack: nothing matches.
    ([_rel("v1-x", None, current=True)], {"app": "", "db": ""}, "", False, False, []),
    ([_rel("v1-x", V1, current=True)], {"app": "zz", "db": "d1"}, "", False, False, []),
    ([_rel("v1-x", V1, current=True), _rel("v2-y", V2, "pending")], {}, "", False, False, ["v2-y"]),
    # A service more or less than stored is another stack.
    ([_rel("v1-x", V1, current=True)], {"app": "a1"}, "", False, False, []),
    # No release at all (first deploy).
    ([], {}, "", False, False, []),
]


@pytest.mark.parametrize(("releases", "specs", "serving", "activate", "succeeded", "interrupted"), SERVED)
def test_served_release(
    releases: list, specs: dict, serving: str, activate: bool, succeeded: bool, interrupted: list
) -> None:
    got = swarm_served_release(releases, specs)
    assert (got["serving"], got["activate"], got["succeeded"], got["interrupted"]) == (
        serving,
        activate,
        succeeded,
        interrupted,
    ), got
    assert got["reason"]
    if activate:
        assert "the record said" in got["reason"]
