"""A result computed once and awaited by many.

Awaiting a plain Deferred hands its result to the first waiter only (later
waiters see None), so values shared between requests go through this.
"""

from collections.abc import Coroutine
from typing import Any, Generic, TypeVar

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

T = TypeVar("T")


class SharedResult(Generic[T]):
    """Run ``coroutine`` now; every :meth:`get` receives its result (or its error)."""

    def __init__(self, coroutine: Coroutine[Any, Any, T]) -> None:
        self._outcome: T | Failure | None = None
        self._done = False
        self._waiters: list[Deferred[T]] = []
        Deferred.fromCoroutine(coroutine).addBoth(self._settle)

    def _settle(self, outcome: T | Failure) -> None:
        self._outcome, self._done = outcome, True
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            self._fire(waiter)

    def _fire(self, waiter: Deferred[T]) -> None:
        if isinstance(self._outcome, Failure):
            waiter.errback(self._outcome)
        else:
            waiter.callback(self._outcome)  # type: ignore[arg-type]

    async def get(self) -> T:
        """The result, once it is there."""
        waiter: Deferred[T] = Deferred()
        if self._done:
            self._fire(waiter)
        else:
            self._waiters.append(waiter)
        return await waiter
