"""Fixtures for tests that change a server's state: a server and clients of their own."""

from collections.abc import Callable, Iterator

import docker
import pytest

from tests.support import ServerProcess


@pytest.fixture
def fresh(start_server: Callable[..., ServerProcess]) -> ServerProcess:
    """A server of the test's own (for tests that change images or containers)."""
    return start_server()


@pytest.fixture
def dock(fresh: ServerProcess) -> Iterator[docker.DockerClient]:
    """docker-py on ``fresh``."""
    client = docker.DockerClient(base_url=fresh.uri, version="auto")
    yield client
    client.close()
