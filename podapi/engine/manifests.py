"""Manifest lists (``podman manifest``): create, add, annotate, remove, inspect, push, delete.

As libimage's ``ManifestList`` (containers/common v0.50, Podman 4.3.1): a list is
named like an image (a short name means ``localhost/NAME:latest``), its entries
are image manifests with a platform each, and a push copies every entry (a local
image through :class:`~podapi.engine.push.ImagePush`, a registry one blob by blob)
and then puts the index under the destination's tag.

Differences from Podman, on purpose:

- Lists are kept apart from images (``podman images`` does not show them;
  ``podman rmi LIST`` and ``manifest rm`` still remove them).
- ``add`` of a name without a transport uses a local image when there is one,
  else the registry; Podman 4.3.1 always asks the registry (``docker://``) and so
  cannot add a local image unless written ``containers-storage:NAME``.
- Unknown lists, images and digests are 404s and bad values 400s, where
  Podman's handlers answer 500 or a 400 with an empty error object.
"""

import contextlib
import json
import secrets
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any

from attrs import field, frozen

from podapi.engine.events import EventBus
from podapi.engine.images import ImageService, RemoveReport
from podapi.engine.manifestpush import ManifestListPush, docker_platform
from podapi.engine.progress import ProgressSink, ignore_progress
from podapi.engine.push import PUSH_FORMATS, ImagePush
from podapi.engine.shortnames import ShortNames
from podapi.engine.state import manifests as rows
from podapi.engine.state.database import State
from podapi.engine.state.images import find_by_name
from podapi.engine.state.manifests import LOCAL, REMOTE, ManifestEntry, ManifestListRecord
from podapi.errors import Conflict, InvalidArgument, NotFound
from podapi.storage import reference
from podapi.storage.blobs import check_digest
from podapi.storage.imageformats import DOCKER_LIST, DOCKER_MANIFEST, OCI_MANIFEST
from podapi.storage.reference import Reference
from podapi.storage.registry import (
    Credentials,
    Descriptor,
    Platform,
    RegistryClient,
    RegistryError,
)
from podapi.storage.registry import choose_platform as pick
from podapi.storage.registry.manifests import oci_platform

#: containers/image transport names (``alltransports``); only two are served here.
TRANSPORTS = (
    "containers-storage",
    "docker",
    "docker-archive",
    "docker-daemon",
    "oci",
    "oci-archive",
    "dir",
    "sif",
    "tarball",
    "ostree",
)


class NoSuchManifestList(NotFound):
    cause = "image not known"


@frozen
class Annotation:
    """What ``manifest add``/``annotate`` sets on instances (empty: leave as is)."""

    architecture: str = ""
    os: str = ""
    variant: str = ""
    os_version: str = ""
    features: tuple[str, ...] = ()
    os_features: tuple[str, ...] = ()
    annotations: Mapping[str, str] = field(factory=dict)

    def apply(self, entry: ManifestEntry) -> ManifestEntry:
        """``entry`` with these values set (libimage ``AnnotateInstance``)."""
        platform = dict(entry.platform)
        for key, value in (
            ("architecture", self.architecture),
            ("os", self.os),
            ("variant", self.variant),
            ("os.version", self.os_version),
        ):
            if value:
                platform[key] = value
        if self.features:
            platform["features"] = list(self.features)
        if self.os_features:
            platform["os.features"] = list(self.os_features)
        annotations = {**entry.annotations, **self.annotations}
        return ManifestEntry(
            entry.digest, entry.media_type, entry.size, platform, annotations, entry.source
        )


def parse_annotations(specs: Sequence[str]) -> dict[str, str]:
    """``KEY=VALUE`` strings; libimage's message for one without ``=``."""
    result = {}
    for spec in specs:
        key, sep, value = spec.partition("=")
        if not sep:
            raise InvalidArgument(f"no value given for annotation {key!r}")
        result[key] = value
    return result


