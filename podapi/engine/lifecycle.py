"""Running containers: start, stop, kill, pause, restart, exits, waits, restart policies.

A container runs under conmon, which outlives the server.  Exits are seen
through conmon's exit files: the server watches the exit directory while it
runs; otherwise ``podapi.cleanup`` (conmon's exit command) handles them.  Both
*claim* an exit in the database first, so each one is handled exactly once.

Start order (so no output and no exit is ever missed): mount the rootfs and
write the bundle -> conmon runs ``runc create`` -> the database says
``running`` with a new run number -> attach sessions waiting for the
container connect -> ``runc start``.
"""

import contextlib
import json
import os
import sys
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

from attrs import evolve
from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.python.failure import Failure

from podapi.engine.containermounts import ContainerMounts
from podapi.engine.containers import ContainerService, remove_dirs
from podapi.engine.containerspec import NetworkEndpoint, RestartPolicy, signal_number
from podapi.engine.health import HealthChecks
from podapi.engine.images import ImageService
from podapi.engine.layout import ContainerPaths, Layout
from podapi.engine.networks import NetworkService, SaveSetup
from podapi.engine.state.containers import (
    CREATED,
    EXITED,
    INITIALIZED,
    PAUSED,
    RUNNING,
    ContainerRecord,
)
from podapi.engine.times import rfc3339_nano
from podapi.errors import Conflict, InvalidArgument, NoSuchContainer, NotModified
from podapi.logs import get_logger
from podapi.oci import capabilities, cgroups, conmon, rlimits, rootfs
from podapi.oci.exits import ExitWatcher
from podapi.oci.netavark import NetworkSetup
from podapi.oci.process import DEFAULT_PATH
from podapi.oci.runtime import OCIRuntime, RuntimeFailure
from podapi.oci.seccomp import Converter
from podapi.oci.spec import Resources, SpecInputs, generate, limits
from podapi.storage.scope import DIR_FLAGS
from podapi.threads import Blocking

log = get_logger(__name__)

CGROUP_PARENT = "podapi"
#: Docker's restart back-off: 100 ms doubling, at most a minute, reset after 10 s up.
BACKOFF_START, BACKOFF_MAX, BACKOFF_RESET = 0.1, 60.0, 10.0
KILL_WAIT = 10.0
AttachHook = Callable[[ContainerPaths], Awaitable[None]]


def exit_command(layout: Layout, container_id: str) -> tuple[str, ...]:
    """What conmon runs when the container exits: ``python -m podapi.cleanup``."""
    return (
        sys.executable,
        "-m",
        "podapi.cleanup",
        "--root",
        layout.root,
        "--runroot",
        layout.runroot,
        container_id,
    )


def _write_json(path: str, value: Any) -> None:
    temp = path + ".tmp"
    with open(temp, "w", encoding="utf-8") as f:
        json.dump(value, f)
    os.replace(temp, path)


def _podman_annotations(record: ContainerRecord, now: str) -> dict[str, str]:
    flag = {True: "TRUE", False: "FALSE"}
    return {
        "io.container.manager": "libpod",
        "io.kubernetes.cri-o.Created": now,
        "io.kubernetes.cri-o.TTY": str(record.spec.tty).lower(),
        "io.podman.annotations.autoremove": flag[record.spec.auto_remove],
        "io.podman.annotations.init": flag[record.spec.init],
        "io.podman.annotations.privileged": flag[record.spec.privileged],
        "org.opencontainers.image.stopSignal": str(signal_number(record.run.stop_signal)),
        **record.spec.annotations,
    }


