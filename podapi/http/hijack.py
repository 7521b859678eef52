"""Taking over an HTTP connection for a raw stream (attach, exec start).

twisted.web has no API for this (Twisted issue #8301); this is the recipe of
``twisted-recipes.md`` R7, modelled on autobahn's ``WebSocketResource``: write
the status line ourselves, detach the ``HTTPChannel`` from the transport, put
our protocol in its place and replay bytes that arrived with the request.  It
touches private twisted.web attributes (``startedWriting``, ``_dataBuffer``,
``transport.protocol``), so it is kept here and covered by real-socket tests.

The status line follows Podman (``libpod/util.go`` ``writeHijackHeader``):
``101 UPGRADED`` echoing the ``Upgrade`` header when the client asked for an
upgrade, plain ``200 OK`` otherwise; no other API headers.
"""

from collections.abc import Callable
from typing import Any, cast

from twisted.internet.interfaces import IReactorTime
from twisted.internet.protocol import Protocol
from twisted.web.resource import IResource
from twisted.web.server import NOT_DONE_YET, Request
from zope.interface import implementer

from podapi.http.site import TrackedChannel

MULTIPLEXED = b"application/vnd.docker.multiplexed-stream"
RAW = b"application/vnd.docker.raw-stream"


def stream_head(content_type: bytes) -> Callable[[Request], bytes]:
    """Podman's head for a raw or multiplexed stream of ``content_type``."""
    return lambda request: status_head(request, content_type)


def status_head(request: Request, content_type: bytes) -> bytes:
    """The raw status line and headers a hijacked response starts with."""
    connection = (request.getHeader(b"connection") or b"").lower()
    upgrade = request.getHeader(b"upgrade")
    if b"upgrade" in connection and upgrade:
        return (
            b"HTTP/1.1 101 UPGRADED\r\nContent-Type: "
            + content_type
            + b"\r\nConnection: Upgrade\r\nUpgrade: "
            + upgrade
            + b"\r\n\r\n"
        )
    return b"HTTP/1.1 200 OK\r\nContent-Type: " + content_type + b"\r\n\r\n"


class RawSession(Protocol):
    """Base for the protocol that owns a hijacked connection.

    Subclasses implement :meth:`session_started` (the connection is ours) and
    ``dataReceived``; :meth:`connectionLost` tells the site and the idle
    tracker the session ended.
    """

    channel: TrackedChannel | None = None

    def session_started(self) -> None:
        """Called once the protocol has the transport."""

    def connectionLost(self, reason: Any = None) -> None:
        channel, self.channel = self.channel, None
        if channel is not None:
            channel.site.forget(channel)


@implementer(IResource)
class HijackResource:
    """Renders by taking over the connection and handing it to ``make_session()``.

    :param head: the raw response head for the request (:func:`stream_head`, or a
        WebSocket handshake).
    """

    isLeaf = True

    def __init__(
        self,
        make_session: Callable[[], RawSession],
        head: Callable[[Request], bytes],
        clock: IReactorTime,
    ) -> None:
        self._make_session = make_session
        self._head = head
        self._clock = clock

    def render(self, request: Request) -> object:
        channel = cast(TrackedChannel, request.channel)
        transport: Any = channel.transport
        transport.write(self._head(request))
        # twisted.web must not add headers or chunking, nor finish this request.
        request.startedWriting = 1
        channel.hijacked()
        session = self._make_session()
        session.channel = channel
        channel.site.hijacked[channel] = session
        channel.transport = None  # the HTTP channel no longer writes here
        transport.unregisterProducer()
        transport.protocol = session
        session.makeConnection(transport)
        transport.resumeProducing()
        session.session_started()
        # Bytes that came in the same read as the request (stdin typed early)
        # are appended to the channel's buffer after render returns.
        self._clock.callLater(0, _replay, channel, session)
        return NOT_DONE_YET

    def getChildWithDefault(self, name: bytes, request: Request) -> IResource:
        return self

    def putChild(self, path: bytes, child: IResource) -> None:
        raise NotImplementedError


def _replay(channel: TrackedChannel, session: RawSession) -> None:
    early = b"".join(channel._dataBuffer)
    channel._dataBuffer = []
    if early:
        session.dataReceived(early)
