"""Docker's build routes: ``POST /build/prune`` only, so far.

``docker system prune`` ends with a build-cache prune and fails when the route is
missing.  podapi keeps no build cache yet: the engine's
:meth:`~podapi.engine.systemprune.SystemPrune.prune_build_cache` is the seam the
build issue fills (and this module gets ``POST /build`` then).
"""

from klein import Response

from podapi.engine.engine import Engine
from podapi.http.call import ApiCall
from podapi.http.responses import json_response
from podapi.http.routing import Router


class CompatBuildRoutes:
    """``/build/prune``."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def register(self, router: Router) -> None:
        """Add the routes."""
        router.compat("POST", "/build/prune", self.prune)

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
