"""Streaming large bodies out with back-pressure (image saves, exports).

The bytes come from a blocking iterator (files read in the I/O thread pool);
one chunk is read ahead while the previous one is written, and reading stops
whenever the transport asks us to pause, so memory stays bounded (two chunks)
however big the body and however slow the client.
"""

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IPushProducer
from twisted.web.server import Request
from zope.interface import implementer

from podapi.engine.chunks import ChunkStream


@implementer(IPushProducer)
class _Gate:
    """Tracks the consumer's pause/resume/stop and lets the writer wait on it."""

    def __init__(self) -> None:
        self.paused = False
        self.stopped = False
        self._waiter: Deferred[None] | None = None

    def pauseProducing(self) -> None:
        self.paused = True

    def resumeProducing(self) -> None:
        self.paused = False
        self._wake()

    def stopProducing(self) -> None:
        self.stopped = True
        self._wake()

    def _wake(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None:
            waiter.callback(None)

    async def ready(self) -> None:
        """Return once writing may continue (or the client has gone)."""
        while self.paused and not self.stopped:
            self._waiter = Deferred()
            await self._waiter


async def stream_chunks(request: Request, stream: ChunkStream) -> None:
    """Write every chunk of ``stream`` to ``request``, then close the stream."""
    gate = _Gate()
    request.registerProducer(gate, True)
    pending: Deferred[bytes | None] | None = stream.read()
    try:
        while pending is not None:
            current, pending = pending, None
            chunk = await current
            if chunk is None or gate.stopped:
                break
            pending = stream.read()  # read the next chunk while this one is sent
            request.write(chunk)
            await gate.ready()
    finally:
        if request.channel is not None:  # None once the client has hung up
            request.unregisterProducer()
        if pending is not None:
            # A read is still running in a thread; let it finish before closing.
            await pending
        await stream.close()
