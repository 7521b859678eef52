"""Container exits: follow conmon's exit files, settle each exit once, reconcile at start.

conmon writes ``<exits dir>/<id>`` when a container ends.  The server watches
the directory while it runs; otherwise ``podapi.cleanup`` (conmon's exit
command) handles the file.  Both *claim* the exit in the database first
(:func:`podapi.engine.state.containers.claim_exit`: only the current run, only
while alive), so each exit is recorded and torn down exactly once.
"""

import contextlib
import os
from collections.abc import Awaitable, Callable

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorFDSet

from podapi import crashpoints
from podapi.engine import cgroupplace
from podapi.engine.containermounts import ContainerMounts
from podapi.engine.containers import ContainerService, remove_dirs
from podapi.engine.health import HealthChecks
from podapi.engine.layout import Layout
from podapi.engine.netattach import NetworkAttach
from podapi.engine.state.containers import (
    COMMIT_PAUSE,
    CREATED,
    INITIALIZED,
    PAUSED,
    RUNNING,
    SETTLING,
    STARTING,
    ContainerRecord,
)
from podapi.engine.waiters import Waiters
from podapi.errors import NoSuchContainer
from podapi.logs import get_logger
from podapi.oci import cgroups, conmon, rootfs
from podapi.oci.exits import ExitWatcher
from podapi.oci.runtime import OCIRuntime, RuntimeFailure
from podapi.threads import Blocking

log = get_logger(__name__)

AfterExit = Callable[[ContainerRecord], Awaitable[None]]


