"""Exits are settled once (server and ``podapi.cleanup`` alike); reconcile after a crash."""

import os
from pathlib import Path

import pytest_twisted

from podapi.engine.exits import Exits
from podapi.engine.health import HealthChecks
from podapi.engine.netattach import NetworkAttach
from podapi.engine.state.containers import (
    COMMIT_PAUSE,
    CREATED,
    EXITED,
    PAUSED,
    RUNNING,
    SETTLING,
    ContainerRecord,
)
from podapi.engine.waiters import Waiters
from tests.unit.lifecycle_support import FakeMounts, Store, open_store

CID = "b" * 64


def exits_for(store: Store, tmp_path: Path, settled: list[ContainerRecord]) -> Exits:
    async def after_exit(record: ContainerRecord) -> None:
        settled.append(record)

    cgroups = tmp_path / "cgroup"
    cgroups.mkdir(exist_ok=True)
    return Exits(
        store.containers,
        layout=store.layout,
        io=store.containers._io,
        reactor=None,  # type: ignore[arg-type]  # only watch() uses it
        runtime=store.runtime,
        network=NetworkAttach(store.containers, None),  # type: ignore[arg-type]
        mounts=FakeMounts(),  # type: ignore[arg-type]
        health=HealthChecks(store.containers, lambda: store.runtime, store.clock),
        waiters=Waiters(),
        after_exit=after_exit,
        cgroup_root=str(cgroups),
    )


def in_runtime(store: Store, container_id: str) -> None:
    os.makedirs(os.path.join(store.layout.runtime_state, container_id), exist_ok=True)


@pytest_twisted.ensureDeferred
async def test_an_exit_seen_by_server_and_cleanup_is_recorded_once(tmp_path: Path) -> None:
    """Two engines on one database (the server and ``podapi.cleanup``) race for one exit."""
    server, cleanup = await open_store(tmp_path), await open_store(tmp_path)
    record = await server.add(CID, state=RUNNING, run_id=1)
    server.write_exit_file(CID, 3)
    for store in (server, cleanup):
        store.runner.expect(*store.runc("delete", "--force", CID))
    done_server: list[ContainerRecord] = []
    done_cleanup: list[ContainerRecord] = []
    # Both read the record while it was running, then both settle it.
    await exits_for(server, tmp_path, done_server).settle(record, 3)
    await exits_for(cleanup, tmp_path, done_cleanup).settle(record, 3)
    assert [r.exit_code for r in done_server] == [3]
    assert done_cleanup == []
    assert server.actions(CID) == ["died"]
    assert cleanup.actions(CID) == []
    assert cleanup.runner.calls == []  # the loser tears nothing down
    final = await cleanup.containers.get(CID)
    assert (final.state, final.exit_code) == (EXITED, 3)
    assert not server.exit_file_exists(CID)


@pytest_twisted.ensureDeferred
async def test_handle_exit_twice_settles_once(tmp_path: Path) -> None:
    store = await open_store(tmp_path)
    await store.add(CID, state=RUNNING, run_id=1)
    store.write_exit_file(CID, 0)
    store.runner.expect(*store.runc("delete", "--force", CID))
    settled: list[ContainerRecord] = []
    exits = exits_for(store, tmp_path, settled)
    await exits.handle_exit(CID)
    await exits.handle_exit(CID)
    assert len(settled) == 1
    assert store.actions(CID) == ["died"]
    store.runner.check()


@pytest_twisted.ensureDeferred
async def test_an_exit_of_an_earlier_run_is_not_claimed(tmp_path: Path) -> None:
    """A late report for run 1 does not end run 2 (the container was restarted meanwhile)."""
    store = await open_store(tmp_path)
    first = await store.add(CID, state=RUNNING, run_id=1)
    await store.containers.update_record(CID, run_id=2)
    settled: list[ContainerRecord] = []
    await exits_for(store, tmp_path, settled).settle(first, 1)
    assert settled == []
    assert (await store.containers.get(CID)).state == RUNNING


@pytest_twisted.ensureDeferred
async def test_waiters_get_the_exit(tmp_path: Path) -> None:
    store = await open_store(tmp_path)
    record = await store.add(CID, state=RUNNING, run_id=1)
    store.runner.expect(*store.runc("delete", "--force", CID))
    exits = exits_for(store, tmp_path, [])
    waiter = exits._waiters.exit_of(CID)
    await exits.settle(record, 137)
    assert waiter.called
    assert waiter.result.exit_code == 137


