"""Many clients at once: no lost or duplicated state, nothing leaked afterwards."""

import threading
from collections.abc import Callable
from pathlib import Path

import docker
import pytest

from tests.integration.containers_support import IMAGE, assert_nothing_leaked, load_image
from tests.support import ServerProcess

pytestmark = pytest.mark.integration

CLIENTS = 20


def test_parallel_create_start_wait_remove(
    start_server: Callable[..., ServerProcess], busybox_archive: Path
) -> None:
    server = start_server()
    load_image(server, busybox_archive)
    everyone_created = threading.Barrier(CLIENTS + 1, timeout=120)
    checked = threading.Event()
    results: dict[int, tuple[str, int, bytes]] = {}
    errors: list[BaseException] = []

    def client(n: int) -> None:
        api = docker.DockerClient(base_url=server.uri, version="1.44", timeout=120)
        try:
            container = api.containers.create(IMAGE, ["sh", "-c", f"echo {n}; exit {n % 3}"])
            everyone_created.wait()
            assert checked.wait(timeout=120)
            container.start()
            code = container.wait(timeout=120)["StatusCode"]
            output = container.logs()
            container.remove()
            results[n] = (container.id, code, output)
        except BaseException as e:  # reported by the main thread
            errors.append(e)
            everyone_created.abort()
        finally:
            api.close()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    try:
        everyone_created.wait()
        listed = server.get_json("/v1.44/containers/json?all=1")
        names = [c["Names"][0] for c in listed]
        assert len(listed) == CLIENTS
        assert len(set(names)) == CLIENTS
    finally:
        checked.set()
        for thread in threads:
            thread.join(timeout=180)
    assert errors == []
    assert sorted(results) == list(range(CLIENTS))
    assert len({cid for cid, _, _ in results.values()}) == CLIENTS
    for n, (_, code, output) in results.items():
        assert (code, output) == (n % 3, f"{n}\n".encode())
    assert server.get_json("/v1.44/containers/json?all=1") == []
    assert_nothing_leaked(server)
