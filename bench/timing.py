"""The timing loop every benchmark shares: warm up, run N rounds, time each, p50/p90.

A round is a coroutine given a :class:`Stopwatch`; it may mark the end of each
of its steps (``watch.split("create")``) so one loop gives both the whole
round's time and each step's.
"""

import statistics
import time
from collections.abc import Awaitable, Callable, Sequence

from attrs import field, frozen, mutable


def percentile(samples: Sequence[float], fraction: float) -> float:
    """The sample below which ``fraction`` of them lie (nearest rank, no interpolation)."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


@mutable
class Stopwatch:
    """Times one round: the whole of it, and each step the round marks."""

    started: float = field(factory=time.perf_counter)
    last: float = field(init=False)
    splits: dict[str, float] = field(factory=dict)

    def __attrs_post_init__(self) -> None:
        self.last = self.started

    def split(self, step: str) -> None:
        """The step named ``step`` ends now: record the milliseconds since the last mark."""
        now = time.perf_counter()
        self.splits[step] = (now - self.last) * 1000
        self.last = now

    def total(self) -> float:
        """Milliseconds since the round began."""
        return (time.perf_counter() - self.started) * 1000


@frozen
class Laps:
    """The rounds' times in milliseconds, and each marked step's."""

    totals: tuple[float, ...]
    splits: tuple[dict[str, float], ...] = ()

    @property
    def p50(self) -> float:
        return statistics.median(self.totals)

    @property
    def p90(self) -> float:
        return percentile(self.totals, 0.9)

    def step_p50(self, step: str) -> float:
        """The median time of one marked step."""
        return statistics.median(split[step] for split in self.splits)


async def laps(
    round_: Callable[[Stopwatch], Awaitable[object]], runs: int, warmup: int = 1
) -> Laps:
    """Run ``round_`` ``warmup`` times untimed (caches, pause images, first-use
    imports), then ``runs`` times, timing each."""
    for _ in range(warmup):
        await round_(Stopwatch())
    totals, splits = [], []
    for _ in range(runs):
        watch = Stopwatch()
        await round_(watch)
        totals.append(watch.total())
        splits.append(watch.splits)
    return Laps(tuple(totals), tuple(splits))
