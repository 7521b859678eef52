"""Thread pools owned by the service, and the narrow interface the rest uses.

Blocking work (SQLite, tar, hashing, big JSON, mounts) runs in a
project-owned ``ThreadPool`` so the reactor never waits on the disk.  Code that
needs it takes a :class:`Blocking` and never sees the pool; tests pass
:class:`podapi.testing.threads.InlineBlocking`.
"""

from collections.abc import Callable
from typing import ParamSpec, Protocol, TypeVar

from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorFromThreads
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool

P = ParamSpec("P")
T = TypeVar("T")


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
