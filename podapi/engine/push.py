"""Pushing an image to a registry: reuse the stored manifest when it fits, else
make one over gzip layers (blobs the registry has are not sent again)."""

import gzip
import json
import shutil
from collections.abc import Sequence
from functools import partial
from typing import IO, cast

from attrs import frozen

from podapi.engine.events import EventBus
from podapi.engine.images import ImageService
from podapi.engine.progress import Progress, ProgressSink, ignore_progress
from podapi.engine.state.images import ImageRecord, NewLayer
from podapi.errors import InvalidArgument, NotFound
from podapi.storage import reference
from podapi.storage.blobs import BlobStore
from podapi.storage.imageformats import DOCKER_CONFIG, DOCKER_MANIFEST, OCI_CONFIG, OCI_MANIFEST
from podapi.storage.layers import DOCKER_GZIP_MEDIA, GZIP_MEDIA
from podapi.storage.reference import Reference
from podapi.storage.registry import Credentials, Descriptor, ProgressCallback, RegistryClient
from podapi.storage.registry.manifests import sha256_digest
from podapi.threads import Blocking

COMPRESSED = (GZIP_MEDIA, DOCKER_GZIP_MEDIA)
#: Podman's push ``format`` values and the manifest media types they mean.
PUSH_FORMATS = {"oci": OCI_MANIFEST, "v2s2": DOCKER_MANIFEST, "docker": DOCKER_MANIFEST}


@frozen
class PushResult:
    """Where an image was pushed and the manifest digest and size."""

    reference: Reference
    digest: str
    size: int
    media_type: str = ""


def _gzip_blob(blobs: BlobStore, digest: str) -> tuple[str, int]:
    """Compress an uncompressed layer blob deterministically; return (digest, size).

    mtime 0 and a fixed level make the result the same every time, so repeated
    pushes of the same layer give the same digest.
    """
    writer = blobs.writer()
    try:
        with blobs.open(digest) as source:
            sink = cast(IO[bytes], writer)
            with gzip.GzipFile(
                filename="", mode="wb", fileobj=sink, mtime=0, compresslevel=6
            ) as zipped:
                shutil.copyfileobj(source, zipped, 1024 * 1024)
        blob = writer.commit()
    except BaseException:
        writer.abort()
        raise
    return blob.digest, blob.size


def push_manifest_type(fmt: str) -> str | None:
    """The manifest media type for Podman's push ``format`` (None: keep the stored one).

    As Podman's ``ImageEngine.Push``: ``oci``, ``v2s2`` or ``docker``; empty
    means the default.  ``v2s1`` (signed schema 1, deprecated and refused by
    current registries) is not supported.

    :raises InvalidArgument: for ``v2s1`` and unknown formats.
    """
    if not fmt:
        return None
    if fmt in PUSH_FORMATS:
        return PUSH_FORMATS[fmt]
    if fmt == "v2s1":
        raise InvalidArgument(
            "manifest format 'v2s1' (Docker schema 1) is not supported: use 'oci' or 'v2s2'"
        )
    raise InvalidArgument(
        f"unknown format {fmt!r}. Choose one of the supported formats: 'oci' or 'v2s2'"
    )


def check_push_compression(name: str) -> None:
    """Accept Podman's push ``compressionFormat`` only when it is gzip (or unset).

    Layers are pushed as gzip blobs; containers-image's other algorithms are
    not implemented here.

    :raises InvalidArgument: for ``zstd``, ``zstd:chunked`` and anything else.
    """
    if name in ("", "gzip"):
        return
    if name in ("zstd", "zstd:chunked", "bzip2", "xz"):
        raise InvalidArgument(
            f"compression format {name!r} is not supported: layers are pushed gzip-compressed"
        )
    raise InvalidArgument(f"unsupported compression format {name!r}: use gzip")


def image_manifest(media_type: str, config: Descriptor, layers: Sequence[Descriptor]) -> bytes:
    """An OCI or Docker schema 2 manifest of ``config`` and gzip ``layers``.

    The media types of config and layers are the ones of ``media_type``'s
    family, whatever the descriptors say (the bytes are the same either way).
    """
    oci = media_type == OCI_MANIFEST
    config_type = OCI_CONFIG if oci else DOCKER_CONFIG
    layer_type = GZIP_MEDIA if oci else DOCKER_GZIP_MEDIA
    document = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": {"mediaType": config_type, "digest": config.digest, "size": config.size},
        "layers": [
            {"mediaType": layer_type, "digest": layer.digest, "size": layer.size}
            for layer in layers
        ],
    }
    return json.dumps(document, indent=3).encode()


