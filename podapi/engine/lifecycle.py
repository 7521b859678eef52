"""Running containers: start, stop, kill, pause, restart, remove, update.

A container runs under conmon, which outlives the server.  Around a run:
:mod:`~podapi.engine.bundle`, :mod:`~podapi.engine.exits`,
:mod:`~podapi.engine.restarts`, :mod:`~podapi.engine.waiters`,
:mod:`~podapi.engine.netattach`, :mod:`~podapi.engine.rootfsaccess` and
:mod:`~podapi.engine.health`, wired together here.

Start order (so no output and no exit is ever missed): mount the rootfs and
write the bundle -> conmon runs ``runc create`` -> the database says
``running`` with a new run number -> attach sessions waiting for the
container connect -> ``runc start``.
"""

import contextlib
from collections import defaultdict
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager

from attrs import evolve

from podapi import crashpoints
from podapi.engine.bundle import BundleWriter, conmon_config
from podapi.engine.containermounts import ContainerMounts
from podapi.engine.containers import ContainerService
from podapi.engine.containerspec import NetworkEndpoint, RestartPolicy, signal_number
from podapi.engine.exits import Exits, clear_exit
from podapi.engine.health import HealthChecks
from podapi.engine.images import ImageService
from podapi.engine.layout import ContainerPaths, Layout
from podapi.engine.netattach import NetworkAttach
from podapi.engine.networks import NetworkService
from podapi.engine.reactors import IContainerReactor
from podapi.engine.restarts import Restarts, should_restart
from podapi.engine.rootfsaccess import RootfsAccess
from podapi.engine.state.containers import (
    CREATED,
    EXITED,
    INITIALIZED,
    PAUSED,
    RUNNING,
    STARTING,
    ContainerRecord,
)
from podapi.engine.waiters import Waiters, within
from podapi.errors import Conflict, InvalidArgument, NoSuchContainer, NotModified
from podapi.logs import get_logger
from podapi.oci import conmon, rootfs
from podapi.oci.runtime import OCIRuntime, RuntimeFailure
from podapi.oci.seccomp import Converter
from podapi.oci.spec import Resources, limits
from podapi.threads import Blocking

log = get_logger(__name__)

KILL_WAIT = 10.0
AttachHook = Callable[[ContainerPaths], Awaitable[None]]


