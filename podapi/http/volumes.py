"""Volume routes of both trees: list, create, inspect, exists, remove, prune, export, import.

Shapes: compat ``docker_api_types.Volume`` (Podman 4.3.1
``pkg/api/handlers/compat/volumes.go``), libpod ``define.InspectVolumeData``
(``libpod/define/volume_inspect.go``).  Behaviour follows Podman:

* compat create of an existing name answers 201 with that volume; compat
  ``DELETE ?force=1`` of an unknown volume is 204, of a volume in use still 409;
  libpod ``DELETE ?force=1`` removes the containers using it first.
* compat prune on API >= 1.42 removes only anonymous volumes unless the
  ``all=true`` filter is given; before 1.42 every unused volume.  That is
  Docker's rule (Podman prunes every unused volume at any version), and with
  it Docker's: a compat create without a name makes an anonymous volume
  (moby ``VolumesService.Create``; we add no ``com.docker.volume.anonymous``
  label, the libpod ``Anonymous`` field says it).

Differences from Podman, on purpose: bad bodies, options and filters are
400 (Podman: 500); libpod create of an existing name is 409; a corrupt tar
on import is 400.
"""

from typing import Any, cast

from klein import Response
from twisted.web.server import Request

from podapi.engine.engine import Engine
from podapi.engine.state.volumes import VolumeRecord, VolumeUsage, no_such_volume
from podapi.engine.times import NS, rfc3339_nano
from podapi.engine.volumes import VolumeService
from podapi.errors import NotFound
from podapi.http.archive import TAR
from podapi.http.bodyfields import json_object, string_map, text
from podapi.http.call import ApiCall, BadRequest
from podapi.http.producers import stream_chunks
from podapi.http.responses import json_response, no_content
from podapi.http.routing import Router


