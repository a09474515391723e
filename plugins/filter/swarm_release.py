# Copyright: pidock.stack maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Releases of a stack on a swarm (the pidock.stack.swarm role's stack and rollback entry points).

A release is the stack file of one deploy with its images pinned by ID, stored with
pidock.stack.release under <swarm_stack_root>/releases/ on the deploying manager, with the image
IDs and digests per service and node and the versioned names of the secrets and configs it uses.

swarm_release_images(node_images, node_specs)        -> images per service, pins, errors
swarm_rollback_plan(releases, wanted, present, node_images) -> the release to go back to, or errors
swarm_stale_objects(releases, present)                -> the secret and config versions no release uses
swarm_served_release(releases, specs)                 -> the stored release Swarm runs, and what to record
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def swarm_release_images(
    node_images: Mapping[str, list[Mapping[str, Any]]], node_specs: Mapping[str, list[Mapping[str, Any]]]
) -> dict[str, Any]:
    """From, per node, what docker_image_info found (`images`: Id, RepoTags, RepoDigests) and the
    image specs the node needs (compose_image_specs rows: service, image): per service the image
    name, its ID and digests and the nodes holding it; `pins` (service -> image ID) when every
    node needing it holds the same ID; errors for a node lacking an image or nodes that disagree."""
    services: dict[str, dict[str, Any]] = {}
    errors: list[str] = []
    for node in sorted(node_specs):
        by_ref: dict[str, Mapping[str, Any]] = {}
        for info in node_images.get(node, []) or []:
            for ref in [*(info.get("RepoTags") or []), *(info.get("RepoDigests") or []), info.get("Id", "")]:
                by_ref[str(ref)] = info
        for spec in node_specs[node] or []:
            service, image = str(spec["service"]), str(spec["image"])
            ref = image if ":" in image.rsplit("/", 1)[-1] or "@" in image else f"{image}:latest"
            info = by_ref.get(image) or by_ref.get(ref)
            entry = services.setdefault(service, {"image": image, "id": "", "digests": [], "nodes": {}})
            if info is None:
                errors.append(f"{service}: image {image} is not on node {node}")
                continue
            entry["nodes"][node] = str(info.get("Id", ""))
            entry["digests"] = sorted(set(entry["digests"]) | set(info.get("RepoDigests") or []))
    pins: dict[str, str] = {}
    for service, entry in sorted(services.items()):
        ids = sorted(set(entry["nodes"].values()))
        if len(ids) > 1:
            where = ", ".join(f"{node}={image_id[:19]}" for node, image_id in sorted(entry["nodes"].items()))
            errors.append(f"{service}: image {entry['image']} differs between the nodes ({where})")
        elif ids:
            entry["id"] = ids[0]
            pins[service] = ids[0]
    return {"images": services, "pins": pins, "errors": errors}


def swarm_rollback_plan(
    releases: list[Mapping[str, Any]],
    wanted: str,
    present: Mapping[str, list[str]],
    node_images: Mapping[str, list[str]],
) -> dict[str, Any]:
    """Which stored release a rollback re-deploys, and what would stop it.

    releases: pidock.stack.release `list` output (id, version, outcome, images, extra, current,
    previous flags). wanted: `previous` or a release id (or a version label naming exactly one
    release). present: the Swarm `secrets` and `configs` names that exist. node_images: per node,
    the image IDs it holds. Errors name what is missing; nothing is deployed when there is one."""
    errors: list[str] = []
    known = ", ".join(f"{r.get('id')} ({r.get('version')}, {r.get('outcome')})" for r in releases) or "none"
    current = next((r for r in releases if r.get("current")), None)
    if wanted == "previous":
        target = next((r for r in releases if r.get("previous")), None)
        if target is None:
            return {
                "target": "",
                "errors": [f"swarm_rollback_to: there is no previous release to go back to (known: {known})"],
            }
    else:
        matches = [r for r in releases if r.get("id") == wanted] or [r for r in releases if r.get("version") == wanted]
        if len(matches) != 1:
            why = "names no stored release" if not matches else "names more than one release (use its id)"
            return {"target": "", "errors": [f"swarm_rollback_to: {wanted!r} {why} (known: {known})"]}
        target = matches[0]
    if target.get("outcome") == "failed":
        errors.append(f"swarm_rollback_to: release {target.get('id')} failed when it was deployed")
    extra = target.get("extra", {}) or {}
    for kind in ("secrets", "configs"):
        have = set(present.get(kind, []) or [])
        for name in sorted(set(extra.get(kind, []) or []) - have):
            errors.append(f"release {target.get('id')} needs Swarm {kind[:-1]} {name}, which no longer exists")
    for service, image in sorted((target.get("images", {}) or {}).items()):
        for node, image_id in sorted((image.get("nodes", {}) or {}).items()):
            if node in node_images and image_id not in (node_images.get(node) or []):
                errors.append(
                    f"release {target.get('id')}: {service} needs image {image.get('image')} ({image_id[:19]}) "
                    f"on {node}, which no longer holds it"
                )
    return {
        "target": str(target.get("id", "")),
        "version": str(target.get("version", "")),
        "current": str(current.get("id", "")) if current else "",
        "errors": errors,
    }


