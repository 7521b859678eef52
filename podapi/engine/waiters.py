"""Waiting for containers: the next exit (``docker wait``, stop) and the next state change."""

from collections import defaultdict
from typing import Any

from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure

from podapi.engine.state.containers import ContainerRecord
from podapi.errors import NoSuchContainer


class Waiters:
    """Deferreds waiting on containers, fired by the lifecycle as things happen."""

    def __init__(self) -> None:
        self._exits: defaultdict[str, list[Deferred[ContainerRecord]]] = defaultdict(list)
        self._changes: defaultdict[str, list[Deferred[ContainerRecord | None]]] = defaultdict(list)

    def exit_of(self, container_id: str) -> Deferred[ContainerRecord]:
        """A Deferred for the container's next exit (take it before causing the exit)."""
        waiter: Deferred[ContainerRecord] = Deferred()
        self._exits[container_id].append(waiter)
        return waiter

    async def next_exit(self, container_id: str) -> ContainerRecord:
        """The record after the container's next exit."""
        return await self.exit_of(container_id)

    async def next_change(self, container_id: str) -> ContainerRecord | None:
        """The record after its next state change (None once removed)."""
        waiter: Deferred[ContainerRecord | None] = Deferred()
        self._changes[container_id].append(waiter)
        return await waiter

    def exited(self, record: ContainerRecord) -> None:
        """The container exited: wake exit and change waiters."""
        for waiter in self._exits.pop(record.id, []):
            waiter.callback(record)
        self.changed(record)

    def changed(self, record: ContainerRecord) -> None:
        """The container's state changed: wake change waiters."""
        for waiter in self._changes.pop(record.id, []):
            waiter.callback(record)

    def removed(self, container_id: str) -> None:
        """The container is gone: change waiters get None, exit waiters an error."""
        for change in self._changes.pop(container_id, []):
            change.callback(None)
        for exit_waiter in self._exits.pop(container_id, []):
            exit_waiter.errback(NoSuchContainer(f"container {container_id} was removed"))


async def within(
    d: Deferred[ContainerRecord], seconds: float, clock: IReactorTime
) -> ContainerRecord:
    """The result of ``d``, waiting at most ``seconds`` (``TimeoutError`` after).

    Only a relay is given up on a timeout; ``d`` itself is left to fire.
    """
    relay: Deferred[ContainerRecord] = Deferred()

    def forward(result: Any) -> None:
        if not relay.called:
            if isinstance(result, Failure):
                relay.errback(result)
            else:
                relay.callback(result)

    d.addBoth(forward)
    relay.addTimeout(max(seconds, 0.0), clock)
    try:
        return await relay
    except defer.TimeoutError:
        raise TimeoutError(f"no exit within {seconds} s") from None
