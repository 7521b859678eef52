"""Disk usage (``docker system df``, ``podman system df``): images with their shared and
unique bytes, containers with their writable layers, volumes with their content.

One model for both dialects; the HTTP layer encodes it as Docker's ``DiskUsage`` or
Podman's ``SystemDfReport``.  File sizes are measured in the engine's thread pool
(:meth:`ContainerService.sizes`, :meth:`VolumeService.size`).
"""

from collections import Counter
from collections.abc import Iterable

from attrs import frozen

from podapi.engine.containers import ContainerService
from podapi.engine.images import ImageService
from podapi.engine.state.containers import ContainerRecord
from podapi.engine.state.images import ImageRecord
from podapi.engine.state.volumes import VolumeUsage
from podapi.engine.volumes import VolumeService
from podapi.errors import InvalidArgument

#: The object kinds a disk usage report covers (Docker's ``type`` values).
KINDS = ("container", "image", "volume", "build-cache")


@frozen
class ImageUsage:
    """An image's bytes: ``unique`` are in layers no other image has, the rest is shared.

    :param containers: how many containers (any state) are made from it.
    """

    image: ImageRecord
    unique: int
    containers: int

    @property
    def size(self) -> int:
        """The image's size (every layer)."""
        return self.image.size

    @property
    def shared(self) -> int:
        """Bytes in layers other images use too."""
        return self.image.size - self.unique


@frozen
class ContainerUsage:
    """A container's writable layer (``rw``) and that plus its image (``rootfs``)."""

    record: ContainerRecord
    rw: int
    rootfs: int


@frozen
class VolumeDiskUsage:
    """A volume, its users and the bytes of its content."""

    usage: VolumeUsage
    size: int

    @property
    def links(self) -> int:
        """How many containers use it (Docker's ``RefCount``, Podman's ``Links``)."""
        return len(self.usage.users)


@frozen
class DiskUsage:
    """What the requested kinds use; a kind not asked for is None.

    :param layers_size: bytes of the distinct layers of every image (each layer
        once, however many images share it): Docker's ``LayersSize``.
    """

    layers_size: int
    images: list[ImageUsage] | None
    containers: list[ContainerUsage] | None
    volumes: list[VolumeDiskUsage] | None
    #: Build cache records: podapi keeps none yet (the build issue fills this).
    build_cache: list[str] | None = None


def check_kinds(kinds: Iterable[str]) -> frozenset[str]:
    """The kinds asked for (all when none); an unknown one is a 400 (moby's wording)."""
    wanted = frozenset(kinds)
    for kind in sorted(wanted):
        if kind not in KINDS:
            raise InvalidArgument(f"invalid type: {kind}")
    return wanted or frozenset(KINDS)


def image_usages(
    found: list[ImageRecord], sizes: dict[str, int], users: Counter[str]
) -> tuple[int, list[ImageUsage]]:
    """``(LayersSize, usages)`` from each layer's size and each image's container count.

    A layer is unique to an image when no other image lists it; the bytes of
    its unique layers are what removing that image alone would free.
    """
    holders: Counter[str] = Counter()
    for image in found:
        holders.update(set(image.layers))
    usages = []
    for image in found:
        unique = sum(sizes.get(d, 0) for d in set(image.layers) if holders[d] == 1)
        usages.append(ImageUsage(image, min(unique, image.size), users[image.id]))
    return sum(sizes.get(d, 0) for d in holders), usages


class DiskUsageReader:
    """Measures what images, containers and volumes use."""

    def __init__(
        self, images: ImageService, containers: ContainerService, volumes: VolumeService
    ) -> None:
        self._images = images
        self._containers = containers
        self._volumes = volumes

    async def usage(self, kinds: Iterable[str] = ()) -> DiskUsage:
        """The disk usage of ``kinds`` (see :data:`KINDS`; every kind when empty)."""
        wanted = check_kinds(kinds)
        records = await self._containers.all()
        layers_size, found_images = 0, None
        if "image" in wanted:
            found = await self._images.all()
            sizes = await self._images.layer_size_map({d for i in found for d in i.layers})
            users = Counter(r.image_id for r in records)
            layers_size, found_images = image_usages(found, sizes, users)
        found_containers = None
        if "container" in wanted:
            found_containers = []
            for record in records:
                rw, rootfs = await self._containers.sizes(record)
                found_containers.append(ContainerUsage(record, rw, rootfs))
        found_volumes = None
        if "volume" in wanted:
            found_volumes = [
                VolumeDiskUsage(usage, await self._volumes.size(usage.record.name))
                for usage in await self._volumes.all()
            ]
        return DiskUsage(
            layers_size,
            found_images,
            found_containers,
            found_volumes,
            [] if "build-cache" in wanted else None,
        )
