"""Pushing a manifest list: its instances (local images through
:class:`~podapi.engine.push.ImagePush`, registry ones blob by blob, mounted from
their repository when the registry allows), then the index under the tag."""

import json
from collections.abc import Mapping, Sequence
from typing import Any

from podapi.engine.events import EventBus
from podapi.engine.images import ImageService
from podapi.engine.progress import Progress, ProgressSink, ignore_progress
from podapi.engine.push import COMPRESSED, PUSH_FORMATS, ImagePush, image_manifest
from podapi.engine.state.manifests import LOCAL, REMOTE, ManifestEntry, ManifestListRecord
from podapi.storage import reference
from podapi.storage.imageformats import DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX
from podapi.storage.reference import Reference
from podapi.storage.registry import Credentials, Descriptor, RegistryClient
from podapi.storage.registry.manifests import sha256_digest


def docker_platform(platform: Mapping[str, Any]) -> dict[str, Any]:
    """containers/image ``Schema2PlatformSpec`` field order, ``omitempty`` as Go does."""
    out: dict[str, Any] = {
        "architecture": platform.get("architecture", ""),
        "os": platform.get("os", ""),
    }
    for key in ("os.version", "os.features", "variant", "features"):
        if platform.get(key):
            out[key] = platform[key]
    return out


def index_document(entries: Sequence[ManifestEntry], media_type: str) -> bytes:
    """The index pushed: OCI (with annotations) or Docker manifest list v2."""
    manifests = []
    for entry in entries:
        item: dict[str, Any] = {
            "mediaType": entry.media_type,
            "digest": entry.digest,
            "size": entry.size,
            "platform": docker_platform(entry.platform),
        }
        if media_type == OCI_INDEX and entry.annotations:
            item["annotations"] = dict(entry.annotations)
        manifests.append(item)
    return json.dumps(
        {"schemaVersion": 2, "mediaType": media_type, "manifests": manifests}, indent=3
    ).encode()


def index_type(entries: Sequence[ManifestEntry], fmt: str) -> str:
    """OCI index for ``oci``, Docker list for ``v2s2``; by default a Docker list when
    every entry is a Docker manifest (a Docker list cannot hold OCI ones), else OCI."""
    if fmt == "oci":
        return OCI_INDEX
    if fmt in ("v2s2", "docker"):
        return DOCKER_LIST
    if entries and all(e.media_type == DOCKER_MANIFEST for e in entries):
        return DOCKER_LIST
    return OCI_INDEX if entries else DOCKER_LIST


class ManifestListPush:
    """Pushes manifest lists.

    :param images: the image store (local instances, blobs, leases).
    :param client: the registry client.
    :param pusher: pushes local instances.
    :param events: where the list's ``push`` event goes.
    """

    def __init__(
        self, images: ImageService, client: RegistryClient, pusher: ImagePush, events: EventBus
    ) -> None:
        self._images = images
        self._client = client
        self._pusher = pusher
        self._events = events

    async def push(
        self,
        record: ManifestListRecord,
        dest: Reference,
        *,
        all: bool = True,
        fmt: str = "",
        creds: Credentials | None = None,
        tls_verify: bool | None = None,
        progress: ProgressSink = ignore_progress,
    ) -> str:
        """The instances (with ``all``) then the index under ``dest``'s tag; returns the
        index digest.  ``fmt`` (checked by the caller) as :func:`index_type`."""
        manifest_type = PUSH_FORMATS[fmt] if fmt else None
        entries = []
        for entry in record.entries:
            if all:
                entries.append(
                    await self._push_instance(
                        entry,
                        dest,
                        manifest_type,
                        creds=creds,
                        tls_verify=tls_verify,
                        progress=progress,
                    )
                )
            else:
                entries.append(entry)
        media_type = index_type(entries, fmt)
        raw = index_document(entries, media_type)
        progress(Progress("manifest", digest=sha256_digest(raw)))
        digest = await self._client.push_manifest(
            dest, raw, media_type, creds=creds, tls_verify=tls_verify
        )
        self._events.emit("image", "push", record.id, name=dest.name)
        progress(Progress("done", digest=digest, total=len(raw), text=dest.tag or ""))
        return digest

    async def _push_instance(
        self,
        entry: ManifestEntry,
        dest: Reference,
        manifest_type: str | None,
        *,
        creds: Credentials | None,
        tls_verify: bool | None,
        progress: ProgressSink,
    ) -> ManifestEntry:
        if entry.source.startswith(LOCAL):
            image = await self._images.get(entry.source.removeprefix(LOCAL))
            pushed = await self._pusher.push(
                image,
                dest,
                creds=creds,
                tls_verify=tls_verify,
                manifest_type=manifest_type,
                progress=progress,
                by_digest=True,
            )
            return ManifestEntry(
                pushed.digest,
                pushed.media_type,
                pushed.size,
                entry.platform,
                entry.annotations,
                entry.source,
            )
        source = reference.parse(entry.source.removeprefix(REMOTE))
        source = Reference(source.domain, source.path, None, entry.digest, True)
        resolved = await self._client.resolve(source, creds=creds, tls_verify=tls_verify)
        manifest = resolved.manifest
        for desc in [manifest.config, *manifest.layers]:
            await self._copy_blob(
                source, dest, desc, creds=creds, tls_verify=tls_verify, progress=progress
            )
        raw, media_type = manifest.raw, manifest.media_type
        convertible = all(layer.media_type in COMPRESSED for layer in manifest.layers)
        if manifest_type and manifest_type != media_type and convertible:
            raw, media_type = (
                image_manifest(manifest_type, manifest.config, manifest.layers),
                (manifest_type),
            )
        target = Reference(dest.domain, dest.path, None, sha256_digest(raw), True)
        digest = await self._client.push_manifest(
            target, raw, media_type, creds=creds, tls_verify=tls_verify
        )
        return ManifestEntry(
            digest, media_type, len(raw), entry.platform, entry.annotations, entry.source
        )

    async def _copy_blob(
        self,
        source: Reference,
        dest: Reference,
        desc: Descriptor,
        *,
        creds: Credentials | None,
        tls_verify: bool | None,
        progress: ProgressSink,
    ) -> None:
        """One blob of a registry instance into ``dest``: already there, mounted from the
        source repository, or downloaded into the store and uploaded."""
        progress(Progress("layer", "pushing", desc.digest, 0, desc.size))
        there = await self._client.blob_exists(
            dest, desc.digest, creds=creds, tls_verify=tls_verify
        ) or await self._client.mount_blob(
            dest, desc.digest, source, creds=creds, tls_verify=tls_verify
        )
        if not there:
            with self._images.lease([desc.digest]):
                await self._client.fetch_blob(source, desc, creds=creds, tls_verify=tls_verify)
                await self._pusher.send_stored_blob(dest, desc, creds=creds, tls_verify=tls_verify)
        status = "exists" if there else "pushed"
        progress(Progress("layer", status, desc.digest, desc.size, desc.size))
