"""pidock.stack.docker, upstream source, against a signed apt repository served on loopback."""

from __future__ import annotations

import json

from pidock_helpers import docker_info, run_ok, version_tuple

SOURCES = "/etc/apt/sources.list.d/docker.sources"
KEYRING = "/etc/apt/keyrings/docker.asc"
REPO = "http://127.0.0.1:8765/debian"


def _fingerprint(host) -> str:
    return host.file("/var/tmp/pidock-repo/fingerprint").content_string.strip()


def _deb822(host) -> dict[str, str]:
    fields = {}
    for line in host.file(SOURCES).content_string.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition(":")
            fields[key.strip()] = value.strip()
    return fields


def test_sources_file_is_deb822(host):
    f = host.file(SOURCES)
    assert f.exists
    assert f.mode == 0o644
    assert f.content_string.startswith("#"), "ansible_managed header"
    assert _deb822(host) == {
        "Types": "deb",
        "URIs": REPO,
        "Suites": "trixie",
        "Components": "stable",
        "Architectures": run_ok(host, "dpkg --print-architecture").strip(),
        "Signed-By": KEYRING,
    }


def test_no_one_line_source_for_docker(host):
    out = host.run("grep -rl 127.0.0.1:8765 /etc/apt/sources.list /etc/apt/sources.list.d/*.list")
    assert out.stdout.strip() == ""


def test_keyring_holds_the_pinned_key(host):
    f = host.file(KEYRING)
    assert f.mode == 0o644
    assert f.user == "root"
    out = run_ok(host, f"gpg --show-keys --with-colons {KEYRING}")
    fprs = [line.split(":")[9] for line in out.splitlines() if line.startswith("fpr:")]
    # the served block also holds an appended "Attacker" key: only the pinned primary key is installed
    assert fprs == [_fingerprint(host)], out
    assert "Attacker" not in out
    served = run_ok(host, "GNUPGHOME=$(mktemp -d) gpg --show-keys --with-colons /var/tmp/pidock-repo/debian/gpg")
    assert "Attacker" in served, "the scenario really serves the appended key"


def test_apt_fetched_the_signed_lists(host):
    assert host.file("/var/lib/apt/lists/127.0.0.1:8765_debian_dists_trixie_InRelease").exists
    policy = run_ok(host, "apt-cache policy docker.io")
    assert f"{REPO} trixie/stable amd64 Packages" in policy, policy


def test_packages_installed_and_pin_held(host):
    for pkg in ("docker.io", "docker-cli", "docker-compose"):
        assert host.package(pkg).is_installed, pkg
    assert host.package("docker.io").version.startswith("26.1.5")
    held = run_ok(host, "apt-mark showhold").split()
    assert "docker.io" in held
    assert "docker-cli" not in held


def test_engine_and_compose(host):
    assert host.service("docker").is_running
    info = docker_info(host)
    assert version_tuple(info["ServerVersion"])[0] == 26
    assert version_tuple(run_ok(host, "docker compose version --short")) >= (2, 18)


def test_facts(host):
    facts = json.loads(host.file("/root/docker_facts.json").content_string)
    assert facts["install_source"] == "upstream"
    assert facts["architecture"] == "amd64"
    assert version_tuple(facts["compose_version"]) >= (2, 18)
    assert facts["engine_version"] == docker_info(host)["ServerVersion"]


def test_wrong_fingerprint_fails_before_apt_sources_change(host):
    result = json.loads(host.file("/root/wrong_fingerprint.json").content_string)
    msg = result["msg"]
    assert "does not carry the pinned fingerprint" in msg, msg
    assert "docker_upstream_gpg_fingerprint=0000111122223333444455556666777788889999" in msg, msg
    assert _fingerprint(host) in msg, "the message names the fingerprint the key really has"
    assert result["before"] == result["after"], "sources file or keyring changed"
    assert all(result["before"]), result
    # The run asked for the "test" channel: had it written the source, this would say so.
    assert _deb822(host)["Components"] == "stable"
