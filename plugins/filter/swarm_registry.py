# Copyright: pidock.stack maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The swarm's private registry (the pidock.stack.swarm role's stack entry point, registry on).

Images are loaded or pulled on the deploying manager only, tagged into the registry that runs
beside it and pushed; the stack file names each image by the registry's digest, and every node
pulls what it runs from there.

swarm_registry_ref(image, registry)          -> the name an image is pushed under
swarm_registry_pins(images, specs, registry, node) -> service -> registry reference by digest, errors
swarm_registry_errors(registry, names)       -> what is wrong with the registry's settings
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
from collections.abc import Mapping
from typing import Any

_HOST_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")


def _split_tag(image: str) -> tuple[str, str]:
    """Name and tag (or digest) of an image reference; `latest` when it has neither."""
    if "@" in image:
        name, digest = image.split("@", 1)
        return name, "@" + digest
    last = image.rsplit("/", 1)[-1]
    if ":" in last:
        name, tag = image.rsplit(":", 1)
        return name, tag
    return image, "latest"


def _strip_registry(name: str) -> str:
    """The repository path without the registry host a reference may start with."""
    first, _slash, rest = name.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        return rest
    return name


def swarm_registry_ref(image: str, registry: str) -> str:
    """The name `image` is pushed under in `registry` (host:port): the registry host of the
    original name, if any, is replaced, the path and tag kept (local/app:1 -> reg:5000/local/app:1).
    A digest-only reference keeps no tag and is pushed as `latest`."""
    name, tag = _split_tag(str(image))
    if tag.startswith("@"):
        tag = "latest"
    return f"{registry}/{_strip_registry(name)}:{tag}"


def swarm_registry_pins(
    images: list[Mapping[str, Any]], specs: list[Mapping[str, Any]], registry: str, node: str = ""
) -> dict[str, Any]:
    """From docker_image_info on the deploying manager `node` (`images`: Id, RepoTags, RepoDigests)
    and the image specs of the stack (service, image): `pins`, per service the registry reference
    by digest (`reg:5000/local/app@sha256:...`) the stack file names; `images`, what the release
    records (image, ref, id, digests, nodes: the manager holding it); `errors` for an image not on
    the manager or never pushed (no digest of its registry repository). The same shape as
    swarm_release_images."""
    by_tag: dict[str, Mapping[str, Any]] = {}
    for info in images or []:
        for tag in info.get("RepoTags") or []:
            by_tag[str(tag)] = info
    pins: dict[str, str] = {}
    services: dict[str, dict[str, Any]] = {}
    errors: list[str] = []
    for spec in specs or []:
        service, image = str(spec["service"]), str(spec["image"])
        ref = swarm_registry_ref(image, registry)
        repository = _split_tag(ref)[0]
        info = by_tag.get(ref)
        if info is None:
            errors.append(f"{service}: image {image} is not tagged {ref} on the deploying manager")
            continue
        digests = sorted(str(d) for d in info.get("RepoDigests") or [] if str(d).startswith(repository + "@"))
        if not digests:
            errors.append(f"{service}: {ref} was not pushed to the registry (no digest of {repository})")
            continue
        pins[service] = digests[0]
        image_id = str(info.get("Id", ""))
        services[service] = {
            "image": image,
            "ref": ref,
            "id": image_id,
            "digests": digests,
            "nodes": {node: image_id} if node else {},
        }
    return {"images": services, "pins": pins, "errors": errors}


def swarm_registry_errors(
    registry: Mapping[str, Any], names: list[str] | None = None, missing: list[str] | None = None
) -> list[str]:
    """What is wrong with the registry settings, before anything changes: `registry` has enabled,
    host, port, fullchain_path, privkey_path, ca_path; `names` are the subject alternative names of
    its certificate (community.crypto's `DNS:x` / `IP:x` form), None when not read yet; `missing`
    the keys among fullchain_path, privkey_path, ca_path whose file is not on the deploying manager."""
    if not registry.get("enabled"):
        return []
    errors: list[str] = []
    host = str(registry.get("host") or "")
    port = registry.get("port")
    if not host:
        errors.append("swarm_registry_host: empty, and the deploying manager has no swarm address to default to")
    else:
        try:
            ipaddress.ip_address(host)
        except ValueError:
            if not _HOST_RE.match(host):
                errors.append(f"swarm_registry_host: {host!r} is neither an IP address nor a host name")
    try:
        if not 1 <= int(port) <= 65535:
            raise ValueError
    except (TypeError, ValueError):
        errors.append(f"swarm_registry_port: {port!r} is not a port number (1-65535)")
    for key in ("fullchain_path", "privkey_path"):
        if not str(registry.get(key) or ""):
            errors.append(
                f"swarm_registry_tls.{key}: required when swarm_registry_enabled is true (the registry serves TLS only)"
            )
    for key in sorted(set(missing or [])):
        errors.append(
            f"swarm_registry_tls.{key}: {registry.get(key)} does not exist on the deploying manager "
            "(make the registry's certificate there first, e.g. with pidock.stack.tls)"
        )
    if host and names is not None:
        wanted = {f"DNS:{host}", f"IP:{host}"}
        with contextlib.suppress(ValueError):
            wanted.add(f"IP:{ipaddress.ip_address(host)}")
        if not wanted & {str(n) for n in names}:
            listed = ", ".join(str(n) for n in names) or "none"
            errors.append(
                f"swarm_registry_tls: the certificate does not name the registry host {host} (it names: {listed}); "
                "the nodes would refuse to pull from it"
            )
    return errors


class FilterModule:
    """pidock.stack swarm registry filters."""

    def filters(self) -> dict[str, Any]:
        return {
            "swarm_registry_ref": swarm_registry_ref,
            "swarm_registry_pins": swarm_registry_pins,
            "swarm_registry_errors": swarm_registry_errors,
        }
