"""A :class:`podapi.threads.Blocking` that runs work inline, for unit tests."""

from collections.abc import Callable
from typing import ParamSpec, TypeVar

from twisted.internet.defer import Deferred, maybeDeferred

P = ParamSpec("P")
T = TypeVar("T")


class InlineBlocking:
    """Runs the callable at once in the calling thread; the Deferred is already fired."""

    def __call__(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> Deferred[T]:
        return maybeDeferred(fn, *args, **kwargs)
