"""The engine facade the HTTP handlers talk to."""

import contextlib
import os
import sqlite3
import time
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

from twisted.internet import defer
from twisted.internet.defer import Deferred

from podapi.config import Config
from podapi.engine.attach import ContainerAttach
from podapi.engine.commit import Committer
from podapi.engine.containerfiles import ContainerFiles
from podapi.engine.containermounts import ContainerMounts
from podapi.engine.containers import ContainerService
from podapi.engine.containerspec import NetworkEndpoint
from podapi.engine.diskusage import DiskUsageReader
from podapi.engine.distribution import Distribution
from podapi.engine.events import EventBus, EventLog
from podapi.engine.execs import ExecService
from podapi.engine.imagearchives import ImageArchives
from podapi.engine.imagebuild.cache import BuildCache
from podapi.engine.images import ImageService
from podapi.engine.infraimage import PauseImage
from podapi.engine.inspection import ContainerDetails
from podapi.engine.layout import Layout
from podapi.engine.lifecycle import Lifecycle
from podapi.engine.logs import ContainerLogs
from podapi.engine.manifests import ManifestLists
from podapi.engine.networks import NetworkService
from podapi.engine.ocimodel import effective_capabilities
from podapi.engine.pods import PodService
from podapi.engine.processes import ContainerProcesses
from podapi.engine.push import ImagePush
from podapi.engine.reactors import IEngineReactor
from podapi.engine.removal import ContainerRemoval
from podapi.engine.secrets import SecretService
from podapi.engine.serverlock import cleanups_running, exclude_cleanups, take_server_lock
from podapi.engine.shared import SharedResult
from podapi.engine.state.database import State, meta_value
from podapi.engine.state.images import ImageRecord, count_images
from podapi.engine.stats import StatsReader
from podapi.engine.system import HostFacts, Info, ObjectCounts, System, server_id
from podapi.engine.systemprune import SystemPrune
from podapi.engine.top import ContainerTop
from podapi.engine.volumes import VolumeService
from podapi.errors import NotFound, ServiceUnavailable
from podapi.logs import get_logger
from podapi.oci import host
from podapi.oci.leftovers import wait_for_helpers
from podapi.oci.netavark import Netavark
from podapi.oci.probe import find_binary
from podapi.oci.process import Runner
from podapi.oci.runtime import OCIRuntime
from podapi.oci.seccomp import Converter, load_default
from podapi.storage.registries import RegistriesConfig
from podapi.storage.registry import RegistryClient, UrlDownloader
from podapi.threads import Blocking

if TYPE_CHECKING:
    from podapi.engine.imagebuild.builder import Builder
    from podapi.engine.kube.player import KubePlayer
    from podapi.engine.kube.service import KubeGenerator

log = get_logger(__name__)

#: Seconds the server waits at start for the helpers (netavark, runc...) a killed
#: server left running.
HELPER_WAIT = 10.0

#: Seconds a request that needs the reconciled state waits for the start-up
#: reconcile before it is answered 503.
RECONCILE_WAIT = 60.0


async def _load_seccomp(io: Blocking, facts: HostFacts) -> Converter | None:
    return await io(_seccomp_converter, facts)


def _seccomp_converter(facts: HostFacts) -> Converter | None:
    profile = load_default()
    if profile is None:
        return None
    return Converter(profile, go_arch=facts.arch, kernel=facts.kernel)


def _ensure_server_id(conn: sqlite3.Connection) -> str:
    return meta_value(conn, "server_id", partial(server_id, None))


