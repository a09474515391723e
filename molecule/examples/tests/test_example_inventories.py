"""Every example inventory under inventories/examples parses, its stack passes the compose role's
own validation (pidock.stack.compose_errors) without a host, and the compose file the role would
render from it is accepted by `docker compose config` (run in one test host, the controller has
no compose v2)."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from typing import Any

import jinja2
import pytest
import yaml
from pidock_helpers import run_ok

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = ROOT / "inventories" / "examples"
SHAPES = sorted(p.name for p in EXAMPLES.iterdir() if (p / "hosts.yml").is_file())

_spec = importlib.util.spec_from_file_location("compose_stack", ROOT / "plugins" / "filter" / "compose_stack.py")
assert _spec and _spec.loader
compose_stack = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(compose_stack)


def _load(shape: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    hosts = yaml.safe_load((EXAMPLES / shape / "hosts.yml").read_text())
    groups = hosts["all"]["children"]
    assert len(groups) == 1, f"{shape}: one group per example inventory"
    group = next(iter(groups))
    text = (EXAMPLES / shape / "group_vars" / group / "main.yml").read_text()
    return groups[group], yaml.safe_load(text), text


def _stack(data: dict[str, Any]) -> dict[str, Any]:
    """The stack as roles/compose/vars/main.yml assembles it for the filters."""
    tls_dir = f"/opt/pidock/stacks/{data['compose_project']}/tls"
    return {
        "project": data["compose_project"],
        "version": data["compose_version"],
        "services": data["compose_services"],
        "volumes": data.get("compose_volumes", {}),
        "networks": data.get("compose_networks", {}),
        "secret_names": list((data.get("compose_secrets") or {}).keys()),
        "cutover": data.get("compose_cutover", "blue_green"),
        "front": {
            "enabled": data.get("compose_front_enabled", True),
            "name": data.get("compose_front_name", "nginx"),
            "image": data.get("compose_front_image", "nginx:stable"),
            "source": "pull",
            "upstream_service": data.get("compose_front_upstream_service", "app"),
            "images_volume": data.get("compose_front_images_volume", ""),
            "bind": data.get("compose_front_bind", "0.0.0.0"),
            "http_port": data.get("compose_front_http_port", 80),
            "https_port": data.get("compose_front_https_port", 443),
            "conf_dir": f"/opt/pidock/stacks/{data['compose_project']}/front/conf.d",
            "tls_dir": tls_dir,
            "tls_fullchain": f"{tls_dir}/fullchain.pem",
            "tls_privkey": f"{tls_dir}/privkey.pem",
        },
    }


def _rendered(data: dict[str, Any]) -> dict[str, Any]:
    """The group_vars with their Jinja resolved, vault_* values replaced by test strings."""
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    context = dict(data)
    context.update({k: "test-only-secret" for k in _vault_names(data)})

    def walk(value: Any) -> Any:
        if isinstance(value, str):
            return env.from_string(value).render(context)
        if isinstance(value, list):
            return [walk(v) for v in value]
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        return value

    return walk(data)


def _vault_names(data: dict[str, Any]) -> set[str]:
    return set(re.findall(r"\b(vault_\w+)\b", yaml.safe_dump(data)))


def test_four_shapes() -> None:
    assert SHAPES == ["api-postgres", "nonroot-metrics", "three-tier-postgres", "web-worker-sqlite"]


@pytest.mark.parametrize("shape", SHAPES)
def test_example_is_documented_and_valid(shape: str) -> None:
    group, data, text = _load(shape)
    assert group["hosts"], f"{shape}: the example lists a host"
    for heading in ("What it shows", "Deploy", "Variables that matter"):
        assert f"# {heading}" in text, f"{shape}: header section {heading!r} missing"
    assert data["tls_stack_name"] == "{{ compose_project }}"
    # Images are what an operator pulls from a registry: nothing local/ or built in the example.
    for name, svc in data["compose_services"].items():
        assert not svc["image"].startswith("local/"), f"{shape}: {name} uses a test-ground image"
        assert svc.get("source", "pull") == "pull", f"{shape}: {name} is not pulled"
    # Secrets come from Vault variables, never literal values.
    for key, value in (data.get("compose_secrets") or {}).items():
        assert "{{ vault_" in value, f"{shape}: compose_secrets.{key} does not come from a vault_ variable"
    assert compose_stack.compose_errors(_stack(_rendered(data))) == []


@pytest.mark.parametrize("shape", SHAPES)
def test_rendered_compose_file_is_valid(host: Any, shape: str) -> None:
    if host.backend.get_hostname() != "examples-notes":
        pytest.skip("needs one host with compose v2")
    _, data, _ = _load(shape)
    data = _rendered(data)
    definition = compose_stack.compose_definition(_stack(data), "blue", {})
    work = f"/root/example-{shape}"
    run_ok(host, "mkdir -p %s", work)
    env = "".join(f"{k}='{v}'\n" for k, v in (data.get("compose_secrets") or {}).items())
    run_ok(host, "printf '%%s' %s > %s", env, f"{work}/.env")
    run_ok(host, "printf '%%s' %s > %s", yaml.safe_dump(definition, sort_keys=False), f"{work}/compose.yml")
    out = run_ok(host, "cd %s && docker compose -p %s config --format json", work, data["compose_project"])
    services = json.loads(out)["services"]
    stack = _stack(data)
    upstream = stack["front"]["upstream_service"]
    expected = {f"{n}-blue" if n == upstream and stack["cutover"] == "blue_green" else n for n in stack["services"]}
    assert set(services) == expected | {stack["front"]["name"]}
    for name, svc in stack["services"].items():
        rendered = services[f"{name}-blue" if f"{name}-blue" in services else name]
        if svc.get("limits", {}).get("memory"):
            assert rendered["deploy"]["resources"]["limits"]["memory"], f"{shape}: {name} lost its memory limit"
        if svc.get("user"):
            assert rendered["user"] == svc["user"]
