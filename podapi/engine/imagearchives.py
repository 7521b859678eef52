"""Images in and out as files: load and save docker-archive / OCI-archive tarballs, and
import a root filesystem tarball (``docker import``) from an upload or a URL.

Archives are read and written in the I/O thread pool.  A save is streamed from
the store as it is read (no copy of the archive is made); a load reads the
upload once, decompressing it on the fly if need be, and extracts each layer as
it passes.
"""

import json
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, BinaryIO, TypeVar, cast

from attrs import frozen
from twisted.internet.defer import CancelledError, Deferred

from podapi.engine.changes import apply_changes
from podapi.engine.chunks import ChunkStream
from podapi.engine.events import EventBus
from podapi.engine.images import ImageService
from podapi.engine.shared import SharedResult
from podapi.engine.state import images
from podapi.engine.state.database import State
from podapi.engine.state.images import ImageRecord
from podapi.engine.times import rfc3339_nano
from podapi.errors import InvalidArgument, NoSuchImage
from podapi.oci.host import go_arch
from podapi.storage import archivereceive, imageformats
from podapi.storage.layers import GZIP_MEDIA, LayerStore, StagedLayer
from podapi.storage.registry import UrlDownloader
from podapi.storage.tarextract import decompressed
from podapi.storage.tarstream import file_chunks
from podapi.threads import Blocking, ThreadPipe

T = TypeVar("T")
#: Uploads read while they arrive at once (each holds an I/O thread meanwhile).
MAX_RECEIVING = 2


@frozen
class ImportRequest:
    """What ``docker import`` / libpod import make of a rootfs tarball.

    :ivar os_name: the config's ``os`` (empty: ``linux``).
    :ivar architecture: the config's ``architecture`` (empty: this host's).
    :ivar variant: the config's ``variant`` (left out when empty), as
        containers-image's tarball source fills them in.
    """

    name: str | None = None
    changes: Sequence[str] = ()
    message: str = ""
    os_name: str = ""
    architecture: str = ""
    variant: str = ""


@frozen
class LoadedImage:
    """An image taken from an archive and the names it got."""

    image: ImageRecord
    names: tuple[str, ...]


@frozen
class SavedImages:
    """An image archive ready to stream.

    :ivar body: the archive's bytes, read from the store as they are sent.
    :ivar size: its length in bytes (known before the first byte).
    """

    body: ChunkStream
    size: int


