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


@pytest.fixture
def client(box: ServerProcess) -> Iterator[docker.DockerClient]:
    """docker-py on the shared server; removes what the test made.

    Containers, then the networks, volumes and images they may have used.
    """
    c = docker.DockerClient(base_url=box.uri, version="auto")
    containers = {x.id for x in c.containers.list(all=True)}
    networks = {x.id for x in c.networks.list()}
    volumes = {x.name for x in c.volumes.list()}
    images = {x.id for x in c.images.list(all=True)}
    yield c
    for container in c.containers.list(all=True):
        if container.id not in containers:
            container.remove(force=True, v=True)
    for network in c.networks.list():
        if network.id not in networks:
            network.remove()
    for volume in c.volumes.list():
        if volume.name not in volumes:
            volume.remove(force=True)
    for image in c.images.list(all=True):
        if image.id not in images:
            c.images.remove(image.id, force=True)
    c.close()
