"""Moving bodies between registries, the blob store and memory without blocking.

Blob downloads (and plain URL downloads, :mod:`.download`) stream into a
:class:`~podapi.storage.blobs.BlobWriter` or a spool file through the thread
pool, one write at a time, with the HTTP transport paused while the disk is
behind (:class:`_BlobSink`); uploads read the file in the thread pool and
follow the socket's flow control (:class:`_FileProducer`).
Small bodies (manifests, errors, JSON) are collected up to a limit
(:func:`_read`), since a registry may be hostile.
"""

from collections.abc import Callable
from typing import BinaryIO, TypeVar
from typing import Protocol as Interface

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IConsumer, IDelayedCall, IReactorTime
from twisted.internet.protocol import Protocol, connectionDone
from twisted.python.failure import Failure
from twisted.web.http import PotentialDataLoss
from twisted.web.iweb import IBodyProducer, IResponse
from zope.interface import implementer

from podapi.storage.blobs import CHUNK, DigestMismatch
from podapi.storage.registry.errors import _IdleTimeout
from podapi.threads import Blocking

T = TypeVar("T")

MAX_ERROR_BODY = 64 * 1024
MAX_JSON = 16 * 1024 * 1024
#: Bytes of a blob download held in memory while a disk write is pending.
HIGH_WATER = CHUNK

#: ``(digest, bytes_done, total)``, called on the reactor thread.
ProgressCallback = Callable[[str, int, int], None]


class _Writable(Interface):
    """Where a sink's bytes go (a :class:`BlobWriter`, a spool file); called in a thread."""

    def write(self, data: bytes, /) -> int:
        """Append ``data``."""
        ...


class _BlobSink(Protocol):
    """Receives a body and writes it to a :class:`BlobWriter` (or file) in the thread pool.

    One write runs at a time, so writes land in order; while one is pending
    the next bytes accumulate, and past :data:`HIGH_WATER` the transport is
    paused (Twisted's HTTP client passes ``pauseProducing`` through to the
    socket).  ``done`` fires when the body ended and every byte is on disk.
    """

    def __init__(
        self,
        *,
        clock: IReactorTime,
        blocking: Blocking,
        writer: _Writable,
        expected_size: int | None,
        timeout: float,
        progress: Callable[[int], None],
    ) -> None:
        self.done: Deferred[None] = Deferred(self._cancel)
        self._clock = clock
        self._blocking = blocking
        self._writer = writer
        self._expected = expected_size
        self._timeout = timeout
        self._progress = progress
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._received = 0
        self._written = 0
        self._writing: Deferred[None] | None = None
        self._paused = False
        self._stopped = False
        self._ended: Failure | None = None
        self._timed_out = False
        self._idle: IDelayedCall | None = None
        self._settled: list[Deferred[None]] = []

    def connectionMade(self) -> None:
        self._arm()

    def dataReceived(self, data: bytes) -> None:
        if self._stopped:
            return
        self._received += len(data)
        if self._expected is not None and self._received > self._expected:
            self._fail(Failure(DigestMismatch(f"blob is larger than its size {self._expected}")))
            return
        self._pending.append(data)
        self._pending_size += len(data)
        if self._writing is None:
            self._flush()
        elif self._pending_size >= HIGH_WATER and not self._paused:
            self._paused = True
            self._disarm()  # a slow disk is not an idle network
            assert self.transport is not None
            self.transport.pauseProducing()  # type: ignore[attr-defined]
        if not self._paused:
            self._arm()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self._disarm()
        self._ended = reason
        if self._writing is None:
            self._finish()

    def settle(self) -> Deferred[None]:
        """Start no more writes; fire once the one in flight (if any) is done."""
        self._stopped = True
        self._pending.clear()
        if self._writing is None:
            return succeed(None)
        waiter: Deferred[None] = Deferred()
        self._settled.append(waiter)
        return waiter

    def _flush(self) -> None:
        chunk = b"".join(self._pending)
        self._pending.clear()
        self._pending_size = 0
        self._writing = self._blocking(self._write, chunk)
        self._writing.addBoth(self._written_cb, len(chunk))

    def _write(self, chunk: bytes) -> None:
        self._writer.write(chunk)

    def _written_cb(self, result: Failure | None, size: int) -> None:
        self._writing = None
        if isinstance(result, Failure):
            self._fail(result)
        elif not self._stopped:
            self._written += size
            self._progress(self._written)
            if self._pending:
                self._flush()
            if self._paused and self._pending_size < HIGH_WATER and self._ended is None:
                self._paused = False
                self._arm()
                assert self.transport is not None
                self.transport.resumeProducing()  # type: ignore[attr-defined]
        if self._writing is None:
            waiters, self._settled = self._settled, []
            for waiter in waiters:
                waiter.callback(None)
            if self._ended is not None:
                self._finish()

    def _finish(self) -> None:
        if self.done.called or self._stopped:
            return
        assert self._ended is not None
        from twisted.web.client import ResponseDone  # noqa: PLC0415 (on first use: the HTTP client is not needed to start)

        if self._ended.check(ResponseDone, PotentialDataLoss):
            # PotentialDataLoss: a body framed by connection close; the size check catches a cut.
            self.done.callback(None)
        elif self._timed_out:
            self.done.errback(Failure(_IdleTimeout()))
        else:
            self.done.errback(self._ended)

    def _fail(self, failure: Failure) -> None:
        self._stopped = True
        self._pending.clear()
        self._disarm()
        if self.transport is not None:
            self.transport.stopProducing()  # type: ignore[attr-defined]
        if not self.done.called:
            self.done.errback(failure)

    def _cancel(self, _: Deferred[None]) -> None:
        self._stopped = True
        self._disarm()
        if self.transport is not None:
            self.transport.stopProducing()  # type: ignore[attr-defined]

    def _arm(self) -> None:
        if self._idle is not None and self._idle.active():
            self._idle.reset(self._timeout)
        else:
            self._idle = self._clock.callLater(self._timeout, self._on_idle)

    def _disarm(self) -> None:
        if self._idle is not None and self._idle.active():
            self._idle.cancel()
        self._idle = None

    def _on_idle(self) -> None:
        self._idle = None
        self._timed_out = True
        if self.transport is not None:
            self.transport.stopProducing()  # type: ignore[attr-defined]


