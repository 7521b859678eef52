"""Docker's volume routes: list, create, inspect, remove, prune.

Shape: ``docker_api_types.Volume`` (Podman 4.3.1 ``pkg/api/handlers/compat/volumes.go``).
Behaviour follows Podman and Docker:

* create of an existing name answers 201 with that volume; ``DELETE ?force=1`` of an
  unknown volume is 204, of a volume in use still 409.
* prune on API >= 1.42 removes only anonymous volumes unless the ``all=true`` filter is
  given; before 1.42 every unused volume.  That is Docker's rule (Podman prunes every
  unused volume at any version), and with it Docker's: a create without a name makes an
  anonymous volume (moby ``VolumesService.Create``; we add no
  ``com.docker.volume.anonymous`` label, the libpod ``Anonymous`` field says it).

Differences from Podman, on purpose: bad bodies, options and filters are 400 (Podman: 500).
"""

from typing import Any

from klein import Response

from podapi.engine.engine import Engine
from podapi.engine.state.volumes import VolumeRecord
from podapi.engine.times import NS, rfc3339_nano
from podapi.engine.volumes import VolumeService
from podapi.errors import NotFound
from podapi.http.bodyfields import json_object, string_map, text
from podapi.http.call import ApiCall
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


#: How 400 answers name a volume create body.
WHAT = "the volume create body"


class CompatVolumeRoutes:
    """``/volumes``."""

    def __init__(self, engine: Engine) -> None:
        self._volumes = engine.volumes

    def register(self, router: Router) -> None:
        """Add the routes."""
        add = router.compat
        add("GET", "/volumes", self.list_volumes)
        add("POST", "/volumes/create", self.create)
        add("POST", "/volumes/prune", self.prune)
        add("GET", "/volumes/<name>", self.inspect)
        add("DELETE", "/volumes/<name>", self.remove)

    async def list_volumes(self, call: ApiCall) -> Response:
        """``GET /volumes?filters=``: ``{"Volumes": [...], "Warnings": []}``."""
        found = await self._volumes.selected(call.filters())
        return json_response(
            {
                "Volumes": [encode_compat(self._volumes, u.record) for u in found],
                "Warnings": [],
            }
        )

    async def create(self, call: ApiCall) -> Response:
        """``POST /volumes/create`` (``Name``, ``Driver``, ``DriverOpts``, ``Labels``): 201.

        An existing name answers 201 with that volume, as Podman (and Docker) do.
        The answer is the volume as inspect shows it, ``"Options": {}`` without
        ``DriverOpts`` included, as Docker's (clients compare the two); we
        deliberately differ from Podman 4.3.1, whose create answer has ``null``.
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
        return json_response(encode_compat(self._volumes, record), 201)

    async def inspect(self, call: ApiCall, name: str) -> Response:
        """``GET /volumes/{name}``."""
        return json_response(encode_compat(self._volumes, await self._volumes.get(name)))

    async def remove(self, call: ApiCall, name: str) -> Response:
        """``DELETE /volumes/{name}?force=``: 204; 409 in use; 404 unknown unless ``force``."""
        try:
            await self._volumes.remove(name)
        except NotFound:
            if not call.flag("force"):
                raise
        return no_content()

    async def prune(self, call: ApiCall) -> Response:
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