@pytest_twisted.ensureDeferred
async def test_reconcile_settles_an_exit_file_left_while_no_server_ran(tmp_path: Path) -> None:
    """Row says running, conmon wrote an exit file: exited with that code."""
    store = await open_store(tmp_path)
    await store.add(CID, state=RUNNING, run_id=1)
    in_runtime(store, CID)
    store.write_exit_file(CID, 42)
    store.runner.expect(*store.runc("delete", "--force", CID))
    settled: list[ContainerRecord] = []
    await exits_for(store, tmp_path, settled).reconcile()
    record = await store.containers.get(CID)
    assert (record.state, record.exit_code) == (EXITED, 42)
    assert [r.id for r in settled] == [CID]
    assert not store.exit_file_exists(CID)
    store.runner.check()


@pytest_twisted.ensureDeferred
async def test_reconcile_settles_a_container_the_runtime_lost(tmp_path: Path) -> None:
    """Row says running, the runtime does not know it and no exit file: exited, code lost."""
    store = await open_store(tmp_path)
    await store.add(CID, state=RUNNING, run_id=1)
    store.runner.expect(*store.runc("delete", "--force", CID))
    await exits_for(store, tmp_path, []).reconcile()
    record = await store.containers.get(CID)
    assert (record.state, record.exit_code) == (EXITED, 255)


@pytest_twisted.ensureDeferred
async def test_reconcile_settles_a_start_the_crash_interrupted(tmp_path: Path) -> None:
    """The runtime says ``created``: the server died between create and start."""
    store = await open_store(tmp_path)
    await store.add(CID, state=RUNNING, run_id=1)
    in_runtime(store, CID)
    store.runner.expect(*store.runc("state", CID), stdout=b'{"id": "x", "status": "created"}')
    store.runner.expect(*store.runc("delete", "--force", CID))
    await exits_for(store, tmp_path, []).reconcile()
    record = await store.containers.get(CID)
    assert (record.state, record.exit_code) == (EXITED, 255)
    assert "stopped during the start" in record.error
    store.runner.check()


@pytest_twisted.ensureDeferred
async def test_reconcile_keeps_a_running_container_and_notices_a_pause(tmp_path: Path) -> None:
    store = await open_store(tmp_path)
    await store.add(CID, state=RUNNING, run_id=1)
    in_runtime(store, CID)
    store.runner.expect(*store.runc("state", CID), stdout=b'{"id": "x", "status": "paused"}')
    await exits_for(store, tmp_path, []).reconcile()
    assert (await store.containers.get(CID)).state == PAUSED


@pytest_twisted.ensureDeferred
async def test_reconcile_deletes_runtime_containers_without_a_row(tmp_path: Path) -> None:
    store = await open_store(tmp_path)
    orphan = "c" * 64
    in_runtime(store, orphan)
    await store.add(CID, state=CREATED)
    store.runner.expect(*store.runc("delete", "--force", orphan))
    await exits_for(store, tmp_path, []).reconcile()
    store.runner.check()
    assert (await store.containers.get(CID)).state == CREATED


@pytest_twisted.ensureDeferred
async def test_reconcile_resumes_a_commit_pause_and_believes_runc(tmp_path: Path) -> None:
    """A commit killed while the container was paused: resumed, running, step done; an
    unpause killed after ``runc resume``: the state says running as runc does."""
    store = await open_store(tmp_path)
    committed, unpaused = CID, "c" * 64
    await store.add(committed, state=PAUSED, run_id=1, unfinished=COMMIT_PAUSE)
    await store.add(unpaused, state=PAUSED, run_id=1)
    for container_id in (committed, unpaused):
        in_runtime(store, container_id)
    store.runner.expect(*store.runc("state", committed), stdout=b'{"id": "x", "status": "paused"}')
    store.runner.expect(*store.runc("resume", committed))
    store.runner.expect(*store.runc("state", unpaused), stdout=b'{"id": "x", "status": "running"}')
    await exits_for(store, tmp_path, []).reconcile()
    store.runner.check()
    for container_id in (committed, unpaused):
        record = await store.containers.get(container_id)
        assert (record.state, record.unfinished) == (RUNNING, "")


@pytest_twisted.ensureDeferred
async def test_reconcile_finishes_an_exit_cut_short_after_its_claim(tmp_path: Path) -> None:
    """Claimed, then killed: the clean-up runs again, ``died`` and ``stop`` (a user's stop)
    are emitted, ``--rm``/restart policy follows, and the step is done."""
    store = await open_store(tmp_path)
    await store.add(
        CID, state=EXITED, run_id=1, exit_code=137, stopped_by_user=True, unfinished=SETTLING
    )
    in_runtime(store, CID)
    store.runner.expect(*store.runc("delete", "--force", CID))
    settled: list[ContainerRecord] = []
    await exits_for(store, tmp_path, settled).reconcile()
    store.runner.check()
    assert store.actions(CID) == ["died", "stop"]
    assert [r.id for r in settled] == [CID]
    assert (await store.containers.get(CID)).unfinished == ""
