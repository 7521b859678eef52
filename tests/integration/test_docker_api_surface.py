"""Docker API surface through real clients: swarm stubs, version negotiation,
distribution inspect, podman-remote events."""

import json
import os
import subprocess
import urllib.request
from pathlib import Path

import docker
import pytest

from tests.fixtures.registry import Registry
from tests.integration.containers_support import docker as docker_cli
from tests.integration.containers_support import needs_cli, needs_podman, podman
from tests.integration.test_registry_images import inspect, seed
from tests.support import ServerProcess

pytestmark = pytest.mark.integration

NOT_A_MANAGER = (
    'This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" '
    "to connect this node to swarm and try again."
)


def test_docker_py_leave_swarm_when_in_no_swarm(server: ServerProcess) -> None:
    """``leave_swarm(force=True)`` accepts Docker's 503 (our 404 made it raise)."""
    client = docker.APIClient(base_url=server.uri, version="auto")
    try:
        assert client.leave_swarm(force=True) is True
        with pytest.raises(docker.errors.APIError) as raised:
            client.nodes()
        assert raised.value.status_code == 503
        assert raised.value.explanation == NOT_A_MANAGER
        assert client.info()["Swarm"]["LocalNodeState"] == "inactive"
    finally:
        client.close()


@needs_cli
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("swarm", "leave"), "This node is not part of a swarm"),
        (("node", "ls"), NOT_A_MANAGER),
        (("service", "ls"), NOT_A_MANAGER),
    ],
)
def test_docker_cli_swarm_commands_print_dockers_errors(
    server: ServerProcess, args: tuple[str, ...], message: str
) -> None:
    result = docker_cli(server, *args, check=False)
    assert result.returncode != 0
    assert f"Error response from daemon: {message}" in result.stderr


def test_docker_py_pinned_to_an_unsupported_version_is_told_why(server: ServerProcess) -> None:
    too_new = docker.APIClient(base_url=server.uri, version="9.99")
    try:
        with pytest.raises(docker.errors.APIError) as new:
            too_new.version()
        assert new.value.status_code == 400
        assert new.value.explanation == (
            "client version 9.99 is too new. Maximum supported API version is 1.44"
        )
    finally:
        too_new.close()
    # docker-py itself refuses versions below 1.24, so the old one goes over the socket.
    old = server.request("GET", "/v1.11/containers/json")
    assert old.status == 400
    assert old.json()["message"] == (
        "client version 1.11 is too old. Minimum supported API version is 1.24, "
        "please upgrade your client to a newer version"
    )
    assert server.request("GET", "/v4.3.1/libpod/_ping").status == 200