class Engine:
    """State, events and system facts, started and stopped with the service.

    :param config: the server configuration.
    :param io: thread pool for blocking file work.
    :param db: the serial executor the database and event log live on.
    :param runner: runs helper processes.
    :param reactor: time and network for the registry client.
    :param now_ns: wall clock in nanoseconds (tests pass a fixed one).
    """

    def __init__(
        self,
        config: Config,
        *,
        io: Blocking,
        db: Blocking,
        runner: Runner,
        reactor: IEngineReactor,
        now_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.config = config
        self._io = io
        self.layout = Layout(config.root, config.runroot)
        self.state = State(self.layout.database, db)
        self.events = EventBus(EventLog(self.layout.events_dir), db, now_ns)
        self.system = System(self.layout, io, runner, config.listen.uri)
        self.images = ImageService(
            config.root,
            state=self.state,
            io=io,
            events=self.events,
            registries=self._registries,
            in_use=self._containers_of,
        )
        self._downloader = UrlDownloader(reactor, blocking=io, spool_dir=self.layout.spool_dir)
        self.image_archives = ImageArchives(
            self.images,
            state=self.state,
            io=io,
            events=self.events,
            downloader=self._downloader,
        )
        client = RegistryClient(
            reactor, blocking=io, blobs=self.images.blobs, registries=self._registries
        )
        self.distribution = Distribution(self.images, client, self.events, io, self._registries)
        self.build_cache = BuildCache(self.state, self.images, now_ns)
        self.image_push = ImagePush(self.images, client, self.events, io)
        self.manifests = ManifestLists(
            state=self.state,
            images=self.images,
            client=client,
            pusher=self.image_push,
            events=self.events,
            now_ns=now_ns,
        )
        netavark = find_binary("netavark")
        self.networks = NetworkService(
            config.network,
            layout=self.layout,
            state=self.state,
            io=io,
            events=self.events,
            runner=runner,
            netavark=Netavark(
                runner,
                netavark,
                find_binary("aardvark-dns"),
                self.layout.netavark_state,
            )
            if netavark
            else None,
            remove_container=self._remove_container,
        )
        self.volumes = VolumeService(
            os.path.join(config.root, "volumes"),
            state=self.state,
            io=io,
            events=self.events,
            now_ns=now_ns,
            remove_container=self._remove_container,
        )
        self.secrets = SecretService(
            self.layout.secrets_dir,
            state=self.state,
            io=io,
            events=self.events,
            now_ns=now_ns,
        )
        self.containers = ContainerService(
            self.layout,
            state=self.state,
            io=io,
            events=self.events,
            images=self.images,
            networks=self.networks,
            volumes=self.volumes,
            now_ns=now_ns,
        )
        self.pods = PodService(
            state=self.state,
            containers=self.containers,
            lifecycle=lambda: self.lifecycle,
            events=self.events,
            pause_image=PauseImage(self.images, io),
            stats=StatsReader(io, now_ns),
            top=lambda: self.top,
            io=io,
        )
        self._runner = runner
        self._clock = reactor
        self._lifecycle: Lifecycle | None = None
        self._execs: ExecService | None = None
        self._committer: Committer | None = None
        self._server_locks: list[int] = []
        self._reconciling: SharedResult[None] | None = None
        self._seccomp: SharedResult[Converter | None] | None = None
        #: Start-up reconcile is done: every request may be served.
        self.ready = False

    @property
    def lifecycle(self) -> Lifecycle:
        """Starting and stopping containers (available once started)."""
        if self._lifecycle is None:
            raise RuntimeError("engine is not started")
        return self._lifecycle

    @property
    def execs(self) -> ExecService:
        """Exec sessions (available once started)."""
        if self._execs is None:
            raise RuntimeError("engine is not started")
        return self._execs

    @property
    def committer(self) -> Committer:
        """Containers committed to images (available once started)."""
        if self._committer is None:
            raise RuntimeError("engine is not started")
        return self._committer

    @property
    def logs(self) -> ContainerLogs:
        """Containers' logs (available once started)."""
        return ContainerLogs(self.containers, self.lifecycle, self._io, self._clock)

    @property
    def top(self) -> ContainerTop:
        """``ps`` of containers' processes (available once started)."""
        lifecycle = self.lifecycle
        return ContainerTop(lambda: lifecycle.runtime, self._runner, self.containers.emit)

    @property
    def processes(self) -> ContainerProcesses:
        """Containers' terminals, namespaces and cgroups."""
        return ContainerProcesses(self.containers, self._io)

    @property
    def attaching(self) -> ContainerAttach:
        """Joining containers' standard streams (available once started)."""
        return ContainerAttach(self.containers, self.lifecycle)

    @property
    def removal(self) -> ContainerRemoval:
        """Container removal with dependents, and prune (available once started)."""
        return ContainerRemoval(self.containers, self.lifecycle, self.events.now_ns)

    @property
    def disk_usage(self) -> DiskUsageReader:
        """``system df``: what images, containers and volumes use."""
        return DiskUsageReader(self.images, self.containers, self.volumes)

    @property
    def system_prune(self) -> SystemPrune:
        """``system prune`` and the build-cache prune (available once started)."""
        return SystemPrune(
            self.removal,
            self.images,
            self.networks,
            self.volumes,
            self.build_cache,
            now_ns=self.events.now_ns,
            prune_pods=self._prune_pods,
        )

    @property
    def builder(self) -> "Builder":
        """``docker build`` (available once started)."""
        # Build and kube code load on first use: a start needs neither (some 40 ms).
        from podapi.engine.imagebuild.builder import Builder  # noqa: PLC0415
        from podapi.engine.imagebuild.steps import WorkingContainers  # noqa: PLC0415

        return Builder(
            images=self.images,
            distribution=self.distribution,
            working=WorkingContainers(
                self.containers, self.lifecycle, self.images, self._io, self._clock
            ),
            cache=self.build_cache,
            downloader=self._downloader,
            io=self._io,
            work_dir=self.layout.spool_dir,
            now_ns=self.events.now_ns,
        )

    async def _prune_pods(self) -> list[str]:
        return [pod_id for pod_id, error in await self.pods.prune() if not error]

    @property
    def files(self) -> ContainerFiles:
        """Files in and out of containers (available once started)."""
        return ContainerFiles(self.lifecycle, self._io, self.containers.emit)

    @property
    def stats(self) -> StatsReader:
        """Samples of containers' resource usage."""
        return StatsReader(self._io, self.events.now_ns)

    @property
    def kube_generator(self) -> "KubeGenerator":
        """``kube generate``: Kubernetes documents of containers and volumes (once started)."""
        from podapi.engine.kube.describe import ContainerDescriber  # noqa: PLC0415
        from podapi.engine.kube.service import KubeGenerator, describe_pod  # noqa: PLC0415

        lifecycle = self.lifecycle
        describer = ContainerDescriber(self.images, self._io, lifecycle.rootfs_access)
        return KubeGenerator(
            self.containers,
            self.volumes,
            describer,
            find_pod=partial(describe_pod, self.pods, describer),
        )

    @property
    def kube_player(self) -> "KubePlayer":
        """``kube play`` and ``kube down`` (available once started)."""
        from podapi.engine.kube.player import KubePlayer  # noqa: PLC0415

        return KubePlayer(
            pods=self.pods,
            containers=self.containers,
            volumes=self.volumes,
            secrets=self.secrets,
            networks=self.networks,
            distribution=self.distribution,
            io=self._io,
        )

    async def inspect_container(self, name: str) -> ContainerDetails:
        """A container by name or ID, with what its inspect shows beyond the row."""
        record = await self.containers.resolve(name)
        spec = record.spec
        facts = self.system.facts
        return ContainerDetails(
            record=record,
            paths=self.containers.paths(record.id),
            runtime=facts.runtime.name if facts is not None and facts.runtime else "",
            default_network=self.networks.default.name,
            capabilities=tuple(
                effective_capabilities(spec.cap_add, spec.cap_drop, spec.privileged)
            ),
            cgroup_path=self.processes.cgroup_path(record),
        )

    async def _containers_of(self, image: ImageRecord) -> list[str]:
        return await self.containers.using_image(image)

    async def _remove_container(self, container_id: str, stop_timeout: int | None) -> None:
        """Force-remove a container that uses a volume or network being force-removed.

        A pod's infra container takes its pod along, with the pod's other containers
        (Podman's ``NetworkRm``, ``pkg/domain/infra/abi/network.go``: "if we have a infra
        container we need to remove the pod").  Podman's volume removal refuses an infra
        container instead; we remove its pod there too.
        """
        try:
            record = await self.containers.get(container_id)
        except NotFound:  # removed meanwhile
            return
        if record.spec.infra:
            # No timeout kills at once, as for a container on its own.
            timeout = 0 if stop_timeout is None else stop_timeout
            with contextlib.suppress(NotFound):  # the pod went meanwhile
                await self.pods.remove(record.spec.pod, force=True, timeout=timeout)
            return
        await self.lifecycle.remove(record, force=True, stop_timeout=stop_timeout)

    async def connect_network(self, container: str, endpoint: NetworkEndpoint) -> None:
        """``docker network connect``: the container (name or ID) joins ``endpoint.name``."""
        record = await self.containers.resolve(container)
        await self.lifecycle.connect_network(record, endpoint)

    async def disconnect_network(self, container: str, network: str) -> None:
        """``docker network disconnect``: the container (name or ID) leaves ``network``."""
        record = await self.containers.resolve(container)
        await self.lifecycle.disconnect_network(record, network)

    def _registries(self) -> RegistriesConfig:
        facts = self.system.facts
        return facts.registries if facts is not None else RegistriesConfig()

    async def start(self, *, serve: bool = True) -> None:
        """Open the engine and, as the server, reconcile (:meth:`open`, :meth:`reconcile`).

        :param serve: run as the server (see :meth:`open`).  ``podapi.cleanup``
            passes False.
        """
        await self.open(serve=serve)
        if serve:
            await self.reconcile()
        else:
            self.ready = True  # nothing to recover: a cleanup leaves that to the server

    async def open(self, *, serve: bool = True) -> None:
        """Create the layout, open the database, load system facts: enough for reads.

        :param serve: run as the server: hold the runroot's server lock (so
            ``podapi.cleanup`` leaves exits to us).
        """
        await self._io(self.layout.create)
        if serve:
            await self._lock_runroot()
        await self.state.open()
        persistent_id = await self.state.write(_ensure_server_id)
        facts = await self.system.load(self.config.runtime, persistent_id)
        runtime = None
        if facts.runtime is not None:
            runtime = OCIRuntime(self._runner, facts.runtime.path, self.layout.runtime_state)
        self._lifecycle = Lifecycle(
            self.containers,
            images=self.images,
            layout=self.layout,
            io=self._io,
            clock=self._clock,
            runtime=runtime,
            conmon_path=find_binary("conmon"),
            seccomp=self._seccomp_converter,
            init_binary=facts.init_binary,
            networks=self.networks,
            mounts=ContainerMounts(self.volumes, self.images, self._io, self.secrets),
        )
        self._committer = Committer(self.containers, self.images, self._lifecycle)
        await self.networks.start(serve=serve)
        self._execs = ExecService(
            self.containers,
            layout=self.layout,
            state=self.state,
            io=self._io,
            clock=self._clock,
            lifecycle=self._lifecycle,
        )

    async def reconcile(self) -> None:
        """Start-up recovery (after :meth:`open`): wait for a killed server's helpers,
        collect image garbage, settle what happened without a server
        (:meth:`Lifecycle.watch`), then follow exits.

        The server listens meanwhile; :meth:`reconciled` waits for this.
        """
        if self._reconciling is None:
            self._reconciling = SharedResult(self._reconcile())
        await self._reconciling.get()
        self.ready = True

    async def _reconcile(self) -> None:
        # The helpers a killed server left running (:mod:`podapi.oci.leftovers`)
        # would change the host behind the reconcile's back.
        running = await self._io(wait_for_helpers, self.layout.runroot, HELPER_WAIT)
        if running:
            log.warn("helper processes {pids} of a previous server still run", pids=running)
        await self.images.start()
        await self.lifecycle.watch()

    async def reconciled(self, timeout: float = RECONCILE_WAIT) -> None:
        """Wait (at most ``timeout`` seconds) until :meth:`reconcile` is done.

        :raises ServiceUnavailable: it is not done in time, or it failed.
        """
        if self.ready:
            return
        if self._reconciling is None:
            raise ServiceUnavailable("the engine is starting: retry shortly")
        done = Deferred.fromCoroutine(self._reconciling.get())
        done.addTimeout(timeout, self._clock)
        try:
            await done
        except defer.TimeoutError:
            raise ServiceUnavailable(
                f"the engine is still recovering its state after {timeout:g}s: retry later"
            ) from None
        except Exception as e:
            raise ServiceUnavailable(f"the engine could not recover its state: {e}") from e

    async def _seccomp_converter(self) -> Converter | None:
        """The default seccomp profile's converter, loaded for the first container that
        needs it (a JSON file of some 40 KB: not worth reading, nor holding, before)."""
        facts = self.system.facts
        if facts is None or not facts.seccomp_profile:
            return None
        if self._seccomp is None:
            self._seccomp = SharedResult(_load_seccomp(self._io, facts))
        return await self._seccomp.get()

    async def _lock_runroot(self) -> None:
        """Refuse a second server, then wait for running cleanups to finish and keep
        new ones out (:mod:`podapi.engine.serverlock`)."""
        self._server_locks.append(await self._io(take_server_lock, self.layout.server_lock))
        if await self._io(cleanups_running, self.layout.cleanup_lock):
            # A start delayed by up to a cleanup's deadline deserves a word.
            log.warn("waiting for podapi.cleanup to finish before reconciling")
        self._server_locks.append(await self._io(exclude_cleanups, self.layout.cleanup_lock))

    async def stop(self) -> None:
        """Stop following containers, close registry connections and the database."""
        if self._lifecycle is not None:
            self._lifecycle.unwatch()
        while self._server_locks:
            os.close(self._server_locks.pop())  # releases the flock
        await self.distribution.close()
        await self.state.close()

    async def counts(self) -> ObjectCounts:
        """Containers by state and images."""
        images = await self.state.read(count_images)
        states = await self.containers.counts()
        running = states.get("running", 0) + states.get("stopping", 0)
        paused = states.get("paused", 0)
        total = sum(states.values())
        return ObjectCounts(
            containers=total,
            running=running,
            paused=paused,
            stopped=total - running - paused,
            images=images,
        )

    async def info(self) -> Info:
        """A snapshot of everything ``/info`` reports."""
        facts = self.system.facts
        if facts is None:
            raise RuntimeError("engine is not started")
        return Info(
            facts=facts,
            components=await self.system.components(),
            memory=host.memory(),
            uptime=host.uptime_seconds(),
            cpu=host.cpu_utilization(),
            disk=host.disk_space(self.layout.root),
            counts=await self.counts(),
            layout=self.layout,
            socket_uri=self.system.socket_uri,
            event_listeners=self.events.listeners,
            now_ns=self.events.now_ns(),
        )
