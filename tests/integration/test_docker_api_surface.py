"""Docker API surface through real clients: swarm stubs, version negotiation,
distribution inspect, podman-remote events."""

import os
import subprocess

import docker
import pytest

from tests.integration.containers_support import docker as docker_cli
from tests.integration.containers_support import needs_cli
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
