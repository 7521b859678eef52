"""Container logs: the k8s-file lines in a window, and a follower while the container runs.

The handler gets the lines read so far and, for ``follow``, a :class:`LogFollow`
it drains: lines appended later reach its callback until the container exits
(then the rest of the file is read) or the caller is cancelled (the client left).
"""

from collections.abc import Callable

from attrs import frozen
from twisted.internet.interfaces import IReactorFDSet

from podapi.engine.containers import ContainerService
from podapi.engine.lifecycle import Lifecycle
from podapi.engine.state.containers import ContainerRecord
from podapi.errors import NotImplementedHere
from podapi.storage.k8slog import LogFollower, LogLine, read_lines
from podapi.threads import Blocking


@frozen
class LogQuery:
    """What a logs request asks for.

    :ivar since_ns: only lines at or after this time (None: from the start).
    :ivar until_ns: only lines at or before this time (None: to the end).
    :ivar tail: only the last this many lines (None: all).
    :ivar follow: keep reading while the container runs.
    """

    since_ns: int | None = None
    until_ns: int | None = None
    tail: int | None = None
    follow: bool = False


class LogFollow:
    """The lines a running container writes after the first read, until it exits."""

    def __init__(
        self,
        lifecycle: Lifecycle,
        record: ContainerRecord,
        *,
        reactor: IReactorFDSet,
        path: str,
        offset: int,
        io: Blocking,
    ) -> None:
        self._lifecycle = lifecycle
        self._record = record
        self._reactor = reactor
        self._path = path
        self._offset = offset
        self._io = io

    async def drain(self, send: Callable[[LogLine], None]) -> None:
        """Call ``send`` with each new line until the container exits (then the rest)."""
        follower = LogFollower(self._reactor, self._path, self._offset, self._io, send)
        follower.start()
        try:
            await self._lifecycle.next_exit(self._record)
            await follower.finish()
        finally:
            await follower.stop()


@frozen
class LogRead:
    """The lines read now, and the follower when the query follows a running container."""

    lines: list[LogLine]
    follow: LogFollow | None


class ContainerLogs:
    """Reading containers' logs.

    :param reactor: watches a followed log (inotify).
    """

    def __init__(
        self,
        containers: ContainerService,
        lifecycle: Lifecycle,
        io: Blocking,
        reactor: IReactorFDSet,
    ) -> None:
        self._containers = containers
        self._lifecycle = lifecycle
        self._io = io
        self._reactor = reactor

    async def read(self, record: ContainerRecord, query: LogQuery) -> LogRead:
        """The log's lines as ``query`` selects them; a follower only for a live container.

        A partial last line is included unless the log is followed (the
        follower sends it once its end arrives).  A container with the ``none``
        log driver has no log to read: 501, as Docker's.
        """
        if record.spec.log_driver == "none":
            raise NotImplementedHere(
                "configured logging driver does not support reading",
                cause="logs not supported",
            )
        path = self._containers.paths(record.id).log
        follow = query.follow and record.alive
        lines, offset = await self._io(
            _read_window, path, query.since_ns, query.until_ns, query.tail, not follow
        )
        if not follow:
            return LogRead(lines, None)
        return LogRead(
            lines,
            LogFollow(
                self._lifecycle,
                record,
                reactor=self._reactor,
                path=path,
                offset=offset,
                io=self._io,
            ),
        )

    async def lines(self, record: ContainerRecord) -> list[LogLine]:
        """Every complete line of the log (attach's ``logs=1`` replay)."""
        lines, _ = await self._io(read_lines, self._containers.paths(record.id).log)
        return lines


def _read_window(
    path: str, since_ns: int | None, until_ns: int | None, tail: int | None, include_partial: bool
) -> tuple[list[LogLine], int]:
    """:func:`read_lines` with positional arguments (for the thread pool)."""
    return read_lines(
        path, since_ns=since_ns, until_ns=until_ns, tail=tail, include_partial=include_partial
    )
