"""Libpod image routes: list, inspect, exists, history, tag/untag, remove, prune, load,
import and export.  Names are Podman's fully qualified ones; IDs have no prefix.
Short names given to tag/import become ``localhost/...`` as in Podman."""

from typing import Any

from klein import Response

from podapi.engine.engine import Engine
from podapi.engine.imagearchives import ImportRequest
from podapi.engine.images import RemoveReport
from podapi.engine.imagetree import image_tree
from podapi.engine.state.images import ImageRecord
from podapi.engine.times import NS, rfc3339_nano
from podapi.errors import NoSuchImage, NotFound, PodapiError
from podapi.http.both.commit import commit_image
from podapi.http.both.images import (
    DOCKER_ARCHIVE,
    OCI_ARCHIVE,
    archive_upload,
    filtered_images,
    history_response,
    podman_name,
    prune_keeper,
    receive_load_bodies,
    send_archive,
)
from podapi.http.call import ApiCall, BadRequest
from podapi.http.errors import status_for
from podapi.http.responses import json_response, no_content
from podapi.http.routing import Dialect, Router

#: ``podman commit --format``.
COMMIT_FORMATS = ("oci", "docker")


def encode_summary(image: ImageRecord) -> dict[str, Any]:
    """Podman's ``entities.ImageSummary``."""
    return {
        "Id": image.id,
        "ParentId": image.parent,
        "RepoTags": list(image.names),
        "RepoDigests": list(image.digests),
        "Created": image.created // NS,
        "Size": image.size,
        "SharedSize": 0,
        "VirtualSize": image.size,
        "Labels": dict(image.labels) or None,
        "Containers": 0,
        "Names": list(image.names),
        "Digest": image.manifest_digest,
        "History": list(image.names_history),
        "ReadOnly": False,
        "Dangling": image.dangling,
        "Arch": image.architecture,
        "Os": image.os,
        "IsManifestList": False,
    }


async def encode_inspect(engine: Engine, image: ImageRecord) -> dict[str, Any]:
    """Podman's ``inspect.ImageData``."""
    config = await engine.images.config(image)
    section = config.get("config") or {}
    layer_dirs = engine.images.layer_dirs(image)
    return {
        "Id": image.id,
        "Digest": image.manifest_digest,
        "RepoTags": list(image.names),
        "RepoDigests": list(image.digests),
        "Parent": image.parent,
        "Comment": config.get("comment", ""),
        "Created": rfc3339_nano(image.created),
        "Config": section,
        "Version": config.get("docker_version", ""),
        "Author": config.get("author", ""),
        "Architecture": image.architecture,
        "Os": image.os,
        "Size": image.size,
        "VirtualSize": image.size,
        "GraphDriver": {
            "Name": "overlay",
            "Data": {"LowerDir": ":".join(layer_dirs[1:]), "UpperDir": layer_dirs[0]}
            if layer_dirs
            else {},
        },
        "RootFS": {"Type": "layers", "Layers": list(image.layers)},
        "Labels": section.get("Labels"),
        "Annotations": {},
        "ManifestType": image.manifest_media_type,
        "User": section.get("User", ""),
        "History": config.get("history") or [],
        "NamesHistory": list(image.names_history),
        **({"HealthCheck": section["Healthcheck"]} if section.get("Healthcheck") else {}),
    }


def encode_report(report: RemoveReport, errors: list[str], exit_code: int) -> dict[str, Any]:
    """Podman's ``ImageRemoveReport``."""
    return {
        "Untagged": report.untagged or None,
        "Deleted": report.deleted or None,
        "Errors": errors,
        "ExitCode": exit_code,
    }


