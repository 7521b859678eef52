"""Thread pools owned by the service, and the narrow interface the rest uses.

Blocking work (SQLite, tar, hashing, big JSON, mounts) runs in a
project-owned ``ThreadPool`` so the reactor never waits on the disk.  Code that
needs it takes a :class:`Blocking` and never sees the pool; tests pass
:class:`podapi.testing.threads.InlineBlocking`.
"""

import threading
from collections import deque
from collections.abc import Callable
from typing import ParamSpec, Protocol, TypeVar

from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorFromThreads
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool

P = ParamSpec("P")
T = TypeVar("T")
#: A :class:`ThreadPipe` pauses its writer with this many bytes unread...
PIPE_HIGH = 8 * 1024 * 1024
#: ...and resumes it when the reader is down to this many.
PIPE_LOW = 2 * 1024 * 1024
#: What one :meth:`ThreadPipe.read` returns, about.
PIPE_CHUNK = 1024 * 1024


class Blocking(Protocol):
    """Runs a blocking callable somewhere that is not the reactor thread."""

    def __call__(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> Deferred[T]:
        """Call ``fn(*args, **kwargs)`` off the reactor; the Deferred fires with its result."""
        ...


class ThreadPoolService(Service):
    """A named ``ThreadPool`` started and stopped with the service tree.

    An instance is itself a :class:`Blocking`: ``await pool(fn, arg)``.
    ``maxthreads=1`` gives a serial executor (used for the SQLite connection,
    which must only ever be used from one thread).
    """

    def __init__(self, reactor: IReactorFromThreads, name: str, maxthreads: int) -> None:
        self._reactor = reactor
        self.pool = ThreadPool(minthreads=0, maxthreads=maxthreads, name=name)
        self.name = name

    def startService(self) -> None:
        super().startService()
        self.pool.start()

    def stopService(self) -> None:
        super().stopService()
        self.pool.stop()

    def __call__(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> Deferred[T]:
        return deferToThreadPool(self._reactor, self.pool, fn, *args, **kwargs)


class ThreadPipe:
    """Bytes written in the reactor thread, read in order by one pool thread.

    This is how a request body reaches blocking work while it arrives (an image
    load reads and extracts the upload as it comes, rather than spooling it
    first).  Back-pressure keeps memory bounded: past :data:`PIPE_HIGH` bytes
    waiting, ``pause`` is called (the connection's transport stops reading), and
    ``resume`` once the reader is below :data:`PIPE_LOW`.  Both run in the
    reactor thread, and never after :meth:`end`: the transport is the HTTP
    channel's again then.

    :param pause: stops the writer's producer.
    :param resume: restarts it.
    :param reactor: to call ``resume`` from the reader's thread.
    """

    def __init__(
        self,
        pause: Callable[[], object],
        resume: Callable[[], object],
        reactor: IReactorFromThreads,
    ) -> None:
        self._pause = pause
        self._resume = resume
        self._reactor = reactor
        self._ready = threading.Condition()
        self._chunks: deque[bytes] = deque()
        self._waiting = 0
        self._ended = False
        self._broken: str | None = None
        self._dropping = False
        self._paused = False
        #: Bytes written so far.
        self.written = 0

    # --- the writer (reactor thread) ------------------------------------------------

    def write(self, data: bytes) -> None:
        """Add bytes; pause the producer when the reader is too far behind."""
        self.written += len(data)
        with self._ready:
            if self._dropping:
                return
            self._chunks.append(data)
            self._waiting += len(data)
            self._ready.notify()
            pause = self._waiting >= PIPE_HIGH and not self._paused
            self._paused = self._paused or pause
        if pause:
            self._pause()

    def end(self) -> None:
        """No more bytes: the reader gets the end of the stream."""
        with self._ready:
            self._ended = True
            self._paused = False
            self._ready.notify()

    def abort(self, reason: str) -> None:
        """The writer went away: the reader gets :class:`BrokenPipe`."""
        with self._ready:
            if not self._ended:
                self._broken = reason
            self._ready.notify()

    def _maybe_resume(self) -> None:
        with self._ready:
            resume = self._paused and (self._dropping or self._waiting <= PIPE_LOW)
            if resume:
                self._paused = False
        if resume:
            self._resume()

    # --- the reader (one pool thread) -----------------------------------------------

    def read(self, size: int = PIPE_CHUNK) -> bytes:
        """Up to ``size`` bytes, blocking until there are some; ``b""`` at the end.

        :raises BrokenPipe: the writer went away before the end.
        """
        with self._ready:
            while not self._chunks and not self._ended and self._broken is None:
                self._ready.wait()
            if self._broken is not None:
                raise BrokenPipe(self._broken)
            parts = []
            taken = 0
            while self._chunks and taken < size:
                chunk = self._chunks.popleft()
                if taken + len(chunk) > size:  # never more than asked (gzip relies on it)
                    self._chunks.appendleft(chunk[size - taken :])
                    chunk = chunk[: size - taken]
                parts.append(chunk)
                taken += len(chunk)
            before = self._waiting
            self._waiting -= taken
            wake = self._paused and before > PIPE_LOW >= self._waiting
        if wake:
            self._reactor.callFromThread(self._maybe_resume)
        return b"".join(parts)

    def stop_reading(self) -> None:
        """The reader is done (or failed): drop what is left and what still comes."""
        with self._ready:
            self._dropping = True
            self._chunks.clear()
            self._waiting = 0
            wake = self._paused
        if wake:
            self._reactor.callFromThread(self._maybe_resume)


class BrokenPipe(Exception):
    """The writer of a :class:`ThreadPipe` went away before the end of the stream."""
