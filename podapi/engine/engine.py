"""The engine facade the HTTP handlers talk to."""

import sqlite3
import time
from collections.abc import Callable
from typing import Any

from podapi.config import Config
from podapi.engine.distribution import Distribution
from podapi.engine.events import EventBus, EventLog
from podapi.engine.images import ImageService
from podapi.engine.layout import Layout
from podapi.engine.state import State
from podapi.engine.system import Info, ObjectCounts, System, server_id
from podapi.oci import host
from podapi.oci.process import Runner
from podapi.storage.registries import RegistriesConfig
from podapi.storage.registry import RegistryClient
from podapi.threads import Blocking


def _ensure_server_id(conn: sqlite3.Connection) -> str:
    row = conn.execute("SELECT value FROM meta WHERE key = 'server_id'").fetchone()
    if row is not None:
        return str(row[0])
    new_id = server_id(None)
    conn.execute("INSERT INTO meta (key, value) VALUES ('server_id', ?)", (new_id,))
    return new_id


class Engine:
    """State, events and system facts, started and stopped with the service.

    :param config: the server configuration.
    :param io: thread pool for blocking file work.
    :param db: the serial executor the database and event log live on.
    :param runner: runs helper processes.
    :param reactor: time and network for the registry client.
    :param now_ns: wall clock in nanoseconds (tests pass a fixed one).
    """

    def __init__(
        self,
        config: Config,
        *,
        io: Blocking,
        db: Blocking,
        runner: Runner,
        reactor: Any,
        now_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.config = config
        self.io = io
        self.layout = Layout(config.root, config.runroot)
        self.state = State(self.layout.database, db)
        self.events = EventBus(EventLog(self.layout.events_dir), db, now_ns)
        self.system = System(self.layout, io, runner, config.listen.uri)
        self.images = ImageService(config.root, self.state, io, self.events, self._registries)
        client = RegistryClient(
            reactor, blocking=io, blobs=self.images.blobs, registries=self._registries
        )
        self.distribution = Distribution(self.images, client, self.events, io, self._registries)

    def _registries(self) -> RegistriesConfig:
        facts = self.system.facts
        return facts.registries if facts is not None else RegistriesConfig()

    async def start(self) -> None:
        """Create the layout, open the database, load system facts."""
        await self.io(self.layout.create)
        await self.state.open()
        persistent_id = await self.state.write(_ensure_server_id)
        await self.system.load(self.config.runtime, persistent_id)
        await self.images.start()

    async def stop(self) -> None:
        """Close registry connections and the database."""
        await self.distribution.close()
        await self.state.close()

    async def counts(self) -> ObjectCounts:
        """Containers by state and images."""
        images = await self.state.read(
            lambda c: int(c.execute("SELECT count(*) FROM images").fetchone()[0])
        )
        return ObjectCounts(images=images)

    async def info(self) -> Info:
        """A snapshot of everything ``/info`` reports."""
        facts = self.system.facts
        if facts is None:
            raise RuntimeError("engine is not started")
        return Info(
            facts=facts,
            components=await self.system.components(),
            memory=host.memory(),
            uptime=host.uptime_seconds(),
            cpu=host.cpu_utilization(),
            disk=host.disk_space(self.layout.root),
            counts=await self.counts(),
            layout=self.layout,
            socket_uri=self.system.socket_uri,
            event_listeners=self.events.listeners,
            now_ns=self.events.now_ns(),
        )
