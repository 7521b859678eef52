"""The API application: every route group registered on one router.

Imported by a starting server only once it listens (:mod:`podapi.service`):
this module pulls in the engine and every route group.
"""

from twisted.internet.interfaces import IReactorTime

from podapi.engine.engine import Engine
from podapi.http.both.build import BuildRoutes
from podapi.http.both.containerfiles import ArchiveRoutes
from podapi.http.both.execs import ExecRoutes
from podapi.http.both.ping import ping_router
from podapi.http.both.stats import StatsRoutes
from podapi.http.both.system import SystemRoutes
from podapi.http.compat.build import CompatBuildRoutes
from podapi.http.compat.containers import CompatContainerRoutes
from podapi.http.compat.distribution import CompatDistributionRoutes
from podapi.http.compat.images import CompatImageRoutes
from podapi.http.compat.networks import CompatNetworkRoutes
from podapi.http.compat.secrets import CompatSecretRoutes
from podapi.http.compat.swarm import CompatSwarmRoutes
from podapi.http.compat.system import CompatSystemRoutes
from podapi.http.compat.volumes import CompatVolumeRoutes
from podapi.http.libpod.containers import LibpodContainerRoutes
from podapi.http.libpod.distribution import LibpodDistributionRoutes
from podapi.http.libpod.images import LibpodImageRoutes
from podapi.http.libpod.kube import LibpodKubeRoutes
from podapi.http.libpod.manifests import LibpodManifestRoutes
from podapi.http.libpod.networks import LibpodNetworkRoutes
from podapi.http.libpod.pods import LibpodPodRoutes
from podapi.http.libpod.secrets import LibpodSecretRoutes
from podapi.http.libpod.system import LibpodSystemRoutes
from podapi.http.libpod.volumes import LibpodVolumeRoutes
from podapi.http.routing import Router


def build_router(engine: Engine, clock: IReactorTime) -> Router:
    """A router serving both trees over ``engine``."""
    router = ping_router()
    add_api(router, engine, clock)
    return router


def add_api(router: Router, engine: Engine, clock: IReactorTime) -> None:
    """Complete ``router`` (see :func:`ping_router`) with every other route over ``engine``;
    routes not marked early wait for its start-up reconcile."""
    router.gate_with(engine)
    SystemRoutes(engine).register(router)
    CompatSystemRoutes(engine, clock).register(router)
    LibpodSystemRoutes(engine, clock).register(router)
    CompatImageRoutes(engine).register(router)
    LibpodImageRoutes(engine).register(router)
    CompatDistributionRoutes(engine).register(router)
    LibpodDistributionRoutes(engine).register(router)
    LibpodManifestRoutes(engine).register(router)
    compat_containers = CompatContainerRoutes(engine, clock)
    compat_containers.register(router)
    LibpodContainerRoutes(engine, compat_containers, clock).register(router)
    ArchiveRoutes(engine).register(router)
    ExecRoutes(engine, clock).register(router)
    StatsRoutes(engine, clock).register(router)
    CompatVolumeRoutes(engine).register(router)
    LibpodVolumeRoutes(engine).register(router)
    CompatNetworkRoutes(engine).register(router)
    LibpodNetworkRoutes(engine).register(router)
    LibpodPodRoutes(engine, clock).register(router)
    CompatSecretRoutes(engine).register(router)
    LibpodSecretRoutes(engine).register(router)
    LibpodKubeRoutes(engine).register(router)
    CompatSwarmRoutes().register(router)
    CompatBuildRoutes(engine).register(router)
    BuildRoutes(engine).register(router)
    router.complete()
