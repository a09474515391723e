# Copyright: pidock.stack maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the pidock.stack.compose role: validate a stack definition and render it.

compose_errors(stack)                      -> list of messages (empty when the stack is valid)
compose_definition(stack, colour, images)  -> the compose file as a dict
compose_hash(data)                         -> sha256 of canonical JSON
compose_failing(inspect_list)              -> [{service, container, status, output}] of unhealthy containers
compose_stale_builds(specs, images, digests) -> build specs whose image lacks today's context digest
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
from collections.abc import Mapping
from typing import Any

from ansible.errors import AnsibleFilterError

# Every pattern is used with fullmatch: `$` would also accept a trailing newline.
_PROJECT_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
_SERVICE_RE = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}")
_ENV_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_VERSION_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9 ._:+()@~-]{0,98}[A-Za-z0-9._:+()@~-])?")
_PORT_RE = re.compile(
    r"(?:(?P<ip>\d{1,3}(?:\.\d{1,3}){3}):)?(?:(?P<host>\d{1,5}):)?(?P<container>\d{1,5})(?:/(?P<proto>tcp|udp))?"
)
_MEMORY_RE = re.compile(r"\d+(?:\.\d+)?[bkmgBKMG]?")
_CPUS_RE = re.compile(r"\d+(?:\.\d+)?")
_DURATION_RE = re.compile(r"(?:\d+(?:\.\d+)?(?:ns|us|ms|s|m|h))+")
_IMAGE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/:@-]{0,254}")
_RESTART_RE = re.compile(r"no|always|unless-stopped|on-failure(?::\d{1,4})?")
_SERVER_NAME_RE = re.compile(r"[A-Za-z0-9_*~.-]+(?: [A-Za-z0-9_*~.-]+)*")
_BODY_SIZE_RE = re.compile(r"\d{1,9}[kKmMgG]?")
_SOURCES = ("pull", "build", "load")
_CONDITIONS = ("service_started", "service_healthy", "service_completed_successfully")
_PASSTHROUGH = (
    "command",
    "entrypoint",
    "environment",
    "healthcheck",
    "volumes",
    "ports",
    "expose",
    "user",
    "profiles",
    "networks",
    "working_dir",
    "stop_grace_period",
    "stop_signal",
    "cap_add",
    "cap_drop",
    "tmpfs",
    "init",
    "read_only",
    "shm_size",
    "extra_hosts",
    "logging",
    "security_opt",
    "devices",
    "group_add",
    "ulimits",
    "sysctls",
    "labels",
    "hostname",
    "dns",
)
_PIDOCK_KEYS = (
    "image",
    "source",
    "load_src",
    "load_path",
    "build_context",
    "secrets",
    "depends_on",
    "limits",
    "restart",
)
_ALLOWED = frozenset(_PASSTHROUGH + _PIDOCK_KEYS)
_SETTING_MINIMUM = {
    "compose_health_timeout": 5,
    "compose_min_free_mb": 0,
    "compose_lock_timeout": 1,
    "compose_keep_releases": 1,
}
_HEALTH_KEYS = frozenset(("test", "interval", "timeout", "retries", "start_period", "start_interval", "disable"))


def _named_volume(entry: Any) -> str | None:
    """'data:/var/lib/x' -> 'data'; bind mounts and anonymous volumes -> None."""
    if isinstance(entry, Mapping):
        return entry.get("source") if entry.get("type", "volume") == "volume" else None
    if not isinstance(entry, str) or ":" not in entry:
        return None
    source = entry.split(":", 1)[0]
    if source.startswith(("/", ".", "~", "$")):
        return None
    return source


def _depends(spec: Any) -> dict[str, dict[str, Any]]:
    if isinstance(spec, list):
        return {str(name): {"condition": "service_started"} for name in spec}
    if isinstance(spec, Mapping):
        return {
            str(k): dict(v) if isinstance(v, Mapping) and v else {"condition": "service_started"}
            for k, v in spec.items()
        }
    return {}


def _full(pattern: re.Pattern[str], value: Any) -> bool:
    """The whole of a string matches (no trailing newline slips past a `$`)."""
    return isinstance(value, str) and pattern.fullmatch(value) is not None


