"""Large bodies the engine hands out: chunks read from a blocking source in the I/O pool.

Image saves, exports and ``docker cp`` reads are files or tar writers read in the
engine's thread pool; the HTTP layer only sees this stream and writes it with
back-pressure (``podapi.http.producers.stream_chunks``), never the pool itself.
"""

from collections.abc import Iterator

from attrs import frozen
from twisted.internet.defer import Deferred

from podapi.threads import Blocking


def _next(chunks: Iterator[bytes]) -> bytes | None:
    return next(chunks, None)


def _close(chunks: Iterator[bytes]) -> None:
    close = getattr(chunks, "close", None)
    if close is not None:
        close()


@frozen
class ChunkStream:
    """A blocking iterator of byte chunks and the pool its reads run in.

    :param chunks: yields the body; ``close()`` (when it has one) releases its files.
    :param io: the engine's thread pool for blocking reads.
    """

    chunks: Iterator[bytes]
    io: Blocking

    def read(self) -> Deferred[bytes | None]:
        """The next chunk, or None at the end (read in the pool)."""
        return self.io(_next, self.chunks)

    def close(self) -> Deferred[None]:
        """Release what the source holds (in the pool: closing may flush or unmount)."""
        return self.io(_close, self.chunks)
