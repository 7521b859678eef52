"""Containers: create, look up, list, rename, update, remove and prune.

Running them (start, stop, exits, restarts) is :mod:`podapi.engine.lifecycle`;
this module owns the records and the files of each container.  Every change
to one container happens under its own lock, so concurrent requests for the
same container are applied one after another.
"""

import os
import secrets
import shutil
import sqlite3
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import partial
from typing import Any

from attrs import evolve
from twisted.internet.defer import DeferredLock

from podapi.engine.cgroupplace import check_parent, pod_cgroup
from podapi.engine.containerspec import (
    LOG_DRIVERS,
    ContainerSpec,
    RunConfig,
    check_name,
    check_resources,
    check_restart_policy,
    check_sysctls,
    exposed_ports,
    healthcheck_from_docker,
    merge_env,
    signal_number,
)
from podapi.engine.events import EventBus
from podapi.engine.images import ImageService
from podapi.engine.layout import ContainerPaths, Layout
from podapi.engine.mountplan import (
    image_volume_paths,
    parse_volumes_from,
    plan_mounts,
    volume_names,
)
from podapi.engine.naming import generate_name
from podapi.engine.networks import NetworkService
from podapi.engine.secrets import resolve_spec as resolve_secrets
from podapi.engine.secrets import secret_names
from podapi.engine.shortnames import ShortNames
from podapi.engine.state import containers as rows
from podapi.engine.state import pods as pod_rows
from podapi.engine.state import secrets as secret_rows
from podapi.engine.state import volumes as volume_rows
from podapi.engine.state.containers import CREATED, EXITED, ContainerRecord
from podapi.engine.state.database import State
from podapi.engine.state.images import ImageRecord
from podapi.engine.state.pods import NoSuchPod
from podapi.engine.volumes import VolumeService
from podapi.errors import Conflict, InvalidArgument, NoSuchContainer
from podapi.oci import rlimits, rootfs
from podapi.oci.spec import device_cgroup_rule
from podapi.threads import Blocking

DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_STOP_TIMEOUT = 10


def run_config(
    spec: ContainerSpec, image_config: Mapping[str, Any], container_id: str, hostname: str
) -> RunConfig:
    """Merge the request with the image config, the way Docker does.

    A client entrypoint replaces the image's and drops the image's command
    (unless the client gives a command too).
    """
    section: Mapping[str, Any] = image_config.get("config") or {}
    entrypoint = tuple(
        spec.entrypoint if spec.entrypoint is not None else section.get("Entrypoint") or ()
    )
    if spec.command is not None:
        command = tuple(spec.command)
    elif spec.entrypoint is not None:
        command = ()
    else:
        command = tuple(section.get("Cmd") or ())
    argv = entrypoint + command
    if not argv:
        raise InvalidArgument(
            "no command specified: the image has no Cmd or Entrypoint and the request gives none",
            cause="no command specified",
        )
    env = merge_env(section.get("Env") or (), spec.env, keep_bare=True)
    if not any(e.startswith("PATH=") for e in env):
        env = (DEFAULT_PATH, *env)
    extra = [f"HOSTNAME={hostname}", "container=podman"] + (["TERM=xterm"] if spec.tty else [])
    env = merge_env([*extra, *env], [])
    stop_signal = spec.stop_signal or section.get("StopSignal") or "SIGTERM"
    signal_number(stop_signal)
    healthcheck = spec.healthcheck
    if healthcheck is None and section.get("Healthcheck"):
        healthcheck = healthcheck_from_docker(section["Healthcheck"])
    if spec.no_healthcheck or (healthcheck is not None and healthcheck.test[:1] == ("NONE",)):
        healthcheck = None
    return RunConfig(
        path=argv[0],
        args=argv[1:],
        entrypoint=entrypoint,
        command=command,
        env=env,
        working_dir=spec.working_dir or section.get("WorkingDir") or "/",
        user=spec.user if spec.user is not None else section.get("User") or "",
        hostname=hostname,
        labels={**(section.get("Labels") or {}), **spec.labels},
        stop_signal=stop_signal,
        stop_timeout=DEFAULT_STOP_TIMEOUT if spec.stop_timeout is None else spec.stop_timeout,
        exposed_ports=tuple(
            dict.fromkeys(
                [
                    *exposed_ports(list(section.get("ExposedPorts") or {}), strict=False),
                    *exposed_ports(spec.exposed_ports),
                ]
            )
        ),
        healthcheck=healthcheck,
    )


