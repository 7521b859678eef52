"""A real container store (SQLite on disk, inline threads) for the lifecycle's parts."""

import os
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from attrs import define, evolve, field
from twisted.internet.task import Clock

from podapi.engine.containers import ContainerService, run_config
from podapi.engine.containerspec import ContainerSpec
from podapi.engine.events import EventBus, EventLog
from podapi.engine.layout import Layout
from podapi.engine.state import containers as rows
from podapi.engine.state.containers import ContainerRecord
from podapi.engine.state.database import State
from podapi.oci.runtime import OCIRuntime
from podapi.testing.process import FakeRunner
from podapi.testing.threads import InlineBlocking

RUNC = "/usr/bin/runc"


@define
class Store:
    """Containers in a database under ``tmp``; events are collected in ``emitted``."""

    layout: Layout
    containers: ContainerService
    clock: Clock
    runner: FakeRunner
    runtime: OCIRuntime
    emitted: list[tuple[str, str, dict[str, str]]] = field(factory=list)

    def runc(self, *args: str) -> tuple[str, ...]:
        """The argv the runtime runs for a subcommand."""
        return tuple(self.runtime.argv(*args))

    def actions(self, container_id: str) -> list[str]:
        return [action for cid, action, _ in self.emitted if cid == container_id]

    async def add(self, container_id: str, **values: Any) -> ContainerRecord:
        """Insert a container row, then set ``values`` (state, run_id, policy...)."""
        spec = ContainerSpec(image="busybox", command=("true",))
        spec = evolve(spec, **{k: values.pop(k) for k in list(values) if k in _SPEC_FIELDS})
        record = ContainerRecord(
            id=container_id,
            name="c" + container_id[:6],
            image_id="i" * 64,
            image_name="busybox",
            created=1,
            spec=spec,
            run=run_config(spec, {}, container_id, container_id[:12]),
            state="created",
        )
        if "healthcheck" in values:
            record = evolve(record, run=evolve(record.run, healthcheck=values.pop("healthcheck")))
        await self.containers._state.write(partial(rows.insert, record=record))
        if values:
            return await self.containers.update_record(container_id, **values)
        return await self.containers.get(container_id)

    def write_exit_file(self, container_id: str, code: int) -> None:
        with open(os.path.join(self.layout.exits_dir, container_id), "w") as f:
            f.write(str(code))

    def exit_file_exists(self, container_id: str) -> bool:
        return os.path.exists(os.path.join(self.layout.exits_dir, container_id))


_SPEC_FIELDS = {"restart_policy", "auto_remove", "network_mode"}


async def open_store(tmp: Path, clock: Clock | None = None, name: str = "podapi.db") -> Store:
    """A store whose wall clock is ``clock`` (``task.Clock``), opened on ``tmp``."""
    clock = clock or Clock()
    io = InlineBlocking()
    layout = Layout(str(tmp / "root"), str(tmp / "run"))
    layout.create()
    os.makedirs(layout.exits_dir, exist_ok=True)
    os.makedirs(layout.runtime_state, exist_ok=True)
    state = State(str(tmp / name), io)
    await state.open()
    await state.write(
        lambda c: c.execute(
            "INSERT OR IGNORE INTO images VALUES (?, 'sha256:m', 'x', 1, 1, 0, '{}', 'amd64', "
            "'linux', '')",
            ("i" * 64,),
        )
    )
    now: Callable[[], int] = lambda: int(clock.seconds() * 1e9)  # noqa: E731
    events = EventBus(EventLog(layout.events_dir), io, now)
    containers = ContainerService(
        layout,
        state=state,
        io=io,
        events=events,
        images=None,  # type: ignore[arg-type]
        networks=None,  # type: ignore[arg-type]
        volumes=None,  # type: ignore[arg-type]
        now_ns=now,
    )
    runner = FakeRunner()
    store = Store(layout, containers, clock, runner, OCIRuntime(runner, RUNC, layout.runtime_state))

    def emit(record: ContainerRecord, action: str, **extra: str) -> None:
        store.emitted.append((record.id, action, extra))

    containers.emit = emit  # type: ignore[method-assign]
    return store


@define
class FakeMounts:
    """ContainerMounts that only counts what it is asked to release."""

    detached: list[str] = field(factory=list)
    alive: set[str] | None = None

    async def detach(self, container_id: str, mounts: object, paths: object) -> None:
        self.detached.append(container_id)

    async def reconcile(self, alive: set[str]) -> None:
        self.alive = alive
