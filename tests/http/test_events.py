"""/events on both trees: history windows, filters, dialect names, errors."""

import json
from typing import Any

import pytest_twisted
from treq.testing import StubTreq

from podapi.engine.engine import Engine
from tests.http.conftest import NOW_NS, Time

S = 1_000_000_000


async def lines(api: StubTreq, path: str) -> list[dict[str, Any]]:
    response = await api.get("http://d" + path)
    assert response.code == 200, await response.content()
    assert response.headers.getRawHeaders(b"content-type") == [b"application/json"]
    return [json.loads(line) for line in (await response.content()).splitlines()]


def emit_some(engine: Engine, now: Time) -> None:
    now.ns = NOW_NS - 30 * S
    engine.events.emit("container", "create", "c" * 64, name="web", image="busybox:latest")
    now.ns = NOW_NS - 20 * S
    engine.events.emit(
        "container", "died", "c" * 64, name="web", image="busybox:latest", containerExitCode="7"
    )
    now.ns = NOW_NS - 10 * S
    engine.events.emit("image", "remove", "i" * 64, name="busybox:latest")
    now.ns = NOW_NS


@pytest_twisted.ensureDeferred
async def test_history_with_docker_names(api: StubTreq, engine: Engine, now: Time) -> None:
    emit_some(engine, now)
    events = await lines(api, "/v1.44/events?since=0&stream=false")
    assert [e["Action"] for e in events] == ["create", "die", "delete"]
    die = events[1]
    assert die["status"] == "die"
    assert die["Actor"]["Attributes"]["exitCode"] == "7"
    assert die["Actor"]["Attributes"]["podId"] == ""
    assert die["from"] == "busybox:latest"
    assert die["timeNano"] == NOW_NS - 20 * S
    assert die["time"] == (NOW_NS - 20 * S) // S


@pytest_twisted.ensureDeferred
async def test_history_with_podman_names(api: StubTreq, engine: Engine, now: Time) -> None:
    emit_some(engine, now)
    events = await lines(api, "/v5.0.0/libpod/events?stream=false")
    assert [e["Action"] for e in events] == ["create", "died", "remove"]


@pytest_twisted.ensureDeferred
async def test_since_until_window(api: StubTreq, engine: Engine, now: Time) -> None:
    emit_some(engine, now)
    since, until = (NOW_NS - 25 * S) // S, (NOW_NS - 15 * S) // S
    events = await lines(api, f"/events?since={since}&until={until}")
    assert [e["Action"] for e in events] == ["die"]
    relative = await lines(api, "/events?since=15s&stream=false")
    assert [e["Action"] for e in relative] == ["delete"]


@pytest_twisted.ensureDeferred
async def test_filters(api: StubTreq, engine: Engine, now: Time) -> None:
    emit_some(engine, now)
    path = '/events?stream=false&filters={"type":["container"],"event":["die"]}'
    assert [e["Action"] for e in await lines(api, path)] == ["die"]
    path = '/v5.0.0/libpod/events?stream=false&filters={"event":["died","remove"]}'
    assert [e["Action"] for e in await lines(api, path)] == ["died", "remove"]
    path = '/events?stream=false&filters={"container":["web"]}'
    assert [e["Action"] for e in await lines(api, path)] == ["create", "die"]


@pytest_twisted.ensureDeferred
async def test_bad_input_is_400(api: StubTreq) -> None:
    for path in (
        "/events?since=yesterday",
        '/events?filters={"colour":["red"]}',
        "/events?filters=[",
        "/v5.0.0/libpod/events?stream=maybe",
    ):
        response = await api.get("http://d" + path)
        assert response.code == 400, path
        body = await response.json()
        assert set(body) == {"cause", "message", "response"}
        assert body["response"] == 400


@pytest_twisted.ensureDeferred
async def test_live_events_until_a_deadline(
    api: StubTreq, engine: Engine, now: Time, clock: Any
) -> None:
    """A stream with a future `until` delivers live events and ends at `until`."""
    response_d = api.get(f"http://d/events?until={(NOW_NS + 5 * S) / S}")
    engine.events.emit("volume", "create", "v", name="data")
    clock.advance(5)
    api.flush()
    response = await response_d
    body = await response.content()
    assert [json.loads(line)["Action"] for line in body.splitlines()] == ["create"]


