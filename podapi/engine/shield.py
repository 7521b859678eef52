"""Clean-up that runs to its end even when the request that started it is cancelled.

Klein cancels a handler's Deferred when its client hangs up; the cancellation
lands on whatever the handler awaits at that moment, so a clean-up in a
``finally`` that awaits several steps (unmount this, release that) would stop
after the first and leave the rest (a volume held for a container forever).
:func:`shielded` runs such a clean-up as a task of its own and waits for it.
"""

from collections.abc import Coroutine
from typing import Any, TypeVar, cast

from twisted.internet.defer import CancelledError, Deferred
from twisted.python.failure import Failure

T = TypeVar("T")


async def shielded(work: Coroutine[Deferred[Any], Any, T]) -> T:
    """The result of ``work``, run to its end even if the caller is cancelled meanwhile.

    A cancellation of the caller is raised once ``work`` has finished (its own
    error wins: it says more).
    """
    task = Deferred.fromCoroutine(work)
    outcome: list[object] = []
    wakers: list[Deferred[None]] = []

    def finished(result: object) -> None:
        outcome.append(result)
        for waker in wakers:
            if not waker.called:
                waker.callback(None)

    task.addBoth(finished)
    cancelled: CancelledError | None = None
    while not outcome:
        waker: Deferred[None] = Deferred()
        wakers.append(waker)
        try:
            await waker
        except CancelledError as e:
            cancelled = e  # the clean-up goes on; the caller hears of it afterwards
    result = outcome[0]
    if isinstance(result, Failure):
        result.raiseException()
    if cancelled is not None:
        raise cancelled
    return cast(T, result)