class ImagePush:
    """Pushes images from the store.

    :param images: the image service (manifests, blobs, recorded digests).
    :param client: the registry client.
    :param events: where ``push`` events go.
    :param io: the blocking-work executor.
    """

    def __init__(
        self, images: ImageService, client: RegistryClient, events: EventBus, io: Blocking
    ) -> None:
        self._images = images
        self._client = client
        self._events = events
        self._io = io

    async def push(
        self,
        image: ImageRecord,
        dest: Reference,
        *,
        creds: Credentials | None = None,
        tls_verify: bool | None = None,
        manifest_type: str | None = None,
        progress: ProgressSink = ignore_progress,
        by_digest: bool = False,
    ) -> PushResult:
        """Push ``image`` to ``dest`` (blobs the registry has are not sent again).

        The stored manifest goes as it is when its layers are compressed blobs
        we have and it is of the type asked for; otherwise a manifest of
        ``manifest_type`` (default: Docker schema 2) is made over gzip layers.
        Converting between OCI and Docker schema 2 changes only media types:
        the config and layer blobs are the same bytes.

        :param manifest_type: ``OCI_MANIFEST``, ``DOCKER_MANIFEST``, or None to
            keep the stored one (see :func:`push_manifest_type`).
        :param by_digest: put the manifest under its digest, not ``dest``'s tag (an
            instance of a manifest list); the result's ``media_type`` says which it is.
        """
        stored_raw = await self._images.manifest(image)
        stored = json.loads(stored_raw)
        layers = [Descriptor.from_json(layer) for layer in stored.get("layers", [])]
        blobs = self._images.blobs
        config = Descriptor(
            DOCKER_CONFIG, image.config_digest, await self._io(blobs.size, image.config_digest)
        )
        reusable = (
            bool(layers)
            and all(layer.media_type in COMPRESSED for layer in layers)
            and all([await self._io(blobs.has, layer.digest) for layer in layers])
        )
        if reusable and manifest_type in (None, image.manifest_media_type):
            raw, media_type = stored_raw, image.manifest_media_type
        else:
            if not reusable:
                layers = [
                    await self._compressed(image, diff_id, dest, creds, tls_verify)
                    for diff_id in image.layers
                ]
            media_type = manifest_type or DOCKER_MANIFEST
            raw = image_manifest(media_type, config, layers)
        # Docker's order: every layer "Preparing", then each pushed in turn; the
        # config goes last, reported once (Docker shows no line for it, Podman
        # "Copying config").
        for desc in layers:
            progress(Progress("layer", "preparing", desc.digest, 0, desc.size))
        for desc in layers:
            progress(Progress("layer", "pushing", desc.digest, 0, desc.size))

            def pushing(digest: str, done: int, total: int) -> None:
                progress(Progress("layer", "pushing", digest, done, total))

            exists = await self._upload(dest, desc, creds, tls_verify, pushing)
            progress(
                Progress(
                    "layer", "exists" if exists else "pushed", desc.digest, desc.size, desc.size
                )
            )
        progress(Progress("config", digest=config.digest, total=config.size))
        await self._upload(dest, config, creds, tls_verify, None)
        target = dest
        if by_digest:
            target = Reference(dest.domain, dest.path, None, sha256_digest(raw), True)
        digest = await self._client.push_manifest(
            target, raw, media_type, creds=creds, tls_verify=tls_verify
        )
        await self._images.record_digest(image, dest.repository, digest)
        if by_digest:
            return PushResult(target, digest, len(raw), media_type)
        self._events.emit("image", "push", image.id, name=dest.name)
        progress(Progress("done", digest=digest, total=len(raw), text=dest.tag or ""))
        return PushResult(dest, digest, len(raw), media_type)

    async def _upload(
        self,
        dest: Reference,
        desc: Descriptor,
        creds: Credentials | None,
        tls_verify: bool | None,
        progress: ProgressCallback | None,
    ) -> bool:
        """Send a blob unless the registry has it; return whether it had it."""
        exists = await self._client.blob_exists(
            dest, desc.digest, creds=creds, tls_verify=tls_verify
        )
        if not exists:
            await self.send_stored_blob(
                dest, desc, creds=creds, tls_verify=tls_verify, progress=progress
            )
        return exists

    async def send_stored_blob(
        self,
        dest: Reference,
        desc: Descriptor,
        *,
        creds: Credentials | None,
        tls_verify: bool | None,
        progress: ProgressCallback | None = None,
    ) -> None:
        """Upload a blob of the store to ``dest``'s repository."""
        await self._client.push_blob(
            dest,
            desc.digest,
            desc.size,
            partial(self._images.blobs.open, desc.digest),
            creds=creds,
            tls_verify=tls_verify,
            progress=progress,
        )

    async def _compressed(
        self,
        image: ImageRecord,
        diff_id: str,
        dest: Reference,
        creds: Credentials | None,
        tls_verify: bool | None,
    ) -> Descriptor:
        """A gzip blob of the layer: one we have, one the registry has, or a new one.

        Like Docker's distribution metadata, the gzip digests a layer was pulled
        with (and from where) are remembered after the layer goes, so a pull ->
        save -> load -> push round trip names the same layer digests when the
        registry still has them: in the target repository, or mounted from the
        one they were pulled from.
        """
        blobs = self._images.blobs
        candidates = await self._images.blobs_of(diff_id)
        for blob in candidates:
            if blob.media_type not in COMPRESSED:
                continue
            found = await self._io(blobs.has, blob.digest) or await self._client.blob_exists(
                dest, blob.digest, creds=creds, tls_verify=tls_verify
            )
            if not found and blob.source:
                found = await self._client.mount_blob(
                    dest,
                    blob.digest,
                    reference.parse(blob.source),
                    creds=creds,
                    tls_verify=tls_verify,
                )
            if found:
                return Descriptor(DOCKER_GZIP_MEDIA, blob.digest, blob.size)
        for blob in candidates:
            if blob.media_type not in COMPRESSED and await self._io(blobs.has, blob.digest):
                gz_digest, gz_size = await self._io(_gzip_blob, blobs, blob.digest)
                await self._images.remember_blob(
                    NewLayer(diff_id, 0, gz_digest, GZIP_MEDIA, gz_size)
                )
                return Descriptor(DOCKER_GZIP_MEDIA, gz_digest, gz_size)
        raise NotFound(f"layer {diff_id} of {image.id[:12]} has no local blob to push")