class ImageArchives:
    """Load, save and import images as tarballs.

    :param images: the image store the archives' images go to and come from.
    :param state: the state database (layer records).
    :param io: the blocking-work executor.
    :param events: where ``load``, ``save`` and ``import`` events go.
    :param downloader: fetches tarballs for imports from a URL.
    """

    def __init__(
        self,
        images: ImageService,
        *,
        state: State,
        io: Blocking,
        events: EventBus,
        downloader: UrlDownloader | None = None,
    ) -> None:
        self._images = images
        self._state = state
        self._io = io
        self._events = events
        self._downloader = downloader
        self._receiving = 0

    # --- load -----------------------------------------------------------------------

    def receive_upload(self, body: ThreadPipe) -> "ArchiveUpload | None":
        """Start reading an archive while it is uploaded; None when too many are.

        Each upload being received holds an I/O thread for as long as its
        client takes to send it, so at most :data:`MAX_RECEIVING` do at once;
        beyond that the caller spools the body and calls :meth:`load` with it.
        """
        if self._receiving >= MAX_RECEIVING:
            return None
        self._receiving += 1
        job = self._io(_receive_pipe, body, self._images.layers)
        job.addBoth(self._received_one)
        return ArchiveUpload(body, job, self._io)

    def _received_one(self, result: T) -> T:
        self._receiving -= 1
        return result

    async def load(self, source: "BinaryIO | ArchiveUpload") -> list[LoadedImage]:
        """Load every image of a docker-archive or OCI-archive upload (maybe compressed).

        The upload is read once: layers are hashed, kept and extracted as they
        stream past (:func:`~podapi.storage.archivereceive.receive`), then bound
        to the images the archive's metadata lists.  Layers already in the store
        and members no image uses are dropped.

        :param source: the upload, whole, or being received (:meth:`receive_upload`).
        """
        if isinstance(source, ArchiveUpload):
            received = await source.claim()
        else:
            received = await self._io(_receive, source, self._images.layers)
        try:
            found = imageformats.read_archive(received)
            loaded = []
            for item in found:
                config = json.loads(item.config)
                diff_ids = list(config["rootfs"]["diff_ids"])
                with self._images.lease(diff_ids):
                    for member, diff_id in zip(item.layers, diff_ids, strict=True):
                        await self._ensure_layer(
                            diff_id, partial(received.take_layer, member, self._images.layers)
                        )
                    image = await self._images.commit(item.config, diff_ids, names=item.names)
                self._events.emit(
                    "image", "load", image.id, name=item.names[0] if item.names else ""
                )
                loaded.append(LoadedImage(image, item.names))
            return loaded
        finally:
            await self._io(received.discard)

    async def _ensure_layer(self, diff_id: str, stage: Callable[[], StagedLayer]) -> None:
        """Make sure a (leased) layer is installed, from its staged copy when it is new."""
        layers = self._images.layers
        known = await self._state.read(partial(images.known_layers, diff_ids=[diff_id]))
        if known:
            present: bool = await self._io(layers.exists, diff_id)
            if present:
                return
        staged = await self._io(stage)
        if staged.diff_id != diff_id:
            raise InvalidArgument(
                f"layer content has diff ID {staged.diff_id}, but the image config says {diff_id}",
                cause="digest mismatch",
            )
        await self._images.add_layer(await self._io(staged.commit))

    # --- import ---------------------------------------------------------------------

    async def import_rootfs(self, source: BinaryIO, request: ImportRequest) -> ImageRecord:
        """Make a one-layer image from a rootfs tarball (``docker import``)."""
        source.seek(0)
        now = rfc3339_nano(self._events.now_ns())
        arch = request.architecture or go_arch()
        message = request.message

        def config(diff_id: str) -> dict[str, Any]:
            return {
                "architecture": arch,
                **({"variant": request.variant} if request.variant else {}),
                "os": request.os_name or "linux",
                "created": now,
                "config": apply_changes({}, request.changes),
                "rootfs": {"type": "layers", "diff_ids": [diff_id]},
                "history": [
                    {
                        "created": now,
                        "created_by": f"/bin/sh -c #(nop) ADD file:{diff_id[7:]} in / ",
                        **({"comment": message} if message else {}),
                    }
                ],
                **({"comment": message} if message else {}),
            }

        names = [request.name] if request.name else []
        ingest = partial(self._images.layers.ingest, source)
        image = await self._images.commit_layer(ingest, config, names=names)
        self._events.emit("image", "import", image.id, name=request.name or "")
        return image

    async def import_url(self, url: str, request: ImportRequest) -> ImageRecord:
        """:meth:`import_rootfs` of a tarball downloaded from an http(s) URL.

        The download streams to a spool file under ``--root`` (never into
        memory), which is removed when the import is done or fails.

        :raises InvalidArgument: not an http(s) URL.
        :raises DownloadFailed: the file could not be fetched.
        """
        if self._downloader is None:
            raise InvalidArgument("importing from a URL is not available here")
        spooled = await self._downloader.fetch(url)
        try:
            return await self.import_rootfs(spooled, request)
        finally:
            await self._io(spooled.close)

    # --- save -----------------------------------------------------------------------

    async def save(
        self, entries: Sequence[tuple[ImageRecord, Sequence[str]]], *, oci: bool = False
    ) -> SavedImages:
        """An archive of these images, each with the tags to record, ready to stream:
        a docker-archive, or with ``oci`` an OCI image layout tarball (``oci-archive``).

        Every image's blobs are checked before anything is sent, and a ``save``
        event is emitted for each.
        """
        parts = await (self._oci_parts(entries) if oci else self._docker_parts(entries))
        body = ChunkStream(imageformats.iter_parts(parts), self._io)
        return SavedImages(body, imageformats.total_size(parts))

    async def _docker_parts(
        self, entries: Sequence[tuple[ImageRecord, Sequence[str]]]
    ) -> list[imageformats.Part]:
        """The parts of a docker-archive with these images and the tags to record."""
        blobs = self._images.blobs
        writer = imageformats.ArchiveWriter()
        manifest = []
        for image, tags in entries:
            layer_names = []
            for diff_id in image.layers:
                path, gunzip, size = await self._layer_source(diff_id)
                name = diff_id.split(":", 1)[1] + ".tar"
                writer.add_file(name, path, size, gunzip=gunzip)
                layer_names.append(name)
            config_name = image.id + ".json"
            writer.add_file(
                config_name,
                blobs.path(image.config_digest),
                await self._io(blobs.size, image.config_digest),
            )
            manifest.append({"Config": config_name, "RepoTags": list(tags), "Layers": layer_names})
            self._events.emit("image", "save", image.id, name=tags[0] if tags else "")
        writer.add_bytes("manifest.json", json.dumps(manifest).encode())
        return writer.finish()

    async def _oci_parts(
        self, entries: Sequence[tuple[ImageRecord, Sequence[str]]]
    ) -> list[imageformats.Part]:
        """The parts of an OCI image layout tarball (``format=oci-archive``)."""
        blobs = self._images.blobs
        writer = imageformats.ArchiveWriter()
        writer.add_bytes("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        index = []
        for image, tags in entries:
            manifest = json.loads(await self._images.manifest(image))
            for descriptor in [manifest["config"], *manifest.get("layers", [])]:
                digest = descriptor["digest"]
                writer.add_file(
                    "blobs/sha256/" + digest.split(":", 1)[1],
                    blobs.path(digest),
                    descriptor["size"],
                )
            writer.add_file(
                "blobs/sha256/" + image.manifest_digest.split(":", 1)[1],
                blobs.path(image.manifest_digest),
                await self._io(blobs.size, image.manifest_digest),
            )
            descriptor = {
                "mediaType": image.manifest_media_type,
                "digest": image.manifest_digest,
                "size": await self._io(blobs.size, image.manifest_digest),
            }
            for tag_name in tags or [""]:
                annotations = {imageformats.REF_NAME: tag_name} if tag_name else {}
                index.append(
                    {**descriptor, **({"annotations": annotations} if annotations else {})}
                )
            self._events.emit("image", "save", image.id, name=tags[0] if tags else "")
        writer.add_bytes(
            "index.json", json.dumps({"schemaVersion": 2, "manifests": index}).encode()
        )
        return writer.finish()

    async def _layer_source(self, diff_id: str) -> tuple[str, bool, int]:
        """A local blob holding the layer's tar: its path, whether gzip, uncompressed size."""
        blobs = self._images.blobs
        size = await self._state.read(lambda c: images.layer_size(c, diff_id))
        candidates = await self._state.read(lambda c: images.layer_blobs(c, diff_id))
        # Prefer an uncompressed blob: it streams without decompression.
        for blob in sorted(candidates, key=lambda b: b.media_type == GZIP_MEDIA):
            if await self._io(blobs.has, blob.digest):
                return blobs.path(blob.digest), blob.media_type == GZIP_MEDIA, size
        raise NoSuchImage(f"layer {diff_id} has no stored blob", cause="layer not known")


class ArchiveUpload:
    """An archive being received as it is uploaded (:meth:`ImageArchives.receive_upload`).

    :meth:`claim` gives what was received to the load; :meth:`close` says the
    request is over.  Layers received for a request that never claims them (its
    handler failed first, or its client went away) are discarded.
    """

    def __init__(
        self, body: ThreadPipe, job: "Deferred[archivereceive.ReceivedArchive]", io: Blocking
    ) -> None:
        self._body = body
        self._io = io
        self._claimed = False
        self._closed = False
        #: What was received, until it is claimed or dropped.
        self._received: archivereceive.ReceivedArchive | None = None
        # A failure is the claimer's to report; nobody else's (SharedResult keeps it,
        # so it is not logged as unhandled when the client went away).
        self._outcome = SharedResult(self._receive(job))

    async def _receive(
        self, job: "Deferred[archivereceive.ReceivedArchive]"
    ) -> archivereceive.ReceivedArchive:
        received = self._received = await job
        self._drop_unclaimed()
        return received

    def _drop_unclaimed(self) -> None:
        if self._closed and not self._claimed and self._received is not None:
            received, self._received = self._received, None
            self._io(received.discard)

    async def claim(self) -> archivereceive.ReceivedArchive:
        """What was received, once the whole upload has been read.

        :raises PodapiError: the archive could not be read (as :meth:`ImageArchives.load`).
        """
        self._claimed = True
        try:
            return await self._outcome.get()
        except CancelledError:
            self._claimed = False  # the close that follows drops the layers
            self._drop_unclaimed()
            raise

    def close(self) -> None:
        """The request is over (answered, or its connection lost)."""
        self._closed = True
        self._body.abort("the upload was interrupted")
        self._drop_unclaimed()


def _receive(source: BinaryIO, layers: LayerStore) -> archivereceive.ReceivedArchive:
    """One pass over an upload, decompressed as it is read if gzip, bzip2 or xz."""
    source.seek(0)
    return archivereceive.receive(file_chunks(decompressed(source)), layers)


def _receive_pipe(body: ThreadPipe, layers: LayerStore) -> archivereceive.ReceivedArchive:
    """:func:`_receive` of an upload as it arrives; what is left of it is then dropped."""
    try:
        stream = decompressed(cast(BinaryIO, body))
        return archivereceive.receive(file_chunks(stream), layers)
    finally:
        # The rest (after a failure, or padding after the archive's end) need not be
        # kept: the client may go on sending and the handler answers once it is done.
        body.stop_reading()
