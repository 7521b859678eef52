"""Image handler pieces shared by both trees: listing with filters, history, archives out."""

import contextlib
from collections.abc import Callable
from typing import Any, BinaryIO, cast

from klein import Response
from twisted.web.server import Request

from podapi.engine import imagefilters
from podapi.engine.engine import Engine
from podapi.engine.imagearchives import ArchiveUpload
from podapi.engine.images import created_ns
from podapi.engine.shortnames import LOCALHOST
from podapi.engine.state.images import ImageRecord
from podapi.engine.times import NS
from podapi.errors import InvalidArgument
from podapi.http.call import ApiCall, BadRequest
from podapi.http.producers import stream_chunks
from podapi.http.responses import json_response
from podapi.http.routing import Dialect, Router
from podapi.http.site import streamed_body
from podapi.storage import reference


async def filtered_images(call: ApiCall, engine: Engine) -> list[ImageRecord]:
    """``GET /images/json`` selection: ``all``, ``filters`` and the old ``filter=<ref>``."""
    filters = call.filters()
    legacy = call.text("filter")
    if legacy:
        filters.setdefault("reference", []).append(legacy)
    anchors = {}
    for key in ("before", "since"):
        for value in filters.get(key, []):
            anchors[value] = await engine.images.resolve(value, short_names=call.short_names)
    keep = imagefilters.build(filters, anchors, engine.events.now_ns())
    found = [image for image in await engine.images.all() if keep(image)]
    if not call.flag("all"):
        # The build steps' untagged images are not the user's images (as BuildKit's
        # cache is not): shown with all=1 only, like Docker's intermediate images.  A
        # build's result that lost its name is the user's: a dangling image.
        cache = await engine.build_cache.intermediate_ids()
        found = [i for i in found if not (i.dangling and i.id in cache)]
    if not call.flag("all") and "dangling" not in filters:
        # Docker hides untagged intermediate images (parents of others) unless all=1.
        parents = {image.parent for image in found if image.parent}
        found = [i for i in found if not (i.dangling and i.id in parents)]
    return sorted(found, key=lambda i: i.created, reverse=True)


async def history_response(call: ApiCall, engine: Engine, name: str) -> Response:
    """``GET /images/{name}/history`` (both trees share Podman's compat handler): newest first.

    ``Tags``: the compat tree puts the image's names on its own (top) entry as
    Docker does; on the libpod tree every entry's ``Tags`` is null, as Podman's
    are (libimage ``History`` reports the storage *layer*'s names, which a
    layer never has here).
    """
    image = await engine.images.resolve(name, short_names=call.short_names)
    config = await engine.images.config(image)
    sizes = await engine.images.layer_sizes(image)
    entries: list[dict[str, Any]] = []
    layer = 0
    for item in config.get("history") or []:
        empty = bool(item.get("empty_layer"))
        size = 0 if empty or layer >= len(sizes) else sizes[layer]
        if not empty:
            layer += 1
        entries.append(
            {
                "Id": "<missing>",
                "Created": _unix(item.get("created")),
                "CreatedBy": item.get("created_by", ""),
                "Tags": None,
                "Size": size,
                "Comment": item.get("comment", ""),
            }
        )
    if not entries:
        entries.append(
            {
                "Id": "<missing>",
                "Created": image.created // NS,
                "CreatedBy": "",
                "Tags": None,
                "Size": image.size,
                "Comment": "",
            }
        )
    entries.reverse()
    entries[0]["Id"] = ("" if call.libpod else "sha256:") + image.id
    if not call.libpod:
        entries[0]["Tags"] = [reference.docker_name(n) for n in image.names] or None
    return json_response(entries)


def _unix(value: object) -> int:
    return created_ns({"created": value}) // NS


#: Podman's archive formats (``define.V2s2Archive``, ``define.OCIArchive``).
DOCKER_ARCHIVE = "docker-archive"
OCI_ARCHIVE = "oci-archive"
#: The type Podman's ``utils.WriteResponse`` gives a file it streams (every image
#: save, on both trees): libmagic sniffing tools (Podman's own API suite runs
#: ``file`` on bodies of an ``/octet`` type) and clients that only copy the body
#: (docker, docker-py, podman) all take it.
ARCHIVE_CONTENT_TYPE = b"application/octet; charset=us-ascii"


async def send_archive(call: ApiCall, engine: Engine, names: list[str], fmt: str) -> None:
    """Stream a docker-archive (or OCI archive) of ``names`` straight from the store.

    Every name must resolve (404 otherwise) before the first byte goes out.  Tags
    recorded in the archive are the names given when they are names (as
    ``docker save busybox:latest`` does), else all the image's names.  Several
    images go in a docker-archive only (Podman's ``ExportImages``: "multi-image
    archives must use format of docker-archive").  Unknown formats, and several
    images in an OCI archive, are 400s where Podman answers 500.
    """
    if not names:
        raise BadRequest("no images to export: give at least one name")
    if fmt not in (DOCKER_ARCHIVE, OCI_ARCHIVE):
        raise BadRequest(f"unsupported format {fmt!r}: use docker-archive or oci-archive")
    if len(names) > 1 and fmt != DOCKER_ARCHIVE:
        raise BadRequest("multi-image archives must use format of docker-archive")
    entries: list[tuple[ImageRecord, list[str]]] = []
    for name in names:
        image = await engine.images.resolve(name, short_names=call.short_names)
        tags = list(image.names)
        if not (reference.is_image_id(name) or image.id.startswith(name)):
            with contextlib.suppress(InvalidArgument):
                tags = [reference.parse(name).name]
        if not call.libpod:
            tags = [reference.docker_name(t) for t in tags]
        entries.append((image, tags))
    saved = await engine.image_archives.save(entries, oci=fmt == OCI_ARCHIVE)
    request = cast(Request, call.request)
    request.setHeader(b"Content-Type", ARCHIVE_CONTENT_TYPE)
    request.setHeader(b"Content-Length", str(saved.size).encode())
    await stream_chunks(request, saved.body)


def prune_keeper(engine: Engine, filters: dict[str, list[str]]) -> Callable[[ImageRecord], bool]:
    """What a prune must spare: images the filters (other than ``dangling``) do not select."""
    selected = imagefilters.build(filters, {}, engine.events.now_ns())
    return lambda image: not selected(image)


def podman_name(repo: str, tag: str | None = None) -> str:
    """Podman normalises short names to ``localhost/``."""
    return reference.join(repo, tag, default_domain=LOCALHOST).name


def receive_load_bodies(router: Router, dialect: Dialect, engine: Engine) -> None:
    """Have ``POST /images/load`` bodies read (and extracted) as they arrive."""
    router.receive_body(dialect, "POST", "/images/load", engine.image_archives.receive_upload)


def archive_upload(call: ApiCall) -> "BinaryIO | ArchiveUpload":
    """A load's body: being received as it arrived, or spooled (too many at once)."""
    receiving = streamed_body(call.request)
    if isinstance(receiving, ArchiveUpload):
        return receiving
    return cast(BinaryIO, call.request.content)
