"""The image store: look up, store, tag, remove and prune images.

Blob and layer work runs in the I/O thread pool; database work on the DB
executor.  Mutations of the image graph (committing an image, removing one,
collecting unused layers and blobs) are serialised by one lock, and layers or
blobs that an in-flight load or pull depends on are *leased* so the collector
never removes them underneath it.  Archives in and out (load, save, import)
are :mod:`podapi.engine.imagearchives`; registries are :mod:`podapi.engine.distribution`.
"""

import hashlib
import json
import os
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from typing import Any

from attrs import field, frozen
from twisted.internet.defer import DeferredLock

from podapi.engine.events import EventBus
from podapi.engine.shortnames import ShortNames
from podapi.engine.state import images
from podapi.engine.state.database import State
from podapi.engine.state.images import ImageRecord, LayerBlob, NewImage, NewLayer
from podapi.engine.times import parse_timestamp
from podapi.errors import Conflict, InvalidArgument, NoSuchImage
from podapi.oci import rootfs
from podapi.storage import imageformats, reference
from podapi.storage.blobs import BlobStore
from podapi.storage.layers import Ingested, LayerStore
from podapi.storage.registries import RegistriesConfig
from podapi.threads import Blocking

CONFIG_CACHE = 512


@frozen
class RemoveReport:
    """What an image removal did: names untagged and image IDs deleted."""

    untagged: list[str] = field(factory=list)
    deleted: list[str] = field(factory=list)


@frozen
class PruneReport:
    """Images deleted by a prune and the bytes their layers and blobs freed.

    ``sizes`` holds ``(image ID, bytes)`` for each deleted image: what collecting
    garbage right after its deletion removed (layer directories and blobs no
    other image keeps); ``reclaimed`` is their sum.
    """

    deleted: list[str] = field(factory=list)
    untagged: list[str] = field(factory=list)
    reclaimed: int = 0
    sizes: list[tuple[str, int]] = field(factory=list)


def created_ns(config: dict[str, Any]) -> int:
    """The config's ``created`` time in nanoseconds (0 when absent or unreadable)."""
    value = config.get("created")
    if not isinstance(value, str):
        return 0
    try:
        return parse_timestamp(value, 0)
    except InvalidArgument:
        return 0


def oci_manifest(config: bytes, layers: Sequence[tuple[str, str, int]]) -> bytes:
    """An OCI image manifest for a config and ``(digest, media_type, size)`` layer blobs."""
    document = {
        "schemaVersion": 2,
        "mediaType": imageformats.OCI_MANIFEST,
        "config": {
            "mediaType": imageformats.OCI_CONFIG,
            "digest": "sha256:" + hashlib.sha256(config).hexdigest(),
            "size": len(config),
        },
        "layers": [{"mediaType": m, "digest": d, "size": s} for d, m, s in layers],
    }
    return json.dumps(document, separators=(",", ":")).encode()


