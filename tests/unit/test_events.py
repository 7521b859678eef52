"""The event bus, its persisted log and the filters."""

import json
from pathlib import Path

import pytest
import pytest_twisted

from podapi.engine.events import Event, EventBus, EventFilter, EventLog
from podapi.errors import InvalidArgument
from podapi.testing.threads import InlineBlocking


def event(
    action: str = "create",
    type: str = "container",
    actor: str = "a" * 64,
    t: int = 1,
    **attributes: str,
) -> Event:
    return Event(type=type, action=action, actor_id=actor, time_nano=t, attributes=attributes)


def test_log_round_trip_and_window(tmp_path: Path) -> None:
    log = EventLog(str(tmp_path))
    for t in range(1, 6):
        log.append(event(t=t, name=f"c{t}"))
    assert [e.time_nano for e in log.read(None, None)] == [1, 2, 3, 4, 5]
    assert [e.time_nano for e in log.read(2, 4)] == [2, 3, 4]
    assert log.read(None, None)[0].attributes == {"name": "c1"}


def test_log_rotates_and_still_reads_the_previous_file(tmp_path: Path) -> None:
    log = EventLog(str(tmp_path), max_size=400)
    for t in range(1, 21):
        log.append(event(t=t))
    assert Path(log.rotated).exists()
    times = [e.time_nano for e in log.read(None, None)]
    assert times == sorted(times)
    assert times[-1] == 20
    assert Path(log.path).stat().st_size <= 400


def test_torn_lines_are_skipped(tmp_path: Path) -> None:
    """A crash mid-write leaves half a line: it is ignored, the rest survives."""
    log = EventLog(str(tmp_path))
    log.append(event(t=1))
    with open(log.path, "a") as f:
        f.write('{"type":"container","act')
    log.append(event(t=3))
    assert [e.time_nano for e in log.read(None, None)] == [1, 3]


def test_filters_or_within_a_key_and_across_keys() -> None:
    f = EventFilter.parse({"type": ["container", "image"], "event": ["die", "start"]})
    assert f.matches(event("died"))
    assert f.matches(event("start"))
    assert not f.matches(event("create"))
    assert not f.matches(event("died", type="volume"))


def test_docker_action_aliases() -> None:
    assert EventFilter.parse({"event": ["destroy"]}).matches(event("remove"))
    assert EventFilter.parse({"event": ["delete"]}).matches(event("remove", type="image"))


def test_container_filter_by_name_or_id_prefix() -> None:
    e = event(name="web", image="busybox:latest")
    assert EventFilter.parse({"container": ["web"]}).matches(e)
    assert EventFilter.parse({"container": ["aaaa"]}).matches(e)
    assert not EventFilter.parse({"container": ["db"]}).matches(e)
    assert EventFilter.parse({"image": ["busybox"]}).matches(e)
    assert not EventFilter.parse({"image": ["alpine"]}).matches(e)


def test_label_filter() -> None:
    e = event(name="web", tier="front")
    assert EventFilter.parse({"label": ["tier"]}).matches(e)
    assert EventFilter.parse({"label": ["tier=front"]}).matches(e)
    assert not EventFilter.parse({"label": ["tier=back"]}).matches(e)


def test_unknown_filter_key_is_invalid() -> None:
    with pytest.raises(InvalidArgument):
        EventFilter.parse({"colour": ["red"]})


@pytest_twisted.ensureDeferred
async def test_bus_publishes_and_persists(tmp_path: Path) -> None:
    clock = iter(range(100, 200))
    bus = EventBus(EventLog(str(tmp_path)), InlineBlocking(), lambda: next(clock))
    seen: list[Event] = []
    unsubscribe = bus.subscribe(seen.append)
    assert bus.listeners == 1
    bus.emit("image", "pull", "sha", name="busybox:latest")
    unsubscribe()
    bus.emit("image", "remove", "sha")
    assert [e.action for e in seen] == ["pull"]
    history = await bus.history(None, None)
    assert [(e.action, e.time_nano) for e in history] == [("pull", 100), ("remove", 101)]
    record = json.loads(Path(tmp_path, "events.log").read_text().splitlines()[0])
    assert record["attributes"] == {"name": "busybox:latest"}
