"""Unit tests for plugins/filter/swarm_stack.py: swarm validation table, rendering, status."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
import yaml
from ansible_collections.pidock.stack.plugins.filter.swarm_stack import (
    FilterModule,
    swarm_config_name,
    swarm_node_image_specs,
    swarm_secret_name,
    swarm_secret_versions,
    swarm_stack_definition,
    swarm_stack_errors,
    swarm_stack_specs,
    swarm_stack_status,
)
from ansible_collections.pidock.stack.plugins.module_utils._swarm import swarm_spec_hash

STACK: dict[str, Any] = {
    "project": "inventory",
    "version": "v1",
    "cutover": "recreate",
    "secret_names": ["POSTGRES_PASSWORD"],
    "volumes": {"pgdata": {}},
    "networks": {},
    "services": {
        "postgres": {
            "image": "local/postgres:17",
            "source": "load",
            "load_path": "/opt/pg.tar",
            "entrypoint": ["/usr/local/bin/docker-entrypoint.sh"],
            "command": ["postgres"],
            "secrets": ["POSTGRES_PASSWORD"],
            "volumes": ["pgdata:/var/lib/postgresql/data"],
        },
        "app": {
            "image": "local/app:1",
            "source": "load",
            "load_path": "/opt/app.tar",
            "command": ["gunicorn", "app:app"],
            "environment": {"RELEASE": "v1", "PRICE": "$5", "WORKERS": 2},
            "secrets": ["POSTGRES_PASSWORD"],
            "healthcheck": {"test": ["CMD", "true"], "interval": "2s"},
        },
    },
    "front": {"enabled": False},
}
SWARM: dict[str, Any] = {
    "version": "v1",
    "endpoint_mode": "dnsrr",
    "publish_mode": "host",
    "update": {"parallelism": 1, "failure_action": "rollback", "monitor": "15s"},
    "rollback": {"parallelism": 1, "failure_action": "pause", "monitor": "10s"},
    "node_labels": {"m1": {"db": "true"}, "w1": {}, "w2": {"edge": "yes"}},
    "secret_versions": {"POSTGRES_PASSWORD": "inventory_POSTGRES_PASSWORD_0123456789ab"},
    "services": {"app": {"replicas": 3}, "postgres": {"placement": {"db": "true"}}},
    "front": {
        "enabled": True,
        "name": "nginx",
        "image": "local/nginx:latest",
        "mode": "global",
        "replicas": 1,
        "constraints": [],
        "upstream_service": "app",
        "http_port": 80,
        "https_port": 443,
        "config": "inventory_nginx_aaaaaaaaaaaa",
        "cert_secret": "inventory_tls_fullchain_bbbbbbbbbbbb",
        "key_secret": "inventory_tls_privkey_cccccccccccc",
    },
}


def _with(base: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    data = copy.deepcopy(base)
    keys = path.split(".")
    node = data
    for key in keys[:-1]:
        node = node.setdefault(key, {})
    if value is _DELETE:
        node.pop(keys[-1], None)
    else:
        node[keys[-1]] = value
    return data


_DELETE = object()


def test_good_stack_has_no_errors() -> None:
    assert swarm_stack_errors(STACK, SWARM) == []


# (which input, path, value, the message must contain)
BAD = [
    ("swarm", "services.postgres.placement", {"ssd": "true"}, "node.labels.ssd == true matches no node"),
    ("swarm", "services.postgres.constraints", ["node.labels.zone == north"], "node.labels.zone == north"),
    ("swarm", "front.constraints", ["node.labels.edge == no"], "swarm_stack_front_constraints"),
    ("swarm", "front.replicas", 0, "swarm_stack_front_replicas"),
    ("swarm", "front.mode", "daemonset", "swarm_stack_front_mode"),
    ("swarm", "services.app.replicas", 0, "swarm_stack_services.app.replicas: the front's upstream"),
    ("swarm", "services.app.replicas", -1, "swarm_stack_services.app.replicas: a whole number"),
    ("swarm", "services.app.mode", "everywhere", "swarm_stack_services.app.mode"),
    ("swarm", "services.app.order", "random", "swarm_stack_services.app.order"),
    ("swarm", "services.app.colour", "blue", "swarm_stack_services.app: unknown field(s) colour"),
    ("swarm", "services.ghost", {"replicas": 1}, "swarm_stack_services.ghost: not a service"),
    ("stack", "services.app.ports", ["443:8000"], "published port 443/tcp is already published by"),
    ("stack", "services.app.ports", ["127.0.0.1:8080:8000"], "cannot bind a host address"),
    ("stack", "services.app.load_src", "/ctl/app.tar", "compose_services.app.load_src: needs swarm_registry_enabled"),
    ("stack", "services.app.source", "build", "compose_services.app.source: build needs swarm_registry_enabled"),
    ("stack", "services.app.command", _DELETE, "compose_services.app.command: required on a swarm"),
    # The compose role's own checks still apply, unchanged.
    ("stack", "services.app.secrets", ["NOPE"], "compose_services.app.secrets: 'NOPE' is not a key"),
    ("stack", "project", "Bad Name", "compose_project"),
]


# Stable ids (pytest-xdist workers must collect the same names): no object repr in them.
BAD_IDS = [f"{b[1]}={'(deleted)' if b[2] is _DELETE else b[2]}" for b in BAD]


@pytest.mark.parametrize(("which", "path", "value", "message"), BAD, ids=BAD_IDS)
def test_bad_inputs_are_refused_by_name(which: str, path: str, value: Any, message: str) -> None:
    stack = _with(STACK, path, value) if which == "stack" else STACK
    swarm = _with(SWARM, path, value) if which == "swarm" else SWARM
    errors = swarm_stack_errors(stack, swarm)
    assert any(message in e for e in errors), errors


def test_two_services_on_one_port_clash() -> None:
    stack = _with(STACK, "services.app.ports", ["8080:8000"])
    stack = _with(stack, "services.postgres.ports", ["8080:5432"])
    errors = swarm_stack_errors(stack, _with(SWARM, "front.enabled", False))
    # Said once, by the compose role's own check that swarm_stack_errors runs first.
    assert errors == [
        "compose_services.app.ports: host port 8080/tcp is already published by compose_services.postgres"
    ]


def test_definition_shape() -> None:
    out = swarm_stack_definition(STACK, SWARM)
    app = out["services"]["app"]
    assert app["deploy"]["replicas"] == 3
    assert app["deploy"]["endpoint_mode"] == "dnsrr"
    assert app["deploy"]["update_config"] == {
        "parallelism": 1,
        "failure_action": "rollback",
        "monitor": "15s",
        "order": "start-first",
    }
    assert app["deploy"]["rollback_config"]["order"] == "start-first"
    assert app["healthcheck"] == {"test": ["CMD", "true"], "interval": "2s"}
    # Secrets: external, versioned, mounted under their key; read into the env by the shim.
    assert app["secrets"] == [
        {"source": "inventory_POSTGRES_PASSWORD_0123456789ab", "target": "POSTGRES_PASSWORD", "mode": 0o444}
    ]
    assert app["entrypoint"][:2] == ["/bin/sh", "-c"]
    assert "for k in POSTGRES_PASSWORD;" in app["entrypoint"][2]
    assert app["command"] == ["gunicorn", "app:app"]
    assert out["secrets"]["inventory_POSTGRES_PASSWORD_0123456789ab"] == {"external": True}
    # '$' stays literal through `docker stack deploy` interpolation; scalars become strings.
    assert app["environment"] == {"RELEASE": "v1", "PRICE": "$$5", "WORKERS": "2"}
    assert "$$(cat" in app["entrypoint"][2]


def test_a_new_version_changes_only_what_uses_it() -> None:
    """The release label must not roll every service: only the app's environment changes."""
    v2 = _with(STACK, "services.app.environment.RELEASE", "v2")
    before = swarm_stack_definition(STACK, SWARM)["services"]
    after = swarm_stack_definition(v2, _with(SWARM, "version", "v2"))["services"]
    assert [name for name in before if before[name] != after[name]] == ["app"]