def swarm_stale_objects(releases: list[Mapping[str, Any]], present: Mapping[str, list[str]]) -> dict[str, list[str]]:
    """The Swarm secrets and configs of the stack (`present`: kind -> names, as listed with the
    stack's label) that no stored release names in its `extra` (`secrets`, `configs`): old versions
    a rollback can no longer need, since every release it may go back to is stored."""
    used: dict[str, set[str]] = {"secrets": set(), "configs": set()}
    for release in releases or []:
        extra = release.get("extra", {}) or {}
        for kind, names in used.items():
            names.update(str(n) for n in extra.get(kind, []) or [])
    return {kind: sorted({str(n) for n in present.get(kind, []) or [] if n} - names) for kind, names in used.items()}


def swarm_served_release(releases: list[Mapping[str, Any]], specs: Mapping[str, str]) -> dict[str, Any]:
    """Which stored release the stack runs, read from Swarm, and how the record must change to say so.

    releases: pidock.stack.release `list` output, oldest first; each release stores its services'
    `pidock.spec` labels in `extra.specs`. specs: service -> the label of the spec it runs now
    (swarm_stack_wait's `specs`, read once the stack settled). A run cut short (the controller died
    after `docker stack deploy`, or while Swarm rolled a release back) leaves the record behind
    what serves; the next run calls this first.

    Returns `serving` (the release whose every service runs as stored; the current release when
    several match, else the newest; empty when none does: an empty stack, releases from before the
    labels, or a stack changed by hand), `activate` (true when that release is not the current
    one), `succeeded` (true when it still says pending), `interrupted` (releases left pending by
    a cut-short run that do not serve: never activated, their outcome unknown) and `reason`."""
    specs = {str(k): str(v) for k, v in (specs or {}).items()}
    current = next((r for r in releases if r.get("current")), None)
    matching = [r for r in releases if specs and (r.get("extra") or {}).get("specs") == specs]
    serving = current if current in matching else (matching[-1] if matching else None)
    serving_id = str(serving.get("id", "")) if serving else ""
    current_id = str(current.get("id", "")) if current else ""
    interrupted = [
        str(r.get("id"))
        for r in releases
        if r.get("outcome") == "pending" and str(r.get("id")) not in (serving_id, current_id)
    ]
    if not specs:
        reason = "the stack runs no service"
    elif serving is None:
        reason = "the stack runs no stored release (labels from before pidock.spec, or changed by hand)"
    elif serving_id == current_id:
        reason = f"the current release {serving_id} serves"
    else:
        reason = f"{serving_id} ({serving.get('version')}) serves, the record said {current_id or 'none'}"
    return {
        "serving": serving_id,
        "version": str(serving.get("version", "")) if serving else "",
        "current": current_id,
        "activate": bool(serving_id) and serving_id != current_id,
        "succeeded": bool(serving) and serving.get("outcome") == "pending",
        "interrupted": interrupted,
        "reason": reason,
    }


class FilterModule:
    """pidock.stack swarm release filters."""

    def filters(self) -> dict[str, Any]:
        return {
            "swarm_release_images": swarm_release_images,
            "swarm_rollback_plan": swarm_rollback_plan,
            "swarm_stale_objects": swarm_stale_objects,
            "swarm_served_release": swarm_served_release,
        }
