"""Volumes (the local driver) and the mounts of containers.

A volume is the directory ``<root>/volumes/<name>/_data`` (Podman's layout)
plus a row in the state database.  Driver options make it a tmpfs
(``type=tmpfs``, ``o=size=...``) or a bind of a host directory
(``device=/path`` with ``type=bind``/``none`` or ``o=bind``), mounted on
``_data`` when the first holder (a starting container, an export) needs it
and unmounted when the last one lets go.

At container create, :func:`plan_mounts` turns the request into the mounts a
container gets (the request's, then ``volumes_from``, then the image's
``VOLUME``s) and :meth:`VolumeService.provision` names and creates the
volumes: named ones on first use, anonymous ones for every start from
scratch.  At start, :class:`ContainerMounts` holds the volumes, copies the
image's content into a new, empty volume (Docker's copy-up) and gives the
OCI mounts.

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
import re
import secrets
import shutil
import stat
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from functools import partial
from typing import Any, BinaryIO, cast

from attrs import evolve
from twisted.internet.defer import DeferredLock

from podapi.engine.containerspec import ContainerSpec, MountSpec
from podapi.engine.errors import Conflict, InvalidArgument, NotFound, PodapiError
from podapi.engine.events import EventBus
from podapi.engine.filters import label_matches, truth
from podapi.engine.images import ImageService
from podapi.engine.layout import ContainerPaths
from podapi.engine.state import State
from podapi.engine.times import parse_timestamp
from podapi.oci import mountopts, rootfs
from podapi.storage import volumes as rows
from podapi.storage.difflayer import ChunkReader
from podapi.storage.scope import DIR_FLAGS, walk
from podapi.storage.tarextract import ExtractStats, extract_into
from podapi.storage.tarwrite import TarStream, tree_stream
from podapi.storage.volumes import VolumeRecord, VolumeUsage
from podapi.threads import Blocking

DRIVER = "local"
LOCAL_OPTIONS = frozenset({"type", "o", "device"})
IMAGE_VOLUME_MODES = ("anonymous", "bind", "tmpfs", "ignore")
#: Podman's options for an image's ``VOLUME`` (``getImageVolumes``).
IMAGE_VOLUME_OPTIONS = ("rprivate", "nodev", "exec")
LIST_FILTERS = frozenset(
    {"name", "driver", "scope", "label", "label!", "opt", "until", "dangling", "anonymous"}
    | {"since", "after"}
)
PRUNE_FILTERS = frozenset({"label", "label!", "until", "anonymous", "since", "after"})

Predicate = Callable[[VolumeUsage], bool]


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


# --- filters ----------------------------------------------------------------------------


def _option(spec: str, options: Mapping[str, str]) -> bool:
    key, sep, value = spec.partition("=")
    return key in options and (not sep or not value or options[key] == value)


def _filter(
    key: str, values: Sequence[str], anchors: Mapping[str, VolumeRecord], now_ns: int
) -> Predicate:
    if key == "name":
        try:
            patterns = [re.compile(v) for v in values]
        except re.error as e:
            raise InvalidArgument(f"invalid name filter: {e}") from None
        return lambda v: any(p.search(v.record.name) for p in patterns)
    if key == "driver":
        return lambda v: v.record.driver in values
    if key == "scope":
        return lambda v: "local" in values
    if key == "label":
        return lambda v: all(label_matches(s, v.record.labels) for s in values)
    if key == "label!":
        return lambda v: not any(label_matches(s, v.record.labels) for s in values)
    if key == "opt":
        return lambda v: any(_option(s, v.record.options) for s in values)
    if key in ("dangling", "anonymous"):
        wanted = {truth(key, value) for value in values}
        if key == "dangling":
            return lambda v: v.dangling in wanted
        return lambda v: v.record.anonymous in wanted
    if key in ("since", "after"):
        return lambda v: any(v.record.created > anchors[value].created for value in values)
    limits = [parse_timestamp(value, now_ns) for value in values]  # until
    return lambda v: any(v.record.created < limit for limit in limits)


def build_filter(
    filters: Mapping[str, Sequence[str]],
    *,
    prune: bool,
    anchors: Mapping[str, VolumeRecord],
    now_ns: int,
) -> Predicate:
    """A predicate for list (or prune) ``filters``: values of a key OR-ed, keys AND-ed.

    ``label`` values must all match and ``label!`` values none (Podman's
    ``MatchLabelFilters``); ``since``/``after`` name a volume (``anchors``).
    """
    allowed = PRUNE_FILTERS if prune else LIST_FILTERS
    for key in filters:
        if key not in allowed:
            raise InvalidArgument(f'"{key}" is an invalid volume filter')
    tests = [_filter(k, v, anchors, now_ns) for k, v in filters.items() if v]
    return lambda usage: all(test(usage) for test in tests)


# --- planning a container's mounts ------------------------------------------------------


def parse_volumes_from(entry: str) -> tuple[str, str]:
    """``container[:ro|rw|z]`` -> (container, ``ro``/``rw``/"" for "as the source has it")."""
    container, _, mode = entry.partition(":")
    if not container:
        raise InvalidArgument(f"invalid volumes-from {entry!r}: no container given")
    words = [w for w in mode.split(",") if w]
    if any(w not in ("ro", "rw", "z") for w in words) or len(words) != len(set(words)):
        raise InvalidArgument(
            f"invalid option in volumes-from {entry!r}: volumes from another container can "
            "only use z, ro and rw"
        )
    access = [w for w in words if w in ("ro", "rw")]
    if len(access) > 1:
        raise InvalidArgument("cannot set ro or rw options more than once")
    return container, access[0] if access else ""


def _checked(mount: MountSpec) -> MountSpec:
    """A requested mount with its destination cleaned and its options processed."""
    destination = mountopts.check_destination(mount.destination)
    user = [o for o in mount.options if o not in ("ro", "rw")]
    readonly = mount.readonly or "ro" in mount.options
    if mount.type == "bind":
        if not os.path.isabs(mount.source):
            raise InvalidArgument(
                f"invalid mount config for type \"bind\": invalid mount path: '{mount.source}' "
                "mount path must be absolute"
            )
        if not os.path.exists(mount.source):
            raise InvalidArgument(
                f'invalid mount config for type "bind": bind source path does not exist: '
                f"{mount.source}",
                cause="bind source path does not exist",
            )
        options = mountopts.process_options(user, tmpfs=False, source=mount.source)
    elif mount.type == "volume":
        if mount.source:
            mountopts.check_volume_name(mount.source)
        options = mountopts.process_options(user, tmpfs=False)
    elif mount.type == "tmpfs":
        options = mountopts.process_options(user, tmpfs=True)
    elif mount.type == "image":
        if not mount.source:
            raise InvalidArgument(f"an image mount at {destination} needs an image")
        options = mountopts.process_options([], tmpfs=False)
    else:
        raise InvalidArgument(
            f"invalid mount type {mount.type!r}: use bind, volume, tmpfs or image",
            cause="invalid mount type",
        )
    options = tuple(o for o in options if o not in ("ro", "rw"))
    return evolve(mount, destination=destination, readonly=readonly, options=options)


def plan_mounts(
    spec: ContainerSpec,
    image_volumes: Sequence[str],
    inherited: Sequence[tuple[Sequence[MountSpec], str]],
) -> tuple[MountSpec, ...]:
    """Every mount of a new container, one per destination.

    The request's own mounts win; then what ``volumes_from`` containers mount
    (``inherited``: their mounts and the ``ro``/``rw`` override); then
    anonymous volumes for ``Config.Volumes`` and the image's ``VOLUME``s (or
    tmpfs mounts, or nothing, as ``image_volume_mode`` says).  Podman's
    ``finalizeMounts`` order; Docker's too.

    :raises InvalidArgument: two requested mounts on one destination, a bad
        option, a bind source that does not exist.
    """
    mode = spec.image_volume_mode or "anonymous"
    if mode not in IMAGE_VOLUME_MODES:
        raise InvalidArgument(
            f"invalid image volume mode {mode!r}: use {', '.join(IMAGE_VOLUME_MODES)}"
        )
    planned: dict[str, MountSpec] = {}
    for mount in spec.mounts:
        checked = _checked(mount)
        if checked.destination in planned:
            raise InvalidArgument(
                f"duplicate mount destination {checked.destination}",
                cause="duplicate mount destination",
            )
        planned[checked.destination] = checked
    for mounts, access in inherited:
        for mount in mounts:
            if mount.type in ("volume", "bind") and mount.destination not in planned:
                readonly = mount.readonly if not access else access == "ro"
                planned[mount.destination] = evolve(mount, readonly=readonly, origin="")
    anonymous = [*spec.volumes, *(image_volumes if mode != "ignore" else ())]
    for path in anonymous:
        destination = mountopts.check_destination(path)
        if destination in planned:
            continue
        from_image = path not in spec.volumes
        kind = "tmpfs" if from_image and mode == "tmpfs" else "volume"
        options = mountopts.process_options(IMAGE_VOLUME_OPTIONS, tmpfs=kind == "tmpfs")
        planned[destination] = MountSpec(
            type=kind,
            destination=destination,
            options=tuple(o for o in options if o != "rw"),
        )
    return tuple(planned.values())


def image_volume_paths(image_config: Mapping[str, Any]) -> tuple[str, ...]:
    """The image's ``VOLUME`` paths (``config.Volumes``)."""
    section = image_config.get("config") or {}
    return tuple(section.get("Volumes") or {})


