"""Health checks: run a container's check on its interval while the server runs.

Docker's rules: the status starts as ``starting``; a passing check makes it
``healthy``; ``retries`` failures in a row make it ``unhealthy`` (failures
during the start period do not count until a check has passed).  The last
five results are kept for inspect; every status change is a
``health_status`` event.  The check runs with ``runc exec``.
"""

from collections.abc import Callable

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime

from podapi.engine.containers import ContainerService
from podapi.engine.containerspec import Healthcheck
from podapi.engine.state.containers import RUNNING, ContainerRecord
from podapi.engine.times import rfc3339_nano
from podapi.errors import Conflict, NoSuchContainer
from podapi.logs import get_logger
from podapi.oci.runtime import OCIRuntime, RuntimeFailure

log = get_logger(__name__)

NS = 1_000_000_000
STARTING, HEALTHY, UNHEALTHY = "starting", "healthy", "unhealthy"
KEEP = 5
OUTPUT_LIMIT = 4096


def command(check: Healthcheck) -> list[str]:
    """The argv of a check: ``CMD`` runs as is, ``CMD-SHELL`` through ``/bin/sh -c``."""
    kind, *rest = check.test or ("NONE",)
    if kind == "CMD-SHELL":
        return ["/bin/sh", "-c", " ".join(rest)]
    if kind == "CMD":
        return list(rest)
    return list(check.test)


class HealthChecks:
    """Schedules and runs health checks.

    :param containers: records (health fields) and events.
    :param runtime: returns the OCI runtime that runs the checks.
    :param clock: ``callLater``.
    """

    def __init__(
        self, containers: ContainerService, runtime: Callable[[], OCIRuntime], clock: IReactorTime
    ) -> None:
        self._containers = containers
        self._runtime = runtime
        self._clock = clock
        self._timers: dict[str, IDelayedCall] = {}

    def watch(self, record: ContainerRecord) -> None:
        """Start checking a container that has a health check."""
        check = record.run.healthcheck
        if check is None:
            return
        self.unwatch(record.id)
        self._schedule(record.id, check)

    def unwatch(self, container_id: str) -> None:
        """Stop checking (the container stopped or went away)."""
        timer = self._timers.pop(container_id, None)
        if timer is not None and timer.active():
            timer.cancel()

    def stop(self) -> None:
        """Cancel every timer (server shutdown)."""
        for container_id in list(self._timers):
            self.unwatch(container_id)

    def _schedule(self, container_id: str, check: Healthcheck) -> None:
        interval = check.effective().interval / NS
        self._timers[container_id] = self._clock.callLater(interval, self._tick, container_id)

    def _tick(self, container_id: str) -> None:
        self._timers.pop(container_id, None)

        async def tick() -> None:
            try:
                record = await self._containers.get(container_id)
            except NoSuchContainer:
                return
            if record.state != RUNNING or record.run.healthcheck is None:
                return
            await self.run_once(record)
            self._schedule(container_id, record.run.healthcheck)

        Deferred.fromCoroutine(tick()).addErrback(
            lambda f: log.failure("health check of {id}", f, id=container_id)
        )

    async def run_once(self, record: ContainerRecord) -> ContainerRecord:
        """Run the check now; record and return the new status (libpod ``healthcheck``)."""
        check = record.run.healthcheck
        if check is None:
            raise Conflict(
                f"container {record.name} has no defined healthcheck",
                cause="container has no defined healthcheck",
            )
        if record.state != RUNNING:
            raise Conflict(
                f"container {record.name} is not running", cause="container state improper"
            )
        start = self._containers.now()
        timeout = check.effective().timeout / NS
        try:
            result = await self._runtime().exec_simple(record.id, command(check), timeout=timeout)
            code = -1 if result.timed_out else (result.exit_code or 0)
            output = (result.stdout + result.stderr).decode("utf-8", "replace")
        except RuntimeFailure as e:
            code, output = 1, e.message
        end = self._containers.now()
        passed = code == 0
        previous = record.health_status or STARTING
        failing = 0 if passed else record.health_failing + 1
        in_start_period = (end - record.started_at) < check.start_period
        if passed:
            status = HEALTHY
        elif failing >= check.effective().retries and not (
            in_start_period and previous == STARTING
        ):
            status = UNHEALTHY
        else:
            status = previous
        entry = {
            "Start": rfc3339_nano(start),
            "End": rfc3339_nano(end),
            "ExitCode": code,
            "Output": output[:OUTPUT_LIMIT],
        }
        updated = await self._containers.update_record(
            record.id,
            health_status=status,
            health_failing=failing,
            health_log=(*record.health_log, entry)[-KEEP:],
        )
        if status != previous or not record.health_status:
            self._containers.emit(updated, "health_status", health_status=status)
        return updated
