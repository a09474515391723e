"""The bad-input table: inputs the four roles must refuse, each with (part of) the message it gets.

Every row is refused before anything on a host changes: either by the role's meta/argument_specs.yml
(checked here with ansible's own ArgumentSpecValidator, as `validate_argument_spec` does at role
start) or by the role's Python validator, which its preflight asserts on as its first task.
molecule/compose_deploy/input_checks.yml replays a sample of the rows against a live host and
checks that nothing on it changed.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible_collections.pidock.stack.plugins.filter.compose_stack import compose_errors
from ansible_collections.pidock.stack.plugins.filter.docker_checks import docker_input_errors
from ansible_collections.pidock.stack.plugins.filter.tls_checks import tls_bundle_errors, tls_input_errors

ROLES = Path(__file__).resolve().parents[2] / "roles"

STACK: dict[str, Any] = {
    "project": "inventory",
    "version": "v1",
    "cutover": "blue_green",
    "secret_names": ["POSTGRES_PASSWORD"],
    "volumes": {"pgdata": {}},
    "networks": {},
    "services": {
        "postgres": {
            "image": "local/postgres:17",
            "secrets": ["POSTGRES_PASSWORD"],
            "volumes": ["pgdata:/var/lib/postgresql/data"],
            "healthcheck": {"test": ["CMD", "true"], "interval": "2s", "retries": 5},
            "limits": {"memory": "512m", "cpus": "1.0", "pids": 200},
            "restart": "unless-stopped",
        },
        "app": {
            "image": "local/app:1",
            "secrets": ["POSTGRES_PASSWORD"],
            "depends_on": {"postgres": {"condition": "service_healthy"}},
        },
        "tunnel": {"image": "cloudflare/cloudflared:1", "ports": ["127.0.0.1:8080:80"]},
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
        "images_volume": "",
        "conf_dir": "/opt/s/front/conf.d",
        "tls_dir": "/opt/s/tls",
        "tls_fullchain": "/opt/s/tls/fullchain.pem",
        "tls_privkey": "/opt/s/tls/privkey.pem",
    },
}
SETTINGS: dict[str, Any] = {
    "compose_health_timeout": 180,
    "compose_min_free_mb": 1024,
    "compose_lock_timeout": 1800,
    "compose_keep_releases": 5,
    "compose_front_server_name": "_",
    "compose_front_client_max_body_size": "25m",
}


def _stack(path: str, value: Any) -> dict[str, Any]:
    """STACK with the value at a dotted path replaced (a key is created when missing)."""
    stack = copy.deepcopy(STACK)
    node = stack
    keys = path.split(".")
    for key in keys[:-1]:
        node = node[key]
    node[keys[-1]] = value
    return stack


def compose(path: str, value: Any) -> Callable[[], list[str]]:
    return lambda: compose_errors(_stack(path, value), SETTINGS)


def compose_service(name: str, svc: dict[str, Any]) -> Callable[[], list[str]]:
    def run() -> list[str]:
        stack = copy.deepcopy(STACK)
        stack["services"][name] = svc
        return compose_errors(stack, SETTINGS)

    return run


def compose_setting(name: str, value: Any) -> Callable[[], list[str]]:
    return lambda: compose_errors(STACK, {**SETTINGS, name: value})


def spec(role: str, params: dict[str, Any], entry: str = "main") -> Callable[[], list[str]]:
    """Errors of the role's argument_specs for these variables (defaults left out: only what is given)."""

    def run() -> list[str]:
        options = yaml.safe_load((ROLES / role / "meta" / "argument_specs.yml").read_text())["argument_specs"]
        options = {k: {o: v for o, v in opt.items() if o != "default"} for k, opt in options[entry]["options"].items()}
        return list(ArgumentSpecValidator(options).validate(params).error_messages)

    return run