def _integer(value: Any) -> int | None:
    """An int, or a string of digits as `-e name=123` gives; None for anything else (bools too)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?\d{1,12}", value.strip()):
        return int(value)
    return None


def _port_errors(where: str, value: Any) -> list[str]:
    number = _integer(value)
    if number is None or not 1 <= number <= 65535:
        return [f"{where}: must be a port number 1-65535 (got {value!r})"]
    return []


def _parse_port(entry: Any) -> tuple[str | None, tuple[str, int] | None]:
    """'[ip:][host:]container[/proto]' -> (problem or None, (proto, host port) when one is published)."""
    if isinstance(entry, bool) or not isinstance(entry, (str, int)):
        return "is not [ip:][host:]container[/proto]", None
    found = _PORT_RE.fullmatch(str(entry))
    if found is None:
        return "is not [ip:][host:]container[/proto]", None
    if found["ip"] and any(int(octet) > 255 for octet in found["ip"].split(".")):
        return f"address {found['ip']} is not an IPv4 address", None
    for part in ("host", "container"):
        if found[part] is not None and not 1 <= int(found[part]) <= 65535:
            return f"{part} port {found[part]} is outside 1-65535", None
    if found["host"] is None:
        return None, None
    return None, (found["proto"] or "tcp", int(found["host"]))


def _health_errors(where: str, health: Any) -> list[str]:
    if not isinstance(health, Mapping):
        return [f"{where}: must be a mapping"]
    errors = []
    if set(health) - _HEALTH_KEYS:
        errors.append(f"{where}: unknown field(s) {', '.join(sorted(map(str, set(health) - _HEALTH_KEYS)))}")
    if "disable" in health and not isinstance(health["disable"], bool):
        errors.append(f"{where}.disable: must be true or false")
    test = health.get("test")
    if not health.get("disable"):
        if not test:
            errors.append(f"{where}.test: required unless disable is true")
        elif not (isinstance(test, str) or (isinstance(test, list) and all(isinstance(t, str) for t in test))):
            errors.append(f"{where}.test: a command string or a list of strings")
    if "retries" in health:
        retries = health["retries"]
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            errors.append(f"{where}.retries: must be a whole number >= 0 (got {retries!r})")
    for key in ("interval", "timeout", "start_period", "start_interval"):
        if key in health and not _full(_DURATION_RE, health[key]):
            errors.append(f"{where}.{key}: must be a duration like 2s, 1m30s or 500ms (got {health[key]!r})")
    return errors


def _limit_errors(where: str, limits: Any) -> list[str]:
    if not isinstance(limits, Mapping) or set(limits) - {"cpus", "memory", "pids"}:
        return [f"{where}: a mapping with cpus, memory and/or pids"]
    errors = []
    if "memory" in limits and not _full(_MEMORY_RE, str(limits["memory"])):
        errors.append(f"{where}.memory: {limits['memory']!r} is not a size like 512m or 1g")
    if "cpus" in limits:
        cpus = limits["cpus"]
        text = str(cpus) if isinstance(cpus, (int, float, str)) and not isinstance(cpus, bool) else ""
        if not _full(_CPUS_RE, text) or float(text) <= 0:
            errors.append(f"{where}.cpus: must be a number of CPUs above 0 like 0.5 or 2 (got {cpus!r})")
    if "pids" in limits:
        pids = _integer(limits["pids"])
        if pids is None or pids < 1:
            errors.append(f"{where}.pids: must be a whole number >= 1 (got {limits['pids']!r})")
    return errors


def _service_errors(
    name: str, svc: Any, stack: Mapping[str, Any], names: set[str], published: dict[tuple[str, int], str]
) -> list[str]:
    where = f"compose_services.{name}"
    if not isinstance(svc, Mapping):
        return [f"{where}: must be a mapping of compose fields, got {type(svc).__name__}"]
    errors: list[str] = []
    if not _full(_SERVICE_RE, name):
        errors.append(f"{where}: service names may use letters, digits, '_', '.', '-' (got {name!r})")
    unknown = sorted(map(str, set(svc) - _ALLOWED))
    if unknown:
        errors.append(f"{where}: unknown field(s) {', '.join(unknown)}; allowed: {', '.join(sorted(_ALLOWED))}")
    image = svc.get("image")
    if not isinstance(image, str) or not image.strip():
        errors.append(f"{where}.image: required (the image reference, e.g. 'nginx:1.27')")
    elif not _full(_IMAGE_RE, image):
        errors.append(f"{where}.image: {image!r} is not an image reference like 'nginx:1.27' or 'app@sha256:...'")
    source = svc.get("source", "pull")
    if source not in _SOURCES:
        errors.append(f"{where}.source: must be one of {', '.join(_SOURCES)}, got {source!r}")
    if source == "load" and not (svc.get("load_src") or svc.get("load_path")):
        errors.append(f"{where}: source 'load' needs load_src (tarball on the controller) or load_path (on the host)")
    if source == "build" and not svc.get("build_context"):
        errors.append(f"{where}: source 'build' needs build_context (a directory on the controller)")
    for key in ("load_src", "load_path", "build_context"):
        if key in svc and not isinstance(svc[key], str):
            errors.append(f"{where}.{key}: must be a path (a string)")
    if "restart" in svc and not _full(_RESTART_RE, svc["restart"]):
        errors.append(f"{where}.restart: must be no, always, unless-stopped or on-failure[:N] (got {svc['restart']!r})")
    secret_names = list(stack.get("secret_names", []) or [])
    env = svc.get("environment", {})
    if not isinstance(env, Mapping):
        errors.append(f"{where}.environment: must be a mapping NAME: value")
    else:
        for key, value in env.items():
            if not _full(_ENV_RE, key):
                errors.append(f"{where}.environment: {key!r} is not a valid variable name")
            if isinstance(value, (Mapping, list)):
                errors.append(f"{where}.environment.{key}: must be a scalar")
            if key in secret_names:
                errors.append(f"{where}.environment.{key}: is a secret; list it under secrets instead")
    secrets = svc.get("secrets", []) or []
    if not isinstance(secrets, list):
        errors.append(f"{where}.secrets: a list of compose_secrets keys, got {type(secrets).__name__} {secrets!r}")
    else:
        for secret in secrets:
            if not isinstance(secret, str) or secret not in secret_names:
                errors.append(f"{where}.secrets: {secret!r} is not a key of compose_secrets")
    depends = svc.get("depends_on", {})
    if not isinstance(depends, (Mapping, list)):
        errors.append(f"{where}.depends_on: must be a list of services or a mapping service: {{condition}}")
    if isinstance(depends, Mapping):
        for dep, spec in depends.items():
            if spec is not None and not isinstance(spec, Mapping):
                errors.append(f"{where}.depends_on.{dep}: must be a mapping like {{condition: service_healthy}}")
    for dep, spec in _depends(depends).items():
        if dep not in names:
            errors.append(f"{where}.depends_on: unknown service {dep!r}")
        if spec.get("condition", "service_started") not in _CONDITIONS:
            errors.append(f"{where}.depends_on.{dep}.condition: must be one of {', '.join(_CONDITIONS)}")
    ports = svc.get("ports", []) or []
    if not isinstance(ports, list):
        errors.append(f"{where}.ports: must be a list of [ip:][host:]container[/proto]")
        ports = []
    for port in ports:
        problem, host_port = _parse_port(port)
        if problem:
            errors.append(f"{where}.ports: {port!r} {problem}")
        elif host_port is not None:
            owner = published.setdefault(host_port, where)
            if owner != where:
                errors.append(f"{where}.ports: host port {host_port[1]}/{host_port[0]} is already published by {owner}")
    volumes = svc.get("volumes", []) or []
    if not isinstance(volumes, list):
        errors.append(f"{where}.volumes: must be a list")
        volumes = []
    declared = set(stack.get("volumes", {}) or {})
    for entry in volumes:
        vol = _named_volume(entry)
        if vol is not None and vol not in declared:
            errors.append(f"{where}.volumes: named volume {vol!r} is not declared in compose_volumes")
    if svc.get("healthcheck") is not None:
        errors.extend(_health_errors(f"{where}.healthcheck", svc["healthcheck"]))
    if svc.get("limits"):
        errors.extend(_limit_errors(f"{where}.limits", svc["limits"]))
    return errors


def _front_errors(front: Mapping[str, Any], stack: Mapping[str, Any], names: set[str]) -> list[str]:
    errors: list[str] = []
    upstream = front.get("upstream_service")
    if upstream not in names:
        errors.append(f"compose_front_upstream_service: {upstream!r} is not one of compose_services")
    if not _full(_SERVICE_RE, front.get("name")):
        errors.append(f"compose_front_name: letters, digits, '_', '.', '-' (got {front.get('name')!r})")
    if front.get("name") in names:
        errors.append(f"compose_front_name: {front.get('name')!r} collides with a service of compose_services")
    if front.get("source", "pull") not in ("pull", "load"):
        errors.append(f"compose_front_source: pull or load, got {front.get('source')!r}")
    if front.get("source") == "load" and not (front.get("load_src") or front.get("load_path")):
        errors.append("compose_front_source load needs compose_front_load_src or compose_front_load_path")
    if not front.get("image"):
        errors.append("compose_front_image: required when compose_front_enabled")
    elif not _full(_IMAGE_RE, front["image"]):
        errors.append(f"compose_front_image: {front['image']!r} is not an image reference like 'nginx:1.27'")
    if not front.get("tls_fullchain") or not front.get("tls_privkey"):
        errors.append("compose_tls (tls_facts): fullchain_path and privkey_path are required by the nginx front")
    volume = front.get("images_volume")
    if volume and volume not in (stack.get("volumes", {}) or {}):
        errors.append(f"compose_front_images_volume: {volume!r} is not declared in compose_volumes")
    for key in ("http_port", "https_port", "upstream_port"):
        if key in front:
            errors.extend(_port_errors(f"compose_front_{key}", front[key]))
    http, https = _integer(front.get("http_port")), _integer(front.get("https_port"))
    if http is not None and http == https:
        errors.append(f"compose_front_http_port: must differ from compose_front_https_port (both {http})")
    try:
        ipaddress.ip_address(str(front.get("bind", "0.0.0.0")))
    except ValueError:
        errors.append(f"compose_front_bind: must be an IP address like 0.0.0.0 or ::1 (got {front.get('bind')!r})")
    return errors


def _settings_errors(settings: Mapping[str, Any]) -> list[str]:
    """Role settings outside the stack definition (kept out of it so they do not change release ids)."""
    errors = []
    for name, minimum in _SETTING_MINIMUM.items():
        if name not in settings:
            continue
        value = _integer(settings[name])
        if value is None or value < minimum:
            errors.append(f"{name}: must be a whole number >= {minimum} (got {settings[name]!r})")
    server_name = settings.get("compose_front_server_name", "_")
    if not _full(_SERVER_NAME_RE, server_name):
        errors.append(
            "compose_front_server_name: host names separated by single spaces (letters, digits, '.', '-', '_', '*')"
            f" (got {server_name!r})"
        )
    body_size = settings.get("compose_front_client_max_body_size", "25m")
    if isinstance(body_size, bool) or not _full(_BODY_SIZE_RE, str(body_size)):
        errors.append(f"compose_front_client_max_body_size: a size like 25m, 512k or 1g (got {body_size!r})")
    return errors


def compose_errors(stack: Mapping[str, Any], settings: Mapping[str, Any] | None = None) -> list[str]:
    """Every problem of a stack definition (and the role's numeric settings), naming the variable at fault."""
    errors: list[str] = []
    project = stack.get("project")
    if not _full(_PROJECT_RE, project):
        errors.append(
            f"compose_project: lowercase letters, digits, '_' and '-', starting alphanumeric (got {project!r})"
        )
    version = stack.get("version")
    if not isinstance(version, str):
        errors.append(
            f"compose_version: must be a string, got {type(version).__name__} {version!r}"
            " (quote it: YAML reads 1.10 as the number 1.1)"
        )
    elif not version.strip():
        errors.append("compose_version: a non-empty version label is required (the app reports it at /health)")
    elif not _full(_VERSION_RE, version):
        errors.append(
            "compose_version: letters, digits, spaces and ._:+()@~- only, starting and ending with neither space"
            f" nor control characters, at most 100 (got {version!r})"
        )
    for key in stack.get("secret_names", []) or []:
        if not _full(_ENV_RE, key):
            errors.append(f"compose_secrets: {key!r} is not a valid environment variable name")
    errors.extend(_settings_errors(settings or {}))
    services = stack.get("services")
    if not isinstance(services, Mapping) or not services:
        errors.append("compose_services: define at least one service")
        return errors
    front = stack.get("front", {}) or {}
    names = set(services)
    published: dict[tuple[str, int], str] = {}
    if front.get("enabled"):
        for key in ("http_port", "https_port"):
            number = _integer(front.get(key))
            if number is not None:
                published[("tcp", number)] = f"the nginx front (compose_front_{key})"
    for name, svc in services.items():
        errors.extend(_service_errors(str(name), svc, stack, names, published))
    if front.get("enabled"):
        errors.extend(_front_errors(front, stack, names))
        upstream = front.get("upstream_service")
        if stack.get("cutover") == "blue_green" and isinstance(services.get(upstream), Mapping):
            if services[upstream].get("ports"):
                errors.append(
                    f"compose_services.{upstream}.ports: a blue/green service cannot publish ports "
                    "(two colours run side by side); the nginx front publishes them"
                )
            for other, svc in services.items():
                if isinstance(svc, Mapping) and upstream in _depends(svc.get("depends_on", {})):
                    errors.append(
                        f"compose_services.{other}.depends_on: cannot depend on the blue/green service {upstream!r}"
                    )
    if stack.get("cutover") not in ("blue_green", "recreate"):
        errors.append(f"compose_cutover: blue_green or recreate, got {stack.get('cutover')!r}")
    return errors


def _literal(value: Any) -> Any:
    """Escape `$` in every string so Compose passes it through byte for byte instead of interpolating
    `${NAME}` from .env (every secret) or the host environment."""
    if isinstance(value, str):
        return value.replace("$", "$$")
    if isinstance(value, Mapping):
        return {k: _literal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_literal(v) for v in value]
    return value


def _service_name(name: str, stack: Mapping[str, Any], colour: str) -> str:
    front = stack.get("front", {}) or {}
    if stack.get("cutover") == "blue_green" and front.get("enabled") and name == front.get("upstream_service"):
        return f"{name}-{colour}"
    return name


def _render_service(name: str, svc: Mapping[str, Any], stack: Mapping[str, Any], colour: str, image: str) -> dict:
    out: dict[str, Any] = {"image": image, "pull_policy": "never", "restart": svc.get("restart", "unless-stopped")}
    for key in _PASSTHROUGH:
        if key in svc and svc[key] not in (None, [], {}):
            out[key] = _literal(svc[key])
    env = {k: (v if isinstance(v, str) else json.dumps(v)) for k, v in out.get("environment", {}).items()}
    # The only interpolations in the file: the secrets this service lists, from the release's .env.
    for secret in svc.get("secrets", []) or []:
        env[secret] = "${%s:?%s is missing from .env}" % (secret, secret)  # noqa: UP031 (compose syntax)
    if env:
        out["environment"] = env
    deps = _depends(svc.get("depends_on", {}))
    if deps:
        out["depends_on"] = {_service_name(k, stack, colour): v for k, v in deps.items()}
    limits = svc.get("limits") or {}
    if limits:
        out["deploy"] = {"resources": {"limits": {k: str(v) for k, v in limits.items()}}}
    return out


def compose_definition(stack: Mapping[str, Any], colour: str, images: Mapping[str, Any]) -> dict[str, Any]:
    """The compose file for one release. Images are pinned to their resolved IDs (pull never)."""

    def image_of(name: str, fallback: str) -> str:
        found = images.get(name) or {}
        return found.get("id") or fallback

    services: dict[str, Any] = {}
    for name, svc in stack["services"].items():
        services[_service_name(name, stack, colour)] = _render_service(
            name, svc, stack, colour, image_of(name, svc["image"])
        )
    front = stack.get("front", {}) or {}
    if front.get("enabled"):
        bind = front.get("bind", "0.0.0.0")
        volumes = [
            f"{front['conf_dir']}:/etc/nginx/conf.d:ro",
            f"{front['tls_dir']}:{front['tls_dir']}:ro",
        ]
        if front.get("images_volume"):
            volumes.append(f"{front['images_volume']}:/srv/images:ro")
        services[front["name"]] = {
            "image": image_of(front["name"], front["image"]),
            "pull_policy": "never",
            "restart": "unless-stopped",
            "ports": [f"{bind}:{front['http_port']}:80", f"{bind}:{front['https_port']}:443"],
            "volumes": volumes,
        }
    out: dict[str, Any] = {"name": stack["project"], "services": services}
    if stack.get("volumes"):
        out["volumes"] = {k: _literal(v or {}) for k, v in stack["volumes"].items()}
    if stack.get("networks"):
        out["networks"] = {k: _literal(v or {}) for k, v in stack["networks"].items()}
    return out


def compose_hash(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def compose_failing(containers: list[Mapping[str, Any]]) -> list[dict[str, str]]:
    """From `docker inspect` output: containers not running or not healthy, with the last check output."""
    failing = []
    for item in containers:
        state = item.get("State", {}) or {}
        health = state.get("Health") or {}
        status = health.get("Status") or state.get("Status", "unknown")
        if state.get("Status") == "running" and status in ("healthy", "running"):
            continue
        log = health.get("Log") or []
        output = (log[-1].get("Output") or "").strip() if log else (state.get("Error") or "")
        labels = (item.get("Config", {}) or {}).get("Labels") or {}
        failing.append(
            {
                "service": labels.get("com.docker.compose.service", item.get("Name", "?").lstrip("/")),
                "container": item.get("Name", "?").lstrip("/"),
                "status": status,
                "output": output[-400:] or f"exit code {state.get('ExitCode')}",
            }
        )
    return failing


def compose_image_specs(stack: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One entry per service (and the nginx front): where its image comes from."""
    specs = [
        {
            "service": str(name),
            "image": svc["image"],
            "source": svc.get("source", "pull"),
            "load_src": svc.get("load_src", ""),
            "load_path": svc.get("load_path", ""),
            "build_context": svc.get("build_context", ""),
        }
        for name, svc in (stack.get("services") or {}).items()
    ]
    front = stack.get("front", {}) or {}
    if front.get("enabled"):
        specs.append(
            {
                "service": front["name"],
                "image": front["image"],
                "source": front.get("source", "pull"),
                "load_src": front.get("load_src", ""),
                "load_path": front.get("load_path", ""),
                "build_context": "",
            }
        )
    return specs


def _normal_ref(ref: str) -> str:
    """'nginx' -> 'nginx:latest'; digests and explicit tags are kept."""
    if "@" in ref or ref.startswith("sha256:"):
        return ref
    last = ref.rsplit("/", 1)[-1]
    return ref if ":" in last else f"{ref}:latest"


def _index(images: list[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    found: dict[str, Mapping[str, Any]] = {}
    for image in images or []:
        for ref in [*(image.get("RepoTags") or []), *(image.get("RepoDigests") or []), image.get("Id", "")]:
            if ref:
                found[ref] = image
    return found


def compose_missing(specs: list[Mapping[str, Any]], images: list[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The image specs whose image is not on the host (per docker_image_info's `images`)."""
    known = _index(images)
    return [spec for spec in specs if _normal_ref(spec["image"]) not in known]


CONTEXT_LABEL = "pidock.context"


def compose_stale_builds(
    specs: list[Mapping[str, Any]], images: list[Mapping[str, Any]], digests: list[str]
) -> list[dict[str, Any]]:
    """The build specs whose image is missing or was built from another context than today's.

    ``specs`` are the specs with ``source: build``, ``digests`` their contexts' digests in the same
    order (lookup pidock.stack.context_digest). An image carries the digest of the context it was
    built from in its ``pidock.context`` label; each stale spec comes back with ``context_digest``.
    """
    if len(specs) != len(digests):
        raise AnsibleFilterError(f"compose_stale_builds: {len(specs)} build specs but {len(digests)} context digests")
    known = _index(images)
    stale = []
    for spec, digest in zip(specs, digests, strict=True):
        image = known.get(_normal_ref(spec["image"]))
        labels = ((image or {}).get("Config") or {}).get("Labels") or {}
        if image is None or labels.get(CONTEXT_LABEL) != digest:
            stale.append({**spec, "context_digest": digest})
    return stale


def compose_resolve(specs: list[Mapping[str, Any]], images: list[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """service -> {image, id, digests, architecture, size} for every image present."""
    known = _index(images)
    resolved = {}
    for spec in specs:
        image = known.get(_normal_ref(spec["image"]))
        if image is None:
            continue
        resolved[spec["service"]] = {
            "image": spec["image"],
            "id": image.get("Id"),
            "digests": list(image.get("RepoDigests") or []),
            "architecture": image.get("Architecture", ""),
            "size": image.get("Size", 0),
        }
    return resolved


def compose_pick(data: Mapping[str, Any], keys: list[str]) -> dict[str, Any]:
    """Only the given keys of a mapping (what identifies an image: not its digests or size)."""
    return {k: data.get(k) for k in keys}


class FilterModule:
    """pidock.stack compose filters."""

    def filters(self) -> dict[str, Any]:
        return {
            "compose_errors": compose_errors,
            "compose_definition": compose_definition,
            "compose_hash": compose_hash,
            "compose_failing": compose_failing,
            "compose_image_specs": compose_image_specs,
            "compose_missing": compose_missing,
            "compose_stale_builds": compose_stale_builds,
            "compose_resolve": compose_resolve,
            "compose_pick": compose_pick,
        }
