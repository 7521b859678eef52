"""Fixtures shared by every test layer."""

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.fixtures.images import BuiltImage, busybox_image
from tests.fixtures.registry import Registry
from tests.hostleaks import HostSnapshot
from tests.support import ServerProcess


@pytest.fixture(scope="session", autouse=True)
def host_untouched() -> Iterator[None]:
    """After every server is gone: no bridge, veth, firewall rule or mount of ours is left."""
    snapshot = HostSnapshot()
    yield
    assert snapshot.leaks() == []


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One podapi server (no idle timeout) shared by tests that don't need their own."""
    proc = ServerProcess(tmp_path_factory.mktemp("shared-server")).start()
    yield proc
    try:
        proc.remove_containers()
    finally:
        proc.stop()


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    """Start servers of the test's own; all are stopped afterwards."""
    started: list[ServerProcess] = []

    def start(
        *args: str,
        timeout: str = "0",
        name: str = "server",
        wait: bool = True,
        spawn: bool = True,
        **kwargs: object,
    ) -> ServerProcess:
        """``wait=False``: spawned, not waited for; ``spawn=False``: made, and the test
        spawns it (once) when it has prepared what the start should find."""
        proc = ServerProcess(tmp_path / name, *args, timeout=timeout, **kwargs)  # type: ignore[arg-type]
        started.append(proc)
        if not spawn:
            return proc
        if wait:
            proc.start()
        else:
            proc.spawn()
        return proc

    yield start
    for proc in started:
        try:
            proc.remove_containers()
        finally:
            proc.stop()


@pytest.fixture(scope="session")
def busybox() -> BuiltImage:
    """The one-layer busybox test image (built from the host's busybox-static)."""
    return busybox_image()


@pytest.fixture(scope="session")
def busybox_archive(tmp_path_factory: pytest.TempPathFactory, busybox: BuiltImage) -> Path:
    """``busybox`` as a docker-archive tagged ``acc-busybox:latest``."""
    path = tmp_path_factory.mktemp("images") / "busybox.tar"
    path.write_bytes(busybox.docker_archive(["acc-busybox:latest"]))
    return path


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """An open docker-registry on 127.0.0.1 for the session."""
    reg = Registry(tmp_path_factory.mktemp("registry")).start()
    yield reg
    reg.stop()


@pytest.fixture(scope="session")
def box(server: ServerProcess, busybox_archive: Path) -> ServerProcess:
    """The shared server with ``acc-busybox:latest`` loaded (for container tests)."""
    reply = server.request("POST", "/v1.44/images/load", body=busybox_archive.read_bytes())
    assert reply.status == 200, reply.body
    return server