TLS: dict[str, Any] = {
    "tls_mode": "ca",
    "tls_key_type": "ECC",
    "tls_key_size": 2048,
    "tls_validity_days": 365,
    "tls_ca_validity_days": 3650,
    "tls_renew_days": 30,
    "tls_names": ["inventory.pidock.test"],
}
CERT: dict[str, Any] = {
    "public_key": "PUB",
    "public_key_type": "ECC",
    "public_key_data": {"curve": "secp256r1", "exponent_size": 256},
    "valid_at": {"now": True},
    "basic_constraints": ["CA:FALSE"],
    "extended_key_usage": ["TLS Web Server Authentication"],
    "subject_alt_name": ["DNS:test.local"],
}


DOCKER: dict[str, Any] = {
    "docker_install_source": "upstream",
    "docker_upstream_gpg_fingerprint": "9DC858229FC7DD38854AE2D88D81803C0EBFCD88",
    "docker_upstream_repo_url": "https://download.docker.com/linux",
    "docker_upstream_gpg_key_url": "",
    "docker_upstream_allow_http": False,
    "docker_data_root": "",
    "docker_compose_min_version": "2.18.0",
    "docker_proxy_env": {},
    "docker_pi_cmdline_tokens": ["cgroup_enable=memory"],
    "docker_users": [],
}


def docker(**changes: Any) -> Callable[[], list[str]]:
    return lambda: docker_input_errors({**DOCKER, **changes})


def tls(**changes: Any) -> Callable[[], list[str]]:
    return lambda: tls_input_errors({**TLS, **changes})


def bundle(**changes: Any) -> Callable[[], list[str]]:
    """The rejection message of pidock.stack.tls for a provided certificate with these properties."""

    def run() -> list[str]:
        failed = tls_bundle_errors({**CERT, **changes}, {"public_key": "PUB"}, {"complete_chain": []}, ["test.local"])
        return [f"tls: provided bundle rejected by the {f['check']} check: {f['msg']}" for f in failed]

    return run


