"""The layer cache of builds: each step's image, found again by its parent and key.

As Docker's classic builder, the cache *is* the images the steps made (each
one's parent is the image before it); a step's key is its ``created_by`` text
(the instruction with its arguments expanded and, for COPY/ADD, the digest of
what it copies).  The entries live in ``state/buildcache.py`` and vanish with
their images.  Steps' images without a name are hidden from image lists; Docker's
``POST /build/prune`` removes them (:meth:`BuildCache.prune`).
"""

from collections.abc import Callable, Mapping, Sequence
from functools import partial

from attrs import field, frozen

from podapi.engine.images import ImageService
from podapi.engine.state import buildcache
from podapi.engine.state.database import State
from podapi.engine.state.images import ImageRecord
from podapi.engine.times import parse_timestamp
from podapi.errors import InvalidArgument

#: The filters ``POST /build/prune`` takes (BuildKit's names; the others match nothing here).
PRUNE_FILTERS = frozenset(
    {"until", "id", "parent", "type", "description", "inuse", "shared", "private"}
)


@frozen
class BuildCachePruned:
    """What a build-cache prune freed: cache record (image) IDs and bytes."""

    deleted: list[str] = field(factory=list)
    reclaimed: int = 0


class BuildCache:
    """Build steps' images by ``(parent, key)``.

    :param now_ns: wall clock in ns (entry times, ``until``).
    """

    def __init__(self, state: State, images: ImageService, now_ns: Callable[[], int]) -> None:
        self._state = state
        self._images = images
        self._now_ns = now_ns

    async def find(self, parent: str, key: str) -> ImageRecord | None:
        """The image the step ``key`` made on ``parent`` before (None: a miss)."""
        image_id = await self._state.read(partial(buildcache.find, parent=parent, key=key))
        if image_id is None:
            return None
        await self._state.write(partial(buildcache.touch, image_id=image_id, now=self._now_ns()))
        return await self._images.get(image_id)

    async def record(self, image: ImageRecord, parent: str, key: str) -> None:
        """Remember ``image`` as what the step ``key`` made on ``parent``."""
        await self._state.write(
            partial(
                buildcache.record, image_id=image.id, parent=parent, key=key, now=self._now_ns()
            )
        )

    async def mark_result(self, image: ImageRecord) -> None:
        """``image`` is what a build answered with: untagged later, it is a dangling
        image of the user's (Docker lists a replaced build result as ``<none>``)."""
        await self._state.write(partial(buildcache.mark_result, image_id=image.id))

    async def intermediate_ids(self) -> set[str]:
        """The images only steps made (a failed build's too): hidden from image lists."""
        return await self._state.read(buildcache.intermediate_ids)

    async def prune(
        self,
        *,
        all_entries: bool = False,
        keep_storage: int = 0,
        filters: Mapping[str, Sequence[str]] | None = None,
    ) -> BuildCachePruned:
        """Docker's ``POST /build/prune``: remove cache images nothing else needs.

        An image built on a cache image keeps it (its parent) unless ``all_entries``
        (then the built images forget their parents and the whole cache goes).
        ``keep_storage`` stops once the cache is that small (bytes);
        ``until`` spares entries used since; ``id`` selects entries by ID prefix.

        :raises InvalidArgument: an unknown filter or a bad ``until``.
        """
        filters = filters or {}
        unknown = set(filters) - PRUNE_FILTERS
        if unknown:
            raise InvalidArgument(f"invalid filter {sorted(unknown)[0]!r}")
        now = self._now_ns()
        try:
            until = [parse_timestamp(v, now) for v in filters.get("until", [])]
        except ValueError as e:
            raise InvalidArgument(f"invalid until filter: {e}") from None
        ids = filters.get("id", [])
        entries = await self._state.read(buildcache.entries)

        def selected(entry: buildcache.CacheEntry) -> bool:
            if until and entry.last_used >= min(until):
                return False
            return not ids or any(entry.image_id.startswith(i) for i in ids)

        chosen = [e.image_id for e in entries if selected(e)]  # least recently used first
        if all_entries:
            await self._state.write(buildcache.detach_built)
        sizes = {image.id: image.size for image in await self._images.all()}
        held = sum(sizes.get(e.image_id, 0) for e in entries)
        deleted: list[str] = []
        reclaimed = 0
        # A pass removes leaves first (newest first); their parents go in a later pass
        # when one at a time is asked for, to stop at ``keep_storage``.
        batches = [[i] for i in chosen] if keep_storage else [chosen]
        progress = True
        while batches and progress:
            progress = False
            for batch in list(batches):
                if keep_storage and held <= keep_storage:
                    return BuildCachePruned(deleted, reclaimed)
                report = await self._images.prune(keep=partial(_not_in, frozenset(batch)))
                if report.deleted:
                    progress = True
                    deleted += report.deleted
                    reclaimed += report.reclaimed
                    held -= sum(sizes.get(i, 0) for i in report.deleted)
                    batches.remove(batch)
        return BuildCachePruned(deleted, reclaimed)


def _not_in(chosen: frozenset[str], image: ImageRecord) -> bool:
    return image.id not in chosen