def check_spec(spec: ContainerSpec) -> ContainerSpec:
    """Validate what a request can get wrong before anything is stored."""
    policy = check_restart_policy(spec.restart_policy)
    if spec.auto_remove and policy.name != "no":
        raise InvalidArgument(
            "conflicting options: cannot specify both --restart and --rm",
            cause="conflicting options",
        )
    resources = check_resources(spec.resources)
    if spec.shm_size is not None and spec.shm_size < 0:
        raise InvalidArgument("SHM size can not be less than 0")  # Docker's message
    if spec.oom_score_adj is not None and not -1000 <= spec.oom_score_adj <= 1000:
        raise InvalidArgument(
            f"Invalid value {spec.oom_score_adj}, range for oom score adj is [-1000, 1000]"
        )
    check_sysctls(spec.sysctls, spec.network_mode)
    rlimits.check((u.name, u.soft, u.hard) for u in spec.ulimits)
    if spec.working_dir and not spec.working_dir.startswith("/"):
        raise InvalidArgument(
            f"the working directory '{spec.working_dir}' is invalid, it needs to be an "
            "absolute path"
        )
    if spec.stop_signal:
        signal_number(spec.stop_signal)
    if spec.log_driver and spec.log_driver not in LOG_DRIVERS:
        raise InvalidArgument(
            f"logger: no log driver named '{spec.log_driver}' is registered",
            cause="unknown log driver",
        )
    for rule in spec.device_cgroup_rules:
        device_cgroup_rule(rule)
    if spec.cgroupns_mode not in ("", "private", "host"):
        raise InvalidArgument(f"invalid cgroup namespace mode: {spec.cgroupns_mode}")
    if spec.isolation not in ("", "default"):
        raise InvalidArgument(
            f"invalid isolation '{spec.isolation}' on linux: only 'default' is supported"
        )
    if spec.nano_cpus:
        # Docker's check (daemon_unix.go): no lower bound at create, despite the
        # message; a quota the kernel refuses fails at start.  Podman accepts too.
        ncpu = os.cpu_count() or 1
        if not 0 < spec.nano_cpus <= ncpu * 1_000_000_000:
            raise InvalidArgument(
                f"Range of CPUs is from 0.01 to {ncpu}.00, as there are only {ncpu} CPUs available"
            )
    for link in spec.links:
        target, _, alias = link.partition(":")
        if not target.strip("/") or (alias and not alias.strip("/")):
            raise InvalidArgument(f"invalid link {link!r}: use name:alias")
    return evolve(
        spec,
        restart_policy=policy,
        resources=resources,
        cgroup_parent=check_parent(spec.cgroup_parent),
    )


def prepare_dirs(paths: ContainerPaths) -> None:
    """Create a new container's directories (blocking)."""
    for path in (paths.upper, paths.work, paths.merged, paths.userdata, paths.run):
        os.makedirs(path, mode=0o700, exist_ok=True)
    # The upper dir's mode becomes the container's "/": it must be traversable
    # by any user the container runs as.
    os.chmod(paths.upper, 0o755)


def _insert(
    conn: sqlite3.Connection,
    record: ContainerRecord,
    name_for: Callable[[Callable[[str], bool]], str] | None,
) -> ContainerRecord:
    """Store a new container and the volumes and secrets it uses, in one transaction."""
    record = evolve(record, spec=resolve_secrets(conn, record.spec))
    record = rows.insert(conn, record, name_for)
    volume_rows.add_users(conn, record.id, volume_names(record.run.mounts))
    secret_rows.add_users(conn, record.id, secret_names(record.spec))
    return record


def _delete(conn: sqlite3.Connection, container_id: str, volumes: list[str]) -> list[str]:
    """Forget a container and those of ``volumes`` left anonymous and unused, in one
    transaction: whoever sees the container gone sees its ``-v`` volumes gone too."""
    rows.delete(conn, container_id=container_id)
    return volume_rows.delete_unused_anonymous(conn, volumes)


def remove_dirs(paths: ContainerPaths) -> None:
    """Delete a container's files (blocking); the rootfs must be unmounted."""
    rootfs.unmount(paths.merged)
    for path in (paths.root, paths.run):
        shutil.rmtree(path, ignore_errors=True)


