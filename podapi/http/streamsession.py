"""The relay behind attach and exec: a hijacked client connection joined to conmon.

The engine's :class:`~podapi.engine.attach.AttachPoint` (a container's or an
exec session's) gives the process's output per stream; the client gets
Docker's 8-byte multiplexed frames, or raw bytes (with a TTY, and always over
a WebSocket).  Client
bytes go to the process's stdin; a client half-close closes that stdin; the
detach keys end the client's session and leave the process running.
"""

from collections.abc import Awaitable, Callable
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IHalfCloseableProtocol, IPushProducer
from twisted.python.failure import Failure
from zope.interface import implementer

from podapi.engine.attach import AttachPoint, ProcessSocket
from podapi.http.detachkeys import DetachDetector
from podapi.http.framing import STDERR, STDOUT, format_log_line, frame
from podapi.http.hijack import RawSession
from podapi.logs import get_logger
from podapi.storage.k8slog import LogLine

log = get_logger(__name__)


@implementer(IHalfCloseableProtocol)
class StreamSession(RawSession):
    """Relays between a hijacked client connection and a conmon attach socket.

    :param multiplexed: frame output per stream (else pass it on raw).
    :param on_start: called once the connection is ours.
    :param detach_keys: the detach sequence (empty: no detaching).
    :param before_end: awaited after the process's output ended and before the
        client's connection closes (an exec's exit code must be recorded
        first: clients ask for it as soon as the stream ends).
    """

    def __init__(
        self,
        *,
        multiplexed: bool,
        stdin: bool,
        stdout: bool,
        stderr: bool,
        detach_keys: bytes,
        on_start: Callable[["StreamSession"], None],
        before_end: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        self._multiplexed = multiplexed
        self._on_start = on_start
        self._stdin = stdin
        self._wanted = {"stdout": stdout, "stderr": stderr}
        self._detach = DetachDetector(detach_keys)
        self._before_end = before_end
        self._conmon: ProcessSocket | None = None
        self._closed = False
        # Input that arrived with the request, before the process's socket.
        self._early = b""
        self._stdin_closed = False
        self.on_close: Callable[[], None] | None = None

    def session_started(self) -> None:
        # Client bytes wait in the kernel until the process's socket is there
        # (``docker run -i``, ``exec -i``: stdin may come before the process).
        if self.transport is not None:
            self._client.pauseProducing()
        self._on_start(self)

    def connect(self, target: AttachPoint) -> None:
        """Join the process's attach socket (the process exists)."""
        if self._closed or self.transport is None:
            return
        conmon = target.open(self._from_process, self._process_gone)
        self._conmon = conmon
        # Back-pressure both ways: a slow client pauses conmon's output and a
        # busy process pauses the client's input.
        self._client.registerProducer(conmon, True)
        conmon.registerProducer(_PauseOnly(self._client), True)
        early, self._early = self._early, b""
        if early:
            conmon.write(early)
        if self._stdin_closed:
            conmon.loseWriteConnection()
        self._client.resumeProducing()

    @property
    def _client(self) -> Any:
        """The client's socket transport: a producer and a consumer, not just an ITransport."""
        return self.transport

    def write_line(self, line: LogLine) -> None:
        """Replay one log line (``logs=1``)."""
        if self._wanted.get(line.stream, False) and self.transport is not None:
            self.transport.write(
                format_log_line(line, timestamps=False, multiplexed=self._multiplexed)
            )

    def write_error(self, message: str) -> None:
        """An error after the hijack goes into the stream, as Podman does: ``Error: ...``."""
        text = f"Error: {message}\n".encode()
        if self.transport is not None:
            self.transport.write(frame(STDERR, text) if self._multiplexed else text)

    def finish(self) -> None:
        """Close the client connection (the stream is over)."""
        if self.transport is not None:
            self.transport.loseConnection()

    def _from_process(self, stream: str, payload: bytes) -> None:
        if self.transport is None or not self._wanted.get(stream, False) or not payload:
            return
        if self._multiplexed:
            payload = frame(STDOUT if stream == "stdout" else STDERR, payload)
        self.transport.write(payload)

    def _process_gone(self, reason: Failure) -> None:
        self._conmon = None
        if self._before_end is None:
            self.finish()
            return
        d = Deferred.fromCoroutine(_awaited(self._before_end))
        d.addErrback(lambda f: log.failure("ending a stream session", f))
        d.addBoth(lambda _: self.finish())

    def dataReceived(self, data: bytes) -> None:
        data, detached = self._detach.feed(data)
        if data and self._stdin:
            if self._conmon is not None:
                self._conmon.write(data)
            else:
                self._early += data
        if detached:
            self.finish()

    def readConnectionLost(self) -> None:
        """The client half-closed: close the process's stdin (conmon does on SHUT_WR)."""
        self._stdin_closed = True
        if self._conmon is not None:
            self._conmon.loseWriteConnection()

    def writeConnectionLost(self) -> None:
        self.finish()

    def connectionLost(self, reason: Any = None) -> None:
        self._closed = True
        if self._conmon is not None:
            self._conmon.close()
            self._conmon = None
        if self.on_close is not None:
            self.on_close()
        super().connectionLost(reason)


@implementer(IPushProducer)
class _PauseOnly:
    """The client connection as a producer for conmon's socket, minus ``stopProducing``.

    A consumer stops its producer when it is closed: conmon closing the
    process's socket must not close the client's connection too (an exec's
    client waits for the exit code first).
    """

    def __init__(self, transport: Any) -> None:
        self._transport = transport

    def pauseProducing(self) -> None:
        self._transport.pauseProducing()

    def resumeProducing(self) -> None:
        self._transport.resumeProducing()

    def stopProducing(self) -> None:
        pass


async def _awaited(step: Callable[[], Awaitable[object]]) -> None:
    await step()
