"""``podman system prune``: containers, pods, images, networks, volumes and build cache
in one call, composed from each kind's own prune; and Docker's build-cache prune.

Pods come in as ``prune_pods``; the build cache is
:class:`podapi.engine.imagebuild.cache.BuildCache`.
"""

from collections.abc import Awaitable, Callable, Mapping, Sequence

from attrs import field, frozen

from podapi.engine import imagefilters
from podapi.engine.imagebuild.cache import BuildCache, BuildCachePruned
from podapi.engine.images import ImageService
from podapi.engine.networks import NetworkService
from podapi.engine.removal import ContainerRemoval
from podapi.engine.state.images import ImageRecord
from podapi.engine.volumes import VolumeService
from podapi.errors import InvalidArgument

#: The filters ``system prune`` takes (each kind's prune applies them).
FILTERS = frozenset({"until", "label", "label!"})


@frozen
class SystemPruned:
    """What a system prune removed, per kind; ``(ID or name, bytes)`` where bytes apply."""

    pods: list[str] = field(factory=list)
    containers: list[tuple[str, int]] = field(factory=list)
    images: list[tuple[str, int]] = field(factory=list)
    networks: list[str] = field(factory=list)
    volumes: list[tuple[str, int]] = field(factory=list)
    build_cache: BuildCachePruned = field(factory=BuildCachePruned)

    @property
    def reclaimed(self) -> int:
        """Bytes freed in all."""
        freed = (size for part in (self.containers, self.images, self.volumes) for _, size in part)
        return sum(freed) + self.build_cache.reclaimed


async def _no_pods() -> list[str]:
    return []


class SystemPrune:
    """Prunes every kind of object, over again until a round removes nothing (as
    Podman: removing containers frees images, pruning images frees their parents).

    :param now_ns: wall clock in ns (``until``).
    :param prune_pods: removes the pods with no containers left; their IDs.
    """

    def __init__(
        self,
        removal: ContainerRemoval,
        images: ImageService,
        networks: NetworkService,
        volumes: VolumeService,
        build_cache: BuildCache,
        *,
        now_ns: Callable[[], int],
        prune_pods: Callable[[], Awaitable[list[str]]] = _no_pods,
    ) -> None:
        self._removal = removal
        self._images = images
        self._networks = networks
        self._volumes = volumes
        self._build_cache = build_cache
        self._now_ns = now_ns
        self._prune_pods = prune_pods

    async def prune(
        self, *, all_images: bool, volumes: bool, filters: Mapping[str, Sequence[str]]
    ) -> SystemPruned:
        """Remove what nothing uses among what ``filters`` select.

        :param all_images: every image no container uses, not only dangling ones.
        :param volumes: unused volumes too (named ones as well: Podman's rule).
        """
        unknown = set(filters) - FILTERS
        if unknown:
            raise InvalidArgument(f"{sorted(unknown)[0]} is an invalid filter")
        selected = imagefilters.build(dict(filters), {}, self._now_ns())

        def keep_image(image: ImageRecord) -> bool:
            return not selected(image)

        report = SystemPruned()
        found = True
        while found:
            pods = await self._prune_pods()
            containers = await self._removal.prune(filters)
            images = await self._images.prune(dangling_only=not all_images, keep=keep_image)
            networks = await self._networks.prune(filters)
            pruned_volumes = await self._volumes.prune(filters) if volumes else []
            report.pods.extend(pods)
            report.containers.extend(containers.sizes)
            report.images.extend(images.sizes)
            report.networks.extend(networks)
            report.volumes.extend(pruned_volumes)
            found = bool(pods or containers.removed or images.deleted or pruned_volumes)
        # Labels select images and containers; cache entries have none to match.
        until = {k: v for k, v in filters.items() if k == "until"}
        built = await self.prune_build_cache(all_entries=all_images, filters=until)
        return SystemPruned(
            report.pods,
            report.containers,
            report.images,
            report.networks,
            report.volumes,
            built,
        )

    async def prune_build_cache(
        self,
        *,
        all_entries: bool = False,
        keep_storage: int = 0,
        filters: Mapping[str, Sequence[str]] | None = None,
    ) -> BuildCachePruned:
        """Docker's ``POST /build/prune`` (:meth:`BuildCache.prune`)."""
        return await self._build_cache.prune(
            all_entries=all_entries, keep_storage=keep_storage, filters=filters
        )
