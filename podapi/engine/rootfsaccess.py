"""A container's root filesystem for the host: libpod ``mount``/``unmount`` and ``docker cp``."""

import contextlib
import os
from collections.abc import AsyncIterator
from functools import partial

from podapi.engine.bundle import image_lowers, mount_rootfs
from podapi.engine.containermounts import ContainerMounts
from podapi.engine.containers import ContainerService
from podapi.engine.images import ImageService
from podapi.engine.layout import ContainerPaths
from podapi.engine.shield import shielded
from podapi.engine.state.containers import ContainerRecord
from podapi.errors import Conflict
from podapi.oci import rootfs
from podapi.oci.scope import DIR_FLAGS
from podapi.threads import Blocking


class RootfsAccess:
    """Mounts containers' root filesystems for the host to look at.

    :param containers: records, paths, locks and events.
    :param images: the image a container runs (its layer directories).
    :param io: the blocking-work executor.
    :param mounts: a stopped container's volumes and binds, for ``docker cp``.
    """

    def __init__(
        self,
        containers: ContainerService,
        images: ImageService,
        io: Blocking,
        mounts: ContainerMounts,
    ) -> None:
        self._containers = containers
        self._images = images
        self._io = io
        self._mounts = mounts
        #: Libpod ``mount`` calls not yet undone by ``unmount``, per container: the
        #: mount count containers/storage keeps, which Podman's ``Unmount`` reads.
        self._held: dict[str, int] = {}

    async def mount(self, record: ContainerRecord) -> str:
        """Libpod ``mount``: the rootfs, mounted (if it was not) for the host to look at."""
        paths = self._containers.paths(record.id)
        lowers = await image_lowers(self._images, record)
        async with self._containers.lock(record.id):
            await self._io(mount_rootfs, lowers, paths)
            self._held[record.id] = self._held.get(record.id, 0) + 1
        self._containers.emit(record, "mount")
        return paths.merged

    async def unmount(self, record: ContainerRecord) -> None:
        """Libpod ``unmount``: undo one ``mount``, as Podman's ``Container.Unmount``.

        The rootfs comes down when nothing holds it any more: no other ``mount``
        call and no running or paused container.  Unmounting what only the
        running container holds is refused (409, ``container state improper``).
        """
        async with self._containers.lock(record.id):
            held = self._held.pop(record.id, 0)
            if not held and record.alive:
                raise Conflict(
                    f"cannot unmount storage for container {record.id} as it is running or paused",
                    cause="container state improper",
                )
            if held > 1:
                self._held[record.id] = held - 1
            elif not record.alive:
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
    async def access(
        self, record: ContainerRecord, *, with_mounts: bool = True
    ) -> AsyncIterator[str]:
        """The container's root filesystem for the host to read or write (``docker cp``).

        ``with_mounts=False`` gives the root filesystem alone, without the volumes,
        binds and kernel filesystems mounted in it: what ``docker export`` and a
        squashed commit take (moby exports ``BaseFS``, never the volumes).

        Yields ``/proc/self/fd/N/.``: the directory of a descriptor opened on the
        mount under the container's lock, so the files stay reachable until the
        block ends even if a running container exits meanwhile (its rootfs is
        unmounted lazily); the final ``.`` lets ``O_NOFOLLOW`` opens of it work.
        A running or paused container's root is its init process's
        (``/proc/PID/root``), so its volumes and bind mounts are seen as the
        container sees them, as with Docker; its lock is released at once: its
        exit and stop are not held up by a slow reader.  A stopped container's rootfs is
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
                lowers = await image_lowers(self._images, current)
                mounted_here = await self._io(mount_rootfs, lowers, paths)
            try:
                async with self._volumes_of(current, paths, with_mounts):
                    pid = current.pid if current.alive and with_mounts else 0
                    root = await self._io(_open_root, paths.merged, pid)
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

    @contextlib.asynccontextmanager
    async def _volumes_of(
        self, record: ContainerRecord, paths: ContainerPaths, wanted: bool
    ) -> AsyncIterator[None]:
        """A stopped container's volumes and bind mounts over its mounted rootfs, for the block.

        Docker reads and writes a volume's data through ``docker cp`` whether the
        container runs or not (moby ``daemon/archive.go`` mounts the container's
        volumes over its rootfs for the copy); so the mounts a start would make
        (volumes held and copied up, binds, image mounts; not tmpfs, which holds
        nothing while stopped) are bound at their destinations, resolved inside
        the rootfs, and taken down after.  A running container's are seen through
        its process's root (:func:`_open_root`).
        """
        if not wanted or record.alive or not record.run.mounts:
            yield
            return
        bound: list[str] = []
        oci = await self._mounts.attach(record.id, record.run.mounts, paths, announce=False)
        try:
            for mount in oci:
                if mount["type"] != "bind" or not mount["destination"].strip("/"):
                    continue
                bound.append(
                    await self._io(
                        partial(
                            rootfs.bind_into,
                            paths.merged,
                            mount["destination"],
                            mount["source"],
                            readonly="ro" in mount["options"],
                        )
                    )
                )
            yield
        finally:
            # To the end even if the request is cancelled (its client hung up while
            # the copy was finishing): a volume left held would look in use for good.
            await shielded(self._take_down(record, paths, bound))

    async def _take_down(
        self, record: ContainerRecord, paths: ContainerPaths, bound: list[str]
    ) -> None:
        try:
            for host_path in reversed(bound):
                await self._io(rootfs.unmount_bound, host_path)
        finally:
            await self._mounts.detach(record.id, record.run.mounts, paths, announce=False)


def _open_root(merged: str, pid: int) -> int:
    """A descriptor on the container's root: its process's view (mounts included) if
    ``pid`` runs in it, else the rootfs mount at ``merged``.

    ``/proc/PID/root`` is trusted only when it is the very directory mounted at
    ``merged`` (same device and inode): a pid reused by another process after the
    container's exit must never hand out that process's root.
    """
    if pid > 0:
        try:
            fd = os.open(f"/proc/{pid}/root", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            pass
        else:
            try:
                seen, expected = os.fstat(fd), os.stat(merged)
            except OSError:
                os.close(fd)
            else:
                if (seen.st_dev, seen.st_ino) == (expected.st_dev, expected.st_ino):
                    return fd
                os.close(fd)
    return os.open(merged, DIR_FLAGS)