def list_name(text: str) -> str:
    """libimage ``NormalizeName``: a short name lives under ``localhost/``; tag ``latest``.

    :raises InvalidArgument: not a reference, or a digest reference.
    """
    ref = reference.parse(text, default_domain="localhost")
    if ref.digest:
        raise InvalidArgument(f"invalid image name {text!r}: a manifest list name has no digest")
    return ref.name


def _platform_of(config: Mapping[str, Any]) -> dict[str, Any]:
    return oci_platform(config)


def docker_list(record: ManifestListRecord) -> dict[str, Any]:
    """The list as ``podman manifest inspect`` shows it: a Docker schema 2 list
    (``manifest.Schema2List``); annotations shown when set (Podman 4.3.1 drops them)."""
    manifests = []
    for entry in record.entries:
        item: dict[str, Any] = {
            "mediaType": entry.media_type,
            "size": entry.size,
            "digest": entry.digest,
            "platform": docker_platform(entry.platform),
        }
        if entry.annotations:
            item["annotations"] = dict(entry.annotations)
        manifests.append(item)
    return {"schemaVersion": 2, "mediaType": DOCKER_LIST, "manifests": manifests}


class ManifestLists:
    """The manifest lists of the store.

    :param state: the state database.
    :param images: the image store (local instances, blobs, leases).
    :param client: the registry client (remote instances, push).
    :param pusher: pushes local instances.
    :param events: where ``push``/``remove`` events go.
    :param now_ns: the clock.
    """

    def __init__(
        self,
        *,
        state: State,
        images: ImageService,
        client: RegistryClient,
        pusher: ImagePush,
        events: EventBus,
        now_ns: Callable[[], int],
    ) -> None:
        self._state = state
        self._images = images
        self._client = client
        self._list_push = ManifestListPush(images, client, pusher, events)
        self._events = events
        self._now_ns = now_ns

    # --- lookup -----------------------------------------------------------------------

    async def find(self, text: str) -> ManifestListRecord | None:
        """The list ``text`` names (name, ID or ID prefix), or None."""
        names = []
        for default in ("localhost", reference.DEFAULT_DOMAIN):
            with contextlib.suppress(InvalidArgument):
                names.append(reference.parse(text, default_domain=default).name)
        return await self._state.read(partial(rows.find_list, names=tuple(names), text=text))

    async def get(self, text: str) -> ManifestListRecord:
        """The list ``text`` names.

        :raises NoSuchManifestList: there is none (libimage's message).
        """
        found = await self.find(text)
        if found is None:
            raise NoSuchManifestList(f"{text}: image not known")
        return found

    async def all(self) -> list[ManifestListRecord]:
        """Every list."""
        return await self._state.read(rows.load_lists)

    # --- create, add, annotate, remove ------------------------------------------------

    async def create(
        self,
        name: str,
        images: Sequence[str] = (),
        *,
        all: bool = False,
        amend: bool = False,
        annotation: Annotation | None = None,
        short_names: ShortNames,
        creds: Credentials | None = None,
        tls_verify: bool | None = None,
    ) -> ManifestListRecord:
        """``podman manifest create NAME [IMAGE...]``.

        :raises Conflict: the name is taken by a list (without ``amend``) or an image.
        """
        full = list_name(name)
        existing = await self.find(full)
        if existing is not None and existing.name == full:
            if not amend:
                raise Conflict(f"{full}: image name already in use", cause="name already in use")
            record = existing
        else:
            if await self._state.read(partial(find_by_name, name=full)):
                raise Conflict(f"{full}: image name already in use", cause="name already in use")
            record = ManifestListRecord(
                secrets.token_hex(32), full, self._now_ns() // 1_000_000_000, ()
            )
            await self._state.write(partial(rows.insert_list, record=record))
        if images:
            record = await self.add(
                record.id,
                images,
                all=all,
                annotation=annotation,
                short_names=short_names,
                creds=creds,
                tls_verify=tls_verify,
            )
        return record

    async def add(
        self,
        name: str,
        images: Sequence[str],
        *,
        all: bool = False,
        annotation: Annotation | None = None,
        short_names: ShortNames,
        creds: Credentials | None = None,
        tls_verify: bool | None = None,
    ) -> ManifestListRecord:
        """``podman manifest add LIST IMAGE...``: each image's manifest becomes an entry
        (replacing one with the same digest), annotated with ``annotation``.

        ``all`` adds every entry of a registry index, not only this host's platform's.
        """
        if not images:
            raise InvalidArgument("manifest add requires at least one image")
        record = await self.get(name)
        entries = list(record.entries)
        for text in images:
            added = await self._instances(
                text, all=all, short_names=short_names, creds=creds, tls_verify=tls_verify
            )
            for new in added:
                entry = annotation.apply(new) if annotation is not None else new
                entries = [e for e in entries if e.digest != entry.digest] + [entry]
        return await self._save(record, tuple(entries))

    async def annotate(
        self, name: str, digests: Sequence[str], annotation: Annotation
    ) -> ManifestListRecord:
        """``podman manifest annotate LIST DIGEST``."""
        record = await self.get(name)
        entries = list(record.entries)
        for digest in digests:
            index = self._entry_index(record, digest)
            entries[index] = annotation.apply(entries[index])
        return await self._save(record, tuple(entries))

    async def remove_instances(self, name: str, digests: Sequence[str]) -> ManifestListRecord:
        """``podman manifest remove LIST DIGEST``."""
        record = await self.get(name)
        gone = {record.entries[self._entry_index(record, d)].digest for d in digests}
        return await self._save(record, tuple(e for e in record.entries if e.digest not in gone))

    @staticmethod
    def _entry_index(record: ManifestListRecord, digest: str) -> int:
        try:
            check_digest(digest)
        except InvalidArgument:
            raise InvalidArgument(f"invalid image digest {digest!r}") from None
        for index, entry in enumerate(record.entries):
            if entry.digest == digest:
                return index
        raise NotFound(
            f"no instance with digest {digest} in manifest list {record.name}",
            cause="manifest instance not known",
        )

    async def _save(
        self, record: ManifestListRecord, entries: tuple[ManifestEntry, ...]
    ) -> ManifestListRecord:
        await self._state.write(partial(rows.update_entries, list_id=record.id, entries=entries))
        return ManifestListRecord(
            record.id, record.name, record.created, entries, record.annotations
        )

    async def _instances(
        self,
        text: str,
        *,
        all: bool,
        short_names: ShortNames,
        creds: Credentials | None,
        tls_verify: bool | None,
    ) -> list[ManifestEntry]:
        transport, sep, rest = text.partition(":")
        if sep and transport in TRANSPORTS:
            if transport == "containers-storage":
                return [await self._local(rest, short_names)]
            if transport != "docker":
                raise InvalidArgument(
                    f"transport {transport!r} is not supported: use docker:// or "
                    "containers-storage:"
                )
            return await self._remote(rest.removeprefix("//"), all, creds, tls_verify)
        try:
            return [await self._local(text, short_names)]
        except NotFound:
            return await self._remote(text, all, creds, tls_verify)

    async def _local(self, text: str, short_names: ShortNames) -> ManifestEntry:
        image = await self._images.resolve(text, short_names=short_names)
        raw = await self._images.manifest(image)
        config = await self._images.config(image)
        return ManifestEntry(
            image.manifest_digest,
            image.manifest_media_type,
            len(raw),
            _platform_of(config),
            {},
            LOCAL + image.id,
        )

    async def _remote(
        self, text: str, all: bool, creds: Credentials | None, tls_verify: bool | None
    ) -> list[ManifestEntry]:
        ref = reference.parse(text)
        inspected = await self._client.inspect(ref, creds=creds, tls_verify=tls_verify)
        source = REMOTE + ref.repository
        if not inspected.entries and inspected.media_type in (OCI_MANIFEST, DOCKER_MANIFEST):
            platform = dict(inspected.platforms[0]) if inspected.platforms else {}
            return [
                ManifestEntry(
                    inspected.digest, inspected.media_type, inspected.size, platform, {}, source
                )
            ]
        chosen: list[Descriptor]
        if all:
            chosen = [
                e for e in inspected.entries if e.media_type in (OCI_MANIFEST, DOCKER_MANIFEST)
            ]
        else:
            entry = pick(inspected.entries, Platform())
            if entry is None:
                raise NotFound(
                    f"{ref.name}: no image found in manifest list for platform {Platform()}",
                    cause="no matching manifest",
                )
            chosen = [entry]
        return [
            ManifestEntry(
                e.digest, e.media_type, e.size, dict(e.platform or {}), dict(e.annotations), source
            )
            for e in chosen
        ]

    # --- inspect ------------------------------------------------------------------------

    async def inspect(
        self, text: str, *, creds: Credentials | None = None, tls_verify: bool | None = None
    ) -> dict[str, Any]:
        """``podman manifest inspect``: a local list, else what the registry has
        under ``text`` (an index shown as a Docker list, an image manifest as is).

        As Podman's handler, any failure to find it is a 404 (an unreachable
        registry too), with the registry's message.
        """
        record = await self.find(text)
        if record is not None:
            return docker_list(record)
        try:
            return await self._remote_inspect(text, creds, tls_verify)
        except (InvalidArgument, RegistryError) as e:
            raise NoSuchManifestList(f"{text}: image not known: {e.message}") from e

    async def _remote_inspect(
        self, text: str, creds: Credentials | None, tls_verify: bool | None
    ) -> dict[str, Any]:
        ref = reference.parse(text.removeprefix("docker://"))
        inspected = await self._client.inspect(ref, creds=creds, tls_verify=tls_verify)
        if inspected.entries:
            entries = [
                ManifestEntry(e.digest, e.media_type, e.size, dict(e.platform or {}))
                for e in inspected.entries
            ]
            return docker_list(ManifestListRecord("", ref.name, 0, tuple(entries)))
        resolved = await self._client.resolve(ref, creds=creds, tls_verify=tls_verify)
        return dict(json.loads(resolved.manifest.raw))

    # --- remove -------------------------------------------------------------------------

    async def delete(self, text: str) -> RemoveReport:
        """``podman manifest rm``: the list goes; the images it names stay."""
        record = await self.get(text)
        await self._state.write(partial(rows.delete_list, list_id=record.id))
        self._events.emit("image", "untag", record.id, name=record.name)
        self._events.emit("image", "remove", record.id, name=record.name)
        return RemoveReport(untagged=[record.name], deleted=[record.id])

    # --- push ---------------------------------------------------------------------------

    async def push(
        self,
        text: str,
        dest: Reference,
        *,
        all: bool = True,
        fmt: str = "",
        creds: Credentials | None = None,
        tls_verify: bool | None = None,
        progress: ProgressSink = ignore_progress,
    ) -> str:
        """``podman manifest push LIST DEST``: the instances (with ``all``) then the index
        under ``dest``'s tag; returns the index digest.

        :param fmt: ``oci`` or ``v2s2`` converts instances and index; empty keeps the
            instances' types and picks the index type from them (:func:`index_type`).
        """
        if fmt and fmt not in PUSH_FORMATS:
            raise InvalidArgument(
                f"unknown format {fmt!r}. Choose one of the supported formats: 'oci' or 'v2s2'"
            )
        record = await self.get(text)
        return await self._list_push.push(
            record,
            dest,
            all=all,
            fmt=fmt,
            creds=creds,
            tls_verify=tls_verify,
            progress=progress,
        )
