"""Podman's volume routes: list, create, inspect, exists, remove, prune, export, import.

Shape: ``define.InspectVolumeData`` (Podman 4.3.1 ``libpod/define/volume_inspect.go``).
``DELETE ?force=1`` removes the containers using the volume first.

Differences from Podman, on purpose: bad bodies, options and filters are 400 (Podman:
500); create of an existing name is 409; a corrupt tar on import is 400.
"""

from typing import Any, cast

from klein import Response
from twisted.web.server import Request

from podapi.engine.engine import Engine
from podapi.engine.state.volumes import VolumeUsage, no_such_volume
from podapi.engine.times import rfc3339_nano
from podapi.engine.volumes import VolumeService
from podapi.http.bodyfields import json_object, string_map, text
from podapi.http.both.containerfiles import TAR
from podapi.http.call import ApiCall, BadRequest
from podapi.http.producers import stream_chunks
from podapi.http.responses import json_response, no_content
from podapi.http.routing import Router


def encode_libpod(volumes: VolumeService, usage: VolumeUsage) -> dict[str, Any]:
    """Podman's ``InspectVolumeData`` (``omitempty`` fields left out when empty)."""
    record = usage.record
    body: dict[str, Any] = {
        "Name": record.name,
        "Driver": record.driver,
        "Mountpoint": volumes.mountpoint(record.name),
        "CreatedAt": rfc3339_nano(record.created),
        "Labels": dict(record.labels),
        "Scope": "local",
        "Options": dict(record.options),
    }
    if record.anonymous:
        body["Anonymous"] = True
    body["MountCount"] = len(usage.holders)
    if not record.copied_up:
        body["NeedsCopyUp"] = True
    return body


#: How 400 answers name a volume create body.
WHAT = "the volume create body"


class LibpodVolumeRoutes:
    """``/libpod/volumes``."""

    def __init__(self, engine: Engine) -> None:
        self._volumes = engine.volumes

    def register(self, router: Router) -> None:
        """Add the routes."""
        add = router.libpod
        add("GET", "/volumes/json", self.list_volumes)
        add("POST", "/volumes/create", self.create)
        add("POST", "/volumes/prune", self.prune)
        add("GET", "/volumes/<name>/json", self.inspect)
        add("GET", "/volumes/<name>/exists", self.exists)
        add("GET", "/volumes/<name>/export", self.export)
        add("POST", "/volumes/<name>/import", self.import_tar)
        add("DELETE", "/volumes/<name>", self.remove)

    async def list_volumes(self, call: ApiCall) -> Response:
        """``GET /libpod/volumes/json?filters=``: ``[InspectVolumeData]``."""
        found = await self._volumes.selected(call.filters())
        return json_response([encode_libpod(self._volumes, u) for u in found])

    async def create(self, call: ApiCall) -> Response:
        """``POST /libpod/volumes/create`` (``Name``, ``Driver``, ``Labels``, ``Options``): 201."""
        body = json_object(call.json_body(), WHAT)
        record = await self._volumes.create(
            text(body, "Name", WHAT) or None,
            driver=text(body, "Driver", WHAT),
            labels={**string_map(body, "Label", WHAT), **string_map(body, "Labels", WHAT)},
            options=string_map(body, "Options", WHAT),
        )
        usage = await self._volumes.usage(record.name)
        return json_response(encode_libpod(self._volumes, usage), 201)

    async def inspect(self, call: ApiCall, name: str) -> Response:
        """``GET /libpod/volumes/{name}/json``."""
        return json_response(encode_libpod(self._volumes, await self._volumes.usage(name)))

    async def exists(self, call: ApiCall, name: str) -> Response:
        """``GET /libpod/volumes/{name}/exists``: 204 or 404."""
        if await self._volumes.find(name) is None:
            raise no_such_volume(name)
        return no_content()

    async def remove(self, call: ApiCall, name: str) -> Response:
        """``DELETE /libpod/volumes/{name}?force=&timeout=``: 204; with force, its containers
        go first (running ones get their stop signal ``timeout`` seconds before KILL)."""
        await self._volumes.remove(name, force=call.flag("force"), timeout=call.integer("timeout"))
        return no_content()

    async def prune(self, call: ApiCall) -> Response:
        """``POST /libpod/volumes/prune?filters=``: ``[{"Id", "Size"}]`` (every unused volume)."""
        removed = await self._volumes.prune(call.filters())
        return json_response([{"Id": name, "Size": size} for name, size in removed])

    async def export(self, call: ApiCall, name: str) -> None:
        """``GET /libpod/volumes/{name}/export``: the content as a tar stream."""
        request = cast(Request, call.request)
        async with self._volumes.export(name) as stream:
            request.setHeader(b"Content-Type", TAR)
            await stream_chunks(request, stream)

    async def import_tar(self, call: ApiCall, name: str) -> Response:
        """``POST /libpod/volumes/{name}/import``: unpack the tar body into the volume; 204."""
        await self._volumes.get(name)
        content = call.request.content
        if content is None:
            raise BadRequest("must provide tar file to import in request body")
        content.seek(0)
        await self._volumes.import_tar(name, content)
        return no_content()
