"""``POST /containers/{id}/attach`` on both trees: a hijacked stream joined to conmon.

Attaching before ``start`` (what ``docker run`` does) registers the session
with the engine, which connects it to conmon's attach socket after ``runc
create`` and before ``runc start``, so no output is lost.  The relay itself
(framing, stdin, half-close, detach keys) is :class:`StreamSession`.
``logs=1`` replays the log first.

As in Podman (conmon without ``--leave-stdin-open``), a client that detaches
or disconnects closes the container's stdin; with a TTY the terminal stays.
"""

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure

from podapi.engine.engine import Engine
from podapi.engine.state.containers import EXITED, ContainerRecord
from podapi.errors import Conflict
from podapi.http.call import ApiCall, BadRequest
from podapi.http.detachkeys import DEFAULT_DETACH_KEYS, parse_detach_keys
from podapi.http.hijack import MULTIPLEXED, RAW, HijackResource, stream_head
from podapi.http.streamsession import StreamSession
from podapi.logs import get_logger

log = get_logger(__name__)


def content_type(call: ApiCall, tty: bool) -> bytes:
    """Raw for a TTY; multiplexed from compat 1.42 / libpod 4.7 (raw before, as 4.3.1)."""
    if tty:
        return RAW
    newer = call.version_at_least(4, 7) if call.libpod else call.version_at_least(1, 42)
    return MULTIPLEXED if newer else RAW


async def attach(call: ApiCall, engine: Engine, clock: IReactorTime, name: str) -> HijackResource:
    """Validate, then hijack; streaming starts as soon as the container runs.

    :param clock: times the hijacked connection out.
    """
    record = await engine.containers.resolve(name)
    chosen = [call.has(k) for k in ("stdin", "stdout", "stderr")]
    if any(chosen):
        stdin, stdout, stderr = (call.flag(k) for k in ("stdin", "stdout", "stderr"))
        if not (stdin or stdout or stderr):
            raise BadRequest("at least one of stdin, stdout or stderr must be true")
    else:
        stdin = stdout = stderr = True
    session = _session(
        call,
        engine,
        record,
        streams=(stdin, stdout, stderr),
        multiplexed=not record.spec.tty,
        stream=call.flag("stream", default=True),
    )
    return HijackResource(lambda: session, stream_head(content_type(call, record.spec.tty)), clock)


async def attach_ws(
    call: ApiCall, engine: Engine, clock: IReactorTime, name: str
) -> HijackResource:
    """The same over a WebSocket (see :mod:`podapi.http.websocket` for Docker's rules)."""
    # Imported on first use: wsproto (and h11) cost some 70 ms of every cold start.
    from podapi.http.websocket import WebSocketSession, handshake  # noqa: PLC0415

    record = await engine.containers.resolve(name)
    connection = handshake(call.request)
    streams = (True, True, True)
    if call.version_at_least(1, 42):
        streams = (call.flag("stdin"), call.flag("stdout"), call.flag("stderr"))
    inner = _session(
        call, engine, record, streams=streams, multiplexed=False, stream=call.flag("stream")
    )
    outer = WebSocketSession(connection, inner, binary=call.version_at_least(1, 28))
    return HijackResource(lambda: outer, outer.accept, clock)


def _session(
    call: ApiCall,
    engine: Engine,
    record: ContainerRecord,
    *,
    streams: tuple[bool, bool, bool],
    multiplexed: bool,
    stream: bool,
) -> StreamSession:
    """The relay for an attach request (400/409 for requests that cannot work)."""
    keys = call.text("detachKeys")
    detach_keys = parse_detach_keys(DEFAULT_DETACH_KEYS if keys is None else keys)
    logs = call.flag("logs")
    if not (stream or logs):
        raise BadRequest("at least one of stream or logs must be true")
    if stream and not logs and record.state == EXITED:
        raise Conflict(
            "You cannot attach to a stopped container, start it first",
            cause="container state improper",
        )

    def started(session: StreamSession) -> None:
        def failed(failure: Failure) -> None:
            log.failure("attach to {id}", failure, id=record.id)
            session.finish()

        Deferred.fromCoroutine(_run(engine, record, session, stream, logs)).addErrback(failed)

    stdin, stdout, stderr = streams
    return StreamSession(
        multiplexed=multiplexed,
        # Podman writes to a terminal container's console even without OpenStdin
        # (Cockpit's console creates them so); without a terminal, only with it.
        stdin=stdin and (record.spec.open_stdin or record.spec.tty),
        stdout=stdout,
        stderr=stderr,
        detach_keys=detach_keys,
        on_start=started,
    )


async def _run(
    engine: Engine, record: ContainerRecord, session: StreamSession, stream: bool, logs: bool
) -> None:
    if logs:
        for line in await engine.logs.lines(record):
            session.write_line(line)
    if not stream:
        session.finish()
        return
    cancel = await engine.attaching.join(record, session.connect)
    if cancel is None:
        session.finish()
    else:
        session.on_close = cancel
