"""Volumes (the local driver) and the mounts of containers.

A volume is the directory ``<root>/volumes/<name>/_data`` (Podman's layout)
plus a row in the state database.  Driver options make it a tmpfs
(``type=tmpfs``, ``o=size=...``) or a bind of a host directory
(``device=/path`` with ``type=bind``/``none`` or ``o=bind``), mounted on
``_data`` when the first holder (a starting container, an export) needs it
and unmounted when the last one lets go.

At container create, :meth:`VolumeService.provision` names and creates the
volumes of the planned mounts (``mountplan``): named ones on first use,
anonymous ones for every start from scratch.  At start, ``ContainerMounts``
holds the volumes and copies the image's content into a new, empty volume
(Docker's copy-up).

Differences from Podman, on purpose:

* Volume ``mount``/``unmount`` events are emitted (Docker's, with its
  attributes) when a container start mounts a volume and its exit releases it;
  Podman emits none.  Volume events carry the name as the actor ID, as Docker.
* Names are exact (no unique-prefix lookup).
* ``MountCount`` counts every holder (running containers, exports), whatever
  the driver options; Podman counts only for volumes that need a mount.
* Local driver options are ``type`` (``tmpfs``, ``bind``, ``none``), ``o`` and
  ``device``; anything else is refused (Podman also takes ``uid``, ``gid``,
  ``size`` quotas and other file system types).  A volume with options is
  mounted (and unmounted) once at create, so options the kernel refuses are a
  400 there rather than a failed start later.
* The image's content is copied up at the first mount only, whatever it found
  (Podman's ``NeedsCopyUp``); the volume's root takes the owner and mode of
  the image's directory even when that is empty (Docker).
"""

import contextlib
import os
import secrets
import shutil
import stat
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from functools import partial
from typing import BinaryIO, cast

from attrs import evolve
from twisted.internet.defer import DeferredLock

from podapi import crashpoints
from podapi.engine.chunks import ChunkStream
from podapi.engine.containerspec import MountSpec
from podapi.engine.events import EventBus
from podapi.engine.shield import shielded
from podapi.engine.state import volumes as rows
from podapi.engine.state.database import State
from podapi.engine.state.volumes import VolumeRecord, VolumeUsage
from podapi.engine.volumefilters import build_filter
from podapi.errors import Conflict, InvalidArgument, NotFound, PodapiError
from podapi.oci import mountopts, rootfs
from podapi.oci.scope import DIR_FLAGS, walk
from podapi.storage.difflayer import ChunkReader
from podapi.storage.tarextract import ExtractStats, extract_into
from podapi.storage.tarwrite import TarStream, tree_stream
from podapi.threads import Blocking

DRIVER = "local"
LOCAL_OPTIONS = frozenset({"type", "o", "device"})


# --- the local driver's options -------------------------------------------------------


def check_local_options(options: Mapping[str, str]) -> dict[str, str]:
    """The local driver's options, checked: a tmpfs, a bind of a host directory, or none."""
    for key in options:
        if key not in LOCAL_OPTIONS:
            raise InvalidArgument(
                f"invalid mount option {key} for driver 'local': use type, o and device",
                cause="invalid argument",
            )
    kind = options.get("type", "")
    device = options.get("device", "")
    words = [w for w in options.get("o", "").split(",") if w]
    for word in words:
        if word.startswith("size=") and not mountopts.TMPFS_SIZE.fullmatch(word[5:]):
            raise InvalidArgument(f"invalid volume option o={options['o']}: bad size {word!r}")
    bind = kind in ("bind", "none") or "bind" in words or "rbind" in words
    if kind == "tmpfs" and not bind:
        pass
    elif bind:
        if not device:
            raise InvalidArgument("a bind volume needs device=<host directory>")
        if not os.path.isabs(device) or not os.path.isdir(device):
            raise InvalidArgument(
                f"invalid volume option device={device}: not an existing host directory"
            )
    elif kind:
        raise InvalidArgument(
            f"unsupported volume type {kind!r}: the local driver mounts tmpfs, or binds "
            "a host directory (type=none, o=bind, device=<path>)"
        )
    elif device or words:
        raise InvalidArgument("volume options o and device need type=tmpfs or a bind (o=bind)")
    return dict(options)


def needs_mount(record: VolumeRecord) -> bool:
    """Whether ``_data`` gets something mounted on it (driver options were given)."""
    return bool(record.options.get("type") or record.options.get("device"))


# --- blocking helpers --------------------------------------------------------------------


def _make_dirs(base: str, data: str) -> None:
    os.makedirs(base, mode=0o700, exist_ok=True)
    os.makedirs(data, mode=0o755, exist_ok=True)


