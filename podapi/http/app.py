"""The API application: every route group registered on one router."""

from twisted.internet.interfaces import IReactorTime

from podapi.engine.engine import Engine
from podapi.http.archive import ArchiveRoutes
from podapi.http.commit import CommitRoutes
from podapi.http.compat.containers import CompatContainerRoutes
from podapi.http.compat.distribution import CompatDistributionRoutes
from podapi.http.compat.images import CompatImageRoutes
from podapi.http.compat.system import CompatSystemRoutes
from podapi.http.execs import ExecRoutes
from podapi.http.libpod.containers import LibpodContainerRoutes
from podapi.http.libpod.distribution import LibpodDistributionRoutes
from podapi.http.libpod.images import LibpodImageRoutes
from podapi.http.libpod.system import LibpodSystemRoutes
from podapi.http.networks import NetworkRoutes
from podapi.http.routing import Router
from podapi.http.stats import StatsRoutes
from podapi.http.system import SystemRoutes
from podapi.http.volumes import VolumeRoutes


def build_router(engine: Engine, clock: IReactorTime) -> Router:
    """A router serving both trees over ``engine``."""
    router = Router()
    SystemRoutes(engine).register(router)
    CompatSystemRoutes(engine, clock).register(router)
    LibpodSystemRoutes(engine, clock).register(router)
    CompatImageRoutes(engine).register(router)
    LibpodImageRoutes(engine).register(router)
    CompatDistributionRoutes(engine).register(router)
    LibpodDistributionRoutes(engine).register(router)
    compat_containers = CompatContainerRoutes(engine, clock)
    compat_containers.register(router)
    LibpodContainerRoutes(engine, compat_containers, clock).register(router)
    ArchiveRoutes(engine).register(router)
    CommitRoutes(engine).register(router)
    ExecRoutes(engine, clock).register(router)
    StatsRoutes(engine, clock).register(router)
    VolumeRoutes(engine).register(router)
    NetworkRoutes(engine).register(router)
    return router
