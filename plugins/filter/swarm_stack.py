# Copyright: pidock.stack maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the pidock.stack.swarm role's `stack` entry point: the compose role's stack
variables (compose_services, compose_secrets, compose_volumes) rendered as a stack file for
`docker stack deploy` (community.docker.docker_stack).

swarm_stack_errors(stack, swarm)          -> messages naming the variable at fault (empty: valid)
swarm_secret_name(project, key, value)    -> versioned Swarm secret name (changes with the value)
swarm_config_name(project, what, content) -> versioned Swarm config name
swarm_stack_definition(stack, swarm)      -> the stack file as a dict
swarm_stack_specs(definition)             -> per service, the pidock.spec label it carries
swarm_stack_status(services, tasks, expected) -> per-service converged state and the run's outcome

The compose role's own validation (compose_errors) is reused as is; only what a swarm adds
(replicas, placement, published ports in host mode, the front's mode) is checked here.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

from ansible_collections.pidock.stack.plugins.filter.compose_stack import _named_volume, compose_errors
from ansible_collections.pidock.stack.plugins.module_utils._swarm import SPEC_LABEL, swarm_spec_hash, swarm_stack_status

_LABEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_CONSTRAINT_RE = re.compile(r"^\s*node\.labels\.([A-Za-z0-9_.-]+)\s*(==|!=)\s*(\S+)\s*$")
_SWARM_KEYS = frozenset(("replicas", "mode", "placement", "constraints", "max_per_node", "order", "endpoint_mode"))
_MODES = ("replicated", "global")
_ORDERS = ("start-first", "stop-first")
# What `docker stack deploy` (compose file 3.x) accepts per service, of the compose role's fields.
_PASSTHROUGH = (
    "healthcheck",
    "user",
    "working_dir",
    "stop_grace_period",
    "stop_signal",
    "cap_add",
    "cap_drop",
    "tmpfs",
    "init",
    "read_only",
    "extra_hosts",
    "logging",
    "ulimits",
    "sysctls",
    "hostname",
    "dns",
)
# Read the services' secrets from /run/secrets into their environment, then run the command.
_SECRETS_SHIM = 'for k in {keys}; do export "$k=$(cat "/run/secrets/$k")"; done; exec "$@"'


def _short_hash(*parts: str) -> str:
    digest = hashlib.sha256("\0".join(parts).encode()).hexdigest()
    return digest[:12]


def swarm_secret_name(project: str, key: str, value: Any) -> str:
    """<project>_<key>_<hash>: a changed value is a new secret, so the services using it roll.

    The hash is salted with the project and key and truncated (12 hex digits), which tells
    versions apart without publishing a usable digest of the value.
    """
    return f"{project}_{key}_{_short_hash(project, key, str(value))}"


def swarm_secret_versions(secrets: Mapping[str, Any], project: str) -> dict[str, str]:
    """compose_secrets -> {key: versioned secret name} (names only, never a value)."""
    return {str(key): swarm_secret_name(project, str(key), value) for key, value in (secrets or {}).items()}


def swarm_config_name(project: str, what: str, content: str) -> str:
    return f"{project}_{what}_{_short_hash(project, what, content)}"


def _escape(value: Any) -> Any:
    """`docker stack deploy` interpolates ${VAR}: keep a literal '$' literal."""
    if isinstance(value, str):
        return value.replace("$", "$$")
    if isinstance(value, list):
        return [_escape(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _escape(v) for k, v in value.items()}
    return value


def _constraints(where: str, spec: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """(constraints, errors) from a service's `placement` (labels mapping) and `constraints` (raw)."""
    out: list[str] = []
    errors: list[str] = []
    placement = spec.get("placement", {}) or {}
    if not isinstance(placement, Mapping):
        return [], [f"{where}.placement: a mapping of node label: value"]
    for label, value in placement.items():
        if not _LABEL_RE.match(str(label)):
            errors.append(f"{where}.placement: {label!r} is not a valid node label name")
        out.append(f"node.labels.{label} == {value}")
    raw = spec.get("constraints", []) or []
    if not isinstance(raw, list):
        errors.append(f"{where}.constraints: a list of Swarm constraints like 'node.role == manager'")
    else:
        out.extend(str(c) for c in raw)
    return out, errors


def _label_errors(where: str, constraints: list[str], node_labels: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """A placement on a label that no node carries can never be scheduled: refuse it."""
    errors = []
    for constraint in constraints:
        found = _CONSTRAINT_RE.match(constraint)
        if not found or found.group(2) != "==":
            continue
        label, value = found.group(1), found.group(3).strip("'\"")
        carriers = [node for node, labels in node_labels.items() if str((labels or {}).get(label)) == value]
        if not carriers:
            known = sorted({f"{k}={v}" for labels in node_labels.values() for k, v in (labels or {}).items()})
            errors.append(
                f"{where}: placement node.labels.{label} == {value} matches no node "
                f"(labels on the cluster: {', '.join(known) or 'none'}); set it with swarm_node_labels"
            )
    return errors


def _published(where: str, port: Any) -> tuple[dict[str, Any] | None, str | None]:
    """'8080:80/udp' -> {published, target, protocol}; no host IPs on a swarm."""
    text = str(port)
    proto = "tcp"
    if "/" in text:
        text, proto = text.split("/", 1)
    parts = text.split(":")
    if len(parts) == 3:
        return None, f"{where}.ports: {port!r}: a swarm cannot bind a host address; use published:target"
    if len(parts) == 1:
        return {"target": int(parts[0]), "protocol": proto}, None
    return {"published": int(parts[0]), "target": int(parts[1]), "protocol": proto}, None


def _front(swarm: Mapping[str, Any]) -> Mapping[str, Any]:
    return swarm.get("front", {}) or {}


def swarm_stack_errors(stack: Mapping[str, Any], swarm: Mapping[str, Any]) -> list[str]:
    """Every problem of the stack as a swarm would run it; the compose role's checks first."""
    errors = list(compose_errors(stack))
    services = stack.get("services") or {}
    if not isinstance(services, Mapping):
        return errors
    per_service = swarm.get("services", {}) or {}
    node_labels = swarm.get("node_labels", {}) or {}
    ports: dict[tuple[int, str], str] = {}

    def claim(published: int, proto: str, owner: str) -> None:
        holder = ports.get((published, proto))
        if holder and holder.startswith("compose_services.") and owner.startswith("compose_services."):
            return  # two services on one port: compose_errors has said so already
        if holder:
            errors.append(
                f"{owner}: published port {published}/{proto} is already published by {ports[(published, proto)]}"
            )
        else:
            ports[(published, proto)] = owner

    for name in per_service:
        if name not in services:
            errors.append(f"swarm_stack_services.{name}: not a service of compose_services")
    for name, svc in services.items():
        if not isinstance(svc, Mapping):
            continue
        where = f"swarm_stack_services.{name}"
        spec = per_service.get(name, {}) or {}
        if not isinstance(spec, Mapping):
            errors.append(f"{where}: a mapping (replicas, mode, placement, constraints, max_per_node, order)")
            continue
        unknown = sorted(set(spec) - _SWARM_KEYS)
        if unknown:
            errors.append(f"{where}: unknown field(s) {', '.join(unknown)}; allowed: {', '.join(sorted(_SWARM_KEYS))}")
        if spec.get("mode", "replicated") not in _MODES:
            errors.append(f"{where}.mode: replicated or global, got {spec.get('mode')!r}")
        replicas = spec.get("replicas", 1)
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            errors.append(f"{where}.replicas: a whole number >= 0, got {replicas!r}")
        if spec.get("order", "start-first") not in _ORDERS:
            errors.append(f"{where}.order: start-first or stop-first, got {spec.get('order')!r}")
        if spec.get("endpoint_mode", "vip") not in ("vip", "dnsrr"):
            errors.append(f"{where}.endpoint_mode: vip or dnsrr, got {spec.get('endpoint_mode')!r}")
        constraints, found = _constraints(where, spec)
        errors.extend(found)
        errors.extend(_label_errors(where, constraints, node_labels))
        # With the registry only the deploying manager needs the image (it pushes it); without it
        # every node that may run the service does, so nothing can come from the controller.
        if svc.get("source") == "build" and not swarm.get("registry"):
            errors.append(
                f"compose_services.{name}.source: build needs swarm_registry_enabled on a swarm (every node "
                "needs the image): use load or pull, or turn the registry on"
            )
        if svc.get("load_src") and not swarm.get("registry"):
            errors.append(
                f"compose_services.{name}.load_src: needs swarm_registry_enabled on a swarm; without it put "
                "the tarball on every node (load_path) or pull the image"
            )
        if svc.get("secrets") and not svc.get("command"):
            errors.append(
                f"compose_services.{name}.command: required on a swarm for a service with secrets (the command "
                "is wrapped to read them from /run/secrets); give entrypoint too if the image has one"
            )
        for port in svc.get("ports", []) or []:
            parsed, error = _published(f"compose_services.{name}", port)
            if error:
                errors.append(error)
            elif parsed and "published" in parsed:
                claim(parsed["published"], parsed["protocol"], f"compose_services.{name}.ports")
    front = _front(swarm)
    if front.get("enabled"):
        if front.get("mode", "global") not in _MODES:
            errors.append(f"swarm_stack_front_mode: global or replicated, got {front.get('mode')!r}")
        replicas = front.get("replicas", 1)
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 1:
            errors.append(f"swarm_stack_front_replicas: the front must run at least one task, got {replicas!r}")
        for what in ("http_port", "https_port"):
            claim(int(front[what]), "tcp", f"compose_front_{what}")
        constraints, found = _constraints("swarm_stack_front", {"constraints": front.get("constraints", [])})
        errors.extend(found)
        errors.extend(_label_errors("swarm_stack_front_constraints", constraints, node_labels))
        upstream = front.get("upstream_service")
        if upstream in services and (per_service.get(upstream) or {}).get("replicas", 1) == 0:
            errors.append(f"swarm_stack_services.{upstream}.replicas: the front's upstream needs at least 1")
    return errors


def swarm_node_image_specs(
    specs: list[Mapping[str, Any]], swarm: Mapping[str, Any], node: str
) -> list[Mapping[str, Any]]:
    """The image specs (compose_image_specs) of the services that may run on `node`: a service
    pinned by label (placement, or a node.labels == constraint) needs its image only on the nodes
    carrying the label, so a database image is not loaded on every node."""
    labels = (swarm.get("node_labels", {}) or {}).get(node, {}) or {}
    per_service = swarm.get("services", {}) or {}
    front = _front(swarm)
    keep = []
    for spec in specs:
        name = spec["service"]
        if front.get("enabled") and name == front.get("name"):
            constraints, _found = _constraints(name, {"constraints": front.get("constraints", [])})
        else:
            constraints, _found = _constraints(name, per_service.get(name, {}) or {})
        fits = True
        for constraint in constraints:
            found = _CONSTRAINT_RE.match(constraint)
            if found and found.group(2) == "==" and str(labels.get(found.group(1))) != found.group(3).strip("'\""):
                fits = False
        if fits:
            keep.append(spec)
    return keep


def _deploy(name: str, svc: Mapping[str, Any], spec: Mapping[str, Any], swarm: Mapping[str, Any]) -> dict[str, Any]:
    stateful = any(_named_volume(v) for v in svc.get("volumes", []) or [])
    mode = spec.get("mode", "replicated")
    deploy: dict[str, Any] = {
        "mode": mode,
        "endpoint_mode": spec.get("endpoint_mode", swarm.get("endpoint_mode", "dnsrr")),
        # A service with a named volume (a database) must not run twice on its data: stop-first.
        "update_config": {
            **(swarm.get("update") or {}),
            "order": spec.get("order", "stop-first" if stateful else "start-first"),
        },
        "rollback_config": {
            **(swarm.get("rollback") or {}),
            "order": spec.get("order", "stop-first" if stateful else "start-first"),
        },
        "restart_policy": {"condition": "any", "delay": "2s"},
    }
    if mode == "replicated":
        deploy["replicas"] = spec.get("replicas", 1)
    constraints, _found = _constraints(name, spec)
    placement: dict[str, Any] = {}
    if constraints:
        placement["constraints"] = constraints
    if spec.get("max_per_node"):
        placement["max_replicas_per_node"] = spec["max_per_node"]
    if placement:
        deploy["placement"] = placement
    limits = svc.get("limits") or {}
    if limits:
        deploy["resources"] = {"limits": {k: (v if k == "pids" else str(v)) for k, v in limits.items()}}
    return deploy


def _render_service(name: str, svc: Mapping[str, Any], stack: Mapping[str, Any], swarm: Mapping[str, Any]) -> dict:
    spec = (swarm.get("services", {}) or {}).get(name, {}) or {}
    versions = swarm.get("secret_versions", {}) or {}
    images = swarm.get("images", {}) or {}
    out: dict[str, Any] = {"image": images.get(name) or svc["image"]}
    for key in _PASSTHROUGH:
        if key in svc and svc[key] not in (None, [], {}):
            out[key] = _escape(svc[key])
    env = {k: (v if isinstance(v, str) else json.dumps(v)) for k, v in (svc.get("environment") or {}).items()}
    if env:
        out["environment"] = _escape(env)
    secrets = list(svc.get("secrets", []) or [])
    if secrets:
        shim = _SECRETS_SHIM.format(keys=" ".join(secrets))
        out["entrypoint"] = [
            "/bin/sh",
            "-c",
            _escape(shim),
            "pidock-secrets",
            *_escape(list(svc.get("entrypoint") or [])),
        ]
        out["secrets"] = [{"source": versions[key], "target": key, "mode": 0o444} for key in secrets]
    elif svc.get("entrypoint"):
        out["entrypoint"] = _escape(svc["entrypoint"])
    if svc.get("command"):
        out["command"] = _escape(svc["command"])
    volumes = list(svc.get("volumes", []) or [])
    if volumes:
        out["volumes"] = volumes
    ports = []
    for port in svc.get("ports", []) or []:
        parsed, _problem = _published(name, port)
        if parsed:
            ports.append({**parsed, "mode": swarm.get("publish_mode", "host")})
    if ports:
        out["ports"] = ports
    out["deploy"] = _deploy(name, svc, spec, swarm)
    return out


def _render_front(stack: Mapping[str, Any], swarm: Mapping[str, Any]) -> dict[str, Any]:
    front = _front(swarm)
    mode = front.get("mode", "global")
    deploy: dict[str, Any] = {
        "mode": mode,
        "endpoint_mode": swarm.get("endpoint_mode", "dnsrr"),
        # Host-mode ports: a new nginx cannot bind them beside the old one on the same node.
        "update_config": {**(swarm.get("update") or {}), "order": "stop-first"},
        "rollback_config": {**(swarm.get("rollback") or {}), "order": "stop-first"},
        "restart_policy": {"condition": "any", "delay": "2s"},
    }
    if mode == "replicated":
        deploy["replicas"] = front.get("replicas", 1)
    if front.get("constraints"):
        deploy["placement"] = {"constraints": list(front["constraints"])}
    publish = swarm.get("publish_mode", "host")
    return {
        "image": (swarm.get("images", {}) or {}).get(front["name"]) or front["image"],
        "ports": [
            {"published": int(front["http_port"]), "target": 80, "protocol": "tcp", "mode": publish},
            {"published": int(front["https_port"]), "target": 443, "protocol": "tcp", "mode": publish},
        ],
        "configs": [{"source": front["config"], "target": "/etc/nginx/conf.d/default.conf"}],
        "secrets": [
            {"source": front["cert_secret"], "target": "pidock-fullchain.pem"},
            {"source": front["key_secret"], "target": "pidock-privkey.pem", "mode": 0o400},
        ],
        "deploy": deploy,
    }


def swarm_stack_definition(stack: Mapping[str, Any], swarm: Mapping[str, Any]) -> dict[str, Any]:
    """The stack file of one release. Secrets and configs are external, created beforehand under
    versioned names; no secret value appears in it. Each service carries the hash of its own
    definition as the `pidock.spec` label (see swarm_stack_status)."""
    services = {str(name): _render_service(str(name), svc, stack, swarm) for name, svc in stack["services"].items()}
    secrets = {name: {"external": True} for name in (swarm.get("secret_versions", {}) or {}).values()}
    configs: dict[str, Any] = {}
    front = _front(swarm)
    if front.get("enabled"):
        services[front["name"]] = _render_front(stack, swarm)
        secrets[front["cert_secret"]] = {"external": True}
        secrets[front["key_secret"]] = {"external": True}
        configs[front["config"]] = {"external": True}
    for service in services.values():
        # What the service runs, as a service label: tells a rollback by Swarm from a deploy.
        service["deploy"].setdefault("labels", {})[SPEC_LABEL] = swarm_spec_hash(service)
    out: dict[str, Any] = {"version": "3.8", "services": services}
    if stack.get("volumes"):
        out["volumes"] = {k: (v or {}) for k, v in stack["volumes"].items()}
    if secrets:
        out["secrets"] = secrets
    if configs:
        out["configs"] = configs
    return out


def swarm_stack_specs(definition: Mapping[str, Any]) -> dict[str, str]:
    """Per service of a stack file made by swarm_stack_definition, its `pidock.spec` label: what
    swarm_stack_wait expects each service to run, and what a release stores to be recognised by."""
    return {
        str(name): str(((svc.get("deploy", {}) or {}).get("labels", {}) or {}).get(SPEC_LABEL, ""))
        for name, svc in (definition.get("services", {}) or {}).items()
    }


class FilterModule:
    """pidock.stack swarm stack filters."""

    def filters(self) -> dict[str, Any]:
        return {
            "swarm_stack_errors": swarm_stack_errors,
            "swarm_stack_definition": swarm_stack_definition,
            "swarm_stack_specs": swarm_stack_specs,
            "swarm_secret_name": swarm_secret_name,
            "swarm_secret_versions": swarm_secret_versions,
            "swarm_config_name": swarm_config_name,
            "swarm_stack_status": swarm_stack_status,
            "swarm_node_image_specs": swarm_node_image_specs,
        }