# --- blocking helpers --------------------------------------------------------------------


def _make_dirs(base: str, data: str) -> None:
    os.makedirs(base, mode=0o700, exist_ok=True)
    os.makedirs(data, mode=0o755, exist_ok=True)


def _remove_dirs(base: str, data: str) -> None:
    # Every layer of mounts first: rmtree must never descend into a bound host directory.
    while rootfs.is_mounted(data):
        rootfs.unmount(data)
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


def _sort_key(mount: Mapping[str, Any]) -> int:
    # Parents before children: /data before /data/sub.
    return len([p for p in str(mount["destination"]).split("/") if p])


# --- the service ------------------------------------------------------------------------


class VolumeService:
    """Volume records, directories and host mounts.

    :param root: the ``volumes`` directory (``<root>/volumes``).
    :param state: the state database.
    :param io: the blocking-work executor.
    :param events: where volume events go.
    :param now_ns: the wall clock.
    """

    def __init__(
        self,
        root: str,
        *,
        state: State,
        io: Blocking,
        events: EventBus,
        now_ns: Callable[[], int],
    ) -> None:
        self.root = root
        self._state = state
        self._io = io
        self._events = events
        self._now = now_ns
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
        await self._state.write(partial(rows.insert, record=record))
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

    async def remove(self, name: str) -> VolumeRecord:
        """Delete a volume nobody uses; 409 when a container uses it, 404 when unknown."""
        async with self._locks[name]:
            record = await self._state.write(partial(rows.delete, name=name))
            await self._io(_remove_dirs, self._base(name), self.mountpoint(name))
        self._locks.pop(name, None)
        self.emit("remove", name)
        return record

    async def remove_unused(self, names: Iterable[str], *, anonymous_only: bool = False) -> None:
        """Remove those of ``names`` no container uses any more (``docker rm -v``)."""
        for name in names:
            found = await self.find(name)
            if found is None or (anonymous_only and not found.anonymous):
                continue
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
        self, name: str, holder: str, copy_from: tuple[str, str] | None = None
    ) -> VolumeRecord:
        """Hold the volume mounted for ``holder`` (mounting it if it needs it).

        :param copy_from: ``(rootfs, destination)``: copy the image's content
            there into the volume if it is new and empty (once).
        """
        async with self._locks[name]:
            record = await self.get(name)
            await self._state.write(partial(rows.hold, name=name, holder=holder))
            try:
                if needs_mount(record):
                    await self._io(_ensure_mounted, record, self.mountpoint(name))
                if copy_from is not None and not record.copied_up:
                    # Once only, whatever it found (Podman clears NeedsCopyUp after the
                    # first mount): a later container's image never fills it.
                    merged, destination = copy_from
                    await self._io(_copy_up, merged, destination, self.mountpoint(name))
                    await self._state.write(partial(rows.mark_copied_up, name=name))
            except BaseException:
                await self._unhold(record, holder)
                raise
        return record

    async def release(self, name: str, holder: str) -> bool:
        """Let go of the volume for ``holder``; whether it held it (unmounted by the last)."""
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
        """After time without a server: drop holders that are gone (exited containers, exports)."""
        for usage in await self.all():
            for holder in usage.holders:
                if holder not in alive:
                    await self.release(usage.record.name, holder)

    @contextlib.asynccontextmanager
    async def _held(self, name: str) -> AsyncIterator[str]:
        holder = "transfer-" + secrets.token_hex(8)
        await self.hold(name, holder)
        try:
            yield self.mountpoint(name)
        finally:
            await self.release(name, holder)

    @contextlib.asynccontextmanager
    async def export(self, name: str) -> AsyncIterator[TarStream]:
        """A tar of the volume's content, read within the block (the volume stays mounted)."""
        async with self._held(name) as data:
            stream = await self._io(tree_stream, data)
            try:
                yield stream
            finally:
                await self._io(stream.close)

    async def import_tar(self, name: str, body: BinaryIO) -> ExtractStats:
        """Unpack a tar into the volume (Podman's ``volume import``)."""
        async with self._held(name) as data:
            return await self._io(extract_into, body, data)


