"""twistd dropin: ``twistd podapi [options] [URI]``."""

import gc

from twisted.application.service import ServiceMaker


class _StartWithoutCycleCollection(ServiceMaker):
    """twistd's ServiceMaker, which also turns the cyclic garbage collector off as twistd
    asks for the options, before anything of podapi is imported.

    A start creates some hundred thousand long-lived objects (modules, classes,
    functions), so the collector ran full collections during it, some 20-40 ms each:
    a third of what the start does above Twisted and Klein's own imports.
    ``podapi.service`` turns it back on once every route is served.
    """

    @property
    def options(self) -> object:
        gc.disable()
        return super().options


podapi = _StartWithoutCycleCollection(
    "podapi", "podapi.tap", "Podman-compatible API service (Docker and Libpod APIs)", "podapi"
)
