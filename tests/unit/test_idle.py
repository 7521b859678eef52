"""IdleTracker against every row of Podman's idle table (reference 1.3), on a fake clock."""

from twisted.internet.task import Clock

from podapi.idle import IdleTracker


class Conn:
    """A stand-in connection (only identity matters)."""


def make(timeout: float = 3.0) -> tuple[Clock, IdleTracker, list[float]]:
    clock = Clock()
    fired: list[float] = []
    tracker = IdleTracker(clock, timeout, lambda: fired.append(clock.seconds()))
    tracker.start()
    return clock, tracker, fired


def test_expires_t_after_start_without_any_client() -> None:
    """-t 3, no client at all: exit at 3.0 s."""
    clock, _, fired = make(3)
    clock.advance(2.9)
    assert fired == []
    clock.advance(0.1)
    assert fired == [3.0]


def test_request_stops_the_timer_and_keepalive_holds_until_closed() -> None:
    """A request makes the connection active; idle keep-alive still counts until it closes."""
    clock, tracker, fired = make(3)
    conn = Conn()
    clock.advance(1)
    tracker.request_started(conn)
    clock.advance(100)  # request done long ago, connection kept alive: still active
    assert fired == []
    assert tracker.active == 1
    tracker.closed(conn)  # the HTTP layer closes it after 2T
    clock.advance(2.9)
    assert fired == []
    clock.advance(0.1)
    assert fired == [104.0]


def test_connection_without_request_does_not_count() -> None:
    """StateNew is not active: a client that never sends a request does not hold the timer."""
    clock, tracker, fired = make(2)
    clock.advance(2)
    assert fired == [2.0]
    assert tracker.active == 0


def test_hijacked_connection_counts_until_its_session_ends() -> None:
    """Attach/exec: active while hijacked, re-armed for T when the session ends."""
    clock, tracker, fired = make(2)
    conn = Conn()
    tracker.request_started(conn)
    tracker.hijacked(conn)
    assert tracker.active == 1
    clock.advance(5)
    assert fired == []
    tracker.closed(conn)
    clock.advance(2)
    assert fired == [7.0]


def test_long_stream_is_active_the_whole_time() -> None:
    """An events stream held 5 s: exit about T after the client disconnects."""
    clock, tracker, fired = make(2)
    conn = Conn()
    tracker.request_started(conn)
    clock.advance(5)
    tracker.closed(conn)
    clock.advance(1.9)
    assert fired == []
    clock.advance(0.1)
    assert fired == [7.0]


def test_timer_rearms_only_when_the_last_connection_goes() -> None:
    """Several active connections: the window starts when the count drops to zero."""
    clock, tracker, fired = make(1)
    a, b = Conn(), Conn()
    tracker.request_started(a)
    tracker.request_started(b)
    tracker.closed(a)
    clock.advance(5)
    assert fired == []
    tracker.closed(b)
    clock.advance(1)
    assert fired == [6.0]


def test_closing_an_unknown_connection_does_not_rearm() -> None:
    """A connection that never made a request closing does not restart the window."""
    clock, tracker, fired = make(2)
    clock.advance(1.5)
    tracker.closed(Conn())
    clock.advance(0.5)
    assert fired == [2.0]


def test_zero_timeout_never_expires() -> None:
    """-t 0: the timer is never armed."""
    clock, tracker, fired = make(0)
    conn = Conn()
    tracker.request_started(conn)
    tracker.closed(conn)
    clock.advance(10_000)
    assert fired == []
    assert clock.getDelayedCalls() == []


def test_fires_once_and_stop_cancels() -> None:
    """Expiry happens once; stop() leaves no timer behind."""
    clock, tracker, fired = make(1)
    clock.advance(1)
    conn = Conn()
    tracker.request_started(conn)
    tracker.closed(conn)
    clock.advance(10)
    assert fired == [1.0]
    tracker.stop()
    assert clock.getDelayedCalls() == []


def test_no_window_before_start_and_connections_before_it_count() -> None:
    """The server listens before it is started (the reconcile runs): a connection that
    closes meanwhile opens no window; one still open at start holds the service up."""
    clock = Clock()
    fired: list[float] = []
    tracker = IdleTracker(clock, 3, lambda: fired.append(clock.seconds()))
    early, held = Conn(), Conn()
    tracker.request_started(early)
    tracker.closed(early)
    tracker.request_started(held)
    clock.advance(10)
    assert fired == []
    tracker.start()
    clock.advance(10)
    assert fired == []
    tracker.closed(held)
    clock.advance(3)
    assert fired == [23.0]