class ContainerService:
    """Container records and files.

    :param layout: where container files live.
    :param state: the state database.
    :param io: the blocking-work executor.
    :param events: where container events go.
    :param images: image lookup (a container keeps its image's layers in use).
    :param networks: checks a new container's network settings.
    :param volumes: makes the volumes a new container mounts.
    :param now_ns: the wall clock.
    """

    def __init__(
        self,
        layout: Layout,
        *,
        state: State,
        io: Blocking,
        events: EventBus,
        images: ImageService,
        networks: NetworkService,
        volumes: VolumeService,
        now_ns: Callable[[], int],
    ) -> None:
        self.layout = layout
        self._state = state
        self._io = io
        self._events = events
        self._images = images
        self._networks = networks
        self._volumes = volumes
        self._now = now_ns
        self._locks: defaultdict[str, DeferredLock] = defaultdict(DeferredLock)

    def lock(self, container_id: str) -> DeferredLock:
        """The lock that orders changes to one container."""
        return self._locks[container_id]

    def now(self) -> int:
        """The wall clock in nanoseconds."""
        return self._now()

    async def claim_exit(
        self, record: ContainerRecord, *, exit_code: int, oom_killed: bool
    ) -> ContainerRecord | None:
        """Mark the current run exited; None when someone else already did (see rows)."""
        return await self._state.write(
            partial(
                rows.claim_exit,
                container_id=record.id,
                run_id=record.run_id,
                exit_code=exit_code,
                finished_at=self._now(),
                oom_killed=oom_killed,
            )
        )

    def paths(self, container_id: str) -> ContainerPaths:
        """One container's paths."""
        return self.layout.container(container_id)

    # --- queries --------------------------------------------------------------------

    async def begin_step(self, container_id: str, step: str) -> bool:
        """Store ``step`` as under way unless another one is (see rows)."""
        return bool(
            await self._state.write(partial(rows.begin_step, container_id=container_id, step=step))
        )

    async def finish_step(self, container_id: str, step: str) -> None:
        """The ``unfinished`` step is done (unless replaced meanwhile; see rows)."""
        await self._state.write(partial(rows.finish_step, container_id=container_id, step=step))

    async def all(self) -> list[ContainerRecord]:
        """Every container, oldest first."""
        return await self._state.read(rows.load_all)

    async def with_dependents(self, record: ContainerRecord) -> list[ContainerRecord]:
        """``record`` and the containers that join its network namespace (``container:<id>``),
        and theirs, each after every container that depends on it."""
        everything = await self.all()
        ordered: list[ContainerRecord] = []
        pending, seen = [record], {record.id}
        while pending:
            current = pending.pop()
            ordered.insert(0, current)  # popped after whatever it depends on
            mode = f"container:{current.id}"
            for dependent in everything:
                if dependent.spec.network_mode == mode and dependent.id not in seen:
                    seen.add(dependent.id)
                    pending.append(dependent)
        return ordered

    async def get(self, container_id: str) -> ContainerRecord:
        """A container by full ID."""
        return await self._state.read(partial(rows.load, container_id=container_id))

    async def some(self, container_ids: Iterable[str]) -> list[ContainerRecord]:
        """Those of ``container_ids`` that exist (removed ones are left out), in one read:
        on the serial database thread N reads queue N times behind everyone else's."""
        return await self._state.read(partial(rows.load_some, container_ids=list(container_ids)))

    async def resolve(self, text: str) -> ContainerRecord:
        """By name, full ID or unique ID prefix; 404 otherwise."""
        found = await self._state.read(partial(rows.resolve_record, text=text))
        if found is None:
            raise NoSuchContainer(f'no container with name or ID "{text}" found: no such container')
        return found

    async def using_image(self, image: ImageRecord) -> list[str]:
        """IDs of containers made from ``image``."""
        return await self._state.read(partial(rows.using_image, image_id=image.id))

    async def counts(self) -> dict[str, int]:
        """Containers per state."""
        return await self._state.read(rows.counts)

    # --- changes --------------------------------------------------------------------

    async def create(self, spec: ContainerSpec, *, short_names: ShortNames) -> ContainerRecord:
        """Store a new container (files prepared, nothing running yet)."""
        if spec.pod and not spec.infra:
            spec = await self._join_pod(spec)
        spec = await self._networks.normalize(check_spec(spec))
        if spec.links:
            spec = evolve(spec, links=await self._resolve_links(spec.links))
        image, image_name = await self._images.resolve_named(spec.image, short_names=short_names)
        config = await self._images.config(image)
        container_id = secrets.token_hex(32)
        name = check_name(spec.name) if spec.name else ""
        hostname = spec.hostname or container_id[:12]
        record = ContainerRecord(
            id=container_id,
            name=name,
            image_id=image.id,
            image_name=image_name,
            created=self._now(),
            spec=spec,
            run=run_config(spec, config, container_id, hostname),
            state=CREATED,
        )
        inherited = []
        for source, access in map(parse_volumes_from, spec.volumes_from):
            inherited.append(((await self.resolve(source)).run.mounts, access))
        image_volumes = image_volume_paths(config)
        planned = await self._io(plan_mounts, spec, image_volumes, inherited)  # stats sources
        mounts, anonymous = await self._volumes.provision(planned)
        record = evolve(
            record,
            run=evolve(
                record.run,
                mounts=mounts,
                volumes=tuple(dict.fromkeys([*image_volumes, *spec.volumes])),
            ),
        )
        paths = self.paths(container_id)
        try:
            await self._io(prepare_dirs, paths)
            record = await self._state.write(
                partial(_insert, record=record, name_for=None if name else generate_name)
            )
        except BaseException:
            await self._io(remove_dirs, paths)
            await self._volumes.remove_unused(anonymous)
            raise
        self.emit(record, "create")
        return record

    async def _join_pod(self, spec: ContainerSpec) -> ContainerSpec:
        """A container in a pod enters the namespaces its infra container shares."""
        pod = await self._state.read(partial(pod_rows.resolve, text=spec.pod))
        if pod is None:
            raise NoSuchPod(f"no pod with name or ID {spec.pod} found: no such pod")
        spec = evolve(
            spec,
            pod=pod.id,
            pod_name=pod.name,
            # As Podman: a parent the client gave wins over the pod's cgroup.
            cgroup_parent=spec.cgroup_parent or pod_cgroup(pod),
        )
        if not pod.infra_id:
            return spec
        shared = pod.spec.share
        mode = f"container:{pod.infra_id}"
        if "net" in shared:
            if spec.ports:
                raise InvalidArgument(
                    "invalid config provided: published or exposed ports must be defined "
                    "when the pod is created: network cannot be configured when it is "
                    "shared with a pod",
                    cause="invalid config provided",
                )
            spec = evolve(spec, network_mode=mode, networks=())
        if "uts" in shared:
            spec = evolve(spec, uts_mode=mode, hostname=pod.spec.hostname or pod.name)
        if "ipc" in shared:
            spec = evolve(spec, ipc_mode=mode)
        if "pid" in shared:
            spec = evolve(spec, pid_mode=mode)
        return spec

    async def _resolve_links(self, links: tuple[str, ...]) -> tuple[str, ...]:
        """``name[:alias]`` -> ``name:alias`` with the linked container's name (404 if none)."""
        resolved = []
        for link in links:
            target, _, alias = link.partition(":")
            linked = await self._state.read(partial(rows.resolve_record, text=target.strip("/")))
            if linked is None:
                raise NoSuchContainer(
                    f"could not get container for {target.strip('/')}",
                    cause="no such container",
                )
            resolved.append(f"{linked.name}:{alias.strip('/') or linked.name}")
        return tuple(dict.fromkeys(resolved))

    async def linked(self, record: ContainerRecord) -> list[tuple[str, ContainerRecord]]:
        """``(alias, linked container)`` of each legacy link; 409 when one is not running
        (Docker's rule at start)."""
        found = []
        for link in record.spec.links:
            target, _, alias = link.partition(":")
            linked = await self._state.read(partial(rows.resolve_record, text=target))
            if linked is None:
                raise NoSuchContainer(f"could not get container for {target}")
            if not linked.alive:
                raise Conflict(
                    f"Cannot link to a non running container: /{linked.name} AS "
                    f"/{record.name}/{alias}",
                    cause="container state improper",
                )
            found.append((alias, linked))
        return found

    async def remove_link(self, record: ContainerRecord, alias: str) -> None:
        """``DELETE /containers/{parent}/{alias}?link=true``: forget one legacy link."""
        async with self.lock(record.id):
            current = await self.get(record.id)
            kept = tuple(k for k in current.spec.links if k.partition(":")[2] != alias)
            if kept == current.spec.links:
                raise NoSuchContainer(
                    f"could not get container for /{record.name}/{alias}",
                    cause="no such container",
                )
            await self.update_record(record.id, spec=evolve(current.spec, links=kept))

    def emit(self, record: ContainerRecord, action: str, **extra: str) -> None:
        """A container event with Podman's attributes (name, image, labels)."""
        attributes = {**record.run.labels, "name": record.name, "image": record.spec.image, **extra}
        if record.spec.pod:
            attributes["podId"] = record.spec.pod
        self._events.emit("container", action, record.id, **attributes)

    async def update_record(self, container_id: str, **values: Any) -> ContainerRecord:
        """Change stored fields of a container."""
        return await self._state.write(partial(rows.update, container_id=container_id, **values))

    async def rename(self, record: ContainerRecord, new_name: str) -> ContainerRecord:
        """``docker rename``."""
        name = check_name(new_name)
        async with self.lock(record.id):
            renamed = await self._state.write(
                partial(rows.rename, container_id=record.id, name=name)
            )
        self.emit(renamed, "rename", oldName=record.name)
        return renamed

    async def forget(self, record: ContainerRecord, *, volumes: bool = False) -> None:
        """Delete a stopped container's files and record (caller holds its lock).

        :param volumes: also its anonymous volumes nothing else uses (``rm -v``).
        """
        if record.state not in (CREATED, EXITED, "initialized"):
            raise Conflict(f"container {record.id} is {record.state}: cannot remove it")
        # The row goes first: files without a row are orphans the next start
        # removes; a row without files would be a container that cannot run.
        anonymous = volume_names(record.run.mounts) if volumes else []
        gone = await self._state.write(partial(_delete, container_id=record.id, volumes=anonymous))
        # The event goes out as the row goes: whoever finds the container gone (a 404, a
        # ``wait`` for its removal) finds ``remove`` in the log, not a moment later.
        self.emit(record, "remove")
        await self._io(remove_dirs, self.paths(record.id))
        self._locks.pop(record.id, None)
        await self._volumes.discard(gone)

    async def changes(self, record: ContainerRecord) -> list[tuple[str, int]]:
        """Docker's filesystem diff: ``(path, kind)``, kind 0 changed, 1 added, 2 deleted.

        What the engine mounts into every container is not the container's change
        (:func:`without_runtime_mounts`).
        """
        image = await self._images.get(record.image_id)
        lowers = [self._images.layers.path(d) for d in reversed(image.layers)]
        found = await self._io(rootfs.changes, self.paths(record.id).upper, lowers)
        return without_runtime_mounts(found)

    async def sizes(self, record: ContainerRecord) -> tuple[int, int]:
        """``(SizeRw, SizeRootFs)``: the container's own writes, and those plus its image."""
        image = await self._images.get(record.image_id)
        written = await self._io(rootfs.tree_size, self.paths(record.id).upper)
        return written, written + image.size

    async def prunable(self, keep: Callable[[ContainerRecord], bool]) -> list[ContainerRecord]:
        """Stopped containers a prune may remove (those ``keep`` does not spare)."""
        return [c for c in await self.all() if not c.alive and not c.spec.infra and not keep(c)]