class Lifecycle:
    """Starts and stops containers and follows their exits.

    :param containers: records, files and locks.
    :param images: the image a container runs (its layer directories).
    :param layout: paths.
    :param io: the blocking-work executor.
    :param clock: the reactor (time, processes, inotify).
    :param runtime: the OCI runtime (None: none installed; starting fails clearly).
    :param conmon_path: conmon's path (None: not installed).
    :param seccomp: converts the default seccomp profile per capability set.
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
        clock: Any,
        runtime: OCIRuntime | None,
        conmon_path: str | None,
        seccomp: Converter | None,
        init_binary: str | None,
        networks: NetworkService,
        mounts: ContainerMounts,
    ) -> None:
        self._containers = containers
        self._images = images
        self._layout = layout
        self._io = io
        self._clock = clock
        self._runtime = runtime
        self._conmon = conmon_path
        self._seccomp = seccomp
        self._init = init_binary
        self._networks = networks
        self._container_mounts = mounts
        self._watcher: ExitWatcher | None = None
        self._exit_waiters: defaultdict[str, list[Deferred[ContainerRecord]]] = defaultdict(list)
        self._change_waiters: defaultdict[str, list[Deferred[ContainerRecord | None]]] = (
            defaultdict(list)
        )
        self._attach_hooks: defaultdict[str, list[AttachHook]] = defaultdict(list)
        self._restarts: dict[str, IDelayedCall] = {}
        self._restarted: dict[str, Deferred[None]] = {}
        self._backoff: dict[str, float] = {}
        self.health = HealthChecks(containers, lambda: self.runtime, clock)

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
        await self.reconcile()
        self._watcher = ExitWatcher(self._clock, self._layout.exits_dir, self._on_exit_file)
        self._watcher.start()

    def unwatch(self) -> None:
        """Stop following exits (``podapi.cleanup`` takes over) and cancel restarts."""
        if self._watcher is not None:
            self._watcher.stop()
            self._watcher = None
        for container_id in list(self._restarts):
            self._cancel_restart(container_id)
        self.health.stop()

    async def reconcile(self) -> None:
        """Make the database, the runtime and the disk agree after time without a server.

        Exits conmon reported are settled; a server killed in the middle of a
        start leaves a runtime container nobody started: it is torn down and the
        container is stopped (exited) or back to ``created``; files and runtime
        containers without a database row are deleted.
        """
        records = await self._containers.all()
        in_runtime = await self._io(self.runtime.container_ids) if self._runtime else set()
        for record in records:
            if record.alive:
                await self._reconcile_alive(record, record.id in in_runtime)
            elif record.id in in_runtime and record.state != INITIALIZED:
                await self._teardown(record)
            elif record.id not in in_runtime:
                await self._network_down(record)  # a teardown that did not finish
                if record.state == INITIALIZED:
                    await self._containers.update_record(record.id, state=CREATED)
        known = {record.id for record in records}
        for orphan in in_runtime - known:
            await self.runtime.delete(orphan, force=True)
        on_disk = await self._io(self._layout.container_ids_on_disk)
        for orphan in on_disk - known:
            await self._io(remove_dirs, self._containers.paths(orphan))
        alive = {record.id for record in await self._containers.all() if record.alive}
        await self._container_mounts.reconcile(alive)

    async def _reconcile_alive(self, record: ContainerRecord, in_runtime: bool) -> None:
        code = await self._io(conmon.read_exit_file, self._layout.exits_dir, record.id)
        if code is not None:
            await self.handle_exit(record.id)
            return
        state = await self.runtime.state(record.id) if in_runtime else None
        if state is None or state.status == "stopped":
            # conmon is gone too, without an exit file: the exit code is lost.
            await self._settle_exit(record, 255)
        elif state.status == "created":
            await self._settle_exit(record, 255, error="the server stopped during the start")
        elif state.status == "paused" and record.state != PAUSED:
            await self._containers.update_record(record.id, state=PAUSED)

    def _on_exit_file(self, container_id: str) -> None:
        Deferred.fromCoroutine(self.handle_exit(container_id)).addErrback(
            lambda f: log.failure("handling the exit of {id}", f, id=container_id)
        )

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
        if record.state == RUNNING:
            raise NotModified(f"container {record.id} is already running")
        if record.state == PAUSED:
            raise Conflict(
                "cannot start a paused container, try unpause instead",
                cause="container state improper",
            )
        try:
            async with self._containers.lock(record.id):
                record = await self._containers.get(record.id)
                if record.state == INITIALIZED:
                    started = await self._run(record)
                else:
                    created = await self._create(record)
                    started = await self._run(created)
        except Exception:
            if record.spec.auto_remove:
                # As Docker: a --rm container that cannot start is gone (clients wait for it).
                with contextlib.suppress(NoSuchContainer):
                    await self.remove(record, force=True, volumes=True)
            raise
        self._containers.emit(started, "start")
        self._schedule_health(started)
        return started

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
        await self._io(_clear_exit, self._layout.exits_dir, record.id)
        if record.spec.network_mode == "bridge":
            # Stored step by step: a crash from here on is torn down at restart.
            record = await self._set_up_network(record)
        try:
            return await self._launch(record, paths, runtime.path, conmon_path)
        except BaseException:
            await self._network_down(record)
            raise

    async def _launch(
        self, record: ContainerRecord, paths: ContainerPaths, runtime: str, conmon_path: str
    ) -> ContainerRecord:
        await self._prepare(record, paths)
        config = conmon.ConmonConfig(
            container_id=record.id,
            name=record.name,
            bundle=paths.bundle,
            runtime=runtime,
            runtime_root=self._layout.runtime_state,
            conmon=conmon_path,
            exit_dir=self._layout.exits_dir,
            pid_file=paths.pidfile,
            conmon_pid_file=paths.conmon_pidfile,
            log_path=paths.log,
            conmon_log=paths.conmon_log,
            env={"PATH": os.environ.get("PATH", DEFAULT_PATH)},
            log_size_max=record.spec.log_max_size,
            terminal=record.spec.tty,
            stdin=record.spec.open_stdin,
            exit_command=exit_command(self._layout, record.id),
        )
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
            await self._settle_exit(record, 127, error=e.message)
            raise
        if record.state == INITIALIZED:
            record = await self._containers.update_record(
                record.id, state=RUNNING, started_at=self._containers.now()
            )
        self._notify(record)
        return record

    async def _prepare(self, record: ContainerRecord, paths: ContainerPaths) -> None:
        """Mount the rootfs, write /etc files and the OCI config (``config.json``)."""
        if record.spec.init and self._init is None:
            raise InvalidArgument("--init needs catatonit or tini installed on the host")
        image = await self._images.get(record.image_id)
        lowers = [self._images.layers.path(d) for d in reversed(image.layers)]
        await self._io(_mount_rootfs, lowers, paths)
        try:
            spec = record.spec
            user = await self._io(
                rootfs.resolve_user, paths.merged, record.run.user, spec.group_add
            )
            host_network = spec.network_mode == "host"
            hostname = (
                os.uname().nodename if host_network and not spec.hostname else (record.run.hostname)
            )
            await self._io(_write_etc, paths, hostname, record, host_network)
            user_mounts = await self._container_mounts.attach(record.id, record.run.mounts, paths)
            env = list(record.run.env)
            if not any(e.startswith("HOME=") for e in env):
                env.append(f"HOME={user.home}")
            caps = capabilities.effective(spec.cap_add, spec.cap_drop, spec.privileged)
            unconfined = spec.privileged or "seccomp=unconfined" in spec.security_opt
            seccomp = (
                None
                if unconfined or self._seccomp is None
                else (self._seccomp.for_capabilities(caps))
            )
            namespaces: list[tuple[str, str | None]] = [
                ("pid", None),
                ("ipc", None),
                ("uts", None),
                ("mount", None),
            ]
            if not host_network:
                namespaces.append(("network", await self._network_namespace(record)))
            for kind, mode in (
                ("pid", spec.pid_mode),
                ("ipc", spec.ipc_mode),
                ("uts", spec.uts_mode),
            ):
                if mode == "host":
                    namespaces.remove((kind, None))
            resources = spec.resources
            inputs = SpecInputs(
                rootfs=paths.merged,
                args=[record.run.path, *record.run.args],
                readonly_rootfs=spec.readonly_rootfs,
                hostname=hostname,
                env=env,
                cwd=record.run.working_dir,
                uid=user.uid,
                gid=user.gid,
                additional_gids=user.additional_gids,
                terminal=spec.tty,
                console_size=spec.console_size,
                capabilities=caps,
                no_new_privileges=any(
                    o.startswith("no-new-privileges") and not o.endswith(":false")
                    for o in spec.security_opt
                ),
                rlimits=rlimits.clamp([(u.name, u.soft, u.hard) for u in spec.ulimits]),
                oom_score_adj=spec.oom_score_adj,
                privileged=spec.privileged,
                shm_size=spec.shm_size or 64 * 1024 * 1024,
                mounts=[*_mounts(paths), *user_mounts],
                namespaces=namespaces,
                cgroups_path=f"{CGROUP_PARENT}/{record.id}",
                resources=evolve(
                    resources,
                    pids_limit=resources.pids_limit if resources.pids_limit is not None else 2048,
                ),
                seccomp=seccomp,
                sysctl=_sysctls(spec.sysctls, host_network),
                annotations=_podman_annotations(record, rfc3339_nano(record.created)),
                init_path=self._init if spec.init else None,
            )
            await self._io(_write_json, paths.config_json, generate(inputs))
        except BaseException:
            await self._container_mounts.detach(record.id, record.run.mounts, paths)
            await self._io(rootfs.unmount, paths.merged)
            raise

    # --- stopping -------------------------------------------------------------------

    async def kill(self, record: ContainerRecord, signal: str | int = "KILL") -> None:
        """``docker kill``: 409 when the container is not running."""
        number = signal_number(signal)
        if not record.alive:
            raise Conflict(
                f"Cannot kill container: {record.id}: Container {record.id} is not running",
                cause="container state improper",
            )
        if number in (9, 15, 2):
            await self._containers.update_record(record.id, stopped_by_user=True)
        await self.runtime.kill(record.id, number, all=True)
        self._containers.emit(record, "kill", signal=str(number))

    async def stop(
        self, record: ContainerRecord, timeout: int | None = None, signal: str | None = None
    ) -> ContainerRecord:
        """``docker stop``: the stop signal, then KILL after ``timeout`` seconds; 304 if stopped."""
        if not record.alive:
            raise NotModified(f"container {record.id} is not running")
        wait = record.run.stop_timeout if timeout is None else timeout
        await self._containers.update_record(record.id, stopped_by_user=True)
        self._cancel_restart(record.id)
        exited = self._next_exit(record.id)
        try:
            await self.runtime.kill(record.id, signal_number(signal or record.run.stop_signal))
            if record.state == PAUSED:
                await self.runtime.resume(record.id)
        except RuntimeFailure:
            pass  # it may have exited meanwhile; the exit settles it
        try:
            final = await _within(exited, wait, self._clock)
        except TimeoutError:
            killed = self._next_exit(record.id)
            current = await self._containers.get(record.id)
            if current.alive:
                await self._kill_quietly(record.id)
                final = await _within(killed, KILL_WAIT, self._clock)
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
            paused = await self._containers.update_record(record.id, state=PAUSED)
        self._containers.emit(paused, "pause")
        self._notify(paused)
        return paused

    async def unpause(self, record: ContainerRecord) -> ContainerRecord:
        """``docker unpause``."""
        if record.state != PAUSED:
            raise Conflict(f"Container {record.id} is not paused", cause="container state improper")
        async with self._containers.lock(record.id):
            await self.runtime.resume(record.id)
            running = await self._containers.update_record(record.id, state=RUNNING)
        self._containers.emit(running, "unpause")
        self._notify(running)
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
    ) -> None:
        """``docker rm``: 409 for a running container unless ``force`` (then KILL first).

        :param volumes: also remove the container's anonymous volumes (``-v``).
        :param stop_timeout: with ``force``, stop it first, giving the stop signal
            this many seconds (libpod's ``timeout``).  Without it we KILL at once,
            as Docker; Podman would use the container's stop timeout.
        """
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
                exited = self._next_exit(record.id)
                await self._containers.update_record(record.id, stopped_by_user=True)
                await self._kill_quietly(record.id)
                await _within(exited, KILL_WAIT, self._clock)
        self._cancel_restart(record.id)
        async with self._containers.lock(record.id):
            current = await self._containers.get(record.id)
            if current.state == INITIALIZED:
                await self._teardown(current)
                current = await self._containers.update_record(current.id, state=CREATED)
            await self._containers.forget(current, volumes=volumes)
        self._notify_removed(record.id)

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
            return await self._containers.update_record(record.id, spec=spec)

    async def mount(self, record: ContainerRecord) -> str:
        """Libpod ``mount``: the rootfs, mounted (if it was not) for the host to look at."""
        paths = self._containers.paths(record.id)
        image = await self._images.get(record.image_id)
        lowers = [self._images.layers.path(d) for d in reversed(image.layers)]
        async with self._containers.lock(record.id):
            await self._io(_mount_rootfs, lowers, paths)
        self._containers.emit(record, "mount")
        return paths.merged

    async def unmount(self, record: ContainerRecord) -> None:
        """Libpod ``unmount`` (a running container keeps its rootfs: 409)."""
        if record.alive:
            raise Conflict(
                f"container {record.id} is running: cannot unmount its rootfs",
                cause="container state improper",
            )
        async with self._containers.lock(record.id):
            await self._io(rootfs.unmount, self._containers.paths(record.id).merged)
        self._containers.emit(record, "unmount")

    async def mounted(self) -> dict[str, str]:
        """Libpod ``showmounted``: ``{id: mount point}`` of mounted rootfs."""
        found = {}
        for record in await self._containers.all():
            merged = self._containers.paths(record.id).merged
            if await self._io(rootfs.is_mounted, merged):
                found[record.id] = merged
        return found

    @contextlib.asynccontextmanager
    async def rootfs_access(self, record: ContainerRecord) -> AsyncIterator[str]:
        """The container's root filesystem for the host to read or write (``docker cp``).

        Yields ``/proc/self/fd/N/.``: the directory of a descriptor opened on the
        mount under the container's lock, so the files stay reachable until the
        block ends even if a running container exits meanwhile (its rootfs is
        unmounted lazily); the final ``.`` lets ``O_NOFOLLOW`` opens of it work.
        A running or paused container's lock is released at once: its exit and
        stop are not held up by a slow reader.  A stopped container's rootfs is
        mounted for the block and unmounted afterwards unless it was mounted
        already (libpod ``mount``), under its lock throughout: a concurrent start
        waits rather than have the mount removed under it.
        """
        lock = self._containers.lock(record.id)
        await lock.acquire()
        locked = True
        try:
            current = await self._containers.get(record.id)
            paths = self._containers.paths(record.id)
            mounted_here = False
            if not current.alive:
                image = await self._images.get(current.image_id)
                lowers = [self._images.layers.path(d) for d in reversed(image.layers)]
                mounted_here = await self._io(_mount_rootfs, lowers, paths)
            try:
                root = await self._io(os.open, paths.merged, DIR_FLAGS)
                if current.alive:
                    lock.release()
                    locked = False
                try:
                    yield f"/proc/self/fd/{root}/."
                finally:
                    await self._io(os.close, root)
            finally:
                if mounted_here:
                    await self._io(rootfs.unmount, paths.merged)
        finally:
            if locked:
                lock.release()

    # --- exits ----------------------------------------------------------------------

    async def handle_exit(self, container_id: str) -> None:
        """Settle an exit conmon reported (once, whoever gets here first)."""
        try:
            record = await self._containers.get(container_id)
        except NoSuchContainer:
            await self._io(_clear_exit, self._layout.exits_dir, container_id)
            return
        code = await self._io(conmon.read_exit_file, self._layout.exits_dir, container_id)
        if code is None or not record.alive:
            return
        await self._settle_exit(record, code)

    async def _settle_exit(self, record: ContainerRecord, code: int, error: str = "") -> None:
        relative = f"{CGROUP_PARENT}/{record.id}"
        oom = await self._io(cgroups.oom_killed, relative)
        async with self._containers.lock(record.id):
            claimed = await self._containers.claim_exit(record, exit_code=code, oom_killed=oom)
            if claimed is None:
                return
            if error:
                claimed = await self._containers.update_record(record.id, error=error)
            await self._teardown(claimed)
        self._unschedule_health(record.id)
        if oom:
            self._containers.emit(claimed, "oom")
        self._containers.emit(claimed, "died", containerExitCode=str(code))
        for waiter in self._exit_waiters.pop(record.id, []):
            waiter.callback(claimed)
        self._notify(claimed)
        await self._after_exit(claimed)

    async def _teardown(self, record: ContainerRecord) -> None:
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
        await self._network_down(record)
        await files
        paths = self._containers.paths(record.id)
        await self._container_mounts.detach(record.id, record.run.mounts, paths)
        await self._io(_remove_cgroups, record.id)

    async def connect_network(self, record: ContainerRecord, endpoint: NetworkEndpoint) -> None:
        """``docker network connect``: join now if running, at the next start anyway."""
        async with self._containers.lock(record.id):
            current = await self._containers.get(record.id)
            save = self._network_saver(record.id)
            try:
                spec, status = await self._networks.connect(current, endpoint, save)
            except BaseException:
                await save(current.network_status)  # what failed was undone
                raise
            await self._containers.update_record(record.id, spec=spec, network_status=status)

    async def disconnect_network(self, record: ContainerRecord, name: str) -> None:
        """``docker network disconnect``: leave now if running, and for good."""
        async with self._containers.lock(record.id):
            current = await self._containers.get(record.id)
            spec, status = await self._networks.disconnect(current, name)
            await self._containers.update_record(record.id, spec=spec, network_status=status)

    def _network_saver(self, container_id: str) -> SaveSetup:
        async def save(status: NetworkSetup) -> object:
            return await self._containers.update_record(container_id, network_status=status)

        return save

    async def _set_up_network(self, record: ContainerRecord) -> ContainerRecord:
        save = self._network_saver(record.id)
        try:
            status = await self._networks.setup(record, save)
        except BaseException:
            await save(NetworkSetup())  # the setup undid itself
            raise
        return await self._containers.update_record(record.id, network_status=status)

    async def _network_down(self, record: ContainerRecord) -> None:
        """Undo the network setup of a run, if it had one."""
        if record.network_status.netns:
            await self._networks.teardown(record)
            await self._containers.update_record(record.id, network_status=NetworkSetup())

    async def _network_namespace(self, record: ContainerRecord) -> str | None:
        """The path of the network namespace to join (None: the runtime makes a new one)."""
        mode = record.spec.network_mode
        if mode == "bridge":
            return record.network_status.netns
        if mode.startswith("ns:"):
            return mode.partition(":")[2]
        if mode.startswith("container:"):
            target = await self._containers.get(mode.partition(":")[2])
            if not target.alive:
                raise Conflict(
                    f"cannot join the network namespace of container {target.id}: "
                    "it is not running",
                    cause="container state improper",
                )
            return f"/proc/{target.pid}/ns/net"
        return None

    async def _after_exit(self, record: ContainerRecord) -> None:
        """``--rm`` and restart policies."""
        if record.spec.auto_remove:
            with contextlib.suppress(NoSuchContainer):
                await self.remove(record, force=True, volumes=True)
            return
        if self._should_restart(record):
            delay = self._backoff.get(record.id, BACKOFF_START)
            ran = (record.finished_at - record.started_at) / 1e9
            if ran >= BACKOFF_RESET:
                delay = BACKOFF_START
            self._backoff[record.id] = min(delay * 2, BACKOFF_MAX)
            self._restarts[record.id] = self._clock.callLater(delay, self._restart_now, record.id)
            self._restarted[record.id] = Deferred()

    def should_restart(self, record: ContainerRecord) -> bool:
        """Whether the restart policy restarts this container after its exit."""
        return self._should_restart(record)

    def _should_restart(self, record: ContainerRecord) -> bool:
        policy = record.spec.restart_policy
        if policy.name == "always":
            return not record.stopped_by_user
        if policy.name == "unless-stopped":
            return not record.stopped_by_user
        if policy.name == "on-failure":
            within = not policy.max_retries or record.restart_count < policy.max_retries
            return record.exit_code != 0 and within and not record.stopped_by_user
        return False

    def _restart_now(self, container_id: str) -> None:
        self._restarts.pop(container_id, None)

        async def again() -> None:
            record = await self._containers.get(container_id)
            if record.alive or not self._should_restart(record):
                return
            record = await self._containers.update_record(
                container_id, restart_count=record.restart_count + 1
            )
            await self.start(record)
            self._containers.emit(record, "restart")

        done = self._restarted.pop(container_id, None)
        attempt = Deferred.fromCoroutine(again())
        attempt.addErrback(lambda f: log.failure("restarting {id}", f, id=container_id))
        if done is not None:
            attempt.addBoth(lambda _: done.callback(None))

    async def settled(self, container_id: str) -> None:
        """Wait for a restart the policy scheduled (``podapi.cleanup`` waits before exiting)."""
        pending = self._restarted.get(container_id)
        if pending is not None:
            await pending

    def _cancel_restart(self, container_id: str) -> None:
        call = self._restarts.pop(container_id, None)
        if call is not None and call.active():
            call.cancel()
        done = self._restarted.pop(container_id, None)
        if done is not None:
            done.callback(None)

    # --- waiting --------------------------------------------------------------------

    def _next_exit(self, container_id: str) -> Deferred[ContainerRecord]:
        waiter: Deferred[ContainerRecord] = Deferred()
        self._exit_waiters[container_id].append(waiter)
        return waiter

    def _notify(self, record: ContainerRecord) -> None:
        for waiter in self._change_waiters.pop(record.id, []):
            waiter.callback(record)

    def _notify_removed(self, container_id: str) -> None:
        for change in self._change_waiters.pop(container_id, []):
            change.callback(None)
        for exit_waiter in self._exit_waiters.pop(container_id, []):
            exit_waiter.errback(NoSuchContainer(f"container {container_id} was removed"))

    async def next_exit(self, record: ContainerRecord) -> ContainerRecord:
        """The record after the container's next exit."""
        return await self._next_exit(record.id)

    async def next_change(self, container_id: str) -> ContainerRecord | None:
        """The record after its next state change (None once removed)."""
        waiter: Deferred[ContainerRecord | None] = Deferred()
        self._change_waiters[container_id].append(waiter)
        return await waiter

    # --- health ---------------------------------------------------------------------

    def _schedule_health(self, record: ContainerRecord) -> None:
        self.health.watch(record)

    def _unschedule_health(self, container_id: str) -> None:
        self.health.unwatch(container_id)


async def _within(
    d: Deferred[ContainerRecord], seconds: float, clock: IReactorTime
) -> ContainerRecord:
    """The result of ``d``, waiting at most ``seconds`` (``TimeoutError`` after).

    Only a relay is given up on a timeout; ``d`` itself is left to fire.
    """
    relay: Deferred[ContainerRecord] = Deferred()

    def forward(result: Any) -> None:
        if not relay.called:
            if isinstance(result, Failure):
                relay.errback(result)
            else:
                relay.callback(result)

    d.addBoth(forward)
    relay.addTimeout(max(seconds, 0.0), clock)
    try:
        return await relay
    except defer.TimeoutError:
        raise TimeoutError(f"no exit within {seconds} s") from None


def _release_files(merged: str, exit_dir: str, container_id: str) -> None:
    rootfs.unmount(merged)
    _clear_exit(exit_dir, container_id)


def _remove_cgroups(container_id: str) -> None:
    # runc removes the container's cgroup, not the parent it created.
    cgroups.remove_empty(f"{CGROUP_PARENT}/{container_id}")
    cgroups.remove_empty(CGROUP_PARENT)


def _clear_exit(exit_dir: str, container_id: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(os.path.join(exit_dir, container_id))


def _mount_rootfs(lowers: list[str], paths: ContainerPaths) -> bool:
    """Mount the rootfs unless it is mounted; whether this call mounted it."""
    if rootfs.is_mounted(paths.merged) or not lowers:
        return False
    rootfs.mount_overlay(lowers, paths.upper, paths.work, paths.merged)
    return True


def _write_etc(
    paths: ContainerPaths, hostname: str, record: ContainerRecord, host_network: bool
) -> None:
    spec = record.spec
    joined = record.network_status.joined.values()
    addresses = [a.ip for j in joined for a in j.attached.addresses]
    rootfs.write_file(
        paths.hosts,
        rootfs.hosts_file(hostname, record.name, spec.extra_hosts, host_network, addresses),
    )
    rootfs.write_file(paths.hostname, hostname + "\n")
    dns = [j.attached for j in joined if j.network.dns_enabled]
    rootfs.write_file(
        paths.resolv_conf,
        rootfs.resolv_conf(
            spec.dns,
            spec.dns_search,
            spec.dns_options,
            network_servers=[s for a in dns for s in a.dns_servers],
            network_search=[d for a in dns for d in a.dns_search],
            own_network=not host_network,
        ),
    )
    rootfs.write_file(paths.containerenv, "")


def _sysctls(requested: Mapping[str, str], host_network: bool) -> dict[str, str]:
    """Podman's default sysctls (containers.conf): unprivileged ICMP sockets, so that
    ``ping`` works without CAP_NET_RAW, in a network namespace of the container's own."""
    defaults = {} if host_network else {"net.ipv4.ping_group_range": "0 0"}
    return defaults | dict(requested)


def _mounts(paths: ContainerPaths) -> list[dict[str, Any]]:
    """The /etc files every container gets (the client's mounts come from ContainerMounts)."""
    return [
        {"destination": dest, "type": "bind", "source": source, "options": ["bind", "rprivate"]}
        for dest, source in (
            ("/etc/hosts", paths.hosts),
            ("/etc/hostname", paths.hostname),
            ("/etc/resolv.conf", paths.resolv_conf),
            ("/run/.containerenv", paths.containerenv),
        )
    ]
