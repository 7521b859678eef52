"""Volume holds never outlive their container.

A ``docker cp`` out of a stopped container holds its volumes for the copy;
when the client hangs up, Klein cancels the handler wherever it awaits, and a
clean-up cut short there left the container's hold behind: ``rm -v`` then kept
the anonymous volume ("in use" by a container that no longer exists) for good.
These tests put the cancellation at each such await, with Deferreds fired by
hand, and check the removal transaction too.
"""

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from attrs import define, evolve, field
from twisted.internet.defer import CancelledError, Deferred, succeed

from podapi.engine.containers import _delete
from podapi.engine.containerspec import MountSpec
from podapi.engine.layout import ContainerPaths
from podapi.engine.rootfsaccess import RootfsAccess
from podapi.engine.shield import shielded
from podapi.engine.state import volumes as rows
from podapi.engine.state.database import State, transaction
from podapi.engine.state.volumes import VolumeRecord
from podapi.engine.volumes import VolumeService
from podapi.errors import NoSuchContainer
from podapi.oci import rootfs
from tests.unit.lifecycle_support import open_store

CID = "c" * 64


@define
class HeldBack:
    """A Blocking that runs the work at once but lets its Deferred fire only when told,
    as a thread pool's result arrives after the caller may have been cancelled."""

    hold_back: Callable[[Callable[..., Any]], bool] = lambda fn: False
    pending: list[tuple[Deferred[Any], Any]] = field(factory=list)

    def __call__(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Deferred[Any]:
        result = fn(*args, **kwargs)
        d: Deferred[Any] = Deferred()
        if self.hold_back(fn):
            self.pending.append((d, result))
        else:
            d.callback(result)
        return d

    def release_all(self) -> None:
        """Deliver held-back results (and those of work queued meanwhile) in order."""
        while self.pending:
            d, result = self.pending.pop(0)
            d.callback(result)  # ignored by a Deferred cancelled meanwhile


async def _volume(state: State, name: str, *, anonymous: bool = True) -> None:
    record = VolumeRecord(name=name, driver="local", created=1, anonymous=anonymous)
    await state.write(partial(rows.insert, record=record))


@pytest_twisted.ensureDeferred
async def test_removal_drops_its_holds_so_rm_v_takes_the_volume(tmp_path: Path) -> None:
    """A hold the container still has (a clean-up cut short) goes in its delete transaction,
    and ``-v`` removes its anonymous volume in that same transaction; others' holds stay."""
    store = await open_store(tmp_path)
    state = store.containers._state
    await store.add(CID)
    for name in ("anon", "shared"):
        await _volume(state, name)
    await state.write(lambda c: rows.add_users(c, CID, ["anon", "shared"]))
    for name in ("anon", "shared"):
        await state.write(partial(rows.hold, name=name, holder=CID, container=True))
    await state.write(partial(rows.hold, name="shared", holder="transfer-1"))
    gone = await state.write(partial(_delete, container_id=CID, volumes=["anon", "shared"]))
    assert gone == ["anon"]
    (shared,) = await state.read(rows.usage_all)
    assert (shared.record.name, shared.users, shared.holders) == ("shared", (), ("transfer-1",))
    await state.close()


@pytest_twisted.ensureDeferred
async def test_no_hold_for_a_removed_container(tmp_path: Path) -> None:
    """A start or copy that comes after the removal cannot leave a hold behind."""
    store = await open_store(tmp_path)
    state = store.containers._state
    await _volume(state, "anon")
    with pytest.raises(NoSuchContainer):
        await state.write(partial(rows.hold, name="anon", holder=CID, container=True))
    assert (await state.read(partial(rows.usage, name="anon"))).holders == ()
    await state.close()


@pytest_twisted.ensureDeferred
async def test_a_hold_cancelled_during_its_write_is_dropped_again(tmp_path: Path) -> None:
    """The hold's row is written in the database thread even though its caller was
    cancelled meanwhile; the hold lets go of it again."""
    io = HeldBack()
    state = State(str(tmp_path / "podapi.db"), io)
    await state.open()
    await _volume(state, "v")
    volumes = VolumeService(
        str(tmp_path / "volumes"),
        state=state,
        io=io,
        events=None,  # type: ignore[arg-type]
        now_ns=lambda: 1,
        remove_container=None,  # type: ignore[arg-type]
    )
    io.hold_back = lambda fn: fn is transaction
    holding = Deferred.fromCoroutine(volumes.hold("v", "transfer-1"))
    assert len(io.pending) == 1  # the hold's write ran; its result is on its way
    holding.cancel()
    io.release_all()
    with pytest.raises(CancelledError):
        await holding
    io.hold_back = lambda fn: False
    assert (await volumes.usage("v")).holders == ()
    await state.close()


@define
class FakeMounts:
    """ContainerMounts for ``docker cp``: one volume bound at /vol1; records releases."""

    #: Set: the release waits for it (still under way when the client hangs up).
    gate: Deferred[None] | None = None
    detached: list[str] = field(factory=list)

    async def attach(self, container_id: str, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        return [{"destination": "/vol1", "type": "bind", "source": "/v/_data", "options": []}]

    async def detach(self, container_id: str, *args: Any, **kwargs: Any) -> None:
        if self.gate is not None:
            await self.gate
        self.detached.append(container_id)


@pytest.mark.parametrize("cut", ["unmount_bound", "detach"])
@pytest_twisted.ensureDeferred
async def test_a_copy_cancelled_while_it_cleans_up_still_releases_the_volumes(
    tmp_path: Path, cut: str
) -> None:
    """The client of a ``docker cp`` hangs up while the copy takes its mounts down
    (Klein cancels the handler there): the container's volumes are released all the same."""
    store = await open_store(tmp_path)
    record = await store.add(CID, state="exited")
    volume = MountSpec(type="volume", destination="/vol1", source="/v/_data", name="v")
    record = evolve(record, run=evolve(record.run, mounts=(volume,)))
    mounts = FakeMounts()
    held: list[Deferred[None]] = []

    def blocking(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Deferred[Any]:
        if fn is rootfs.unmount_bound and cut == "unmount_bound":
            held.append(Deferred())  # the unmount runs in a thread; its result comes later
            return held[-1]
        if getattr(fn, "func", None) is rootfs.bind_into:
            return succeed("/m/vol1")
        return succeed(None)

    gate: Deferred[None] = Deferred()
    if cut == "detach":
        mounts.gate = gate
    access = RootfsAccess(store.containers, None, blocking, mounts)  # type: ignore[arg-type]
    paths = ContainerPaths(str(tmp_path / "c"), str(tmp_path / "r"))

    async def copy() -> None:
        async with access._volumes_of(record, paths, True):
            pass

    copying = Deferred.fromCoroutine(copy())
    assert not copying.called  # taking the mounts down
    copying.cancel()  # the client hung up
    for d in held:
        d.callback(None)  # ignored: cancelled
    gate.callback(None)
    with pytest.raises(CancelledError):
        await copying
    assert mounts.detached == [CID]
    await store.containers._state.close()


@pytest_twisted.ensureDeferred
async def test_shielded_finishes_the_work_then_reports_the_cancellation() -> None:
    step: Deferred[None] = Deferred()
    done: list[str] = []

    async def work() -> str:
        await step
        done.append("first")
        await Deferred.fromCoroutine(_ready())
        done.append("second")
        return "result"

    caller = Deferred.fromCoroutine(shielded(work()))
    caller.cancel()
    assert done == []
    step.callback(None)
    assert done == ["first", "second"]
    with pytest.raises(CancelledError):
        await caller
    assert await Deferred.fromCoroutine(shielded(work())) == "result"


async def _ready() -> None:
    return None
