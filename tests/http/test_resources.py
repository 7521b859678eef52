"""Volumes and networks removed with the containers using them, network prune, ``/version``."""

import sqlite3
from functools import partial
from typing import Any

import pytest
import pytest_twisted
from treq.testing import StubTreq
from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from podapi.engine import containers as containers_module
from podapi.engine.containers import run_config
from podapi.engine.containerspec import ContainerSpec, MountSpec, NetworkEndpoint
from podapi.engine.engine import Engine
from podapi.engine.state import containers as container_rows
from podapi.engine.state import volumes as volume_rows
from podapi.engine.state.containers import CREATED, ContainerRecord
from podapi.errors import NoSuchContainer


async def request(api: StubTreq, method: str, path: str) -> tuple[int, Any]:
    response = await api.request(method, "http://d" + path)
    return response.code, await response.json() if response.code != 204 else None


def _insert_image(conn: sqlite3.Connection) -> None:
    conn.execute(
        "INSERT OR IGNORE INTO images (id, manifest_digest, manifest_media_type, created, added,"
        " size, labels, architecture, os) VALUES (?, '', '', 0, 0, 0, '{}', 'amd64', 'linux')",
        ("i" * 64,),
    )


async def add_container(engine: Engine, container_id: str, spec: ContainerSpec) -> None:
    """A created container's row (and its image's): enough to be a volume's or network's user."""
    await engine.state.write(_insert_image)
    record = ContainerRecord(
        id=container_id,
        name=container_id[:8],
        image_id="i" * 64,
        image_name="busybox",
        created=1,
        spec=spec,
        run=run_config(spec, {}, container_id, container_id[:12]),
        state=CREATED,
    )
    await engine.state.write(partial(container_rows.insert, record=record))


async def container_ids(engine: Engine) -> list[str]:
    return [r.id for r in await engine.containers.all()]


@pytest_twisted.ensureDeferred
async def test_libpod_volume_remove_with_force_removes_its_containers_first(
    api: StubTreq, engine: Engine
) -> None:
    """``DELETE /libpod/volumes/{name}`` is 409 while used; with ``force`` its users go first."""
    await engine.volumes.create("data")
    mount = MountSpec(type="volume", source="data", destination="/data", name="data")
    await add_container(
        engine, "a" * 64, ContainerSpec(image="busybox", command=("true",), mounts=(mount,))
    )
    await engine.state.write(partial(volume_rows.add_users, container_id="a" * 64, names=["data"]))
    code, body = await request(api, "DELETE", "/v4.3.1/libpod/volumes/data")
    assert code == 409, body
    assert await container_ids(engine) == ["a" * 64]
    code, _ = await request(api, "DELETE", "/v4.3.1/libpod/volumes/data?force=true&timeout=3")
    assert code == 204
    assert await container_ids(engine) == []
    assert await engine.volumes.find("data") is None


@pytest_twisted.ensureDeferred
async def test_volume_remove_of_an_unknown_volume(api: StubTreq) -> None:
    """Libpod answers 404 even with ``force``; compat's ``force`` makes it 204."""
    code, _ = await request(api, "DELETE", "/v4.3.1/libpod/volumes/nope?force=true")
    assert code == 404
    code, _ = await request(api, "DELETE", "/v1.41/volumes/nope?force=1")
    assert code == 204


@pytest_twisted.ensureDeferred
async def test_network_remove_with_force_and_prune(api: StubTreq, engine: Engine) -> None:
    """A used network: compat remove is 409, prune keeps it; libpod ``force`` removes
    its containers, then the network."""
    await engine.networks.create("front")
    await engine.networks.create("spare")
    spec = ContainerSpec(image="busybox", command=("true",), networks=(NetworkEndpoint("front"),))
    await add_container(engine, "b" * 64, spec)
    code, body = await request(api, "DELETE", "/v1.41/networks/front")
    assert code == 409, body
    code, body = await request(api, "POST", "/v1.41/networks/prune")
    assert (code, body) == (200, {"NetworksDeleted": ["spare"]})
    code, body = await request(
        api, "POST", "/v1.41/networks/prune?filters=%7B%22name%22%3A%5B%22x%22%5D%7D"
    )
    assert code == 400, body
    code, body = await request(api, "DELETE", "/v4.3.1/libpod/networks/front?force=true")
    assert (code, body) == (200, [{"Name": "front", "Err": None}])
    assert await container_ids(engine) == []
    assert [n.name for n in await engine.networks.all()] == [engine.networks.default.name]