class Lifecycle:
    """Starts and stops containers and follows their exits.

    :param containers: records, files and locks.
    :param images: the image a container runs (its layer directories).
    :param layout: paths.
    :param io: the blocking-work executor.
    :param clock: the reactor (time, processes, inotify).
    :param runtime: the OCI runtime (None: none installed; starting fails clearly).
    :param conmon_path: conmon's path (None: not installed).
    :param seccomp: gives the default seccomp profile's converter (None: no profile),
        loading the profile the first time.
    :param init_binary: catatonit/tini for ``--init``.
    :param networks: wires ``bridge`` containers up at start and down at exit.
    :param mounts: volumes and image mounts, held while a container runs.
    """

    def __init__(
        self,
        containers: ContainerService,
        *,
        images: ImageService,
        layout: Layout,
        io: Blocking,
        clock: IContainerReactor,
        runtime: OCIRuntime | None,
        conmon_path: str | None,
        seccomp: Callable[[], Awaitable[Converter | None]],
        init_binary: str | None,
        networks: NetworkService,
        mounts: ContainerMounts,
    ) -> None:
        self._containers = containers
        self._layout = layout
        self._io = io
        self._clock = clock
        self._runtime = runtime
        self._conmon = conmon_path
        self._attach_hooks: defaultdict[str, list[AttachHook]] = defaultdict(list)
        self._mounts = mounts
        self.health = HealthChecks(containers, lambda: self.runtime, clock)
        self._bundles = BundleWriter(
            images,
            io=io,
            seccomp=seccomp,
            init_binary=init_binary,
            mounts=mounts,
            containers=containers,
        )
        self._rootfs = RootfsAccess(containers, images, io, mounts)
        self._network = NetworkAttach(containers, networks)
        self._waiters = Waiters()
        self._restarts = Restarts(containers, clock, self.start)
        self._exits = Exits(
            containers,
            layout=layout,
            io=io,
            reactor=clock,
            runtime=runtime,
            network=self._network,
            mounts=mounts,
            health=self.health,
            waiters=self._waiters,
            after_exit=self._after_exit,
        )

    def _tools(self) -> tuple[OCIRuntime, str]:
        if self._runtime is None or self._conmon is None:
            raise InvalidArgument(
                "no OCI runtime or conmon installed: install runc (or crun) and conmon",
                cause="OCI runtime not available",
            )
        return self._runtime, self._conmon

    @property
    def runtime(self) -> OCIRuntime:
        """The OCI runtime, or a clear error when it or conmon is not installed."""
        return self._tools()[0]

    @property
    def conmon_path(self) -> str:
        """conmon's path, or the same clear error as :attr:`runtime`."""
        return self._tools()[1]

    # --- server start/stop -----------------------------------------------------------

    async def watch(self) -> None:
        """Follow exits while the server runs, and settle exits that happened without us."""
        await self._exits.watch()

    def unwatch(self) -> None:
        """Stop following exits (``podapi.cleanup`` takes over) and cancel restarts."""
        self._exits.unwatch()
        self._restarts.cancel_all()
        self.health.stop()

    async def reconcile(self) -> None:
        """Make the database, the runtime and the disk agree (see :meth:`Exits.reconcile`)."""
        await self._exits.reconcile()

    async def handle_exit(self, container_id: str) -> None:
        """Settle an exit conmon reported (once, whoever gets here first)."""
        await self._exits.handle_exit(container_id)

    # --- start ----------------------------------------------------------------------

    def add_attach_hook(self, container_id: str, hook: AttachHook) -> Callable[[], None]:
        """Run ``hook`` when the container is created, before it starts (no output lost)."""
        self._attach_hooks[container_id].append(hook)

        def remove() -> None:
            hooks = self._attach_hooks.get(container_id)
            if hooks and hook in hooks:
                hooks.remove(hook)

        return remove

    async def start(self, record: ContainerRecord) -> ContainerRecord:
        """``docker start``: 304 when running, 409 when paused."""
        _check_startable(record)
        if record.spec.pod and not record.spec.infra:
            await self._start_infra(record)
        checked = False
        try:
            async with self._containers.lock(record.id):
                record = await self._containers.get(record.id)
                # A start of the same container that held the lock may have run it.
                _check_startable(record)
                checked = True
                if record.state == INITIALIZED:
                    started = await self._run(record)
                else:
                    created = await self._create(record)
                    started = await self._run(created)
        except Exception:
            if checked and record.spec.auto_remove:
                # As Docker: a --rm container that cannot start is gone (clients wait for it).
                with contextlib.suppress(NoSuchContainer):
                    await self.remove(record, force=True, volumes=True)
            raise
        self._containers.emit(started, "start")
        self.health.watch(started)
        return started

    async def _start_infra(self, record: ContainerRecord) -> None:
        """Start the infra container whose namespaces a pod's container joins (as Podman
        starts a container's dependencies first)."""
        spec = record.spec
        for mode in (spec.network_mode, spec.uts_mode, spec.ipc_mode, spec.pid_mode):
            if mode.startswith("container:"):
                infra = await self._containers.get(mode.partition(":")[2])
                if not infra.alive:
                    with contextlib.suppress(NotModified):
                        await self.start(infra)
                return

    async def check_health(self, record: ContainerRecord) -> ContainerRecord:
        """Run the container's health check now (``podman healthcheck run``)."""
        return await self.health.run_once(record)

    async def init(self, record: ContainerRecord) -> ContainerRecord:
        """Libpod ``init``: create the container in the runtime without starting it."""
        if record.state not in (CREATED, EXITED):
            raise Conflict(
                f"container {record.id} has already been created in runtime",
                cause="container state improper",
            )
        async with self._containers.lock(record.id):
            created = await self._create(await self._containers.get(record.id))
            initialized = await self._containers.update_record(created.id, state=INITIALIZED)
        self._containers.emit(initialized, "init")
        return initialized

    async def _create(self, record: ContainerRecord) -> ContainerRecord:
        """Mount, write the bundle, let conmon ``runc create`` it; state becomes running."""
        runtime, conmon_path = self._tools()
        paths = self._containers.paths(record.id)
        await self._io(clear_exit, self._layout.exits_dir, record.id)
        # Until the state says running: a crash from here on is undone at restart.
        record = await self._containers.update_record(record.id, unfinished=STARTING)
        try:
            if record.spec.network_mode == "bridge":
                record = await self._network.set_up(record)  # stored step by step
            try:
                return await self._launch(record, paths, runtime.path, conmon_path)
            except BaseException:
                await self._network.down(record)
                raise
        except BaseException:
            await self._containers.finish_step(record.id, STARTING)
            raise

    async def _launch(
        self, record: ContainerRecord, paths: ContainerPaths, runtime: str, conmon_path: str
    ) -> ContainerRecord:
        netns = None
        if record.spec.network_mode != "host":
            netns = await self._network.namespace(record)
        await self._bundles.prepare(record, paths, netns)
        crashpoints.reached("start-mounted")
        config = conmon_config(self._layout, record, paths, runtime, conmon_path)
        try:
            created = await conmon.create_container(self._clock, config)
        except BaseException:
            await self._io(rootfs.unmount, paths.merged)
            raise
        return await self._containers.update_record(
            record.id,
            state=RUNNING,
            pid=created.pid,
            conmon_pid=created.conmon_pid,
            run_id=record.run_id + 1,
            stopped_by_user=False,
            error="",
            started_at=self._containers.now(),
            unfinished="",
        )

    async def _run(self, record: ContainerRecord) -> ContainerRecord:
        """Connect waiting attach sessions, then ``runc start``."""
        paths = self._containers.paths(record.id)
        for hook in self._attach_hooks.pop(record.id, []):
            try:
                await hook(paths)
            except Exception:
                log.failure("attaching to {id}", id=record.id)
        try:
            await self.runtime.start(record.id)
        except RuntimeFailure as e:
            await self.runtime.delete(record.id, force=True)
            await self._exits.settle(record, 127, error=e.message)
            raise
        if record.state == INITIALIZED:
            record = await self._containers.update_record(
                record.id, state=RUNNING, started_at=self._containers.now()
            )
        self._waiters.changed(record)
        return record

    # --- stopping -------------------------------------------------------------------

    async def kill(
        self, record: ContainerRecord, signal: str | int = "KILL", *, wait_killed: bool = False
    ) -> None:
        """``docker kill``: 409 when the container is not running.

        :param wait_killed: for ``SIGKILL``, return only once the exit is recorded
            (at most ``KILL_WAIT`` seconds), so an inspect or a remove right after
            sees the container stopped with 137.  Docker does it for every client
            (moby ``daemon/kill.go``: ``ContainerKill`` -> ``Kill``, SIGKILL and a
            bounded wait for the exit); Podman 4.3.1 only on the compat tree
            (``compat.KillContainer`` waits when ``!IsLibpodRequest``), which is
            what the handler asks for.
        """
        number = signal_number(signal)
        if not record.alive:
            raise Conflict(
                f"Cannot kill container: {record.id}: Container {record.id} is not running",
                cause="container state improper",
            )
        if number in (9, 15, 2):
            await self._containers.update_record(record.id, stopped_by_user=True)
        waiting = wait_killed and number == 9
        # Taken before the signal, so an exit claimed at once still wakes it.
        exited = self._waiters.exit_of(record.id) if waiting else None
        await self.runtime.kill(record.id, number, all=True)
        self._containers.emit(record, "kill", signal=str(number))
        if exited is None:
            return
        if not (await self._containers.get(record.id)).alive:
            return  # the exit was recorded between the signal and now
        try:
            await within(exited, KILL_WAIT, self._clock)
        except NoSuchContainer:
            pass  # removed meanwhile: dead all the same
        except TimeoutError:
            log.warn(
                "container {container_id} did not exit within {seconds} s of SIGKILL",
                container_id=record.id,
                seconds=KILL_WAIT,
            )

    async def stop(
        self, record: ContainerRecord, timeout: int | None = None, signal: str | None = None
    ) -> ContainerRecord:
        """``docker stop``: the stop signal, then KILL after ``timeout`` seconds; 304 if stopped."""
        if not record.alive:
            raise NotModified(f"container {record.id} is not running")
        wait = record.run.stop_timeout if timeout is None else timeout
        await self._containers.update_record(record.id, stopped_by_user=True)
        self._restarts.cancel(record.id)
        exited = self._waiters.exit_of(record.id)
        try:
            await self.runtime.kill(record.id, signal_number(signal or record.run.stop_signal))
            if record.state == PAUSED:
                await self.runtime.resume(record.id)
        except RuntimeFailure:
            pass  # it may have exited meanwhile; the exit settles it
        try:
            final = await within(exited, wait, self._clock)
        except TimeoutError:
            killed = self._waiters.exit_of(record.id)
            current = await self._containers.get(record.id)
            if current.alive:
                await self._kill_quietly(record.id)
                final = await within(killed, KILL_WAIT, self._clock)
            else:
                final = current
        self._containers.emit(final, "stop")
        return final

    async def _kill_quietly(self, container_id: str) -> None:
        with contextlib.suppress(RuntimeFailure):
            await self.runtime.kill(container_id, 9, all=True)

    async def pause(self, record: ContainerRecord) -> ContainerRecord:
        """``docker pause`` (cgroup freezer)."""
        if record.state != RUNNING:
            raise Conflict(
                f"Container {record.id} is not running", cause="container state improper"
            )
        async with self._containers.lock(record.id):
            await self.runtime.pause(record.id)
            crashpoints.reached("pause-runtime")
            paused = await self._containers.update_record(record.id, state=PAUSED)
        self._containers.emit(paused, "pause")
        self._waiters.changed(paused)
        return paused

    async def unpause(self, record: ContainerRecord) -> ContainerRecord:
        """``docker unpause``."""
        if record.state != PAUSED:
            raise Conflict(f"Container {record.id} is not paused", cause="container state improper")
        async with self._containers.lock(record.id):
            await self.runtime.resume(record.id)
            crashpoints.reached("unpause-runtime")
            running = await self._containers.update_record(record.id, state=RUNNING)
        self._containers.emit(running, "unpause")
        self._waiters.changed(running)
        return running

    async def restart(self, record: ContainerRecord, timeout: int | None = None) -> ContainerRecord:
        """``docker restart``: stop if running, then start."""
        if record.alive:
            await self.stop(record, timeout)
        started = await self.start(await self._containers.get(record.id))
        self._containers.emit(started, "restart")
        return started

    async def remove(
        self,
        record: ContainerRecord,
        *,
        force: bool = False,
        volumes: bool = False,
        stop_timeout: int | None = None,
        with_pod: bool = False,
    ) -> None:
        """``docker rm``: 409 for a running container unless ``force`` (then KILL first).

        A pod's infra container goes only with its pod (``with_pod``): 409 otherwise,
        as Podman.

        :param volumes: also remove the container's anonymous volumes (``-v``).
        :param stop_timeout: with ``force``, stop it first, giving the stop signal
            this many seconds (libpod's ``timeout``).  Without it we KILL at once,
            as Docker; Podman would use the container's stop timeout.
        """
        if record.spec.infra and not with_pod:
            raise Conflict(
                f"container {record.id} is the infra container of pod {record.spec.pod} and "
                "cannot be removed without removing the pod",
                cause="container state improper",
            )
        if not force and not record.alive and self._restarts.pending(record.id):
            # Between an exit and the restart its policy makes: Docker's "restarting".
            raise Conflict(
                f"You cannot remove a restarting container {record.id}. Stop the container "
                "before attempting removal or force remove",
                cause="container state improper",
            )
        if record.alive:
            if not force:
                raise Conflict(
                    f"You cannot remove a running container {record.id}. Stop the container "
                    "before attempting removal or force remove",
                    cause="container state improper",
                )
            if stop_timeout is not None:
                with contextlib.suppress(NotModified):  # it exited meanwhile
                    await self.stop(record, stop_timeout)
            else:
                exited = self._waiters.exit_of(record.id)
                await self._containers.update_record(record.id, stopped_by_user=True)
                await self._kill_quietly(record.id)
                await within(exited, KILL_WAIT, self._clock)
        self._restarts.cancel(record.id)
        async with self._containers.lock(record.id):
            current = await self._containers.get(record.id)
            if current.state == INITIALIZED:
                await self._exits.teardown(current)
                current = await self._containers.update_record(current.id, state=CREATED)
            if not current.alive:
                # Whatever it still holds (a clean-up cut short) is let go of and
                # unmounted; its delete transaction drops any hold left all the same.
                paths = self._containers.paths(current.id)
                await self._mounts.detach(current.id, current.run.mounts, paths, announce=False)
            await self._containers.forget(current, volumes=volumes)
        self._waiters.removed(record.id)

    async def update(
        self,
        record: ContainerRecord,
        *,
        resources: Resources | None,
        restart_policy: RestartPolicy | None,
    ) -> ContainerRecord:
        """``docker update``: new cgroup limits (applied at once when running) and policy."""
        spec = record.spec
        if resources is not None:
            if record.alive:
                await self.runtime.update(record.id, limits(resources))
            spec = evolve(spec, resources=resources)
        if restart_policy is not None:
            spec = evolve(spec, restart_policy=restart_policy)
        async with self._containers.lock(record.id):
            updated = await self._containers.update_record(record.id, spec=spec)
        self._containers.emit(updated, "update")
        return updated

    # --- rootfs ---------------------------------------------------------------------

    async def mount(self, record: ContainerRecord) -> str:
        """Libpod ``mount``: the rootfs, mounted (if it was not) for the host to look at."""
        return await self._rootfs.mount(record)

    async def unmount(self, record: ContainerRecord) -> None:
        """Libpod ``unmount`` (a running container keeps its rootfs: 409)."""
        await self._rootfs.unmount(record)

    async def mounted(self) -> dict[str, str]:
        """Libpod ``showmounted``: ``{id: mount point}`` of mounted rootfs."""
        return await self._rootfs.mounted()

    def rootfs_access(
        self, record: ContainerRecord, *, with_mounts: bool = True
    ) -> AbstractAsyncContextManager[str]:
        """The container's root filesystem for the host (see :meth:`RootfsAccess.access`)."""
        return self._rootfs.access(record, with_mounts=with_mounts)

    # --- networks -------------------------------------------------------------------

    async def connect_network(self, record: ContainerRecord, endpoint: NetworkEndpoint) -> None:
        """``docker network connect``: join now if running, at the next start anyway."""
        await self._network.connect(record, endpoint)

    async def disconnect_network(self, record: ContainerRecord, name: str) -> None:
        """``docker network disconnect``: leave now if running, and for good."""
        await self._network.disconnect(record, name)

    # --- after an exit --------------------------------------------------------------

    async def _after_exit(self, record: ContainerRecord) -> None:
        """``--rm`` and restart policies."""
        if record.spec.auto_remove:
            # Gone already, or started again meanwhile (removed at its next exit).
            with contextlib.suppress(NoSuchContainer, Conflict):
                await self.remove(record, force=True, volumes=True)
            return
        self._restarts.after_exit(record)

    def should_restart(self, record: ContainerRecord) -> bool:
        """Whether the restart policy restarts this container after its exit."""
        return should_restart(record)

    async def settled(self, container_id: str) -> None:
        """Wait for a restart the policy scheduled (``podapi.cleanup`` waits before exiting)."""
        await self._restarts.settled(container_id)

    # --- waiting --------------------------------------------------------------------

    async def next_exit(self, record: ContainerRecord) -> ContainerRecord:
        """The record after the container's next exit."""
        return await self._waiters.next_exit(record.id)

    async def next_change(self, container_id: str) -> ContainerRecord | None:
        """The record after its next state change (None once removed)."""
        return await self._waiters.next_change(container_id)


def _check_startable(record: ContainerRecord) -> None:
    """304 for a running container, 409 for a paused one (Docker's and Podman's start)."""
    if record.alive and record.state != PAUSED:
        raise NotModified(f"container {record.id} is already running")
    if record.state == PAUSED:
        raise Conflict(
            "cannot start a paused container, try unpause instead",
            cause="container state improper",
        )