@pytest_twisted.ensureDeferred
async def test_libpod_events_decode_in_podman_4_clients(
    api: StubTreq, engine: Engine, now: Time
) -> None:
    """Podman 4's client needs an integer ``containerExitCode`` on every event; it has
    no ``oom`` status, so that Docker event is not sent on the libpod tree."""
    emit_some(engine, now)
    engine.events.emit("container", "oom", "c" * 64, name="web", image="busybox:latest")
    engine.events.emit("volume", "create", "data", name="data", driver="local")
    engine.events.emit("image", "load", "i" * 64, name="busybox:latest")
    events = await lines(api, "/v5.0.0/libpod/events?stream=false")
    actions = ["create", "died", "remove", "create", "loadfromarchive"]
    assert [e["Action"] for e in events] == actions
    for event in events:
        attributes = event["Actor"]["Attributes"]
        assert int(attributes["containerExitCode"]) >= 0
        assert {"image", "name", "podId"} <= set(attributes)
    assert events[1]["Actor"]["Attributes"]["containerExitCode"] == "7"
    assert events[2]["Actor"]["Attributes"]["containerExitCode"] == "0"
    loads = await lines(
        api, '/v5.0.0/libpod/events?stream=false&filters={"event":["loadfromarchive"]}'
    )
    assert [e["Action"] for e in loads] == ["loadfromarchive"]
    docker = await lines(api, "/v1.44/events?since=0&stream=false")
    assert [e["Action"] for e in docker][3:] == ["oom", "create", "load"]
    assert "containerExitCode" not in docker[0]["Actor"]["Attributes"]


@pytest_twisted.ensureDeferred
async def test_pod_and_secret_events_on_both_streams(
    api: StubTreq, engine: Engine, now: Time
) -> None:
    """Pods and secrets only need ``emit``: both encoders carry their types and names;
    Podman clients before 5.5 have no ``secret`` type (they would fail on it)."""
    engine.events.emit("pod", "create", "p" * 64, name="pod1")
    engine.events.emit("pod", "remove", "p" * 64, name="pod1")
    engine.events.emit("secret", "create", "s" * 25, name="token")
    engine.events.emit("secret", "remove", "s" * 25, name="token")
    compat = await lines(api, "/v1.44/events?stream=false")
    assert [(e["Type"], e["Action"]) for e in compat] == [
        ("pod", "create"),
        ("pod", "remove"),
        ("secret", "create"),
        ("secret", "remove"),
    ]
    assert compat[2]["Actor"] == {"ID": "s" * 25, "Attributes": {"name": "token"}}
    assert "status" not in compat[0]  # Docker sends the old fields for containers and images
    newest = await lines(api, "/v5.5.0/libpod/events?stream=false")
    assert [e["Type"] for e in newest] == ["pod", "pod", "secret", "secret"]
    assert newest[0]["Actor"]["Attributes"]["name"] == "pod1"
    old = await lines(api, "/v4.3.1/libpod/events?stream=false")
    assert [(e["Type"], e["Action"]) for e in old] == [("pod", "create"), ("pod", "remove")]
    path = '/v5.5.0/libpod/events?stream=false&filters={"secret":["token"],"event":["remove"]}'
    assert [e["Type"] for e in await lines(api, path)] == ["secret"]
    path = '/events?stream=false&filters={"pod":["pod1"]}'
    assert [e["Action"] for e in await lines(api, path)] == ["create", "remove"]


@pytest_twisted.ensureDeferred
async def test_live_events_filtered_by_the_stream_names(
    api: StubTreq, engine: Engine, now: Time, clock: Any
) -> None:
    compat_d = api.get(f'http://d/events?until={(NOW_NS + 5 * S) / S}&filters={{"event":["die"]}}')
    libpod_d = api.get(
        f'http://d/v4.3.1/libpod/events?until={(NOW_NS + 5 * S) / S}&filters={{"event":["died"]}}'
    )
    engine.events.emit("container", "start", "c" * 64, name="web", image="busybox")
    engine.events.emit("container", "died", "c" * 64, name="web", image="busybox")
    engine.events.emit("container", "oom", "c" * 64, name="web", image="busybox")
    clock.advance(5)
    api.flush()
    for response_d, action in ((compat_d, "die"), (libpod_d, "died")):
        body = await (await response_d).content()
        assert [json.loads(line)["Action"] for line in body.splitlines()] == [action]


@pytest_twisted.ensureDeferred
async def test_unknown_filter_key_is_400_on_both_trees(api: StubTreq) -> None:
    for prefix in ("/v1.41", "/v4.3.1/libpod", "/v5.5.0/libpod"):
        response = await api.get(f'http://d{prefix}/events?filters={{"names":["x"]}}')
        assert response.code == 400, prefix
        assert "names" in (await response.json())["message"]
