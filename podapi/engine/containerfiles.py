"""Files in and out of containers: ``docker cp`` (stat, archive, extract) and export.

Every operation works on the container's root filesystem as
:meth:`Lifecycle.rootfs_access` provides it, so running and stopped
containers are handled alike.  Paths are resolved inside the rootfs only
(:mod:`podapi.storage.pathstat`, :mod:`podapi.storage.tarextract`): nothing a
container holds (symlinks, hostile names in an uploaded tar) reaches the host.

Volumes and bind mounts are seen as the container sees them, running or not
(:meth:`RootfsAccess.access`: a running container's process root, a stopped
one's mounts made over its rootfs for the operation), as with Docker.
Difference from Podman, on purpose: archives keep the files' owners (Docker
does; Podman rewrites them to the container user).
"""

import contextlib
from collections.abc import AsyncIterator, Callable
from functools import partial
from typing import BinaryIO

from podapi.engine.chunks import ChunkStream
from podapi.engine.lifecycle import Lifecycle
from podapi.engine.state.containers import ContainerRecord
from podapi.errors import InvalidArgument
from podapi.oci import rootfs
from podapi.storage import pathstat, tarwrite
from podapi.storage.pathstat import PathStat
from podapi.storage.tarextract import extract_into
from podapi.threads import Blocking


class ContainerFiles:
    """Reading and writing a container's files from the host.

    :param lifecycle: gives access to a container's rootfs.
    :param io: the blocking-work executor (all file work runs there).
    :param emit: records a container event (Docker's ``archive-path``,
        ``extract-to-dir``, ``export``).
    """

    def __init__(
        self, lifecycle: Lifecycle, io: Blocking, emit: Callable[..., None] | None = None
    ) -> None:
        self._lifecycle = lifecycle
        self._io = io
        self._emit = emit or (lambda *args, **kwargs: None)

    async def stat(self, record: ContainerRecord, path: str) -> PathStat:
        """``HEAD .../archive``: Docker's stat of ``path`` in the container.

        :raises pathstat.NoSuchPath: 404.
        """
        async with self._lifecycle.rootfs_access(record) as root:
            return await self._io(pathstat.stat_path, root, path)

    @contextlib.asynccontextmanager
    async def archive(
        self, record: ContainerRecord, path: str
    ) -> AsyncIterator[tuple[PathStat, ChunkStream]]:
        """``GET .../archive``: the stat of ``path`` and a tar of it, read within the block."""
        async with self._lifecycle.rootfs_access(record) as root:
            found, stream = await self._io(pathstat.archive_path, root, path)
            self._emit(record, "archive-path", path=path)
            try:
                yield found, ChunkStream(stream, self._io)
            finally:
                await self._io(stream.close)

    @contextlib.asynccontextmanager
    async def export(self, record: ContainerRecord) -> AsyncIterator[ChunkStream]:
        """``docker export``: a tar of the whole (flattened) filesystem, read within the block."""
        async with self._lifecycle.rootfs_access(record, with_mounts=False) as root:
            stream = await self._io(tarwrite.tree_stream, root)
            self._emit(record, "export")
            try:
                yield ChunkStream(stream, self._io)
            finally:
                await self._io(stream.close)

    async def extract(
        self,
        record: ContainerRecord,
        path: str,
        body: BinaryIO,
        *,
        no_overwrite_dir_non_dir: bool,
        copy_uid_gid: bool,
    ) -> None:
        """``PUT .../archive``: unpack the tar ``body`` into the directory ``path``.

        :param copy_uid_gid: own everything by the container's user (its uid and
            primary gid from the image's ``/etc/passwd``), not the tar's owners.
        :raises NotFound: ``path`` does not exist.
        :raises InvalidArgument: ``path`` is not a directory, the tar is corrupt or
            reaches out of it, or the rootfs is read-only (Docker's check).
        """
        if record.spec.readonly_rootfs:
            raise InvalidArgument("container rootfs is marked read-only")
        async with self._lifecycle.rootfs_access(record) as root:
            owner = None
            if copy_uid_gid:
                user = await self._io(rootfs.resolve_user, root, record.run.user)
                owner = (user.uid, user.gid)
            await self._io(
                partial(
                    extract_into,
                    body,
                    root,
                    path,
                    no_overwrite_dir_non_dir=no_overwrite_dir_non_dir,
                    owner=owner,
                )
            )
        self._emit(record, "extract-to-dir", path=path)
