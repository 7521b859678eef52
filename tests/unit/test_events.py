"""The event bus and its persisted log (filters: test_eventfilters.py)."""

import json
from pathlib import Path

import pytest_twisted

from podapi.engine.events import Event, EventBus, EventLog
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