@pytest_twisted.ensureDeferred
async def test_version_and_info_report_the_host_facts(api: StubTreq, engine: Engine) -> None:
    """``/version`` carries the kernel and arch; both ``info`` dialects format the uptime."""
    facts = engine.system.facts
    assert facts is not None
    code, body = await request(api, "GET", "/v1.41/version")
    assert code == 200
    assert (body["KernelVersion"], body["Arch"]) == (facts.kernel, facts.arch)
    _, compat = await request(api, "GET", "/v1.41/info")
    _, libpod = await request(api, "GET", "/v4.3.1/libpod/info")
    for uptime in (compat["Uptime"], libpod["host"]["uptime"]):
        hours, minutes, seconds = uptime.split()
        assert hours.endswith("h") and minutes.endswith("m") and seconds.endswith("s")


@pytest_twisted.ensureDeferred
async def test_network_list_and_inspect_read_their_users_at_once(
    api: StubTreq, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Compat network list and inspect show every user and make as many database reads for
    twenty users as for one: each read waits its turn on the one database thread, so one read
    per user made ``GET /networks`` take seconds under load (found by ``bench/load.py``)."""
    await engine.networks.create("front")
    spec = ContainerSpec(image="busybox", command=("true",), networks=(NetworkEndpoint("front"),))
    reads = 0
    real_read = engine.state.read

    def counting_read(fn: Any) -> Any:
        nonlocal reads
        reads += 1
        return real_read(fn)

    monkeypatch.setattr(engine.state, "read", counting_read)
    counts = []
    for count in (1, 20):
        for index in range(len(await container_ids(engine)), count):
            await add_container(engine, f"{index:02d}" * 32, spec)
        for path in ("/v1.41/networks", "/v1.41/networks/front"):
            reads = 0
            code, body = await request(api, "GET", path)
            assert code == 200, body
            front = (
                next(n for n in body if n["Name"] == "front") if isinstance(body, list) else body
            )
            assert sorted(front["Containers"]) == sorted(await container_ids(engine))
            counts.append((path, reads))
    assert counts[:2] == counts[2:]


@pytest_twisted.ensureDeferred
async def test_remove_event_goes_out_as_the_container_is_gone(
    api: StubTreq, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While a removed container's files are deleted it is already gone (404), so its
    ``remove`` event is already out: a client waiting for the removal then finds the event
    (``bench/load.py`` saw ``wait?condition=removed`` end before ``destroy``)."""
    await add_container(engine, "r" * 64, ContainerSpec(image="busybox", command=("true",)))
    actions: list[str] = []
    engine.events.subscribe(lambda event: actions.append(event.action))
    seen_while_deleting: list[tuple[bool, list[str]]] = []
    real_remove_dirs = containers_module.remove_dirs

    def remove_dirs(paths: Any) -> None:
        # The database runs inline here: the lookup has its answer at once.
        found: list[object] = []
        Deferred.fromCoroutine(engine.containers.get("r" * 64)).addBoth(found.append)
        gone = isinstance(found[0], Failure) and found[0].check(NoSuchContainer) is not None
        seen_while_deleting.append((gone, list(actions)))
        real_remove_dirs(paths)

    monkeypatch.setattr(containers_module, "remove_dirs", remove_dirs)
    code, _ = await request(api, "DELETE", f"/v1.41/containers/{'r' * 64}")
    assert code == 204
    assert seen_while_deleting == [(True, ["remove"])]