def encode_compat(volumes: VolumeService, record: VolumeRecord) -> dict[str, Any]:
    """Docker's ``Volume`` (``CreatedAt`` in whole seconds, Go's ``time.RFC3339``)."""
    return {
        "CreatedAt": rfc3339_nano(record.created // NS * NS),
        "Driver": record.driver,
        "Labels": dict(record.labels),
        "Mountpoint": volumes.mountpoint(record.name),
        "Name": record.name,
        "Options": dict(record.options),
        "Scope": "local",
    }


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


class VolumeRoutes:
    """``/volumes`` (Docker) and ``/libpod/volumes`` (Podman)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._volumes = engine.volumes

    def register(self, router: Router) -> None:
        """Add the routes."""
        compat = router.compat
        compat("GET", "/volumes", self.compat_list)
        compat("POST", "/volumes/create", self.compat_create)
        compat("POST", "/volumes/prune", self.compat_prune)
        compat("GET", "/volumes/<name>", self.compat_inspect)
        compat("DELETE", "/volumes/<name>", self.compat_remove)
        libpod = router.libpod
        libpod("GET", "/volumes/json", self.libpod_list)
        libpod("POST", "/volumes/create", self.libpod_create)
        libpod("POST", "/volumes/prune", self.libpod_prune)
        libpod("GET", "/volumes/<name>/json", self.libpod_inspect)
        libpod("GET", "/volumes/<name>/exists", self.libpod_exists)
        libpod("GET", "/volumes/<name>/export", self.libpod_export)
        libpod("POST", "/volumes/<name>/import", self.libpod_import)
        libpod("DELETE", "/volumes/<name>", self.libpod_remove)

    # --- compat ---

    async def compat_list(self, call: ApiCall) -> Response:
        """``GET /volumes?filters=``: ``{"Volumes": [...], "Warnings": []}``."""
        found = await self._volumes.selected(call.filters())
        return json_response(
            {
                "Volumes": [encode_compat(self._volumes, u.record) for u in found],
                "Warnings": [],
            }
        )

    async def compat_create(self, call: ApiCall) -> Response:
        """``POST /volumes/create`` (``Name``, ``Driver``, ``DriverOpts``, ``Labels``): 201.

        An existing name answers 201 with that volume, as Podman (and Docker) do.
        A new volume made without ``DriverOpts`` shows ``"Options": null``, as
        Podman 4.3.1's create answer has it (inspect and list show ``{}``).
        """
        body = json_object(call.json_body(), WHAT)
        name = text(body, "Name", WHAT)
        existing = await self._volumes.find(name) if name else None
        if existing is not None:
            return json_response(encode_compat(self._volumes, existing), 201)
        options = string_map(body, "DriverOpts", WHAT)
        record = await self._volumes.create(
            name or None,
            driver=text(body, "Driver", WHAT),
            labels=string_map(body, "Labels", WHAT),
            options=options,
            anonymous=not name,
        )
        created = encode_compat(self._volumes, record)
        if not options:
            created["Options"] = None
        return json_response(created, 201)

    async def compat_inspect(self, call: ApiCall, name: str) -> Response:
        """``GET /volumes/{name}``."""
        return json_response(encode_compat(self._volumes, await self._volumes.get(name)))

    async def compat_remove(self, call: ApiCall, name: str) -> Response:
        """``DELETE /volumes/{name}?force=``: 204; 409 in use; 404 unknown unless ``force``."""
        try:
            await self._volumes.remove(name)
        except NotFound:
            if not call.flag("force"):
                raise
        return no_content()

    async def compat_prune(self, call: ApiCall) -> Response:
        """``POST /volumes/prune?filters=``: ``{"VolumesDeleted", "SpaceReclaimed"}``."""
        filters = call.filters()
        everything = {v.lower() for v in filters.pop("all", [])} & {"true", "1"}
        if call.version_at_least(1, 42) and not everything:
            filters.setdefault("anonymous", ["true"])
        removed = await self._volumes.prune(filters)
        return json_response(
            {
                "VolumesDeleted": [name for name, _ in removed],
                "SpaceReclaimed": sum(size for _, size in removed),
            }
        )

    # --- libpod ---

    async def libpod_list(self, call: ApiCall) -> Response:
        """``GET /libpod/volumes/json?filters=``: ``[InspectVolumeData]``."""
        found = await self._volumes.selected(call.filters())
        return json_response([encode_libpod(self._volumes, u) for u in found])

    async def libpod_create(self, call: ApiCall) -> Response:
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

    async def libpod_inspect(self, call: ApiCall, name: str) -> Response:
        """``GET /libpod/volumes/{name}/json``."""
        return json_response(encode_libpod(self._volumes, await self._volumes.usage(name)))

    async def libpod_exists(self, call: ApiCall, name: str) -> Response:
        """``GET /libpod/volumes/{name}/exists``: 204 or 404."""
        if await self._volumes.find(name) is None:
            raise no_such_volume(name)
        return no_content()

    async def libpod_remove(self, call: ApiCall, name: str) -> Response:
        """``DELETE /libpod/volumes/{name}?force=&timeout=``: 204; with force, its containers
        go first (running ones get their stop signal ``timeout`` seconds before KILL)."""
        await self._volumes.remove(name, force=call.flag("force"), timeout=call.integer("timeout"))
        return no_content()

    async def libpod_prune(self, call: ApiCall) -> Response:
        """``POST /libpod/volumes/prune?filters=``: ``[{"Id", "Size"}]`` (every unused volume)."""
        removed = await self._volumes.prune(call.filters())
        return json_response([{"Id": name, "Size": size} for name, size in removed])

    async def libpod_export(self, call: ApiCall, name: str) -> None:
        """``GET /libpod/volumes/{name}/export``: the content as a tar stream."""
        request = cast(Request, call.request)
        async with self._volumes.export(name) as stream:
            request.setHeader(b"Content-Type", TAR)
            await stream_chunks(request, stream)

    async def libpod_import(self, call: ApiCall, name: str) -> Response:
        """``POST /libpod/volumes/{name}/import``: unpack the tar body into the volume; 204."""
        await self._volumes.get(name)
        content = call.request.content
        if content is None:
            raise BadRequest("must provide tar file to import in request body")
        content.seek(0)
        await self._volumes.import_tar(name, content)
        return no_content()
