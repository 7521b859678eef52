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


def test_concurrent_starts_of_one_container(box: ServerProcess) -> None:
    """Starts of one container at once: one starts it (204), the others find it running
    (304) once they get its lock; none tries to create it a second time."""
    created = box.request(
        "POST",
        "/v1.44/containers/create",
        b'{"Image": "%s", "Cmd": ["sleep", "1000"]}' % IMAGE.encode(),
        {"Content-Type": "application/json"},
    )
    assert created.status == 201, created.body
    cid = created.json()["Id"]
    ready = threading.Barrier(5, timeout=60)
    statuses: list[int] = []

    def start() -> None:
        ready.wait()
        statuses.append(box.request("POST", f"/v1.44/containers/{cid}/start", timeout=60).status)

    threads = [threading.Thread(target=start) for _ in range(5)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=90)
        assert sorted(statuses) == [204, 304, 304, 304, 304]
        assert box.get_json(f"/v1.44/containers/{cid}/json")["State"]["Running"]
    finally:
        box.request("DELETE", f"/v1.44/containers/{cid}?force=1")
