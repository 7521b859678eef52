"""Docker image routes: list, inspect, history, tag, remove, prune, load, save, import.

Names appear the way Docker shows them (``busybox:latest``, not
``docker.io/library/busybox:latest``); IDs carry ``sha256:``.  Pull, push,
search and ``/auth`` live in ``http/compat/distribution.py``.
"""

from typing import Any

from klein import Response

from podapi.engine.engine import Engine
from podapi.engine.state.images import ImageRecord
from podapi.engine.times import NS, rfc3339_nano
from podapi.errors import InvalidArgument, PodapiError
from podapi.http.both.commit import commit_image
from podapi.http.both.images import (
    DOCKER_ARCHIVE,
    archive_upload,
    filtered_images,
    history_response,
    prune_keeper,
    receive_load_bodies,
    send_archive,
)
from podapi.http.call import ApiCall, BadRequest
from podapi.http.compat.distribution import DockerProgress
from podapi.http.responses import json_response, no_content
from podapi.http.routing import Dialect, Router
from podapi.http.streams import JsonLines
from podapi.storage import reference

#: Every key of Docker's container config, as the image inspect ``Config`` shows it.
CONFIG_KEYS: dict[str, Any] = {
    "Hostname": "",
    "Domainname": "",
    "User": "",
    "AttachStdin": False,
    "AttachStdout": False,
    "AttachStderr": False,
    "ExposedPorts": None,
    "Tty": False,
    "OpenStdin": False,
    "StdinOnce": False,
    "Env": None,
    "Cmd": None,
    "Image": "",
    "Volumes": None,
    "WorkingDir": "",
    "Entrypoint": None,
    "OnBuild": None,
    "Labels": None,
}


def docker_names(image: ImageRecord) -> list[str]:
    """The image's names as Docker shows them."""
    return [reference.docker_name(name) for name in image.names]


def docker_digests(image: ImageRecord) -> list[str]:
    """``repo@sha256:...`` as Docker shows them."""
    return [reference.docker_name(d) for d in image.digests]


def encode_summary(image: ImageRecord, call: ApiCall) -> dict[str, Any]:
    """Docker's ``image.Summary``, plus the extensions Podman's compat handler adds
    (``entities.ImageSummary``, left out when empty): ``Names`` (full names, as
    Podman stores them), ``Digest`` and ``History``."""
    body: dict[str, Any] = {
        "Id": "sha256:" + image.id,
        "ParentId": ("sha256:" + image.parent) if image.parent else "",
        "RepoTags": docker_names(image),
        "RepoDigests": docker_digests(image),
        "Created": image.created // NS,
        "Size": image.size,
        "SharedSize": -1,
        "Labels": dict(image.labels) or None,
        "Containers": -1,
    }
    if not call.version_at_least(1, 44):
        body["VirtualSize"] = image.size
    extensions = {
        "Names": list(image.names),
        "Digest": image.manifest_digest,
        "History": list(image.names_history),
    }
    body.update({key: value for key, value in extensions.items() if value})
    return body


def container_config(config: dict[str, Any]) -> dict[str, Any]:
    """An image config's ``config`` section with every Docker key present."""
    section = dict(CONFIG_KEYS)
    section.update(config.get("config") or {})
    return section


async def encode_inspect(engine: Engine, image: ImageRecord, call: ApiCall) -> dict[str, Any]:
    """Docker's ``image.InspectResponse`` (plus fields older clients read)."""
    config = await engine.images.config(image)
    layer_dirs = engine.images.layer_dirs(image)
    body: dict[str, Any] = {
        "Id": "sha256:" + image.id,
        "RepoTags": docker_names(image),
        "RepoDigests": docker_digests(image),
        "Parent": ("sha256:" + image.parent) if image.parent else "",
        "Comment": config.get("comment", ""),
        "Created": rfc3339_nano(image.created),
        "Container": config.get("container", ""),
        "DockerVersion": config.get("docker_version", ""),
        "Author": config.get("author", ""),
        "Config": container_config(config),
        "Architecture": image.architecture,
        "Os": image.os,
        "Size": image.size,
        "GraphDriver": {
            "Name": "overlay",
            "Data": {"LowerDir": ":".join(layer_dirs[1:]), "UpperDir": layer_dirs[0]}
            if layer_dirs
            else {},
        },
        "RootFS": {"Type": "layers", "Layers": list(image.layers)},
        "Metadata": {"LastTagTime": rfc3339_nano(0)},
    }
    if config.get("variant"):
        body["Variant"] = config["variant"]
    if not call.version_at_least(1, 45):
        body["ContainerConfig"] = container_config({"config": config.get("container_config")})
    if not call.version_at_least(1, 44):
        body["VirtualSize"] = image.size
    return body