def test_database_is_pinned_and_never_runs_twice() -> None:
    pg = swarm_stack_definition(STACK, SWARM)["services"]["postgres"]
    assert pg["deploy"]["placement"] == {"constraints": ["node.labels.db == true"]}
    assert pg["deploy"]["update_config"]["order"] == "stop-first"
    assert pg["entrypoint"][-1] == "/usr/local/bin/docker-entrypoint.sh"
    assert pg["command"] == ["postgres"]


def test_front_is_global_in_host_mode_with_tls_secrets() -> None:
    out = swarm_stack_definition(STACK, SWARM)
    front = out["services"]["nginx"]
    assert front["deploy"]["mode"] == "global"
    assert "replicas" not in front["deploy"]
    assert front["deploy"]["update_config"]["order"] == "stop-first"
    assert {(p["published"], p["mode"]) for p in front["ports"]} == {(80, "host"), (443, "host")}
    assert [s["source"] for s in front["secrets"]] == [
        "inventory_tls_fullchain_bbbbbbbbbbbb",
        "inventory_tls_privkey_cccccccccccc",
    ]
    assert out["configs"] == {"inventory_nginx_aaaaaaaaaaaa": {"external": True}}


def test_front_on_edge_nodes() -> None:
    swarm = _with(SWARM, "front.mode", "replicated")
    swarm = _with(swarm, "front.replicas", 2)
    swarm = _with(swarm, "front.constraints", ["node.labels.edge == yes"])
    assert swarm_stack_errors(STACK, swarm) == []
    front = swarm_stack_definition(STACK, swarm)["services"]["nginx"]
    assert front["deploy"]["replicas"] == 2
    assert front["deploy"]["placement"] == {"constraints": ["node.labels.edge == yes"]}


