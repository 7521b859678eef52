"""Restart policies (``--restart``) and Docker's back-off between restarts."""

from collections.abc import Awaitable, Callable

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime

from podapi.engine.containers import ContainerService
from podapi.engine.state.containers import ContainerRecord
from podapi.logs import get_logger

log = get_logger(__name__)

#: Docker's restart back-off: 100 ms doubling, at most a minute, reset after 10 s up.
BACKOFF_START, BACKOFF_MAX, BACKOFF_RESET = 0.1, 60.0, 10.0

Starter = Callable[[ContainerRecord], Awaitable[ContainerRecord]]


def should_restart(record: ContainerRecord) -> bool:
    """Whether the restart policy restarts this container after its exit.

    ``always`` and ``unless-stopped`` restart unless a user stopped it;
    ``on-failure[:N]`` restarts a non-zero exit, at most N times.
    """
    policy = record.spec.restart_policy
    if policy.name in ("always", "unless-stopped"):
        return not record.stopped_by_user
    if policy.name == "on-failure":
        within = not policy.max_retries or record.restart_count < policy.max_retries
        return record.exit_code != 0 and within and not record.stopped_by_user
    return False


class Restarts:
    """Schedules the restarts the policies ask for, with back-off, on a clock.

    :param containers: records (restart count) and events.
    :param clock: ``callLater`` for the back-off (``task.Clock`` in tests).
    :param start: starts a container (the lifecycle's ``start``).
    """

    def __init__(self, containers: ContainerService, clock: IReactorTime, start: Starter) -> None:
        self._containers = containers
        self._clock = clock
        self._start = start
        self._calls: dict[str, IDelayedCall] = {}
        self._done: dict[str, Deferred[None]] = {}
        self._backoff: dict[str, float] = {}

    def after_exit(self, record: ContainerRecord) -> None:
        """Schedule a restart if the policy wants one.

        The delay starts at :data:`BACKOFF_START` and doubles with each restart
        up to :data:`BACKOFF_MAX`; a run of :data:`BACKOFF_RESET` seconds or
        more starts it over.
        """
        if not should_restart(record):
            return
        delay = self._backoff.get(record.id, BACKOFF_START)
        ran = (record.finished_at - record.started_at) / 1e9
        if ran >= BACKOFF_RESET:
            delay = BACKOFF_START
        self._backoff[record.id] = min(delay * 2, BACKOFF_MAX)
        self._calls[record.id] = self._clock.callLater(delay, self._restart_now, record.id)
        self._done[record.id] = Deferred()

    def _restart_now(self, container_id: str) -> None:
        self._calls.pop(container_id, None)

        async def again() -> None:
            record = await self._containers.get(container_id)
            if record.alive or not should_restart(record):
                return
            record = await self._containers.update_record(
                container_id, restart_count=record.restart_count + 1
            )
            await self._start(record)
            self._containers.emit(record, "restart")

        done = self._done.pop(container_id, None)
        attempt = Deferred.fromCoroutine(again())
        attempt.addErrback(lambda f: log.failure("restarting {id}", f, id=container_id))
        if done is not None:
            attempt.addBoth(lambda _: done.callback(None))

    def pending(self, container_id: str) -> bool:
        """Whether a restart is scheduled or under way (Docker's ``restarting`` state)."""
        return container_id in self._done

    async def settled(self, container_id: str) -> None:
        """Wait for a scheduled restart to have been made (or given up)."""
        pending = self._done.get(container_id)
        if pending is not None:
            await pending

    def cancel(self, container_id: str) -> None:
        """Drop a scheduled restart (a user stop, a removal)."""
        call = self._calls.pop(container_id, None)
        if call is not None and call.active():
            call.cancel()
        done = self._done.pop(container_id, None)
        if done is not None:
            done.callback(None)

    def cancel_all(self) -> None:
        """Drop every scheduled restart (server shutdown: ``podapi.cleanup`` takes over)."""
        for container_id in list(self._calls):
            self.cancel(container_id)
