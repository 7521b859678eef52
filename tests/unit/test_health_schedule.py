"""Health checks run on their interval (a ``task.Clock``); retries and start period."""

from pathlib import Path

import pytest_twisted

from podapi.engine.containerspec import Healthcheck
from podapi.engine.health import HEALTHY, STARTING, UNHEALTHY, HealthChecks
from podapi.engine.state.containers import RUNNING
from tests.unit.lifecycle_support import Store, open_store

CID = "d" * 64
NS = 1_000_000_000


async def checked(tmp_path: Path, **check: int) -> tuple[Store, HealthChecks]:
    store = await open_store(tmp_path)
    healthcheck = Healthcheck(test=("CMD-SHELL", "probe"), **check)
    record = await store.add(CID, state=RUNNING, started_at=0, healthcheck=healthcheck)
    health = HealthChecks(store.containers, lambda: store.runtime, store.clock)
    health.watch(record)
    return store, health


def probe_exits(store: Store, code: int) -> None:
    store.runner.expectations.clear()
    store.runner.expect(*store.runc("exec", CID, "/bin/sh", "-c", "probe"), exit_code=code)


async def status(store: Store) -> tuple[str, int, int]:
    record = await store.containers.get(CID)
    return record.health_status, record.health_failing, len(record.health_log)


@pytest_twisted.ensureDeferred
async def test_checks_run_every_interval(tmp_path: Path) -> None:
    store, _ = await checked(tmp_path, interval=5 * NS)
    probe_exits(store, 0)
    store.clock.advance(4.9)
    assert store.runner.calls == []
    store.clock.advance(0.1)
    assert len(store.runner.calls) == 1
    assert await status(store) == (HEALTHY, 0, 1)
    store.clock.advance(5)
    assert len(store.runner.calls) == 2
    assert store.actions(CID) == ["health_status"]  # only a change is an event


@pytest_twisted.ensureDeferred
async def test_retries_failures_make_it_unhealthy(tmp_path: Path) -> None:
    store, _ = await checked(tmp_path, interval=NS, retries=3)
    probe_exits(store, 1)
    store.clock.advance(1)
    assert await status(store) == (STARTING, 1, 1)
    store.clock.advance(1)
    assert await status(store) == (STARTING, 2, 2)
    store.clock.advance(1)
    assert await status(store) == (UNHEALTHY, 3, 3)
    probe_exits(store, 0)
    store.clock.advance(1)
    assert await status(store) == (HEALTHY, 0, 4)


@pytest_twisted.ensureDeferred
async def test_failures_in_the_start_period_do_not_count_yet(tmp_path: Path) -> None:
    store, _ = await checked(tmp_path, interval=NS, retries=1, start_period=10 * NS)
    probe_exits(store, 1)
    store.clock.advance(1)
    assert (await status(store))[0] == STARTING
    store.clock.advance(9)  # the start period is over
    assert (await status(store))[0] == UNHEALTHY


@pytest_twisted.ensureDeferred
async def test_unwatch_stops_the_checks(tmp_path: Path) -> None:
    store, health = await checked(tmp_path, interval=NS)
    probe_exits(store, 0)
    health.unwatch(CID)
    store.clock.advance(10)
    assert store.runner.calls == []
    assert store.clock.getDelayedCalls() == []


@pytest_twisted.ensureDeferred
async def test_a_stopped_container_is_not_checked_again(tmp_path: Path) -> None:
    store, _ = await checked(tmp_path, interval=NS)
    await store.containers.update_record(CID, state="exited")
    store.clock.advance(1)
    assert store.runner.calls == []
    assert store.clock.getDelayedCalls() == []
