"""``POST /containers/{id}/attach`` on both trees: a hijacked stream joined to conmon.

Attaching before ``start`` (what ``docker run`` does) registers the session
with the engine, which connects it to conmon's attach socket after ``runc
create`` and before ``runc start``, so no output is lost.  Without a TTY the
output is Docker's multiplexed frames; stdin is forwarded and a client's
half-close closes the container's stdin.  ``logs=1`` replays the log first.
"""

from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IHalfCloseableProtocol
from twisted.python.failure import Failure
from zope.interface import implementer

from podapi.engine.engine import Engine
from podapi.engine.errors import Conflict
from podapi.engine.layout import ContainerPaths
from podapi.http.call import ApiCall, BadRequest
from podapi.http.framing import STDERR, STDOUT, format_log_line, frame
from podapi.http.hijack import MULTIPLEXED, RAW, HijackResource, RawSession
from podapi.logs import get_logger
from podapi.oci import attachsocket
from podapi.oci.seqpacket import SeqPacketSocket
from podapi.storage.containers import CREATED, EXITED, INITIALIZED, ContainerRecord
from podapi.storage.k8slog import LogLine, read_lines

log = get_logger(__name__)


@implementer(IHalfCloseableProtocol)
class AttachSession(RawSession):
    """Relays between a hijacked client connection and conmon's attach socket."""

    def __init__(
        self,
        *,
        tty: bool,
        stdin: bool,
        stdout: bool,
        stderr: bool,
        on_start: Callable[["AttachSession"], None],
    ) -> None:
        self._tty = tty
        self._on_start = on_start
        self._stdin = stdin
        self._wanted = {attachsocket.CONMON_STDOUT: stdout, attachsocket.CONMON_STDERR: stderr}
        self._conmon: SeqPacketSocket | None = None
        self._closed = False
        self.on_close: Callable[[], None] | None = None

    def session_started(self) -> None:
        self._on_start(self)

    def connect(self, paths: ContainerPaths) -> None:
        """Join conmon's attach socket (the container exists in the runtime)."""
        if self._closed:
            return
        sock = attachsocket.connect(paths.bundle)
        self._conmon = SeqPacketSocket(sock, self._from_container, self._container_gone).start()

    def write_line(self, line: LogLine) -> None:
        """Replay one log line (``logs=1``)."""
        wanted = (
            attachsocket.CONMON_STDOUT if line.stream == "stdout" else (attachsocket.CONMON_STDERR)
        )
        if self._wanted[wanted] and self.transport is not None:
            self.transport.write(format_log_line(line, timestamps=False, multiplexed=not self._tty))

    def finish(self) -> None:
        """Close the client connection (the stream is over)."""
        if self.transport is not None:
            self.transport.loseConnection()

    def _from_container(self, message: bytes) -> None:
        if not message or self.transport is None:
            return
        stream, payload = message[0], message[1:]
        if not self._wanted.get(stream, False) or not payload:
            return
        if self._tty:
            self.transport.write(payload)
        else:
            self.transport.write(
                frame(STDOUT if stream == attachsocket.CONMON_STDOUT else STDERR, payload)
            )

    def _container_gone(self, reason: Failure) -> None:
        self._conmon = None
        self.finish()

    def dataReceived(self, data: bytes) -> None:
        if self._stdin and self._conmon is not None:
            self._conmon.write(data)

    def readConnectionLost(self) -> None:
        """The client half-closed: close the container's stdin (conmon does on SHUT_WR)."""
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


def content_type(call: ApiCall, tty: bool) -> bytes:
    """Raw for a TTY; multiplexed from compat 1.42 / libpod 4.7 (raw before, as 4.3.1)."""
    if tty:
        return RAW
    newer = call.version_at_least(4, 7) if call.libpod else call.version_at_least(1, 42)
    return MULTIPLEXED if newer else RAW


async def attach(call: ApiCall, engine: Engine, name: str) -> HijackResource:
    """Validate, then hijack; streaming starts as soon as the container runs."""
    record = await engine.containers.resolve(name)
    chosen = [call.has(k) for k in ("stdin", "stdout", "stderr")]
    if any(chosen):
        stdin, stdout, stderr = (call.flag(k) for k in ("stdin", "stdout", "stderr"))
        if not (stdin or stdout or stderr):
            raise BadRequest("at least one of stdin, stdout or stderr must be true")
    else:
        stdin = stdout = stderr = True
    stream = call.flag("stream", default=True)
    logs = call.flag("logs")
    if not (stream or logs):
        raise BadRequest("at least one of stream or logs must be true")
    if stream and not logs and record.state == EXITED:
        raise Conflict(
            "You cannot attach to a stopped container, start it first",
            cause="container state improper",
        )

    def started(session: AttachSession) -> None:
        def failed(failure: Failure) -> None:
            log.failure("attach to {id}", failure, id=record.id)
            session.finish()

        Deferred.fromCoroutine(_run(engine, record, session, stream, logs)).addErrback(failed)

    session = AttachSession(
        tty=record.spec.tty,
        stdin=stdin and record.spec.open_stdin,
        stdout=stdout,
        stderr=stderr,
        on_start=started,
    )
    return HijackResource(lambda: session, content_type(call, record.spec.tty), engine.clock)


async def _run(
    engine: Engine, record: ContainerRecord, session: AttachSession, stream: bool, logs: bool
) -> None:
    if logs:
        path = engine.containers.paths(record.id).log
        lines, _ = await engine.io(read_lines, path)
        for line in lines:
            session.write_line(line)
    if not stream:
        session.finish()
        return
    current = await engine.containers.get(record.id)
    if current.state in (CREATED, INITIALIZED, EXITED):

        async def hook(paths: ContainerPaths) -> None:
            session.connect(paths)

        session.on_close = engine.lifecycle.add_attach_hook(record.id, hook)
    elif current.alive:
        session.connect(engine.containers.paths(record.id))
    else:
        session.finish()