class LibpodImageRoutes:
    """Image routes of the Libpod API that need no registry."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def register(self, router: Router) -> None:
        """Add the routes."""
        router.libpod("GET", "/images/json", self.list_images, early=True)
        router.libpod("POST", "/commit", self.commit)
        router.libpod("POST", "/images/load", self.load)
        receive_load_bodies(router, Dialect.LIBPOD, self._engine)
        router.libpod("POST", "/images/import", self.import_)
        router.libpod("POST", "/images/prune", self.prune)
        router.libpod("DELETE", "/images/remove", self.remove_many)
        router.libpod("GET", "/images/export", self.export)
        router.libpod("GET", "/images/<path:name>/json", self.inspect, early=True)
        router.libpod("GET", "/images/<path:name>/exists", self.exists)
        router.libpod("GET", "/images/<path:name>/history", self.history)
        router.libpod("GET", "/images/<path:name>/get", self.get)
        router.libpod("GET", "/images/<path:name>/tree", self.tree)
        router.libpod("POST", "/images/<path:name>/tag", self.tag)
        router.libpod("POST", "/images/<path:name>/untag", self.untag)
        router.libpod("DELETE", "/images/<path:name>", self.remove)

    async def list_images(self, call: ApiCall) -> Response:
        """``GET /libpod/images/json``."""
        found = await filtered_images(call, self._engine)
        return json_response([encode_summary(image) for image in found])

    async def inspect(self, call: ApiCall, name: str) -> Response:
        """``GET /libpod/images/{name}/json``."""
        image = await self._engine.images.resolve(name, short_names=call.short_names)
        return json_response(await encode_inspect(self._engine, image))

    async def exists(self, call: ApiCall, name: str) -> Response:
        """``GET /libpod/images/{name}/exists``: 204 or 404, whose cause is Podman's
        ``failed to find image NAME`` (its handler answers that unwrapped error)."""
        try:
            await self._engine.images.resolve(name, short_names=call.short_names)
        except NoSuchImage:
            message = f"failed to find image {name}"
            raise NoSuchImage(message, cause=message) from None
        return no_content()

    async def history(self, call: ApiCall, name: str) -> Response:
        """``GET /libpod/images/{name}/history``."""
        return await history_response(call, self._engine, name)

    async def tree(self, call: ApiCall, name: str) -> Response:
        """``GET /libpod/images/{name}/tree?whatrequires=``: ``{"Tree": text}`` (Podman's
        ``ImageTree``; ``whatrequires`` draws the images built on this one)."""
        image = await self._engine.images.resolve(name, short_names=call.short_names)
        text = await image_tree(self._engine.images, image, what_requires=call.flag("whatrequires"))
        return json_response({"Tree": text})

    async def tag(self, call: ApiCall, name: str) -> Response:
        """``POST /libpod/images/{name}/tag?repo=&tag=`` -> 201."""
        image = await self._engine.images.resolve(name, short_names=call.short_names)
        repo = call.text("repo")
        if not repo:
            raise BadRequest("repo is required")
        await self._engine.images.tag(image, podman_name(repo, call.text("tag")))
        return no_content(201)

    async def untag(self, call: ApiCall, name: str) -> Response:
        """``POST /libpod/images/{name}/untag``: one name, or every name without ``repo``."""
        image = await self._engine.images.resolve(name, short_names=call.short_names)
        repo = call.text("repo")
        names = [podman_name(repo, call.text("tag"))] if repo else list(image.names)
        for target in names:
            if target not in image.names:
                raise NotFound(f"{target}: tag not known", cause="tag not known")
            await self._engine.images.untag(image, target)
        return no_content(201)

    async def remove(self, call: ApiCall, name: str) -> Response:
        """``DELETE /libpod/images/{name}?force=&noprune=``.

        ``noprune=true`` keeps the parents that the removal leaves dangling.
        Podman's handler (``ImagesRemove``, 4.x and 5.x) does not read
        ``noprune`` here, only on ``/images/remove``, and so always prunes;
        we honour it on both routes (``podman --remote rmi`` uses the bulk one).
        """
        report = await self._engine.images.remove(
            name,
            short_names=call.short_names,
            force=call.flag("force"),
            prune_parents=not call.flag("noprune"),
        )
        return json_response(encode_report(report, [], 0))

    async def remove_many(self, call: ApiCall) -> Response:
        """``DELETE /libpod/images/remove?images=a&images=b&force&ignore&all&noprune``.

        ``noprune=true`` keeps parents the removal leaves dangling (``podman
        rmi --no-prune``); by default they go too, as libimage does.
        """
        names = call.texts("images")
        prune_parents = not call.flag("noprune")
        if call.flag("all"):
            names = [image.id for image in await self._engine.images.all()]
        report, errors, exit_code = RemoveReport(), [], 0
        for name in names:
            try:
                if call.flag("lookupManifest") and await self._engine.manifests.find(name):
                    # podman --remote manifest rm (libimage: a list is an image).
                    one = await self._engine.manifests.delete(name)
                else:
                    one = await self._remove_image_or_list(call, name, prune_parents)
            except PodapiError as e:
                if isinstance(e, NotFound) and call.flag("ignore"):
                    continue
                errors.append(e.message)
                exit_code = 1 if status_for(e) == 404 and exit_code == 0 else 2
                continue
            report.untagged.extend(one.untagged)
            report.deleted.extend(one.deleted)
        return json_response(encode_report(report, errors, exit_code))

    async def _remove_image_or_list(
        self, call: ApiCall, name: str, prune_parents: bool
    ) -> RemoveReport:
        """``podman rmi NAME``: the image, else a manifest list of that name (Podman
        keeps lists among images, so ``rmi`` removes them too)."""
        try:
            return await self._engine.images.remove(
                name,
                short_names=call.short_names,
                force=call.flag("force"),
                prune_parents=prune_parents,
            )
        except NotFound:
            if await self._engine.manifests.find(name) is None:
                raise
            return await self._engine.manifests.delete(name)

    async def prune(self, call: ApiCall) -> Response:
        """``POST /libpod/images/prune?all=&filters=``: ``[{"Id", "Size"}]``, each with the
        bytes of the layers and blobs its removal freed."""
        filters = call.filters()
        filters.pop("dangling", None)
        keep = prune_keeper(self._engine, filters)
        report = await self._engine.images.prune(dangling_only=not call.flag("all"), keep=keep)
        return json_response([{"Id": i, "Size": size, "Err": None} for i, size in report.sizes])

    async def load(self, call: ApiCall) -> Response:
        """``POST /libpod/images/load``: ``{"Names": [...]}``."""
        loaded = await self._engine.image_archives.load(archive_upload(call))
        names = [n for item in loaded for n in (item.names or ("sha256:" + item.image.id,))]
        return json_response({"Names": names})

    async def import_(self, call: ApiCall) -> Response:
        """``POST /libpod/images/import``: ``reference``, ``changes``, ``message``, ``URL``,
        ``OS``, ``Architecture``, ``Variant``.

        The tarball is the body, or with ``URL`` is downloaded from there (the
        body is then ignored, as in Podman).  ``OS``, ``Architecture`` and
        ``Variant`` set the image config's fields (default: this host's
        ``linux``/architecture, no variant).  Answers ``{"Id": ...}``.

        Differences from Podman (``ImagesImport``, which answers 500 for every
        failed import): a ``URL`` that is not an absolute http(s) URL is a 400
        (Podman reads other text as a path on the server), and so is content
        that is not a tarball; a download answered with a non-2xx status fails
        at once with that status (500).  An unreachable host is a 500 as in
        Podman.  ``podman --remote import URL`` of Podman 4.3.1 never sends
        ``URL``: its client refuses a URL together with its (nil) file.
        """
        name = call.text("reference")
        request = ImportRequest(
            name=podman_name(name) if name else None,
            changes=call.texts("changes"),
            message=call.text("message") or "",
            os_name=call.text("OS") or "",
            architecture=call.text("Architecture") or "",
            variant=call.text("Variant") or "",
        )
        url = call.text("URL")
        archives = self._engine.image_archives
        if url:
            image = await archives.import_url(url, request)
        else:
            image = await archives.import_rootfs(call.request.content, request)
        return json_response({"Id": image.id})

    async def get(self, call: ApiCall, name: str) -> None:
        """``GET /libpod/images/{name}/get?format=&compress=`` (Podman's ``ExportImage``).

        ``format`` defaults to ``oci-archive`` as in Podman (``podman --remote save``
        always sends its own, ``docker-archive`` by default).  ``compress`` must be a
        boolean (400 otherwise, as Podman's decoder); Podman applies it to the
        directory formats only, which are not served here.
        """
        call.flag("compress")
        await send_archive(call, self._engine, [name], call.text("format") or OCI_ARCHIVE)

    async def export(self, call: ApiCall) -> None:
        """``GET /libpod/images/export?references=a&references=b&format=&compress=``
        (Podman's ``ExportImages``, which ``podman --remote save`` calls): several
        images need ``format=docker-archive``; the format defaults to ``oci-archive``;
        ``oci-dir`` and ``docker-dir`` are sent as the archive of the same family, as
        Podman 4.3.1 does (``podman --remote save --format oci-dir`` unpacks it);
        ``compress`` is checked as in :meth:`get`."""
        call.flag("compress")
        names = [n for value in call.texts("references") for n in value.split(",") if n]
        fmt = call.text("format") or OCI_ARCHIVE
        # Podman sends the directory formats as archives; its client unpacks them.
        fmt = {"oci-dir": OCI_ARCHIVE, "docker-dir": DOCKER_ARCHIVE}.get(fmt, fmt)
        await send_archive(call, self._engine, names, fmt)

    async def commit(self, call: ApiCall) -> Response:
        """Podman's ``ImageCommitLibpod``: 200 ``{"Id": "<hex>"}`` (Podman's status too);
        ``format`` is ``oci`` or ``docker``, and a comment needs ``docker``."""
        image_format = call.text("format") or "oci"
        if image_format not in COMMIT_FORMATS:
            raise BadRequest(f"unrecognized image format {image_format!r}")
        comment = call.text("comment") or ""
        if comment and image_format == "oci":
            raise BadRequest(
                "messages are only compatible with the docker image format (-f docker)"
            )
        image = await commit_image(call, self._engine, pause_default=False, comment=comment)
        return json_response({"Id": image.id})