#: Mount points the engine and the runtime make in every container (Podman's
#: ``containerMounts`` in ``libpod/diff.go``, which our own bundle mounts match).
RUNTIME_MOUNTS = frozenset(
    {
        "/dev",
        "/etc/hostname",
        "/etc/hosts",
        "/etc/resolv.conf",
        "/proc",
        "/run",
        "/run/notify",
        "/run/.containerenv",
        "/run/secrets",
        "/sys",
    }
)


def without_runtime_mounts(
    found: Sequence[tuple[str, int]], hidden: frozenset[str] = RUNTIME_MOUNTS
) -> list[tuple[str, int]]:
    """The container's own changes: ``found`` without the mount points we made.

    Podman drops the mount points themselves; Docker shows neither them nor the
    directories created or copied up only to hold them (its ``-init`` layer holds
    ``/etc/hosts`` & co., below the container's layer), so ``docker diff`` of
    ``touch /test`` is just ``A /test``.  We do as Docker on both trees: a
    directory above a hidden mount point is dropped too unless something else
    listed lies inside it (``/etc`` stays, as ``C /etc``, beside ``A /etc/foo``).
    """
    kept = [(path, kind) for path, kind in found if path not in hidden]
    holders = {
        "/".join(parts[:i])
        for path in hidden
        if (parts := path.split("/"))
        for i in range(2, len(parts))
    }
    listed = [path for path, _ in kept]

    def only_holds_mounts(path: str) -> bool:
        prefix = path + "/"
        return path in holders and not any(other.startswith(prefix) for other in listed)

    return [
        (path, kind) for path, kind in kept if kind == rootfs.DELETED or not only_holds_mounts(path)
    ]
