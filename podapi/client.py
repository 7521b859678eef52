"""A treq client for the API socket, for tests and for users' scripts.

::

    from twisted.internet.defer import Deferred
    from twisted.internet.task import react
    from podapi.client import unix_client

    async def main(reactor):
        client = unix_client(reactor, "/run/podman/podman.sock")
        response = await client.get("http://d/v5.4.0/libpod/info")
        print((await response.json())["host"]["ociRuntime"]["name"])

    react(lambda reactor: Deferred.fromCoroutine(main(reactor)))

The host part of the URL is ignored: every request goes to the socket.
"""

from typing import Any

from treq.client import HTTPClient
from twisted.internet.endpoints import UNIXClientEndpoint
from twisted.internet.interfaces import IReactorTime, IReactorUNIX, IStreamClientEndpoint
from twisted.web.client import Agent, HTTPConnectionPool
from twisted.web.iweb import IAgentEndpointFactory
from zope.interface import implementer


class IClientReactor(IReactorUNIX, IReactorTime):
    """What the client uses: UNIX connections, and timers for the agent's pool."""


@implementer(IAgentEndpointFactory)
class UnixSocketEndpoints:
    """Connect every request to one UNIX socket, whatever the URL's host."""

    def __init__(self, reactor: IReactorUNIX, path: str, timeout: float = 30) -> None:
        self._reactor = reactor
        self._path = path
        self._timeout = timeout

    def endpointForURI(self, uri: Any) -> IStreamClientEndpoint:
        """The socket's endpoint."""
        return UNIXClientEndpoint(self._reactor, self._path, timeout=self._timeout)


def unix_client(
    reactor: IClientReactor, path: str, pool: HTTPConnectionPool | None = None
) -> HTTPClient:
    """An ``HTTPClient`` whose requests all go to the UNIX socket at ``path``.

    Without ``pool`` every request uses a fresh connection that is closed
    afterwards; pass a persistent ``HTTPConnectionPool`` to keep connections
    alive (and call its ``closeCachedConnections()`` when done).
    """
    agent = Agent.usingEndpointFactory(reactor, UnixSocketEndpoints(reactor, path), pool=pool)
    return HTTPClient(agent)