class ImageService:
    """Images for both API dialects.

    :param root: ``--root``; blobs and layers live below it.
    :param state: the state database.
    :param io: the blocking-work executor.
    :param events: where image events go.
    :param registries: the current registries.conf (short-name search list).
    :param in_use: the containers made from an image (they keep it alive).
    """

    def __init__(
        self,
        root: str,
        *,
        state: State,
        io: Blocking,
        events: EventBus,
        registries: Callable[[], RegistriesConfig],
        in_use: Callable[[ImageRecord], Awaitable[list[str]]] | None = None,
    ) -> None:
        self.blobs = BlobStore(os.path.join(root, "storage"))
        self._in_use = in_use
        self.layers = LayerStore(os.path.join(root, "storage"), self.blobs)
        self._state = state
        self._io = io
        self._events = events
        self._registries = registries
        self._lock = DeferredLock()
        self._leases: Counter[str] = Counter()
        self._configs: OrderedDict[str, dict[str, Any]] = OrderedDict()

    # --- start-up -------------------------------------------------------------------

    async def start(self) -> None:
        """Create the store and remove what a crash may have left half-done."""
        await self._io(self.blobs.create)
        await self._io(self.layers.create)
        await self.collect_garbage()

    # --- leases and collection ------------------------------------------------------

    @contextmanager
    def lease(self, keys: Sequence[str]) -> Iterator[None]:
        """Protect layers/blobs (by diff ID or digest) from collection while in use."""
        self._leases.update(keys)
        try:
            yield
        finally:
            self._leases.subtract(keys)
            for key in keys:
                if self._leases[key] <= 0:
                    del self._leases[key]

    async def collect_garbage(self) -> int:
        """Remove layers no image uses and blobs nothing references; return bytes freed."""
        async with self._lock:
            return await self._collect()

    async def _collect(self) -> int:
        leased = set(self._leases)
        removed = await self._state.write(lambda c: images.unused_layers(c, leased))
        known = await self._state.read(images.all_layer_ids)
        referenced = await self._state.read(images.referenced_blobs)
        return await self._io(self._sweep, removed, known | leased, referenced | leased)

    def _sweep(self, removed: list[str], keep_layers: set[str], keep_blobs: set[str]) -> int:
        freed = 0
        for diff_id in set(removed) | (self.layers.on_disk() - keep_layers):
            freed += rootfs.tree_size(self.layers.path(diff_id))
            self.layers.remove(diff_id)
        for name in os.listdir(self.blobs.root):
            digest = "sha256:" + name
            if digest not in keep_blobs:
                freed += self.blobs.size(digest)
                self.blobs.delete(digest)
        return freed

    # --- queries --------------------------------------------------------------------

    async def all(self) -> list[ImageRecord]:
        """Every image, oldest first."""
        return await self._state.read(images.load_images)

    async def get(self, image_id: str) -> ImageRecord:
        """An image by full ID."""
        return await self._state.read(lambda c: images.load_image(c, image_id))

    async def resolve(self, text: str, *, short_names: ShortNames) -> ImageRecord:
        """Find a local image by ID, ID prefix, full or short name, or digest reference.

        Short names are tried with the policy's registries (Docker Hub first
        for Docker's, ``localhost/`` first for Podman's), then the
        ``unqualified-search-registries``, and finally as any stored name ending
        in ``/name:tag`` (Podman's short-name matching).
        """
        image, _ = await self.resolve_named(text, short_names=short_names)
        return image

    async def resolve_named(self, text: str, *, short_names: ShortNames) -> tuple[ImageRecord, str]:
        """:meth:`resolve`, with the full name ``text`` resolved to (Podman's
        ``RootfsImageName``: ``busybox`` -> ``docker.io/library/busybox:latest``)."""
        domains = [*short_names.local_domains, *self._registries().unqualified_search]
        found = await self._state.read(lambda c: images.find_image(c, text, domains))
        if found is None:
            # Docker's wording: docker-py tells ImageNotFound from NotFound by it.
            raise NoSuchImage(f"No such image: {text}", cause="image not known")
        image_id, name = found
        return await self.get(image_id), name or text

    async def config(self, image: ImageRecord) -> dict[str, Any]:
        """The parsed config JSON (cached: blobs never change)."""
        cached = self._configs.get(image.id)
        if cached is None:
            raw = await self._io(self.blobs.read, image.config_digest)
            cached = json.loads(raw)
            self._configs[image.id] = cached
            if len(self._configs) > CONFIG_CACHE:
                self._configs.popitem(last=False)
        else:
            self._configs.move_to_end(image.id)
        return cached

    def layer_dirs(self, image: ImageRecord) -> list[str]:
        """The directories of the image's layers, top first (overlay's ``lowerdir`` order)."""
        return [self.layers.path(d) for d in reversed(image.layers)]

    async def manifest(self, image: ImageRecord) -> bytes:
        """The stored manifest bytes."""
        return await self._io(self.blobs.read, image.manifest_digest)

    async def layer_sizes(self, image: ImageRecord) -> list[int]:
        """Uncompressed size of each layer, bottom first."""
        return await self._state.read(lambda c: [images.layer_size(c, d) for d in image.layers])

    async def layer_size_map(self, diff_ids: set[str]) -> dict[str, int]:
        """Uncompressed size of each of these layers."""
        return await self._state.read(lambda c: {d: images.layer_size(c, d) for d in diff_ids})

    async def known_installed(self, diff_ids: Sequence[str]) -> set[str]:
        """Which of these layers are recorded and on disk."""
        known = await self._state.read(partial(images.known_layers, diff_ids=diff_ids))
        present: set[str] = await self._io(self.layers.on_disk)
        return known & present

    async def blobs_of(self, diff_id: str) -> list[LayerBlob]:
        """Every blob known to expand to the layer."""
        return await self._state.read(partial(images.layer_blobs, diff_id=diff_id))

    async def remember_blob(self, layer: NewLayer) -> None:
        """Record another blob of a layer (a compressed form made for a push)."""
        await self._state.write(lambda c: images.add_layer_blob(c, layer))

    async def record_digest(self, image: ImageRecord, repository: str, digest: str) -> None:
        """Remember that ``repository@digest`` is this image (after a push)."""
        await self._state.write(lambda c: images.add_digest(c, image.id, repository, digest))

    # --- storing --------------------------------------------------------------------

    async def add_layer(self, ingested: Ingested, source: str = "") -> None:
        """Install an ingested layer and record it (the caller holds a lease on it).

        :param source: the repository its blob was pulled from, if any.
        """
        await self._io(self.layers.install, ingested)
        layer = NewLayer(
            ingested.diff_id,
            ingested.size,
            ingested.blob.digest,
            ingested.media_type,
            ingested.blob.size,
            source,
        )
        await self._state.write(lambda c: images.record_layer(c, layer, self._events.now_ns()))

    async def commit(
        self,
        config: bytes,
        layers: Sequence[str],
        *,
        names: Sequence[str] = (),
        manifest: tuple[bytes, str] | None = None,
        digests: Sequence[tuple[str, str]] = (),
        parent: str = "",
    ) -> ImageRecord:
        """Store an image whose layers are already installed (and leased by the caller).

        :param config: the config JSON, kept verbatim (its sha256 is the image ID).
        :param layers: diff IDs, bottom first (must match ``rootfs.diff_ids``).
        :param manifest: ``(bytes, media type)`` as pulled; generated when None.
        :param digests: ``(repository, digest)`` pairs the image is known by.
        """
        parsed = json.loads(config)
        blob_info = await self._state.read(lambda c: [images.best_blob(c, d) for d in layers])
        if manifest is None:
            manifest = (oci_manifest(config, blob_info), imageformats.OCI_MANIFEST)
        config_blob = await self._io(self.blobs.put, config)
        manifest_blob = await self._io(self.blobs.put, manifest[0])
        sizes = await self._state.read(lambda c: [images.layer_size(c, d) for d in layers])
        inner = parsed.get("config") or {}
        new = NewImage(
            id=config_blob.digest.split(":", 1)[1],
            manifest_digest=manifest_blob.digest,
            manifest_media_type=manifest[1],
            created=created_ns(parsed),
            size=sum(sizes),
            labels=inner.get("Labels") or {},
            architecture=parsed.get("architecture", ""),
            os=parsed.get("os", ""),
            layers=tuple(
                NewLayer(d, size, blob[0], blob[1], blob[2])
                for d, size, blob in zip(layers, sizes, blob_info, strict=True)
            ),
            names=tuple(names),
            digests=tuple(digests),
            parent=parent,
        )
        async with self._lock:
            stored = await self._state.write(
                lambda c: images.insert_image(c, new, self._events.now_ns())
            )
        for name, previous in stored.moved:
            self._events.emit("image", "untag", previous, name=name)
        return stored.image

    async def commit_layer(
        self,
        ingest: Callable[[], Ingested],
        config: Callable[[str], dict[str, Any]],
        *,
        base: Sequence[str] = (),
        names: Sequence[str] = (),
        parent: str = "",
    ) -> ImageRecord:
        """Store an image of the ``base`` layers plus one new layer (import, commit).

        :param ingest: reads the new layer into the layer store (run in a thread).
        :param config: the image config JSON for the new layer's diff ID.
        :param base: diff IDs of the installed layers below it, bottom first.
        :param parent: the ID of the image it was made from, if any.
        """
        with self.lease(base):
            ingested = await self._io(ingest)
            with self.lease([ingested.diff_id, ingested.blob.digest]):
                await self.add_layer(ingested)
                raw = json.dumps(config(ingested.diff_id), separators=(",", ":")).encode()
                return await self.commit(raw, [*base, ingested.diff_id], names=names, parent=parent)

    # --- names ----------------------------------------------------------------------

    async def tag(self, image: ImageRecord, name: str) -> None:
        """Add a (normalised, full) name to an image."""
        now = self._events.now_ns()
        async with self._lock:
            previous = await self._state.write(lambda c: images.tag(c, image.id, name, now))
        if previous is not None:
            self._events.emit("image", "untag", previous, name=name)
        self._events.emit("image", "tag", image.id, name=name)

    async def untag(self, image: ImageRecord, name: str) -> None:
        """Remove one name from an image."""
        async with self._lock:
            await self._state.write(lambda c: images.untag(c, image.id, name))
        self._events.emit("image", "untag", image.id, name=name)

    # --- removal --------------------------------------------------------------------

    async def remove(
        self,
        text: str,
        *,
        short_names: ShortNames,
        force: bool = False,
        prune_parents: bool = True,
    ) -> RemoveReport:
        """``docker rmi``: untag the named reference, delete the image when no name is left.

        By name, an image with other names only loses that name, with or without
        ``force`` (moby ``ImageDelete``: "if it has remaining references then the
        untag finished the remove"; libimage ``removeRecursive`` untags and skips
        the removal while names are left, force or not).  By ID, every name goes
        and the image is deleted; an image with several names removed by ID
        needs ``force`` (Docker's 409).  ``force`` also lets a name go from an
        image containers use (the image stays for them).

        Events as libimage's ``removeRecursive`` writes them (common 0.50 and
        since): ``untag`` for each name that goes, then ``remove`` named by
        ``text`` -- also when only a name went (its deferred write), which the
        compat stream shows as Docker's ``delete``.
        """
        image = await self.resolve(text, short_names=short_names)
        report = await self._remove(image, text, force=force, prune_parents=prune_parents)
        self._events.emit("image", "remove", image.id, name=text)
        return report

    async def _remove(
        self, image: ImageRecord, text: str, *, force: bool, prune_parents: bool
    ) -> RemoveReport:
        by_name = not (reference.is_image_id(text) or image.id.startswith(text))
        report = RemoveReport()
        async with self._lock:
            if by_name:
                name = _normalise_for_lookup(text, image)
                if name is not None and len(image.names) > 1:
                    await self._state.write(partial(images.untag, image_id=image.id, name=name))
                    report.untagged.append(name)
                    self._events.emit("image", "untag", image.id, name=name)
                    return report
            if len(image.names) > 1 and not by_name and not force:
                raise Conflict(
                    f"conflict: unable to delete {image.id[:12]} (must be forced) - image is "
                    "referenced in multiple repositories",
                    cause="image is referenced in multiple repositories",
                )
            users = await self._users(image)
            if users:
                if not force:
                    raise Conflict(
                        f"conflict: unable to delete {image.id[:12]} (must be forced) - image "
                        f"is being used by container {users[0][:12]}",
                        cause="image is in use by a container",
                    )
                # Docker: forced, the names go but the image stays for its containers.
                for name in image.names:
                    await self._state.write(partial(images.untag, image_id=image.id, name=name))
                    report.untagged.append(name)
                    self._events.emit("image", "untag", image.id, name=name)
                return report
            await self._delete(image, report)
            if prune_parents:
                await self._delete_dangling_parents(image.parent, report)
            await self._collect()
        return report

    async def _users(self, image: ImageRecord) -> list[str]:
        return await self._in_use(image) if self._in_use is not None else []

    async def _delete(self, image: ImageRecord, report: RemoveReport) -> None:
        children = await self._state.read(lambda c: images.children(c, image.id))
        if children:
            raise Conflict(
                f"conflict: unable to delete {image.id[:12]} - image has dependent child images",
                cause="image has dependent child images",
            )
        await self._state.write(lambda c: images.delete_image(c, image.id))
        self._configs.pop(image.id, None)
        for name in image.names:
            report.untagged.append(name)
            self._events.emit("image", "untag", image.id, name=name)
        report.deleted.append(image.id)

    async def _delete_dangling_parents(self, parent: str, report: RemoveReport) -> None:
        while parent:
            found = await self._state.read(partial(images.load_images, ids=[parent]))
            if not found or found[0].names:
                return
            siblings = await self._state.read(partial(images.children, image_id=parent))
            if siblings:
                return
            await self._delete(found[0], report)
            # libimage removes a dangling parent by no name: its event names none.
            self._events.emit("image", "remove", parent, name="")
            parent = found[0].parent

    async def prune(
        self,
        *,
        dangling_only: bool = True,
        keep: Callable[[ImageRecord], bool] = lambda image: False,
    ) -> PruneReport:
        """Delete dangling (or, with ``dangling_only=False``, all) images ``keep`` spares."""
        report = RemoveReport()
        sizes: list[tuple[str, int]] = []
        async with self._lock:
            for image in reversed(await self._state.read(images.load_images)):
                if (dangling_only and image.names) or keep(image) or await self._users(image):
                    continue
                if await self._state.read(partial(images.children, image_id=image.id)):
                    continue
                await self._delete(image, report)
                # libimage prunes by filter, so its remove events name nothing.
                self._events.emit("image", "remove", image.id, name="")
                sizes.append((image.id, await self._collect()))
        for image_id in report.deleted:
            self._events.emit("image", "prune", image_id)
        return PruneReport(
            deleted=report.deleted,
            untagged=report.untagged,
            reclaimed=sum(size for _, size in sizes),
            sizes=sizes,
        )


def _normalise_for_lookup(text: str, image: ImageRecord) -> str | None:
    """The stored name ``text`` refers to on ``image``, if it names one."""
    try:
        ref = reference.parse(text)
    except InvalidArgument:
        return None
    if ref.name in image.names:
        return ref.name
    for name in image.names:
        if name.endswith("/" + ref.path.removeprefix("library/") + ":" + (ref.tag or "latest")):
            return name
    return None