def test_vip_and_ingress_for_kernels_with_ipvs() -> None:
    swarm = _with(SWARM, "endpoint_mode", "vip")
    swarm = _with(swarm, "publish_mode", "ingress")
    out = swarm_stack_definition(STACK, swarm)
    assert out["services"]["app"]["deploy"]["endpoint_mode"] == "vip"
    assert {p["mode"] for p in out["services"]["nginx"]["ports"]} == {"ingress"}


def test_no_secret_value_in_the_stack_file() -> None:
    text = yaml.safe_dump(swarm_stack_definition(STACK, SWARM))
    assert "s3cret" not in text


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        (("inventory", "PW", "one"), ("inventory", "PW", "one"), True),
        (("inventory", "PW", "one"), ("inventory", "PW", "two"), False),
        (("inventory", "PW", "one"), ("other", "PW", "one"), False),
    ],
)
def test_secret_names_are_versioned(a: tuple[str, str, str], b: tuple[str, str, str], same: bool) -> None:
    assert (swarm_secret_name(*a) == swarm_secret_name(*b)) is same
    name = swarm_secret_name(*a)
    assert name.startswith(f"{a[0]}_{a[1]}_") and len(name.rsplit("_", 1)[1]) == 12
    assert a[2] not in name


def test_config_names_follow_content() -> None:
    assert swarm_config_name("p", "nginx", "a") != swarm_config_name("p", "nginx", "b")


def _svc(name: str, state: str | None, replicas: int | None) -> dict[str, Any]:
    mode = {"Replicated": {"Replicas": replicas}} if replicas is not None else {"Global": {}}
    svc: dict[str, Any] = {"Spec": {"Name": name, "Mode": mode}}
    if state:
        svc["UpdateStatus"] = {"State": state, "Message": f"update {state}"}
    return svc


def _task(service: str, node: str, current: str = "Running 5 seconds ago", desired: str = "Running") -> dict:
    return {"Name": f"{service}.1", "Node": node, "CurrentState": current, "DesiredState": desired}


