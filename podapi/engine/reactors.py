"""The reactor interfaces the engine's parts need, named once.

Each part is typed by the Twisted interfaces it uses, as Twisted's endpoints
are (and as Synapse names ``ISynapseReactor``); tests pass ``task.Clock`` or
a ``MemoryReactor`` to the parts that need no more.
"""

from twisted.internet.interfaces import IReactorFDSet, IReactorProcess, IReactorTime

from podapi.storage.registry.session import IWebReactor


class IContainerReactor(IReactorTime, IReactorProcess, IReactorFDSet):
    """Running containers: timers, processes (conmon, runc) and descriptors
    (inotify on the exits directory, conmon's sync sockets)."""


class IEngineReactor(IContainerReactor, IWebReactor):
    """Everything the engine uses: containers, and connections for the registry client."""
