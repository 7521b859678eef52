"""IdleTracker: Podman's idle-timeout semantics on top of ``callLater``.

Podman (``pkg/api/server/idle/tracker.go``) counts a connection as *active*
from its first request until it closes, so an idle keep-alive connection holds
the service up until the HTTP layer closes it (after 2T).  A hijacked
connection (attach, exec) counts until its session ends.  A connection that
never sent a request does not count.  The timer runs from startup and is
re-armed for T whenever the active count drops to zero; when it fires the
service shuts down.  ``T == 0`` disables the timer altogether.
"""

from collections.abc import Callable, Hashable

from twisted.internet.interfaces import IDelayedCall, IReactorTime

from podapi.logs import get_logger

log = get_logger(__name__)


class IdleTracker:
    """Count active connections and fire ``on_idle`` after ``timeout`` seconds of none.

    :param clock: anything with ``callLater`` (the reactor, or ``task.Clock`` in tests).
    :param timeout: the idle window in seconds; ``0`` means never time out.
    :param on_idle: called once when the window expires with nothing active.
    """

    def __init__(self, clock: IReactorTime, timeout: float, on_idle: Callable[[], object]) -> None:
        self._clock = clock
        self.timeout = timeout
        self._on_idle = on_idle
        self._managed: set[Hashable] = set()
        self._hijacked: set[Hashable] = set()
        self._timer: IDelayedCall | None = None
        self._started = False
        self.expired = False

    @property
    def active(self) -> int:
        """The number of connections holding the service up."""
        return len(self._managed) + len(self._hijacked)

    def start(self) -> None:
        """Open the first window (Podman starts its timer before any connection);
        connections served before (while the engine reconciles) count as usual."""
        self._started = True
        if self.active == 0:
            self._arm()

    def stop(self) -> None:
        """Cancel the timer; used on shutdown."""
        self._disarm()

    def request_started(self, connection: Hashable) -> None:
        """A request arrived on ``connection``: it is active until it closes."""
        self._managed.add(connection)
        self._disarm()

    def hijacked(self, connection: Hashable) -> None:
        """``connection`` left HTTP for a raw session; it counts until ``closed``."""
        self._managed.discard(connection)
        self._hijacked.add(connection)
        self._disarm()

    def closed(self, connection: Hashable) -> None:
        """``connection`` is gone (or its hijacked session ended)."""
        before = self.active
        self._managed.discard(connection)
        self._hijacked.discard(connection)
        if before > 0 and self.active == 0:
            self._arm()

    def _arm(self) -> None:
        self._disarm()
        if self.timeout > 0 and self._started and not self.expired:
            self._timer = self._clock.callLater(self.timeout, self._expire)

    def _disarm(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    def _expire(self) -> None:
        self._timer = None
        self.expired = True
        log.info("idle for {timeout} s: shutting down", timeout=self.timeout)
        self._on_idle()
