"""What a container start mounts (volumes, images, secrets) and what its exit lets go of."""

import os
from collections.abc import Mapping, Sequence
from typing import Any

from podapi.engine.containerspec import ContainerSpec, MountSpec
from podapi.engine.images import ImageService
from podapi.engine.layout import ContainerPaths
from podapi.engine.secrets import SecretService
from podapi.engine.shield import shielded
from podapi.engine.shortnames import ShortNames
from podapi.engine.volumes import VolumeService
from podapi.oci import mountopts, rootfs
from podapi.threads import Blocking


class ContainerMounts:
    """What a container start mounts, and what its exit lets go of.

    :param volumes: volumes to hold and copy up.
    :param images: layer directories of image mounts.
    :param io: the blocking-work executor.
    """

    def __init__(
        self,
        volumes: VolumeService,
        images: ImageService,
        io: Blocking,
        secrets: SecretService | None = None,
    ) -> None:
        self._volumes = volumes
        self._images = images
        self._io = io
        self._secrets = secrets

    async def secrets(
        self, spec: ContainerSpec, paths: ContainerPaths
    ) -> tuple[list[dict[str, Any]], list[str]]:
        """The container's secrets: read-only bind mounts of copies made in its run
        directory (owner and mode as asked), and ``VAR=data`` for its process's env."""
        if self._secrets is None or not (spec.secrets or spec.env_secrets):
            return [], []
        files, env = await self._secrets.for_container(spec, paths.secrets)
        mounts = [
            {
                "destination": f.destination,
                "type": "bind",
                "source": f.source,
                "options": ["bind", "rprivate", "ro", "nosuid", "nodev", "noexec"],
            }
            for f in files
        ]
        return mounts, env

    @staticmethod
    def _image_dir(paths: ContainerPaths, index: int) -> str:
        return os.path.join(paths.root, "image-mounts", str(index))

    async def attach(
        self,
        container_id: str,
        mounts: Sequence[MountSpec],
        paths: ContainerPaths,
        *,
        announce: bool = True,
    ) -> list[dict[str, Any]]:
        """Hold volumes, mount images and return the OCI mounts, parents first.

        The rootfs must be mounted: a new volume is filled from it (copy-up).

        :param announce: emit the volumes' ``mount`` events (a start does; the
            short-lived mounts of ``docker cp`` do not, as in Docker).
        """
        oci: list[dict[str, Any]] = []
        try:
            for index, mount in enumerate(mounts):
                source = mount.source
                if mount.type == "volume":
                    copy = None if "nocopy" in mount.options else (paths.merged, mount.destination)
                    await self._volumes.hold(mount.name, container_id, copy, container=True)
                    if announce:
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
            await self.detach(container_id, mounts, paths, announce=announce)
            raise
        return sorted(oci, key=_sort_key)

    async def _mount_image(self, reference: str, directory: str) -> str:
        # An image mount is a Podman feature (``--mount type=image``): Podman's names.
        image = await self._images.resolve(reference, short_names=ShortNames.PODMAN)
        lowers = self._images.layer_dirs(image)
        merged = os.path.join(directory, "merged")
        await self._io(_mount_image_dirs, lowers, directory, merged)
        return merged

    async def detach(
        self,
        container_id: str,
        mounts: Sequence[MountSpec],
        paths: ContainerPaths,
        *,
        announce: bool = True,
    ) -> None:
        """Release what :meth:`attach` took (safe to call again, or without an attach).

        Runs to its end even if the caller is cancelled (a ``docker cp`` whose
        client hung up): a volume left held would look in use for good.
        """
        await shielded(self._detach(container_id, mounts, paths, announce))

    async def _detach(
        self, container_id: str, mounts: Sequence[MountSpec], paths: ContainerPaths, announce: bool
    ) -> None:
        for index, mount in enumerate(mounts):
            if mount.type == "volume":
                if await self._volumes.release(mount.name, container_id) and announce:
                    self._volumes.emit("unmount", mount.name, container=container_id)
            elif mount.type == "image":
                directory = self._image_dir(paths, index)
                await self._io(rootfs.unmount, os.path.join(directory, "merged"))

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


def _sort_key(mount: Mapping[str, Any]) -> int:
    # Parents before children: /data before /data/sub.
    return len([p for p in str(mount["destination"]).split("/") if p])