def _make_all_dirs(pairs: Sequence[tuple[str, str]]) -> None:
    for base, data in pairs:
        _make_dirs(base, data)


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except FileNotFoundError:
        return []


def _remove_dirs(base: str, data: str) -> None:
    # Every layer of mounts first: rmtree must never descend into a bound host directory.
    rootfs.unmount_all(data)
    shutil.rmtree(base, ignore_errors=True)


def _ensure_mounted(record: VolumeRecord, data: str) -> None:
    """Mount what the driver options say on ``data`` unless mounted already.

    :raises PodapiError: the kernel refused (a 500 with Docker's message, as a
        failed start is; the options were tried at create, so the host changed).
    """
    if rootfs.is_mounted(data):
        return
    kind = record.options.get("type", "")
    device = record.options.get("device") or kind
    try:
        mountopts.mount(device, data, kind, record.options.get("o", ""))
    except OSError as e:
        raise PodapiError(
            f"error while mounting volume '{data}': failed to mount local volume: "
            f"{e.strerror.lower() if e.strerror else e}",
            cause="mounting volume",
        ) from None


def _try_mount(record: VolumeRecord, data: str) -> None:
    """Mount and unmount a new volume once, so bad ``o`` options are a 400 at create."""
    try:
        _ensure_mounted(record, data)
    except PodapiError:
        raise InvalidArgument(
            f"invalid volume options {dict(record.options)}: the kernel refuses to mount them",
            cause="invalid argument",
        ) from None
    rootfs.unmount(data)


def _copy_up(merged: str, destination: str, data: str) -> None:
    """Copy the image's directory at ``destination`` into the empty ``data``.

    Nothing happens when the volume is not empty or the path is missing or
    not a directory in the rootfs (Podman's rules; CVE-2020-1726).  Owners,
    modes, times and extended attributes travel with a tar stream, as Podman's
    copier does; the volume's root takes the mode and owner of the directory
    even when it is empty (Docker's ``copyOwnership``).  The walk resolves
    symlinks inside the rootfs, so an image cannot point the copy at the host.
    """
    if os.listdir(data):
        return
    root = os.open(merged, DIR_FLAGS)
    try:
        parts = [p for p in destination.split("/") if p]
        _, source = walk(root, parts, mkdir=None, fail=NotADirectoryError)
    except OSError:
        return
    finally:
        os.close(root)
    stream = TarStream(source, None, "")  # owns the descriptor from here on
    try:
        info = os.fstat(source)
        if os.listdir(source):
            extract_into(cast(BinaryIO, ChunkReader(stream)), data)
    finally:
        stream.close()
    os.chown(data, info.st_uid, info.st_gid)
    os.chmod(data, stat.S_IMODE(info.st_mode))


# --- the service ------------------------------------------------------------------------