@needs_cli
def test_docker_cli_pinned_too_new_is_refused(server: ServerProcess) -> None:
    result = subprocess.run(
        ["docker", "version", "--format", "{{.Server.APIVersion}}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "DOCKER_HOST": server.uri, "DOCKER_API_VERSION": "1.50"},
    )
    assert "client version 1.50 is too new. Maximum supported API version is 1.44" in (
        result.stderr
    )


@needs_podman
def test_podman_remote_events_format_status(box: ServerProcess, tmp_path: Path) -> None:
    """podman 4.3.1's client decodes each libpod event into its own type and needs
    ``containerExitCode`` to do so; ``--format '{{.Status}}'`` failed on a nil event."""
    name = f"ev-{os.getpid()}"
    podman(box, tmp_path, "volume", "create", name)
    podman(box, tmp_path, "create", "--name", name, "acc-busybox", "true")
    podman(box, tmp_path, "rm", name)
    podman(box, tmp_path, "volume", "rm", name)
    for window in (("--since", "1m"), ("--since", "1m", "--until", "0s")):
        result = podman(
            box,
            tmp_path,
            "events",
            "--format",
            "{{.Status}} {{.Type}} {{.Name}}",
            "--stream=false",
            "--filter",
            f"volume={name}",
            *window,
        )
        assert result.stdout.splitlines() == [f"create volume {name}", f"remove volume {name}"]
    result = podman(
        box, tmp_path, "events", "--format", "{{.Status}}", "--since", "1m", "--stream=false"
    )
    statuses = result.stdout.splitlines()
    assert "create" in statuses and "remove" in statuses


def put_manifest_list(registry: Registry, repo: str, tag: str, entry: dict) -> tuple[bytes, str]:
    """A Docker manifest list naming ``entry`` twice (two platforms), PUT by hand."""
    body = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
            "manifests": [
                {**entry, "platform": {"architecture": "amd64", "os": "linux"}},
                {**entry, "platform": {"architecture": "arm", "os": "linux", "variant": "v7"}},
            ],
        }
    ).encode()
    media = "application/vnd.docker.distribution.manifest.list.v2+json"
    request = urllib.request.Request(
        f"http://{registry.host}/v2/{repo}/manifests/{tag}",
        data=body,
        method="PUT",
        headers={"Content-Type": media},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 201
    return body, media


def test_distribution_inspect_through_docker_py(
    box: ServerProcess, registry: Registry, busybox_archive: Path
) -> None:
    name = seed(registry, busybox_archive, "distribution/busybox:1")
    raw = inspect(name, raw=True)
    digest = inspect(name)["Digest"]
    client = docker.DockerClient(base_url=box.uri, version="auto")
    try:
        data = client.api.inspect_distribution(name)
        assert data["Descriptor"]["digest"] == digest
        assert data["Descriptor"]["mediaType"] == raw["mediaType"]
        assert data["Descriptor"]["size"] > 0
        assert [(p["os"], p["architecture"]) for p in data["Platforms"]] == [("linux", "amd64")]
        registry_data = client.images.get_registry_data(name)
        assert registry_data.id == digest
        assert registry_data.has_platform("linux/amd64")
        assert not registry_data.has_platform("linux/arm64")
        by_digest = client.api.inspect_distribution(
            f"{registry.host}/distribution/busybox@{digest}"
        )
        assert by_digest == data
        # Nothing was pulled.
        assert not [i for i in client.images.list() if any(registry.host in t for t in i.tags)]

        body, media = put_manifest_list(
            registry,
            "distribution/busybox",
            "multi",
            {"mediaType": raw["mediaType"], "digest": digest, "size": data["Descriptor"]["size"]},
        )
        listed = client.api.inspect_distribution(f"{registry.host}/distribution/busybox:multi")
        assert listed["Descriptor"]["mediaType"] == media
        assert listed["Descriptor"]["size"] == len(body)
        assert listed["Platforms"] == [
            {"architecture": "amd64", "os": "linux"},
            {"architecture": "arm", "os": "linux", "variant": "v7"},
        ]

        with pytest.raises(docker.errors.NotFound):
            client.images.get_registry_data(f"{registry.host}/distribution/busybox:nope")
        bad = box.request("GET", "/v1.44/distribution/UPPER/Case:x/json")
        assert bad.status == 400
        image_id = box.request("GET", "/v1.44/distribution/" + "a" * 64 + "/json")
        assert image_id.status == 400
        assert image_id.json()["message"] == "no manifest found for full image ID"
    finally:
        client.close()


def test_distribution_inspect_with_registry_auth(
    box: ServerProcess, tmp_path: Path, busybox_archive: Path
) -> None:
    """Credentials come from ``X-Registry-Auth``, as for a pull; without them: 401."""
    private = Registry(tmp_path / "private", users={"bob": "pw"}).start()
    try:
        name = f"{private.host}/secret/busybox:1"
        subprocess.run(
            [
                "skopeo",
                "copy",
                "--dest-tls-verify=false",
                "--dest-creds",
                "bob:pw",
                f"docker-archive:{busybox_archive}",
                f"docker://{name}",
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        client = docker.APIClient(base_url=box.uri, version="auto")
        try:
            with pytest.raises(docker.errors.APIError) as refused:
                client.inspect_distribution(name)
            assert refused.value.status_code == 401
            data = client.inspect_distribution(
                name, auth_config={"username": "bob", "password": "pw"}
            )
            assert data["Descriptor"]["digest"].startswith("sha256:")
        finally:
            client.close()
    finally:
        private.stop()