class ContainerMounts:
    """What a container start mounts, and what its exit lets go of.

    :param volumes: volumes to hold and copy up.
    :param images: layer directories of image mounts.
    :param io: the blocking-work executor.
    """

    def __init__(self, volumes: VolumeService, images: ImageService, io: Blocking) -> None:
        self._volumes = volumes
        self._images = images
        self._io = io

    @staticmethod
    def _image_dir(paths: ContainerPaths, index: int) -> str:
        return os.path.join(paths.root, "image-mounts", str(index))

    async def attach(
        self, container_id: str, mounts: Sequence[MountSpec], paths: ContainerPaths
    ) -> list[dict[str, Any]]:
        """Hold volumes, mount images and return the OCI mounts, parents first.

        The rootfs must be mounted: a new volume is filled from it (copy-up).
        """
        oci: list[dict[str, Any]] = []
        try:
            for index, mount in enumerate(mounts):
                source = mount.source
                if mount.type == "volume":
                    copy = None if "nocopy" in mount.options else (paths.merged, mount.destination)
                    await self._volumes.hold(mount.name, container_id, copy)
                    self._volumes.emit(
                        "mount",
                        mount.name,
                        container=container_id,
                        destination=mount.destination,
                        propagation=mountopts.propagation(mount.options),
                        **{"read/write": str(not mount.readonly).lower()},
                    )
                elif mount.type == "image":
                    source = await self._mount_image(mount.source, self._image_dir(paths, index))
                options = mountopts.for_runtime(mount.options)
                options.append("ro" if mount.readonly else "rw")
                kind = "tmpfs" if mount.type == "tmpfs" else "bind"
                oci.append(
                    {
                        "destination": mount.destination,
                        "type": kind,
                        "source": source if kind == "bind" else "tmpfs",
                        "options": options,
                    }
                )
        except BaseException:
            await self.detach(container_id, mounts, paths)
            raise
        return sorted(oci, key=_sort_key)

    async def _mount_image(self, reference: str, directory: str) -> str:
        image = await self._images.resolve(reference, compat=False)
        lowers = [self._images.layers.path(d) for d in reversed(image.layers)]
        merged = os.path.join(directory, "merged")
        await self._io(_mount_image_dirs, lowers, directory, merged)
        return merged

    async def detach(
        self, container_id: str, mounts: Sequence[MountSpec], paths: ContainerPaths
    ) -> None:
        """Release what :meth:`attach` took (safe to call again, or without an attach)."""
        for index, mount in enumerate(mounts):
            if mount.type == "volume":
                if await self._volumes.release(mount.name, container_id):
                    self._volumes.emit("unmount", mount.name, container=container_id)
            elif mount.type == "image":
                directory = self._image_dir(paths, index)
                await self._io(rootfs.unmount, os.path.join(directory, "merged"))

    async def remove_anonymous(self, mounts: Sequence[MountSpec]) -> None:
        """``docker rm -v``: the anonymous volumes among ``mounts`` that nothing else uses."""
        await self._volumes.remove_unused(volume_names(mounts), anonymous_only=True)

    async def reconcile(self, alive: set[str]) -> None:
        """Let go of volumes held by containers that are not running any more."""
        await self._volumes.reconcile(alive)


def _mount_image_dirs(lowers: list[str], directory: str, merged: str) -> None:
    """An image's layers as an overlay (its writes go to a private upper dir)."""
    if rootfs.is_mounted(merged):
        return
    upper, work = os.path.join(directory, "upper"), os.path.join(directory, "work")
    for path in (upper, work, merged):
        os.makedirs(path, mode=0o755, exist_ok=True)
    rootfs.mount_overlay(lowers, upper, work, merged)


def volume_names(mounts: Iterable[MountSpec]) -> list[str]:
    """The volumes among ``mounts``."""
    return [m.name for m in mounts if m.type == "volume"]
