# Copyright: pidock.stack maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the pidock.stack.compose role: validate a stack definition and render it.

compose_errors(stack)                      -> list of messages (empty when the stack is valid)
compose_definition(stack, colour, images)  -> the compose file as a dict
compose_hash(data)                         -> sha256 of canonical JSON
compose_failing(inspect_list)              -> [{service, container, status, output}] of unhealthy containers
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

_PROJECT_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_SERVICE_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$")
_ENV_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PORT_RE = re.compile(r"^(?:(?:\d{1,3}\.){3}\d{1,3}:)?(?:\d{1,5}:)?\d{1,5}(?:/(?:tcp|udp))?$")
_MEMORY_RE = re.compile(r"^\d+(?:\.\d+)?[bkmgBKMG]?$")
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
    "image", "source", "load_src", "load_path", "build_context", "secrets", "depends_on", "limits", "restart"
)
_ALLOWED = frozenset(_PASSTHROUGH + _PIDOCK_KEYS)
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
        return {str(k): dict(v or {"condition": "service_started"}) for k, v in spec.items()}
    return {}


def _service_errors(name: str, svc: Any, stack: Mapping[str, Any], names: set[str]) -> list[str]:
    where = f"compose_services.{name}"
    if not isinstance(svc, Mapping):
        return [f"{where}: must be a mapping of compose fields, got {type(svc).__name__}"]
    errors: list[str] = []
    if not _SERVICE_RE.match(name):
        errors.append(f"{where}: service names may use letters, digits, '_', '.', '-' (got {name!r})")
    unknown = sorted(set(svc) - _ALLOWED)
    if unknown:
        errors.append(f"{where}: unknown field(s) {', '.join(unknown)}; allowed: {', '.join(sorted(_ALLOWED))}")
    if not isinstance(svc.get("image"), str) or not svc.get("image"):
        errors.append(f"{where}.image: required (the image reference, e.g. 'nginx:1.27')")
    source = svc.get("source", "pull")
    if source not in _SOURCES:
        errors.append(f"{where}.source: must be one of {', '.join(_SOURCES)}, got {source!r}")
    if source == "load" and not (svc.get("load_src") or svc.get("load_path")):
        errors.append(f"{where}: source 'load' needs load_src (tarball on the controller) or load_path (on the host)")
    if source == "build" and not svc.get("build_context"):
        errors.append(f"{where}: source 'build' needs build_context (a directory on the controller)")
    env = svc.get("environment", {})
    if not isinstance(env, Mapping):
        errors.append(f"{where}.environment: must be a mapping NAME: value")
    else:
        for key, value in env.items():
            if not _ENV_RE.match(str(key)):
                errors.append(f"{where}.environment: {key!r} is not a valid variable name")
            if isinstance(value, (Mapping, list)):
                errors.append(f"{where}.environment.{key}: must be a scalar")
            if key in stack.get("secret_names", []):
                errors.append(f"{where}.environment.{key}: is a secret; list it under secrets instead")
    for secret in svc.get("secrets", []) or []:
        if secret not in stack.get("secret_names", []):
            errors.append(f"{where}.secrets: {secret!r} is not a key of compose_secrets")
    for dep, spec in _depends(svc.get("depends_on", {})).items():
        if dep not in names:
            errors.append(f"{where}.depends_on: unknown service {dep!r}")
        if spec.get("condition", "service_started") not in _CONDITIONS:
            errors.append(f"{where}.depends_on.{dep}.condition: must be one of {', '.join(_CONDITIONS)}")
    if not isinstance(svc.get("depends_on", {}), (Mapping, list)):
        errors.append(f"{where}.depends_on: must be a list of services or a mapping service: {{condition}}")
    for port in svc.get("ports", []) or []:
        if not _PORT_RE.match(str(port)):
            errors.append(f"{where}.ports: {port!r} is not [ip:][host:]container[/proto]")
    declared = set(stack.get("volumes", {}) or {})
    for entry in svc.get("volumes", []) or []:
        vol = _named_volume(entry)
        if vol is not None and vol not in declared:
            errors.append(f"{where}.volumes: named volume {vol!r} is not declared in compose_volumes")
    health = svc.get("healthcheck")
    if health is not None:
        if not isinstance(health, Mapping):
            errors.append(f"{where}.healthcheck: must be a mapping")
        else:
            if not health.get("disable") and not health.get("test"):
                errors.append(f"{where}.healthcheck.test: required unless disable is true")
            if set(health) - _HEALTH_KEYS:
                errors.append(f"{where}.healthcheck: unknown field(s) {', '.join(sorted(set(health) - _HEALTH_KEYS))}")
    limits = svc.get("limits", {}) or {}
    if not isinstance(limits, Mapping) or set(limits) - {"cpus", "memory", "pids"}:
        errors.append(f"{where}.limits: a mapping with cpus, memory and/or pids")
    elif "memory" in limits and not _MEMORY_RE.match(str(limits["memory"])):
        errors.append(f"{where}.limits.memory: {limits['memory']!r} is not a size like 512m or 1g")
    return errors