@implementer(IBodyProducer)
class _FileProducer:
    """Streams a file as a request body, reading it in the thread pool.

    Twisted registers a body producer as a streaming producer of the socket,
    so ``pauseProducing`` arrives whenever the send buffer is full; we read
    the next chunk only after ``resumeProducing``.  A transfer paused for
    ``timeout`` seconds is abandoned.  ``sent`` fires when the last byte is
    handed over (the response timeout starts then).
    """

    def __init__(
        self,
        *,
        clock: IReactorTime,
        blocking: Blocking,
        open_blob: Callable[[], BinaryIO],
        length: int,
        timeout: float,
        progress: Callable[[int], None],
    ) -> None:
        self.length = length
        self.sent: Deferred[None] = Deferred()
        self._clock = clock
        self._blocking = blocking
        self._open = open_blob
        self._timeout = timeout
        self._progress = progress
        self._finished: Deferred[None] = Deferred()
        self._paused = False
        self._stopped = False
        self._resumed: Deferred[None] | None = None

    def startProducing(self, consumer: IConsumer) -> Deferred[None]:
        d = Deferred.fromCoroutine(self._produce(consumer))
        d.addErrback(self._failed)
        return self._finished

    async def _produce(self, consumer: IConsumer) -> None:
        stream = await self._blocking(self._open)
        done = 0
        try:
            while not self._stopped:
                if self._paused:
                    await self._wait_resumed()
                    continue
                chunk = await self._blocking(stream.read, CHUNK)
                if self._stopped or not chunk:
                    break
                consumer.write(chunk)
                done += len(chunk)
                self._progress(done)
        finally:
            await self._blocking(stream.close)
        if self._stopped:
            return
        if done != self.length:
            raise ValueError(f"blob file has {done} bytes, expected {self.length}")
        self._finished.callback(None)
        self.sent.callback(None)

    async def _wait_resumed(self) -> None:
        self._resumed = Deferred()
        timer = self._clock.callLater(self._timeout, self._resumed.errback, _IdleTimeout())
        try:
            await self._resumed
        finally:
            if timer.active():
                timer.cancel()

    def _failed(self, failure: Failure) -> None:
        if not self._stopped and not self._finished.called:
            self._finished.errback(failure)

    def pauseProducing(self) -> None:
        self._paused = True

    def resumeProducing(self) -> None:
        self._paused = False
        if self._resumed is not None:
            resumed, self._resumed = self._resumed, None
            if not resumed.called:
                resumed.callback(None)

    def stopProducing(self) -> None:
        self._stopped = True
        self.resumeProducing()


class _Limited:
    """Collects a body up to ``limit`` bytes."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.parts: list[bytes] = []
        self.size = 0

    def __call__(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > self.limit:
            raise ValueError(f"response body larger than {self.limit} bytes")
        self.parts.append(data)


async def _read(response: IResponse, limit: int) -> bytes:
    """A small body, refusing more than ``limit`` bytes (a registry may be hostile)."""
    import treq  # noqa: PLC0415 (on first use: the HTTP client is not needed to start)

    collector = _Limited(limit)
    await treq.collect(response, collector)
    return b"".join(collector.parts)


def _detached(d: Deferred[T], late: Callable[[T], object]) -> Deferred[T]:
    """``d``'s result, through a Deferred that may be cancelled without losing it.

    Cancelling a ``deferToThreadPool`` Deferred does not stop the thread; its
    result would just be dropped.  Here a result arriving after cancellation
    is handed to ``late`` (to release what the thread created).
    """
    out: Deferred[T] = Deferred()

    def arrived(result: T | Failure) -> None:
        if out.called:
            if not isinstance(result, Failure):
                late(result)
            return
        if isinstance(result, Failure):
            out.errback(result)
        else:
            out.callback(result)

    d.addBoth(arrived)
    return out
