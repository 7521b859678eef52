"""Docker's build-cache prune and BuildKit's session endpoint.

``docker system prune`` ends with a build-cache prune and fails when the route is
missing; it prunes :class:`~podapi.engine.imagebuild.cache.BuildCache`.  ``POST /build``
itself is in :mod:`podapi.http.both.build`.
"""

from klein import Response

from podapi.engine.engine import Engine
from podapi.errors import NotFound
from podapi.http.both.build import BUILDKIT_MESSAGE
from podapi.http.call import ApiCall
from podapi.http.responses import json_response
from podapi.http.routing import Router


class CompatBuildRoutes:
    """``/build/prune`` and ``/session``."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def register(self, router: Router) -> None:
        """Add the routes."""
        router.compat("POST", "/build/prune", self.prune)
        router.compat("POST", "/session", self.session)

    async def session(self, call: ApiCall) -> Response:
        """BuildKit's ``POST /session``: a 404 as from Podman (the docker CLI reports
        "unable to upgrade to h2c, received 404"), saying how to build instead."""
        raise NotFound(BUILDKIT_MESSAGE, cause="buildkit not supported")

    async def prune(self, call: ApiCall) -> Response:
        """``POST /build/prune?all=&keep-storage=&filters=``:
        ``{"CachesDeleted", "SpaceReclaimed"}``; a malformed ``keep-storage`` or
        ``filters`` is a 400."""
        report = await self._engine.system_prune.prune_build_cache(
            all_entries=call.flag("all"),
            keep_storage=call.integer("keep-storage", 0) or 0,
            filters=call.filters(),
        )
        return json_response({"CachesDeleted": report.deleted, "SpaceReclaimed": report.reclaimed})