STATUS = [
    # (services, tasks, settled, outcome)
    ([_svc("s_app", None, 2)], [_task("s_app", "a"), _task("s_app", "b")], True, "deployed"),
    ([_svc("s_app", "completed", 2)], [_task("s_app", "a"), _task("s_app", "b")], True, "deployed"),
    ([_svc("s_app", "updating", 2)], [_task("s_app", "a"), _task("s_app", "b")], False, "deployed"),
    ([_svc("s_app", "completed", 2)], [_task("s_app", "a")], False, "deployed"),
    (
        [_svc("s_app", "completed", 1)],
        [_task("s_app", "a"), _task("s_app", "b", "Shutdown", "Shutdown")],
        True,
        "deployed",
    ),
    ([_svc("s_app", "rollback_started", 1)], [_task("s_app", "a")], False, "deployed"),
    ([_svc("s_app", "rollback_completed", 1)], [_task("s_app", "a")], True, "rolled_back"),
    ([_svc("s_app", "paused", 1)], [_task("s_app", "a")], True, "failed"),
    ([_svc("s_nginx", None, None)], [], False, "deployed"),
    ([_svc("s_nginx", None, None)], [_task("s_nginx", "a"), _task("s_nginx", "b")], True, "deployed"),
]


@pytest.mark.parametrize(("services", "tasks", "settled", "outcome"), STATUS)
def test_status(services: list, tasks: list, settled: bool, outcome: str) -> None:
    got = swarm_stack_status(services, tasks)
    assert (got["settled"], got["outcome"]) == (settled, outcome), json.dumps(got)


def test_status_lists_nodes_per_service() -> None:
    got = swarm_stack_status([_svc("s_app", None, 2)], [_task("s_app", "w2"), _task("s_app", "w1")])
    assert got["services"]["s_app"] == {
        "update_state": "none",
        "message": "",
        "running": 2,
        "desired": 2,
        "nodes": ["w1", "w2"],
        "spec": "",
    }


def test_filters_registered() -> None:
    assert set(FilterModule().filters()) == {
        "swarm_stack_errors",
        "swarm_stack_definition",
        "swarm_stack_specs",
        "swarm_secret_name",
        "swarm_config_name",
        "swarm_stack_status",
        "swarm_secret_versions",
        "swarm_node_image_specs",
    }


@pytest.mark.parametrize(
    ("node", "services"),
    [("m1", ["postgres", "app", "nginx"]), ("w1", ["app", "nginx"]), ("ghost", ["app", "nginx"])],
)
def test_images_only_where_the_service_may_run(node: str, services: list[str]) -> None:
    specs = [{"service": n} for n in ("postgres", "app", "nginx")]
    assert [s["service"] for s in swarm_node_image_specs(specs, SWARM, node)] == services


def test_front_on_edge_nodes_needs_its_image_there_only() -> None:
    swarm = _with(SWARM, "front.constraints", ["node.labels.edge == yes"])
    specs = [{"service": "nginx"}]
    assert swarm_node_image_specs(specs, swarm, "w2") == specs
    assert swarm_node_image_specs(specs, swarm, "w1") == []


def test_secret_versions_name_every_key() -> None:
    got = swarm_secret_versions({"A": "x", "B": 2}, "p")
    assert got == {"A": swarm_secret_name("p", "A", "x"), "B": swarm_secret_name("p", "B", "2")}


@pytest.mark.parametrize(
    ("path", "value"),
    [("services.app.load_src", "/ctl/app.tar"), ("services.app.source", "build")],
    ids=["load_src", "build"],
)
def test_controller_sources_are_allowed_with_the_registry(path: str, value: Any) -> None:
    """The deploying manager loads or builds, pushes; the nodes pull: nothing needs to be on them."""
    stack = _with(STACK, path, value)
    if value == "build":
        stack = _with(stack, "services.app.build_context", "/ctl/app")
    assert swarm_stack_errors(stack, {**SWARM, "registry": True}) == []
    assert swarm_stack_errors(stack, SWARM) != []


def _labelled(name: str, state: str | None, spec: str, replicas: int | None = 1) -> dict[str, Any]:
    svc = _svc(name, state, replicas)
    svc["Spec"]["Labels"] = {"pidock.spec": spec} if spec else {}
    return svc