class CompatImageRoutes:
    """Image routes of the Docker API that need no registry."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def register(self, router: Router) -> None:
        """Add the routes."""
        router.compat("GET", "/images/json", self.list_images, early=True)
        router.compat("POST", "/commit", self.commit)
        router.compat("POST", "/images/load", self.load)
        receive_load_bodies(router, Dialect.COMPAT, self._engine)
        router.compat("POST", "/images/prune", self.prune)
        router.compat("GET", "/images/get", self.save_many)
        router.compat("GET", "/images/<path:name>/json", self.inspect, early=True)
        router.compat("GET", "/images/<path:name>/history", self.history)
        router.compat("GET", "/images/<path:name>/get", self.save)
        router.compat("POST", "/images/<path:name>/tag", self.tag)
        router.compat("DELETE", "/images/<path:name>", self.remove)

    async def list_images(self, call: ApiCall) -> Response:
        """``GET /images/json``."""
        found = await filtered_images(call, self._engine)
        return json_response([encode_summary(image, call) for image in found])

    async def inspect(self, call: ApiCall, name: str) -> Response:
        """``GET /images/{name}/json``."""
        image = await self._engine.images.resolve(name, short_names=call.short_names)
        return json_response(await encode_inspect(self._engine, image, call))

    async def history(self, call: ApiCall, name: str) -> Response:
        """``GET /images/{name}/history``."""
        return await history_response(call, self._engine, name)

    async def tag(self, call: ApiCall, name: str) -> Response:
        """``POST /images/{name}/tag?repo=&tag=`` -> 201 (Docker normalises to docker.io)."""
        image = await self._engine.images.resolve(name, short_names=call.short_names)
        repo = call.text("repo")
        if not repo:
            raise BadRequest("repo is required: POST /images/{name}/tag?repo=NAME&tag=TAG")
        target = reference.join(repo, call.text("tag"))
        await self._engine.images.tag(image, target.name)
        return no_content(201)

    async def remove(self, call: ApiCall, name: str) -> Response:
        """``DELETE /images/{name}``: ``[{"Untagged": ...}, {"Deleted": ...}]``."""
        report = await self._engine.images.remove(
            name,
            short_names=call.short_names,
            force=call.flag("force"),
            prune_parents=not call.flag("noprune"),
        )
        body = [{"Untagged": reference.docker_name(n)} for n in report.untagged]
        body += [{"Deleted": "sha256:" + i} for i in report.deleted]
        return json_response(body)

    async def prune(self, call: ApiCall) -> Response:
        """``POST /images/prune``: dangling images unless ``dangling=false``, which
        ``docker image prune -a`` sends: every image no container uses (Podman 4.3.1
        answers an error).  Docker's filters only (``dangling``, ``label``, ``label!``,
        ``until``); another key or a ``dangling`` that is no boolean is a 400.
        ``SpaceReclaimed`` is the bytes of the layers and blobs removed."""
        filters = call.filters()
        unknown = set(filters) - {"dangling", "label", "label!", "until"}
        if unknown:
            raise InvalidArgument(f"invalid filter '{sorted(unknown)[0]}'")
        dangling = filters.pop("dangling", ["true"])
        values = {v.lower() for v in dangling}
        if (
            not values <= {"true", "1", "false", "0"}
            or len({v in ("true", "1") for v in values}) > 1
        ):
            raise InvalidArgument(f"invalid filter 'dangling={dangling[-1]}'")
        dangling_only = dangling[-1].lower() in ("true", "1")
        keep = prune_keeper(self._engine, filters)
        report = await self._engine.images.prune(dangling_only=dangling_only, keep=keep)
        deleted = [{"Untagged": reference.docker_name(n)} for n in report.untagged]
        deleted += [{"Deleted": "sha256:" + i} for i in report.deleted]
        return json_response({"ImagesDeleted": deleted or None, "SpaceReclaimed": report.reclaimed})

    async def load(self, call: ApiCall) -> None:
        """``POST /images/load``: the docker CLI reads ``Loaded image: ...`` lines.

        As Docker (moby ``postImagesLoad``), an archive that cannot be loaded is
        a 200 whose stream holds the error line (``errorDetail``, plus ``error``
        below API 1.52): docker-py raises ``ImageLoadError`` from it and the
        docker CLI prints it.  Podman's compat handler answers 500 instead.
        """
        out = JsonLines(call.request)
        try:
            loaded = await self._engine.image_archives.load(archive_upload(call))
        except PodapiError as e:
            DockerProgress(out, legacy=not call.version_at_least(1, 52)).error(e.message)
            return
        for item in loaded:
            names = [reference.docker_name(n) for n in item.names]
            for line in names or ["sha256:" + item.image.id]:
                prefix = "Loaded image: " if names else "Loaded image ID: "
                out.write({"stream": f"{prefix}{line}\n"})

    async def save(self, call: ApiCall, name: str) -> None:
        """``GET /images/{name}/get``: a docker-archive, streamed."""
        await send_archive(call, self._engine, [name], DOCKER_ARCHIVE)

    async def save_many(self, call: ApiCall) -> None:
        """``GET /images/get?names=a&names=b``: several images in one docker-archive."""
        names = [n for value in call.texts("names") for n in value.split(",") if n]
        await send_archive(call, self._engine, names, DOCKER_ARCHIVE)

    async def commit(self, call: ApiCall) -> Response:
        """Docker's ``ImageCommit``: 201 ``{"Id": "sha256:..."}``; ``pause`` defaults to true."""
        comment = call.text("comment") or ""
        image = await commit_image(call, self._engine, pause_default=True, comment=comment)
        return json_response({"Id": "sha256:" + image.id}, 201)