# (id, check, expected part of the message)
CASES: list[tuple[str, Callable[[], list[str]], str]] = [
    # --- compose: item 11 (injection and full matches) ---
    ("compose_version newline", compose("version", "v1\nserver { listen 81; }"), "compose_version: letters"),
    ("compose_version float", compose("version", 1.1), "compose_version: must be a string, got float"),
    ("compose_version semicolon", compose("version", "v1; include /etc/passwd"), "compose_version: letters"),
    ("compose_project trailing newline", compose("project", "inventory\n"), "compose_project: lowercase"),
    ("service name trailing newline", compose_service("app\n", {"image": "x:1"}), "service names may use"),
    (
        "secret name trailing newline",
        compose("secret_names", ["POSTGRES_PASSWORD", "PW\n"]),
        "compose_secrets: 'PW\\n' is not a valid environment variable name",
    ),
    (
        "environment name trailing newline",
        compose("services.tunnel.environment", {"A\n": "1"}),
        "compose_services.tunnel.environment: 'A\\n' is not a valid variable name",
    ),
    (
        "server_name directive",
        compose_setting("compose_front_server_name", "_; return 200"),
        "compose_front_server_name: host names",
    ),
    (
        "server_name newline",
        compose_setting("compose_front_server_name", "a.test\nb.test"),
        "compose_front_server_name: host names",
    ),
    (
        "client_max_body_size directive",
        compose_setting("compose_front_client_max_body_size", "25m; allow all"),
        "compose_front_client_max_body_size: a size like 25m",
    ),
    # --- compose: item 12 (accepted before, failing later) ---
    (
        "host port 99999",
        compose("services.tunnel.ports", ["99999:80"]),
        "compose_services.tunnel.ports: '99999:80' host port 99999 is outside 1-65535",
    ),
    ("container port 0", compose("services.tunnel.ports", ["8081:0"]), "container port 0 is outside 1-65535"),
    (
        "bind address 999.1.1.1",
        compose("services.tunnel.ports", ["999.1.1.1:80:80"]),
        "compose_services.tunnel.ports: '999.1.1.1:80:80' address 999.1.1.1 is not an IPv4 address",
    ),
    (
        "service publishes the front's 443",
        compose("services.tunnel.ports", ["443:443"]),
        "compose_services.tunnel.ports: host port 443/tcp is already published by the nginx front "
        "(compose_front_https_port)",
    ),
    (
        "two services publish one port",
        compose("services.postgres.ports", ["127.0.0.1:8080:5432"]),
        "host port 8080/tcp is already published by compose_services.postgres",
    ),
    (
        "ports given as a string",
        compose("services.tunnel.ports", "80:80"),
        "compose_services.tunnel.ports: must be a list",
    ),
    (
        "cpus lots",
        compose("services.postgres.limits", {"cpus": "lots"}),
        "compose_services.postgres.limits.cpus: must be a number of CPUs above 0",
    ),
    ("cpus zero", compose("services.postgres.limits", {"cpus": 0}), "compose_services.postgres.limits.cpus"),
    (
        "pids -5",
        compose("services.postgres.limits", {"pids": -5}),
        "compose_services.postgres.limits.pids: must be a whole number >= 1",
    ),
    (
        "restart sometimes",
        compose("services.app.restart", "sometimes"),
        "compose_services.app.restart: must be no, always, unless-stopped or on-failure[:N]",
    ),
    (
        "healthcheck retries many",
        compose("services.postgres.healthcheck.retries", "many"),
        "compose_services.postgres.healthcheck.retries: must be a whole number >= 0",
    ),
    (
        "healthcheck interval often",
        compose("services.postgres.healthcheck.interval", "often"),
        "compose_services.postgres.healthcheck.interval: must be a duration",
    ),
    ("image blank", compose("services.app.image", " "), "compose_services.app.image: required"),
    (
        "image with a space",
        compose("services.app.image", "nginx latest"),
        "compose_services.app.image: 'nginx latest' is not an image reference",
    ),
    (
        "secrets as a string",
        compose("services.app.secrets", "POSTGRES_PASSWORD"),
        "compose_services.app.secrets: a list of compose_secrets keys, got str",
    ),
    (
        "depends_on condition as a string",
        compose("services.app.depends_on", {"postgres": "healthy"}),
        "compose_services.app.depends_on.postgres: must be a mapping",
    ),
    (
        "negative compose_health_timeout",
        compose_setting("compose_health_timeout", -5),
        "compose_health_timeout: must be a whole number >= 5 (got -5)",
    ),
    (
        "tiny compose_health_timeout",
        compose_setting("compose_health_timeout", 2),
        "compose_health_timeout: must be a whole number >= 5 (got 2)",
    ),
    (
        "negative compose_lock_timeout",
        compose_setting("compose_lock_timeout", -1),
        "compose_lock_timeout: must be a whole number >= 1 (got -1)",
    ),
    (
        "negative compose_min_free_mb",
        compose_setting("compose_min_free_mb", "-1"),
        "compose_min_free_mb: must be a whole number >= 0",
    ),
    ("compose_keep_releases 0", compose_setting("compose_keep_releases", 0), "compose_keep_releases: must be"),
    ("https port 70000", compose("front.https_port", 70000), "compose_front_https_port: must be a port number 1-65535"),
    (
        "http port equals https port",
        compose("front.http_port", 443),
        "compose_front_http_port: must differ from compose_front_https_port",
    ),
    ("upstream port 0", compose("front.upstream_port", "0"), "compose_front_upstream_port: must be a port number"),
    ("front bind not an address", compose("front.bind", "everywhere"), "compose_front_bind: must be an IP address"),
    ("front image with a newline", compose("front.image", "nginx:stable\n"), "compose_front_image: 'nginx:stable\\n'"),
    # --- compose: argument_specs ---
    (
        "compose_keep_releases many",
        spec("compose", {"compose_keep_releases": "many"}),
        "argument 'compose_keep_releases' is of type str and we were unable to convert to int",
    ),
    (
        "compose_cutover sideways",
        spec("compose", {"compose_cutover": "sideways"}),
        "value of compose_cutover must be one of: blue_green, recreate",
    ),
    (
        "compose_services a string",
        spec("compose", {"compose_services": "app"}),
        "argument 'compose_services' is of type str and we were unable to convert to dict",
    ),
    (
        "compose_front_enabled maybe",
        spec("compose", {"compose_front_enabled": "maybe"}),
        "argument 'compose_front_enabled' is of type str and we were unable to convert to bool",
    ),
    (
        "compose_front_source ftp",
        spec("compose", {"compose_front_source": "ftp"}),
        "value of compose_front_source must be one of: pull, build, load",
    ),
    # --- docker: values argument_specs cannot express (items 3, 6, 7) ---
    (
        "proxy value injecting ExecStartPre",
        docker(docker_proxy_env={"HTTP_PROXY": 'http://p:1"\nExecStartPre=/bin/id'}),
        "docker_proxy_env.HTTP_PROXY: a URL or host list without spaces, quotes, backslashes or control characters",
    ),
    (
        "proxy variable not a proxy",
        docker(docker_proxy_env={"LD_PRELOAD": "/x.so"}),
        "docker_proxy_env: 'LD_PRELOAD' is not one of HTTP_PROXY",
    ),
    (
        "repository over http",
        docker(docker_upstream_repo_url="http://mirror.lan/linux"),
        "docker_upstream_repo_url: http is refused",
    ),
    (
        "signing key over http",
        docker(docker_upstream_gpg_key_url="http://mirror.lan/gpg"),
        "docker_upstream_gpg_key_url: http is refused",
    ),
    (
        "fingerprint not hex",
        docker(docker_upstream_gpg_fingerprint="0EBFCD88"),
        "docker_upstream_gpg_fingerprint: must be 40 or 64 hex digits",
    ),
    (
        "cmdline token with a newline",
        docker(docker_pi_cmdline_tokens=["cgroup_enable=memory\ninit=/bin/sh"]),
        "docker_pi_cmdline_tokens: 'cgroup_enable=memory\\ninit=/bin/sh' must be one kernel parameter",
    ),
    ("data root relative", docker(docker_data_root="srv/docker"), "docker_data_root: must be an absolute path"),
    ("docker_users not a name", docker(docker_users=["pi\nroot"]), "docker_users: 'pi\\nroot' is not a user name"),
    # --- docker: argument_specs ---
    (
        "docker_install_source snap",
        spec("docker", {"docker_install_source": "snap"}),
        "value of docker_install_source must be one of: upstream, distro",
    ),
    (
        "docker_upstream_channel nightly",
        spec("docker", {"docker_upstream_channel": "nightly"}),
        "value of docker_upstream_channel must be one of: stable, test",
    ),
    (
        "docker_ipv6_workaround sometimes",
        spec("docker", {"docker_ipv6_workaround": "sometimes"}),
        "value of docker_ipv6_workaround must be one of: auto, always, never",
    ),
    (
        "docker_proxy_env a list",
        spec("docker", {"docker_proxy_env": ["HTTP_PROXY=x"]}),
        "argument 'docker_proxy_env' is of type list and we were unable to convert to dict",
    ),
    (
        "docker_default_address_pools strings",
        spec("docker", {"docker_default_address_pools": ["10.0.0.0/8"]}),
        "docker_default_address_pools",
    ),
    # --- tls: settings and provided bundles (item 10) ---
    ("tls_validity_days -5", tls(tls_validity_days=-5), "tls_validity_days: must be a whole number of days >= 1"),
    ("tls_renew_days -1", tls(tls_renew_days="-1"), "tls_renew_days: must be a whole number of days >= 0"),
    ("tls_key_size 1024", tls(tls_key_type="RSA", tls_key_size=1024), "tls_key_size: RSA keys must have 2048"),
    ("leaf outlives the CA", tls(tls_validity_days=4000), "tls_validity_days: 4000 outlives the CA"),
    ("tls_names newline", tls(tls_names=["a.test\nb.test"]), "tls_names: 'a.test\\nb.test' is not a DNS name"),
    (
        "provided: no SAN",
        bundle(subject_alt_name=None),
        "rejected by the names check: the certificate has no subjectAltName",
    ),
    (
        "provided: RSA-1024",
        bundle(public_key_type="RSA", public_key_data={"size": 1024}),
        "rejected by the key-size check: the certificate has an RSA key of 1024 bits",
    ),
    (
        "provided: CA:TRUE leaf",
        bundle(basic_constraints=["CA:TRUE"]),
        "rejected by the leaf check: the certificate is a CA certificate",
    ),
    (
        "provided: clientAuth only",
        bundle(extended_key_usage=["TLS Web Client Authentication"]),
        "rejected by the usage check",
    ),
    ("provided: expired", bundle(valid_at={"now": False}), "rejected by the expiry check"),
    # --- tls: argument_specs ---
    (
        "tls_mode magic",
        spec("tls", {"tls_mode": "magic"}),
        "value of tls_mode must be one of: selfsigned, ca, provided, acme",
    ),
    ("tls_key_type DSA", spec("tls", {"tls_key_type": "DSA"}), "value of tls_key_type must be one of: ECC, RSA"),
    (
        "tls_key_curve secp192r1",
        spec("tls", {"tls_key_curve": "secp192r1"}),
        "value of tls_key_curve must be one of: secp256r1, secp384r1",
    ),
    (
        "tls_key_size big",
        spec("tls", {"tls_key_size": "big"}),
        "argument 'tls_key_size' is of type str and we were unable to convert to int",
    ),
    (
        "tls_provided_src web",
        spec("tls", {"tls_provided_src": "web"}),
        "value of tls_provided_src must be one of: controller, host",
    ),
    # --- migrate: argument_specs ---
    (
        "migrate_phases unknown phase",
        spec("migrate", {"migrate_phases": ["plan", "teleport"]}),
        "value of migrate_phases must be one or more of",
    ),
    (
        "migrate_copy_method scp",
        spec("migrate", {"migrate_copy_method": "scp"}),
        "value of migrate_copy_method must be one of: manifest, rsync",
    ),
    ("migrate_stack_ports words", spec("migrate", {"migrate_stack_ports": ["http"]}), "migrate_stack_ports"),
    (
        "migrate_plan_space_margin lots",
        spec("migrate", {"migrate_plan_space_margin": "lots"}),
        "argument 'migrate_plan_space_margin' is of type str and we were unable to convert to float",
    ),
    (
        "migrate_env_secrets a string",
        spec("migrate", {"migrate_env_secrets": "PW"}),
        "argument 'migrate_env_secrets' is of type str and we were unable to convert to dict",
    ),
    (
        "migrate_rollback_discard_stack_writes maybe",
        spec("migrate", {"migrate_rollback_discard_stack_writes": "maybe"}),
        "argument 'migrate_rollback_discard_stack_writes' is of type str and we were unable to convert to bool",
    ),
    (
        "migrate_source_db_units a dict",
        spec("migrate", {"migrate_source_db_units": {"pg": 1}}),
        "migrate_source_db_units",
    ),
]


def test_the_table_is_large_enough_and_covers_every_role() -> None:
    assert len(CASES) >= 40
    assert len({case[0] for case in CASES}) == len(CASES), "ids are unique"


@pytest.mark.parametrize(("check", "expected"), [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_bad_input_is_refused_by_name(check: Callable[[], list[str]], expected: str) -> None:
    errors = check()
    assert any(expected in error for error in errors), errors


@pytest.mark.parametrize(
    "check",
    [compose("version", "v1"), spec("compose", {"compose_keep_releases": "3"}), spec("tls", {"tls_mode": "ca"})],
    ids=["good stack", "good compose spec", "good tls spec"],
)
def test_good_input_passes(check: Callable[[], list[str]]) -> None:
    assert check() == []
