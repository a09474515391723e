"""Unit tests for plugins/filter/compose_stack.py: validation table, rendering, image resolution."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.pidock.stack.plugins.filter.compose_stack import (
    FilterModule,
    compose_definition,
    compose_errors,
    compose_failing,
    compose_hash,
    compose_image_specs,
    compose_missing,
    compose_resolve,
    compose_stale_builds,
)

GOOD: dict[str, Any] = {
    "project": "inventory",
    "version": "v1",
    "cutover": "blue_green",
    "secret_names": ["POSTGRES_PASSWORD"],
    "volumes": {"pgdata": {}, "images": {}},
    "networks": {},
    "services": {
        "postgres": {
            "image": "local/postgres:17",
            "source": "load",
            "load_path": "/x/pg.tar",
            "secrets": ["POSTGRES_PASSWORD"],
            "volumes": ["pgdata:/var/lib/postgresql/data"],
            "healthcheck": {"test": ["CMD", "true"], "interval": "2s"},
            "limits": {"memory": "512m"},
        },
        "app": {
            "image": "local/app:1",
            "environment": {"RELEASE": "v1", "WORKERS": 2},
            "secrets": ["POSTGRES_PASSWORD"],
            "depends_on": {"postgres": {"condition": "service_healthy"}},
            "volumes": ["images:/data", "/etc/localtime:/etc/localtime:ro"],
        },
        "tunnel": {"image": "cloudflare/cloudflared:1", "profiles": ["tunnel"], "command": ["tunnel", "run"]},
    },
    "front": {
        "enabled": True,
        "name": "nginx",
        "image": "nginx:stable",
        "source": "pull",
        "upstream_service": "app",
        "upstream_port": 8000,
        "bind": "0.0.0.0",
        "http_port": 80,
        "https_port": 443,
        "images_volume": "images",
        "conf_dir": "/opt/s/front/conf.d",
        "tls_dir": "/opt/s/tls",
        "tls_fullchain": "/opt/s/tls/fullchain.pem",
        "tls_privkey": "/opt/s/tls/privkey.pem",
    },
}


def _with(path: str, value: Any) -> dict[str, Any]:
    stack = copy.deepcopy(GOOD)
    node = stack
    keys = path.split(".")
    for key in keys[:-1]:
        node = node[key]
    if value is _DELETE:
        del node[keys[-1]]
    else:
        node[keys[-1]] = value
    return stack


_DELETE = object()


def test_good_stack_has_no_errors() -> None:
    assert compose_errors(GOOD) == []


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("project", "Bad Name", "compose_project"),
        ("version", "", "compose_version"),
        ("services", {}, "define at least one service"),
        ("services.app.image", _DELETE, "compose_services.app.image"),
        ("services.app.source", "ftp", "compose_services.app.source"),
        ("services.postgres.load_path", _DELETE, "source 'load' needs load_src"),
        ("services.app.build_context", "/x", None),
        ("services.app.privileged", True, "unknown field(s) privileged"),
        ("services.app.security_opt", ["no-new-privileges:true"], None),
        ("services.app.devices", ["/dev/video0:/dev/video0"], None),
        ("services.app.depends_on", {"db": {}}, "unknown service 'db'"),
        ("services.app.depends_on", {"postgres": {"condition": "up"}}, "depends_on.postgres.condition"),
        ("services.app.depends_on", "postgres", "must be a list of services"),
        ("services.app.secrets", ["NOPE"], "'NOPE' is not a key of compose_secrets"),
        ("services.app.environment", {"POSTGRES_PASSWORD": "x"}, "is a secret"),
        ("services.app.environment", {"1BAD": "x"}, "not a valid variable name"),
        ("services.app.environment", ["A=1"], "must be a mapping"),
        ("services.app.volumes", ["nosuch:/data"], "named volume 'nosuch'"),
        ("services.tunnel.ports", ["80:http"], "compose_services.tunnel.ports"),
        ("services.postgres.healthcheck", {"interval": "2s"}, "healthcheck.test"),
        ("services.postgres.healthcheck", {"test": ["CMD"], "every": "2s"}, "unknown field(s) every"),
        ("services.postgres.limits", {"memory": "lots"}, "limits.memory"),
        ("services.postgres.limits", {"gpu": 1}, "limits: a mapping"),
        ("services.app.ports", ["8000:8000"], "cannot publish ports"),
        ("services.tunnel.depends_on", ["app"], "cannot depend on the blue/green service"),
        ("front.upstream_service", "web", "compose_front_upstream_service"),
        ("front.name", "app", "collides"),
        ("front.tls_fullchain", "", "tls_facts"),
        ("front.images_volume", "pics", "compose_front_images_volume"),
        ("front.source", "build", "compose_front_source"),
        ("cutover", "sideways", "compose_cutover"),
        ("secret_names", ["POSTGRES_PASSWORD", "bad-name"], "not a valid environment variable name"),
    ],
)
def test_invalid_definitions_are_named(path: str, value: Any, expected: str | None) -> None:
    errors = compose_errors(_with(path, value))
    if expected is None:
        assert errors == []
    else:
        assert any(expected in e for e in errors), errors


def test_definition_renders_colours_secrets_limits_and_front() -> None:
    images = {"app": {"id": "sha256:aaa"}, "nginx": {"id": "sha256:ngx"}}
    out = compose_definition(GOOD, "green", images)
    assert out["name"] == "inventory"
    assert set(out["services"]) == {"postgres", "app-green", "tunnel", "nginx"}
    app = out["services"]["app-green"]
    assert app["image"] == "sha256:aaa"
    assert app["pull_policy"] == "never"
    assert app["environment"]["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")
    assert app["environment"]["WORKERS"] == "2"
    assert app["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert out["services"]["postgres"]["image"] == "local/postgres:17"
    assert out["services"]["postgres"]["deploy"] == {"resources": {"limits": {"memory": "512m"}}}
    assert out["services"]["tunnel"]["profiles"] == ["tunnel"]
    nginx = out["services"]["nginx"]
    assert nginx["ports"] == ["0.0.0.0:80:80", "0.0.0.0:443:443"]
    assert "images:/srv/images:ro" in nginx["volumes"]
    assert out["volumes"] == {"pgdata": {}, "images": {}}


def test_only_the_upstream_changes_between_colours() -> None:
    blue = compose_definition(GOOD, "blue", {})
    green = compose_definition(GOOD, "green", {})
    for name in ("postgres", "tunnel", "nginx"):
        assert blue["services"][name] == green["services"][name], name
    assert blue["services"]["app-blue"] == green["services"]["app-green"]


def test_hardening_and_device_fields_pass_through() -> None:
    extra = {
        "security_opt": ["no-new-privileges:true"],
        "devices": ["/dev/gpiomem:/dev/gpiomem"],
        "group_add": ["997"],
        "ulimits": {"nofile": {"soft": 4096, "hard": 8192}},
        "labels": {"com.example.team": "shop"},
    }
    stack = _with("services.app.security_opt", extra["security_opt"])
    stack["services"]["app"].update(extra)
    assert compose_errors(stack) == []
    app = compose_definition(stack, "blue", {})["services"]["app-blue"]
    for key, value in extra.items():
        assert app[key] == value, key


def test_recreate_cutover_keeps_plain_names() -> None:
    out = compose_definition(_with("cutover", "recreate"), "blue", {})
    assert "app" in out["services"]


def test_hash_is_canonical() -> None:
    assert compose_hash({"a": 1, "b": [1, 2]}) == compose_hash({"b": [1, 2], "a": 1})
    assert compose_hash({"a": 1}) != compose_hash({"a": 2})


INFO = [
    {"Id": "sha256:pg", "RepoTags": ["local/postgres:17"], "RepoDigests": [], "Architecture": "amd64", "Size": 5},
    {"Id": "sha256:ng", "RepoTags": ["nginx:latest"], "RepoDigests": ["nginx@sha256:d"], "Architecture": "arm64"},
]


def test_image_specs_missing_and_resolve() -> None:
    stack = _with("front.image", "nginx")
    specs = compose_image_specs(stack)
    assert [s["service"] for s in specs] == ["postgres", "app", "tunnel", "nginx"]
    assert [s["service"] for s in compose_missing(specs, INFO)] == ["app", "tunnel"]
    resolved = compose_resolve(specs, INFO)
    assert resolved["postgres"]["id"] == "sha256:pg"
    assert resolved["nginx"] == {
        "image": "nginx",
        "id": "sha256:ng",
        "digests": ["nginx@sha256:d"],
        "architecture": "arm64",
        "size": 0,
    }


@pytest.mark.parametrize(
    ("state", "health", "failing"),
    [
        ({"Status": "running"}, None, False),
        ({"Status": "running"}, {"Status": "healthy", "Log": []}, False),
        ({"Status": "running"}, {"Status": "unhealthy", "Log": [{"Output": "HTTP 500"}]}, True),
        ({"Status": "running"}, {"Status": "starting", "Log": []}, True),
        ({"Status": "exited", "ExitCode": 3}, None, True),
    ],
)
def test_compose_failing(state, health, failing) -> None:
    item = {
        "Name": "/inv-app-blue-1",
        "State": {**state, "Health": health},
        "Config": {"Labels": {"com.docker.compose.service": "app-blue"}},
    }
    found = compose_failing([item])
    assert bool(found) is failing
    if failing:
        assert found[0]["service"] == "app-blue"
        assert found[0]["output"]


def test_filter_module_exports() -> None:
    assert set(FilterModule().filters()) >= {"compose_errors", "compose_definition", "compose_hash", "compose_failing"}


def test_pick_keeps_what_identifies_an_image() -> None:
    from ansible_collections.pidock.stack.plugins.filter.compose_stack import compose_pick

    image = {"image": "x:1", "id": "sha256:a", "digests": ["x@sha256:d"], "size": 3}
    assert compose_pick(image, ["image", "id"]) == {"image": "x:1", "id": "sha256:a"}


_INTERPOLATION = re.compile(r"\$(?:\$|\{([A-Za-z_][A-Za-z0-9_]*)(?::?[-?+][^}]*)?\}|([A-Za-z_][A-Za-z0-9_]*))")


def _compose_interpolate(value: str, env: dict[str, str]) -> str:
    """What Compose makes of a string of the file: `$$` -> `$`; `$X`, `${X}`, `${X:?msg}`, `${X:-d}` from env."""

    def one(found: re.Match[str]) -> str:
        if found.group(0) == "$$":
            return "$"
        return env.get(found.group(1) or found.group(2), "")

    return _INTERPOLATION.sub(one, value)


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


BCRYPT = "$2b$12$abcdefghijklmnopqrstuv"


def test_environment_values_reach_the_container_byte_for_byte() -> None:
    stack = _with("services.app.environment", {"HASH": BCRYPT, "STEAL": "${POSTGRES_PASSWORD}", "HOME_": "$HOME"})
    app = compose_definition(stack, "blue", {})["services"]["app-blue"]
    dotenv = {"POSTGRES_PASSWORD": "s3cret", "HOME": "/root"}
    seen = {k: _compose_interpolate(v, dotenv) for k, v in app["environment"].items()}
    assert seen["HASH"] == BCRYPT
    assert seen["STEAL"] == "${POSTGRES_PASSWORD}"
    assert seen["HOME_"] == "$HOME"
    assert seen["POSTGRES_PASSWORD"] == "s3cret", "a listed secret still comes from .env"


@pytest.mark.parametrize(
    "field",
    [
        ("environment", {"X": "${POSTGRES_PASSWORD}"}),
        ("command", ["sh", "-c", "echo ${POSTGRES_PASSWORD}"]),
        ("labels", {"leak": "$POSTGRES_PASSWORD"}),
        ("healthcheck", {"test": ["CMD-SHELL", "echo ${POSTGRES_PASSWORD:-x}"]}),
        ("entrypoint", "echo $${POSTGRES_PASSWORD}"),
    ],
)
def test_a_service_sees_only_the_secrets_it_lists(field: tuple[str, Any]) -> None:
    key, value = field
    stack = _with(f"services.tunnel.{key}", value)
    tunnel = compose_definition(stack, "blue", {})["services"]["tunnel"]
    for text in _strings(tunnel):
        assert "s3cret" not in _compose_interpolate(text, {"POSTGRES_PASSWORD": "s3cret"}), (key, text)


def test_top_level_volume_options_are_literal_too() -> None:
    stack = _with("volumes.pgdata", {"driver_opts": {"device": "${POSTGRES_PASSWORD}"}})
    out = compose_definition(stack, "blue", {})
    assert out["volumes"]["pgdata"]["driver_opts"]["device"] == "$${POSTGRES_PASSWORD}"


# --- compose_stale_builds -----------------------------------------------------------------------

_WEB = {"service": "web", "image": "local/web:v1", "source": "build", "build_context": "/ctx/web"}
_WORKER = {"service": "worker", "image": "local/worker", "source": "build", "build_context": "/ctx/worker"}


def _image(tag: str, digest: str | None) -> dict:
    labels = {"pidock.context": digest} if digest else None
    return {"Id": "sha256:" + tag.encode().hex()[:12], "RepoTags": [tag], "Config": {"Labels": labels}}


_WEB_A = _image("local/web:v1", "sha256:a")
_WORKER_B = _image("local/worker:latest", "sha256:b")


@pytest.mark.parametrize(
    ("images", "expected"),
    [
        pytest.param([], ["web", "worker"], id="both-missing"),
        pytest.param([_WEB_A, _WORKER_B], [], id="both-current"),
        pytest.param([_image("local/web:v1", "sha256:old"), _WORKER_B], ["web"], id="context-changed"),
        pytest.param([_image("local/web:v1", None), _WORKER_B], ["web"], id="built-elsewhere-no-label"),
        pytest.param([_image("local/web:v2", "sha256:a"), _WORKER_B], ["web"], id="other-tag-only"),
    ],
)
def test_compose_stale_builds(images, expected):
    stale = compose_stale_builds([_WEB, _WORKER], images, ["sha256:a", "sha256:b"])
    assert [s["service"] for s in stale] == expected
    digests = {"web": "sha256:a", "worker": "sha256:b"}
    assert all(s["context_digest"] == digests[s["service"]] for s in stale)


def test_compose_stale_builds_needs_one_digest_per_spec():
    with pytest.raises(AnsibleFilterError, match="2 build specs but 1 context digests"):
        compose_stale_builds([_WEB, _WORKER], [], ["sha256:a"])