class Exits:
    """Settles container exits and makes the database agree with the runtime.

    :param containers: records, claims, locks and events.
    :param layout: the exits directory and the containers on disk.
    :param io: the blocking-work executor.
    :param reactor: the inotify descriptor on the exits directory is registered with it.
    :param runtime: the OCI runtime (None: none installed, nothing runs).
    :param network: tears a run's networks down.
    :param mounts: volumes and image mounts, released at exit.
    :param health: checks stop at exit.
    :param waiters: woken at exit.
    :param after_exit: ``--rm`` and restart policies, run after an exit is settled.
    :param cgroup_root: where the cgroup hierarchies are mounted (tests pass a directory).
    """

    def __init__(
        self,
        containers: ContainerService,
        *,
        layout: Layout,
        io: Blocking,
        reactor: IReactorFDSet,
        runtime: OCIRuntime | None,
        network: NetworkAttach,
        mounts: ContainerMounts,
        health: HealthChecks,
        waiters: Waiters,
        after_exit: AfterExit,
        cgroup_root: str = cgroups.CGROUP_ROOT,
    ) -> None:
        self._containers = containers
        self._layout = layout
        self._io = io
        self._reactor = reactor
        self._runtime = runtime
        self._network = network
        self._container_mounts = mounts
        self._health = health
        self._waiters = waiters
        self._after_exit = after_exit
        self._cgroup_root = cgroup_root
        self._watcher: ExitWatcher | None = None

    async def watch(self) -> None:
        """Follow exits while the server runs, and settle exits that happened without us."""
        await self.reconcile()
        self._watcher = ExitWatcher(self._reactor, self._layout.exits_dir, self._on_exit_file)
        self._watcher.start()

    def unwatch(self) -> None:
        """Stop following exits (``podapi.cleanup`` takes over)."""
        if self._watcher is not None:
            self._watcher.stop()
            self._watcher = None

    async def reconcile(self) -> None:
        """Make the database, the runtime and the disk agree after time without a server.

        Exits conmon reported are settled; a server killed in the middle of a
        start leaves a runtime container nobody started: it is torn down and the
        container is stopped (exited) or back to ``created``; steps a crash cut
        short (:meth:`_finish_step`) are finished; files and runtime containers
        without a database row are deleted.  Each record is read again just
        before its turn, and one gone meanwhile (a ``--rm`` removed by an
        earlier turn's restart or exit) is passed over.
        """
        runtime = self._runtime
        in_runtime = await self._io(runtime.container_ids) if runtime else set()
        for listed in await self._containers.all():
            try:
                record = await self._containers.get(listed.id)
            except NoSuchContainer:
                continue
            await self._reconcile_one(record, record.id in in_runtime)
        known = {record.id for record in await self._containers.all()}
        if runtime is not None:
            for orphan in in_runtime - known:
                await runtime.delete(orphan, force=True)
        on_disk = await self._io(self._layout.container_ids_on_disk)
        for orphan in on_disk - known:
            await self._io(remove_dirs, self._containers.paths(orphan))
        alive = {record.id for record in await self._containers.all() if record.alive}
        await self._container_mounts.reconcile(alive)

    async def _reconcile_one(self, record: ContainerRecord, in_runtime: bool) -> None:
        if record.alive:
            await self._reconcile_alive(record, in_runtime)
        elif record.unfinished in (STARTING, SETTLING):
            await self._finish_step(record.id)
        elif in_runtime and record.state != INITIALIZED:
            await self.teardown(record)
        elif not in_runtime:
            await self._network.down(record)  # a teardown that did not finish
            if record.state == INITIALIZED:
                await self._containers.update_record(record.id, state=CREATED)

    async def _finish_step(self, container_id: str) -> None:
        """Finish what a crash cut short for a container that does not run.

        A start (killed between the network setup or the rootfs mount and
        conmon): undone, and a ``--rm`` container removed, as Docker removes
        those at a restart of its daemon.  The settling of an exit (killed after
        its claim): the clean-up is done again, and the ``died`` event (``stop``
        too when a user stopped it), ``--rm`` and the restart policy follow.
        """
        async with self._containers.lock(container_id):  # after a start under way, if any
            try:
                record = await self._containers.get(container_id)
            except NoSuchContainer:
                return
            step = record.unfinished
            if record.alive or step not in (STARTING, SETTLING):
                return
            await self.teardown(record)
        if step == SETTLING:
            self._containers.emit(record, "died", containerExitCode=str(record.exit_code))
            if record.stopped_by_user:
                self._containers.emit(record, "stop")
        if step == SETTLING or record.spec.auto_remove:
            await self._after_exit(record)
        await self._containers.finish_step(record.id, step)

    async def _reconcile_alive(self, record: ContainerRecord, in_runtime: bool) -> None:
        code = await self._io(conmon.read_exit_file, self._layout.exits_dir, record.id)
        if code is not None:
            await self.handle_exit(record.id)
            return
        state = None
        if in_runtime and self._runtime is not None:
            state = await self._runtime.state(record.id)
        if state is None or state.status == "stopped":
            # conmon is gone too, without an exit file: the exit code is lost.
            await self.settle(record, 255)
        elif state.status == "created":
            await self.settle(record, 255, error="the server stopped during the start")
        else:
            await self._network.finish_pending(record)
            await self._reconcile_pause(record, state.status)

    async def _reconcile_pause(self, record: ContainerRecord, status: str) -> None:
        """The state says what runc says (a pause or unpause killed between runc and the
        state write); a commit's pause (:data:`COMMIT_PAUSE`) ends with the commit."""
        runtime = self._runtime
        commit = record.unfinished == COMMIT_PAUSE
        if status == "paused" and commit and runtime is not None:
            await runtime.resume(record.id)
            status = "running"
        actual = {"paused": PAUSED, "running": RUNNING}.get(status)
        if actual is not None and record.state in (PAUSED, RUNNING) and actual != record.state:
            await self._containers.update_record(record.id, state=actual)
        if commit:
            await self._containers.finish_step(record.id, COMMIT_PAUSE)

    def _on_exit_file(self, container_id: str) -> None:
        Deferred.fromCoroutine(self.handle_exit(container_id)).addErrback(
            lambda f: log.failure("handling the exit of {id}", f, id=container_id)
        )

    async def handle_exit(self, container_id: str) -> None:
        """Settle an exit conmon reported (once, whoever gets here first)."""
        try:
            record = await self._containers.get(container_id)
        except NoSuchContainer:
            await self._io(clear_exit, self._layout.exits_dir, container_id)
            return
        code, oom = await self._io(
            _exit_facts,
            self._layout.exits_dir,
            container_id,
            cgroupplace.container_cgroup(record),
            self._cgroup_root,
        )
        if code is None or not record.alive:
            return
        await self.settle(record, code, oom=oom)

    async def settle(
        self, record: ContainerRecord, code: int, error: str = "", oom: bool | None = None
    ) -> None:
        """Record the exit of the current run (unless already recorded) and clean up after it.

        :param oom: whether the kernel's OOM killer ended it (None: look it up).
        """
        if oom is None:
            relative = cgroupplace.container_cgroup(record)
            oom = await self._io(cgroups.oom_killed, relative, self._cgroup_root)
        async with self._containers.lock(record.id):
            claimed = await self._containers.claim_exit(record, exit_code=code, oom_killed=oom)
            if claimed is None:
                return
            crashpoints.reached("exit-claimed")
            if error:
                claimed = await self._containers.update_record(record.id, error=error)
            # The events go out as the exit is recorded, before the teardown: a client
            # that sees the container exited (inspect, wait) finds ``died`` in the log,
            # as with Podman, which logs it when it notices the exit.
            if oom:
                self._containers.emit(claimed, "oom")
            self._containers.emit(claimed, "died", containerExitCode=str(code))
            await self.teardown(claimed)
        self._health.unwatch(record.id)
        self._waiters.exited(claimed)
        await self._after_exit(claimed)
        await self._containers.finish_step(record.id, SETTLING)

    async def teardown(self, record: ContainerRecord) -> None:
        """Delete the runtime container, unmount, drop the exit file and empty cgroups."""
        # The files go while runc deletes (the process is gone: nothing uses them).
        files = self._io(
            _release_files,
            self._containers.paths(record.id).merged,
            self._layout.exits_dir,
            record.id,
        )
        if self._runtime is not None:
            try:
                await self._runtime.delete(record.id, force=True)
            except RuntimeFailure as e:
                log.warn("runtime delete of {id} failed: {error}", id=record.id, error=e.message)
        await self._network.down(record)
        await files
        paths = self._containers.paths(record.id)
        await self._container_mounts.detach(record.id, record.run.mounts, paths)
        # runc removes the container's cgroup, not the parents it created.
        leftovers = cgroupplace.container_leftovers(record)
        await self._io(cgroupplace.remove_empty, leftovers, self._cgroup_root)


def clear_exit(exit_dir: str, container_id: str) -> None:
    """Remove a container's exit file, if any (blocking)."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(os.path.join(exit_dir, container_id))


def _exit_facts(
    exit_dir: str, container_id: str, relative_cgroup: str, cgroup_root: str
) -> tuple[int | None, bool]:
    """The code in the exit file (None: none yet) and whether the OOM killer struck, in
    one trip to the thread pool (blocking)."""
    code = conmon.read_exit_file(exit_dir, container_id)
    return code, code is not None and cgroups.oom_killed(relative_cgroup, cgroup_root)


def _release_files(merged: str, exit_dir: str, container_id: str) -> None:
    rootfs.unmount(merged)
    clear_exit(exit_dir, container_id)