class VolumeService:
    """Volume records, directories and host mounts.

    :param root: the ``volumes`` directory (``<root>/volumes``).
    :param state: the state database.
    :param io: the blocking-work executor.
    :param events: where volume events go.
    :param now_ns: the wall clock.
    :param remove_container: force-removes a container by ID, giving a running one
        its stop signal that many seconds first (None: KILL at once); a container
        that is gone already is no error.  The container lifecycle sits above this
        service (it mounts volumes through it), so the engine hands that use case down.
    """

    def __init__(
        self,
        root: str,
        *,
        state: State,
        io: Blocking,
        events: EventBus,
        now_ns: Callable[[], int],
        remove_container: Callable[[str, int | None], Awaitable[None]],
    ) -> None:
        self.root = root
        self._state = state
        self._io = io
        self._events = events
        self._now = now_ns
        self._remove_container = remove_container
        self._locks: defaultdict[str, DeferredLock] = defaultdict(DeferredLock)

    def _base(self, name: str) -> str:
        return os.path.join(self.root, name)

    def mountpoint(self, name: str) -> str:
        """Where the volume's content is: ``<root>/volumes/<name>/_data``."""
        return os.path.join(self.root, name, "_data")

    def emit(self, action: str, name: str, **attributes: str) -> None:
        """A volume event (the name is the actor ID, as Docker has it)."""
        self._events.emit("volume", action, name, name=name, driver=DRIVER, **attributes)

    # --- queries ---

    async def get(self, name: str) -> VolumeRecord:
        """A volume by name; 404 otherwise."""
        return await self._state.read(partial(rows.load, name=name))

    async def find(self, name: str) -> VolumeRecord | None:
        """A volume by name, or None."""
        return await self._state.read(partial(rows.find, name=name))

    async def usage(self, name: str) -> VolumeUsage:
        """A volume with its users and holders; 404 otherwise."""
        return await self._state.read(partial(rows.usage, name=name))

    async def all(self) -> list[VolumeUsage]:
        """Every volume with its users and holders, oldest first."""
        return await self._state.read(rows.usage_all)

    async def selected(
        self, filters: Mapping[str, Sequence[str]], *, prune: bool = False
    ) -> list[VolumeUsage]:
        """The volumes ``filters`` select."""
        anchors = {}
        for key in ("since", "after"):
            for value in filters.get(key, ()):
                anchors[value] = await self.get(value)
        keep = build_filter(filters, prune=prune, anchors=anchors, now_ns=self._now())
        return [usage for usage in await self.all() if keep(usage)]

    async def size(self, name: str) -> int:
        """Bytes of the files in the volume."""
        return await self._io(rootfs.tree_size, self.mountpoint(name))

    # --- create and remove ---

    async def create(
        self,
        name: str | None = None,
        *,
        driver: str = "",
        labels: Mapping[str, str] | None = None,
        options: Mapping[str, str] | None = None,
        anonymous: bool = False,
    ) -> VolumeRecord:
        """A new volume; 409 when the name is taken, 400 for bad options."""
        if driver not in ("", DRIVER):
            raise NotFound(
                f"volume plugin {driver} (needed by volume {name or '<new>'}) missing: "
                "no such volume plugin",
                cause="no such volume plugin",
            )
        name = mountopts.check_volume_name(name) if name else secrets.token_hex(32)
        checked = await self._io(check_local_options, options or {})  # stats the device
        record = VolumeRecord(
            name=name,
            driver=DRIVER,
            created=self._now(),
            labels=dict(labels or {}),
            options=checked,
            anonymous=anonymous,
        )
        # The row first (it takes the name); a crash before the directories are made
        # is repaired by reconcile.
        await self._state.write(partial(rows.insert, record=record))
        crashpoints.reached("volume-row")
        try:
            await self._io(_make_dirs, self._base(name), self.mountpoint(name))
            if needs_mount(record):
                await self._io(_try_mount, record, self.mountpoint(name))
        except BaseException:
            await self._io(_remove_dirs, self._base(name), self.mountpoint(name))
            await self._state.write(partial(rows.delete, name=name))
            raise
        self.emit("create", name)
        return record

    async def ensure(self, mount: MountSpec) -> VolumeRecord:
        """The named volume ``mount`` uses, created with its volume options on first use."""
        found = await self.find(mount.source)
        if found is not None:
            return found
        try:
            return await self.create(
                mount.source,
                driver=mount.volume_driver,
                labels=mount.volume_labels,
                options=mount.volume_options,
            )
        except Conflict:  # made by a concurrent request meanwhile
            return await self.get(mount.source)

    async def provision(
        self, mounts: Sequence[MountSpec]
    ) -> tuple[tuple[MountSpec, ...], list[str]]:
        """Name and create the volumes of planned mounts.

        :returns: the mounts with every volume named and its mount point as
            the source (creation options dropped), and the anonymous volumes
            made here (to remove again if the container is not stored after all).
        """
        named: list[MountSpec] = []
        created: list[str] = []
        try:
            for mount in mounts:
                if mount.type != "volume" or mount.name:  # inherited ones are named already
                    named.append(mount)
                    continue
                if mount.source:
                    record = await self.ensure(mount)
                else:  # with the mount's volume options too (``--mount ...,volume-opt=``)
                    record = await self.create(
                        driver=mount.volume_driver,
                        labels=mount.volume_labels,
                        options=mount.volume_options,
                        anonymous=True,
                    )
                    created.append(record.name)
                named.append(
                    evolve(
                        mount,
                        name=record.name,
                        source=self.mountpoint(record.name),
                        volume_driver="",
                        volume_options={},
                        volume_labels={},
                    )
                )
        except BaseException:
            await self.remove_unused(created)
            raise
        return tuple(named), created

    async def remove(
        self, name: str, *, force: bool = False, timeout: int | None = None
    ) -> VolumeRecord:
        """Delete a volume nobody uses; 409 when a container uses it, 404 when unknown.

        :param force: remove the containers using it first (libpod's ``force``; a pod's
            infra container takes its pod along).
        :param timeout: with ``force``, seconds a running container gets between
            its stop signal and KILL (None: KILL at once).
        """
        if force:
            for container_id in (await self.usage(name)).users:
                await self._remove_container(container_id, timeout)
        async with self._locks[name]:
            record = await self._state.write(partial(rows.delete, name=name))
            await self._remove_files(name)
        self._gone(name)
        return record

    async def discard(self, names: Iterable[str]) -> None:
        """Remove the files of volumes whose rows were deleted with their container's."""
        for name in names:
            async with self._locks[name]:
                await self._remove_files(name)
            self._gone(name)

    async def _remove_files(self, name: str) -> None:
        await self._io(_remove_dirs, self._base(name), self.mountpoint(name))

    def _gone(self, name: str) -> None:
        self._locks.pop(name, None)
        self.emit("remove", name)

    async def remove_unused(self, names: Iterable[str]) -> None:
        """Remove those of ``names`` no container uses (a create that failed made them)."""
        for name in names:
            with contextlib.suppress(Conflict, NotFound):
                await self.remove(name)

    async def prune(self, filters: Mapping[str, Sequence[str]]) -> list[tuple[str, int]]:
        """Remove the unused volumes prune ``filters`` select; ``(name, bytes)`` of each."""
        removed = []
        for usage in await self.selected(filters, prune=True):
            if not usage.dangling or usage.holders:
                continue
            name = usage.record.name
            size = await self.size(name)
            try:
                await self.remove(name)
            except (Conflict, NotFound):
                continue  # used or removed meanwhile
            self.emit("prune", name)
            removed.append((name, size))
        return removed

    # --- holding (mounting) ---

    async def hold(
        self,
        name: str,
        holder: str,
        copy_from: tuple[str, str] | None = None,
        *,
        container: bool = False,
    ) -> VolumeRecord:
        """Hold the volume mounted for ``holder`` (mounting it if it needs it).

        :param copy_from: ``(rootfs, destination)``: copy the image's content
            there into the volume if it is new and empty (once).
        :param container: ``holder`` is a container's ID; a removed container's
            is refused (``NoSuchContainer``), in the transaction that would add it.
        """
        async with self._locks[name]:
            record = await self.get(name)
            hold = partial(rows.hold, name=name, holder=holder, container=container)
            try:
                # Inside the try: a caller cancelled while the write runs in the
                # database thread still has its hold dropped again.
                await self._state.write(hold)
                if needs_mount(record):
                    await self._io(_ensure_mounted, record, self.mountpoint(name))
                if copy_from is not None and not record.copied_up:
                    # Once only, whatever it found (Podman clears NeedsCopyUp after the
                    # first mount): a later container's image never fills it.
                    merged, destination = copy_from
                    await self._io(_copy_up, merged, destination, self.mountpoint(name))
                    await self._state.write(partial(rows.mark_copied_up, name=name))
            except BaseException:
                await shielded(self._unhold(record, holder))
                raise
        return record

    async def release(self, name: str, holder: str) -> bool:
        """Let go of the volume for ``holder``; whether it held it (unmounted by the last).

        Runs to its end even if the caller is cancelled (a client hung up).
        """
        return await shielded(self._release(name, holder))

    async def _release(self, name: str, holder: str) -> bool:
        async with self._locks[name]:
            record = await self.find(name)
            if record is None:
                return False
            return await self._unhold(record, holder)

    async def _unhold(self, record: VolumeRecord, holder: str) -> bool:
        dropped, remaining = await self._state.write(
            partial(rows.unhold, name=record.name, holder=holder)
        )
        if not remaining and needs_mount(record):
            await self._io(rootfs.unmount, self.mountpoint(record.name))
        return dropped

    async def reconcile(self, alive: set[str]) -> None:
        """After time without a server: drop holders that are gone (exited containers,
        exports), remove the directories of volumes whose row is gone (a removal cut
        short) and make those of volumes that have none (a create cut short)."""
        known = set()
        for usage in await self.all():
            known.add(usage.record.name)
            for holder in usage.holders:
                if holder not in alive:
                    await self.release(usage.record.name, holder)
        for orphan in set(await self._io(_listdir, self.root)) - known:
            await self._remove_files(orphan)
        await self._io(_make_all_dirs, [(self._base(n), self.mountpoint(n)) for n in known])

    @contextlib.asynccontextmanager
    async def _held(self, name: str) -> AsyncIterator[str]:
        holder = "transfer-" + secrets.token_hex(8)
        await self.hold(name, holder)
        try:
            yield self.mountpoint(name)
        finally:
            await self.release(name, holder)

    @contextlib.asynccontextmanager
    async def export(self, name: str) -> AsyncIterator[ChunkStream]:
        """A tar of the volume's content, read within the block (the volume stays mounted)."""
        async with self._held(name) as data:
            stream = await self._io(tree_stream, data)
            try:
                yield ChunkStream(stream, self._io)
            finally:
                await self._io(stream.close)

    async def import_tar(self, name: str, body: BinaryIO) -> ExtractStats:
        """Unpack a tar into the volume (Podman's ``volume import``)."""
        async with self._held(name) as data:
            return await self._io(extract_into, body, data)
