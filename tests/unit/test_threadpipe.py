"""ThreadPipe: a body written in the reactor thread, read by a pool thread, memory bounded."""

import threading
from collections.abc import Callable

import pytest

from podapi.threads import PIPE_HIGH, PIPE_LOW, BrokenPipe, ThreadPipe


class Reactor:
    """Runs ``callFromThread`` calls when told, as the reactor thread would."""

    def __init__(self) -> None:
        self.calls: list[Callable[[], object]] = []

    def callFromThread(self, f: Callable[..., object], *args: object, **kw: object) -> None:
        self.calls.append(lambda: f(*args, **kw))

    def run(self) -> None:
        calls, self.calls = self.calls, []
        for call in calls:
            call()


@pytest.fixture
def events() -> list[str]:
    return []


@pytest.fixture
def reactor() -> Reactor:
    return Reactor()


@pytest.fixture
def pipe(events: list[str], reactor: Reactor) -> ThreadPipe:
    return ThreadPipe(lambda: events.append("pause"), lambda: events.append("resume"), reactor)  # type: ignore[arg-type]


def test_bytes_come_out_in_order_in_reads_no_bigger_than_asked(pipe: ThreadPipe) -> None:
    for piece in (b"abc", b"defgh", b"ij"):
        pipe.write(piece)
    pipe.end()
    out = []
    while data := pipe.read(4):
        assert len(data) <= 4
        out.append(data)
    assert b"".join(out) == b"abcdefghij"
    assert pipe.written == 10


def test_the_writer_pauses_when_the_reader_is_behind_and_resumes_when_it_caught_up(
    pipe: ThreadPipe, events: list[str], reactor: Reactor
) -> None:
    chunk = b"x" * (64 * 1024)
    while not events:
        pipe.write(chunk)
    assert events == ["pause"]
    assert pipe.written == PIPE_HIGH
    read = 0
    while pipe.written - read > PIPE_LOW:
        reactor.run()
        assert events == ["pause"]
        read += len(pipe.read(1 << 20))
    reactor.run()
    assert events == ["pause", "resume"]


def test_no_resume_after_the_end(pipe: ThreadPipe, events: list[str], reactor: Reactor) -> None:
    """Once the body is complete the transport is the HTTP channel's to resume."""
    pipe.write(b"x" * PIPE_HIGH)
    pipe.end()
    while pipe.read():
        pass
    reactor.run()
    assert events == ["pause"]


def test_a_reader_waits_for_data_and_sees_an_abort(pipe: ThreadPipe) -> None:
    got: list[object] = []
    first = threading.Event()

    def reader() -> None:
        try:
            got.append(pipe.read())
            first.set()
            got.append(pipe.read())
        except BrokenPipe as e:
            got.append(e)

    thread = threading.Thread(target=reader)
    thread.start()
    pipe.write(b"first")
    assert first.wait(timeout=10)
    pipe.abort("client went away")
    thread.join(timeout=10)
    assert got[0] == b"first"
    assert isinstance(got[1], BrokenPipe)


def test_a_reader_that_stops_lets_the_rest_be_dropped(
    pipe: ThreadPipe, events: list[str], reactor: Reactor
) -> None:
    pipe.write(b"x" * PIPE_HIGH)
    pipe.stop_reading()
    reactor.run()
    assert events == ["pause", "resume"]
    pipe.write(b"y" * PIPE_HIGH * 2)  # dropped: no pause, no memory
    assert events == ["pause", "resume"]
    pipe.end()
    assert pipe.read() == b""
