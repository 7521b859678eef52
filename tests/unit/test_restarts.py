"""Restart policies and Docker's back-off, on a ``task.Clock``."""

from pathlib import Path

import pytest
import pytest_twisted
from attrs import evolve
from twisted.internet.defer import Deferred

from podapi.engine.containerspec import RestartPolicy
from podapi.engine.restarts import (
    BACKOFF_MAX,
    BACKOFF_RESET,
    BACKOFF_START,
    Restarts,
    should_restart,
)
from podapi.engine.state.containers import EXITED, RUNNING, ContainerRecord
from tests.unit.lifecycle_support import Store, open_store
from tests.unit.test_container_rows import record

CID = "a" * 64
NS = 1_000_000_000


class Harness:
    """Restarts whose ``start`` marks the container running and records the call."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.started: list[int] = []
        self.restarts = Restarts(store.containers, store.clock, self.start)

    async def start(self, record: ContainerRecord) -> ContainerRecord:
        self.started.append(record.restart_count)
        return await self.store.containers.update_record(
            record.id, state=RUNNING, started_at=self.store.containers.now()
        )

    async def exit(self, ran: float, code: int = 1) -> ContainerRecord:
        """The container exits after ``ran`` seconds up; the policy is applied."""
        clock = self.store.clock
        clock.advance(ran)
        record = await self.store.containers.update_record(
            CID,
            state=EXITED,
            exit_code=code,
            started_at=int((clock.seconds() - ran) * NS),
            finished_at=int(clock.seconds() * NS),
        )
        self.restarts.after_exit(record)
        return record

    def pending_delay(self) -> float | None:
        calls = self.store.clock.getDelayedCalls()
        if not calls:
            return None
        [call] = calls
        return round(call.getTime() - self.store.clock.seconds(), 6)


async def harness(tmp_path: Path, policy: RestartPolicy) -> Harness:
    store = await open_store(tmp_path)
    await store.add(CID, restart_policy=policy, state=RUNNING)
    return Harness(store)


@pytest_twisted.ensureDeferred
async def test_restart_waits_for_the_first_back_off(tmp_path: Path) -> None:
    """``always``: restarted after BACKOFF_START, counted, with a ``restart`` event."""
    h = await harness(tmp_path, RestartPolicy("always"))
    await h.exit(ran=1)
    h.store.clock.advance(BACKOFF_START * 0.9)
    assert h.started == []
    h.store.clock.advance(BACKOFF_START * 0.1)
    assert h.started == [1]
    record = await h.store.containers.get(CID)
    assert record.restart_count == 1 and record.state == RUNNING
    assert h.store.actions(CID) == ["restart"]
    await h.restarts.settled(CID)


@pytest_twisted.ensureDeferred
async def test_back_off_doubles_up_to_the_cap(tmp_path: Path) -> None:
    h = await harness(tmp_path, RestartPolicy("always"))
    delays = []
    for _ in range(14):
        await h.exit(ran=0.01)
        delay = h.pending_delay()
        assert delay is not None
        delays.append(delay)
        h.store.clock.advance(delay)
    expected = [min(BACKOFF_START * 2**n, BACKOFF_MAX) for n in range(14)]
    assert delays == pytest.approx(expected)
    assert delays[-1] == BACKOFF_MAX
    assert h.started == list(range(1, 15))


@pytest_twisted.ensureDeferred
async def test_back_off_resets_after_a_long_enough_run(tmp_path: Path) -> None:
    h = await harness(tmp_path, RestartPolicy("unless-stopped"))
    for _ in range(4):
        await h.exit(ran=0.01)
        h.store.clock.advance(h.pending_delay() or 0)
    await h.exit(ran=BACKOFF_RESET - 0.5)
    assert h.pending_delay() == pytest.approx(BACKOFF_START * 2**4)
    h.store.clock.advance(h.pending_delay() or 0)
    await h.exit(ran=BACKOFF_RESET)
    assert h.pending_delay() == pytest.approx(BACKOFF_START)


@pytest_twisted.ensureDeferred
async def test_on_failure_stops_after_max_retries(tmp_path: Path) -> None:
    """``on-failure:2``: two restarts, then the container stays exited."""
    h = await harness(tmp_path, RestartPolicy("on-failure", 2))
    for _ in range(3):
        await h.exit(ran=0.01)
        h.store.clock.advance(BACKOFF_MAX)
    assert h.started == [1, 2]
    assert h.pending_delay() is None
    assert (await h.store.containers.get(CID)).state == EXITED


@pytest_twisted.ensureDeferred
async def test_on_failure_does_not_restart_a_clean_exit(tmp_path: Path) -> None:
    h = await harness(tmp_path, RestartPolicy("on-failure"))
    await h.exit(ran=1, code=0)
    assert h.pending_delay() is None


@pytest.mark.parametrize(
    ("policy", "exit_code", "by_user", "count", "restarts"),
    [
        ("no", 1, False, 0, False),
        ("always", 0, False, 0, True),
        ("always", 1, True, 0, False),
        ("unless-stopped", 0, False, 0, True),
        ("unless-stopped", 137, True, 0, False),
        ("on-failure", 1, False, 100, True),
        ("on-failure", 1, True, 0, False),
    ],
)
def test_policy_table(
    policy: str, exit_code: int, by_user: bool, count: int, restarts: bool
) -> None:
    """``always``/``unless-stopped`` restart any exit but a user stop; ``on-failure`` failures."""
    exited = record(CID, "x")
    exited = evolve(
        exited,
        spec=evolve(exited.spec, restart_policy=RestartPolicy(policy)),
        state=EXITED,
        exit_code=exit_code,
        stopped_by_user=by_user,
        restart_count=count,
    )
    assert should_restart(exited) is restarts


@pytest_twisted.ensureDeferred
async def test_a_user_stop_cancels_the_scheduled_restart(tmp_path: Path) -> None:
    h = await harness(tmp_path, RestartPolicy("always"))
    await h.exit(ran=1)
    h.restarts.cancel(CID)
    assert h.pending_delay() is None
    await h.restarts.settled(CID)  # nothing to wait for
    h.store.clock.advance(BACKOFF_MAX)
    assert h.started == []


@pytest_twisted.ensureDeferred
async def test_a_stop_before_the_timer_fires_is_respected(tmp_path: Path) -> None:
    """The policy is read again when the timer fires: a user stop meanwhile wins."""
    h = await harness(tmp_path, RestartPolicy("always"))
    await h.exit(ran=1)
    await h.store.containers.update_record(CID, stopped_by_user=True)
    h.store.clock.advance(BACKOFF_START)
    assert h.started == []


@pytest_twisted.ensureDeferred
async def test_settled_waits_for_the_scheduled_restart(tmp_path: Path) -> None:
    """``podapi.cleanup`` waits in ``settled`` until the restart was made."""
    h = await harness(tmp_path, RestartPolicy("always"))
    await h.exit(ran=1)
    waiting = Deferred.fromCoroutine(h.restarts.settled(CID))
    assert not waiting.called
    h.store.clock.advance(BACKOFF_START)
    assert waiting.called and h.started == [1]


@pytest_twisted.ensureDeferred
async def test_pending_between_the_exit_and_the_restart(tmp_path: Path) -> None:
    """Docker's ``restarting``: a removal without force is refused meanwhile."""
    h = await harness(tmp_path, RestartPolicy("always"))
    assert not h.restarts.pending(CID)
    await h.exit(ran=1)
    assert h.restarts.pending(CID)
    h.store.clock.advance(BACKOFF_START)
    await h.restarts.settled(CID)
    assert not h.restarts.pending(CID)