def compose_errors(stack: Mapping[str, Any]) -> list[str]:
    """Every problem of a stack definition, as messages naming the variable at fault."""
    errors: list[str] = []
    project = stack.get("project")
    if not isinstance(project, str) or not _PROJECT_RE.match(project):
        errors.append(
            f"compose_project: lowercase letters, digits, '_' and '-', starting alphanumeric (got {project!r})"
        )
    if not str(stack.get("version") or "").strip():
        errors.append("compose_version: a non-empty version label is required (the app reports it at /health)")
    for key in stack.get("secret_names", []):
        if not _ENV_RE.match(str(key)):
            errors.append(f"compose_secrets: {key!r} is not a valid environment variable name")
    services = stack.get("services")
    if not isinstance(services, Mapping) or not services:
        errors.append("compose_services: define at least one service")
        return errors
    front = stack.get("front", {}) or {}
    names = set(services)
    for name, svc in services.items():
        errors.extend(_service_errors(str(name), svc, stack, names))
    if front.get("enabled"):
        upstream = front.get("upstream_service")
        if upstream not in names:
            errors.append(f"compose_front_upstream_service: {upstream!r} is not one of compose_services")
        if front.get("name") in names:
            errors.append(f"compose_front_name: {front.get('name')!r} collides with a service of compose_services")
        if front.get("source", "pull") not in ("pull", "load"):
            errors.append(f"compose_front_source: pull or load, got {front.get('source')!r}")
        if front.get("source") == "load" and not (front.get("load_src") or front.get("load_path")):
            errors.append("compose_front_source load needs compose_front_load_src or compose_front_load_path")
        if not front.get("image"):
            errors.append("compose_front_image: required when compose_front_enabled")
        if not front.get("tls_fullchain") or not front.get("tls_privkey"):
            errors.append(
                "compose_tls (tls_facts): fullchain_path and privkey_path are required by the nginx front"
            )
        volume = front.get("images_volume")
        if volume and volume not in (stack.get("volumes", {}) or {}):
            errors.append(f"compose_front_images_volume: {volume!r} is not declared in compose_volumes")
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


def _service_name(name: str, stack: Mapping[str, Any], colour: str) -> str:
    front = stack.get("front", {}) or {}
    if stack.get("cutover") == "blue_green" and front.get("enabled") and name == front.get("upstream_service"):
        return f"{name}-{colour}"
    return name


def _render_service(name: str, svc: Mapping[str, Any], stack: Mapping[str, Any], colour: str, image: str) -> dict:
    out: dict[str, Any] = {"image": image, "pull_policy": "never", "restart": svc.get("restart", "unless-stopped")}
    for key in _PASSTHROUGH:
        if key in svc and svc[key] not in (None, [], {}):
            out[key] = svc[key]
    env = dict(out.get("environment", {}))
    for secret in svc.get("secrets", []) or []:
        env[secret] = "${%s:?%s is missing from .env}" % (secret, secret)  # noqa: UP031 (compose syntax)
    if env:
        out["environment"] = {k: (v if isinstance(v, str) else json.dumps(v)) for k, v in env.items()}
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
        out["volumes"] = {k: (v or {}) for k, v in stack["volumes"].items()}
    if stack.get("networks"):
        out["networks"] = {k: (v or {}) for k, v in stack["networks"].items()}
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
            "compose_resolve": compose_resolve,
            "compose_pick": compose_pick,
        }