EXPECTED = [
    # (service as inspected, expected label, settled, outcome): what it runs decides, not its last update.
    (_labelled("s_app", "completed", "new"), "new", True, "deployed"),
    (_labelled("s_app", "updating", "new"), "new", False, "deployed"),
    # Swarm rolled back *to* the expected spec (an earlier release failed; this run re-deployed the good one).
    (_labelled("s_app", "rollback_completed", "good"), "good", True, "deployed"),
    # Swarm rolled this run's spec back: it runs the previous one.
    (_labelled("s_app", "rollback_completed", "old"), "new", True, "rolled_back"),
    (_labelled("s_app", "rollback_started", "old"), "new", False, "rolled_back"),
    # The rollback itself stopped, or an update paused on the expected spec.
    (_labelled("s_app", "rollback_paused", "old"), "new", True, "failed"),
    (_labelled("s_app", "paused", "new"), "new", True, "failed"),
    # Another spec without any rollback: this run's deploy is not what runs.
    (_labelled("s_app", "completed", "other"), "new", True, "failed"),
    (_labelled("s_app", None, ""), "new", True, "failed"),
    # Never updated, labelled as expected.
    (_labelled("s_app", None, "new"), "new", True, "deployed"),
]


@pytest.mark.parametrize(("service", "wanted", "settled", "outcome"), EXPECTED)
def test_status_with_expected_specs(service: dict, wanted: str, settled: bool, outcome: str) -> None:
    got = swarm_stack_status([service], [_task("s_app", "a")], {"s_app": wanted})
    assert (got["settled"], got["outcome"]) == (settled, outcome), json.dumps(got)
    assert got["services"]["s_app"]["spec"] == service["Spec"]["Labels"].get("pidock.spec", "")


def test_status_expected_service_missing_is_failed() -> None:
    got = swarm_stack_status([_labelled("s_app", None, "a")], [_task("s_app", "n")], {"s_app": "a", "s_db": "b"})
    assert got["outcome"] == "failed"
    assert got["services"]["s_db"]["update_state"] == "missing"


def test_status_other_services_keep_the_old_rule() -> None:
    """A service the run did not name an expectation for: its own rollback still counts."""
    services = [_labelled("s_app", "completed", "a"), _labelled("s_db", "rollback_completed", "x")]
    got = swarm_stack_status(services, [_task("s_app", "n"), _task("s_db", "n")], {"s_app": "a"})
    assert got["outcome"] == "rolled_back"


def test_every_service_carries_its_spec_label() -> None:
    out = swarm_stack_definition(STACK, SWARM)
    specs = swarm_stack_specs(out)
    assert set(specs) == set(out["services"]) and all(len(v) == 16 for v in specs.values())
    assert len(set(specs.values())) == len(specs)
    # Deterministic, and the label is left out of its own hash.
    again = swarm_stack_definition(STACK, SWARM)
    assert swarm_stack_specs(again) == specs
    for name, svc in out["services"].items():
        assert swarm_spec_hash(svc) == specs[name]


def test_spec_label_follows_only_the_changed_service() -> None:
    before = swarm_stack_specs(swarm_stack_definition(STACK, SWARM))
    v2 = _with(STACK, "services.app.environment.RELEASE", "v2")
    after = swarm_stack_specs(swarm_stack_definition(v2, _with(SWARM, "version", "v2")))
    assert sorted(name for name in before if before[name] != after[name]) == ["app"]


def test_user_labels_stay_beside_the_spec_label() -> None:
    stack = _with(STACK, "services.app.labels", {"traefik.enable": "true"})
    out = swarm_stack_definition(stack, SWARM)
    labels = out["services"]["app"]["deploy"].get("labels", {})
    assert "pidock.spec" in labels


def test_specs_of_a_file_without_labels_are_empty() -> None:
    assert swarm_stack_specs({"services": {"app": {"image": "x", "deploy": {}}}}) == {"app": ""}
