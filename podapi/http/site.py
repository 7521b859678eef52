"""The twisted.web ``Site`` under the Klein app: connection tracking, common headers, drain.

* Every connection is a :class:`TrackedChannel`; the service's idle timer (a
  :class:`ConnectionTracker`) hears when a connection starts its first request,
  is hijacked, and closes.
* Every request gets Podman's API headers before routing, so errors carry
  them too (hijacked sessions write their own status line); with ``--cors``
  also the CORS headers and an answer to the ``OPTIONS`` pre-flight (Podman
  answers pre-flight with a bare 405; we don't).
* Large uploads are spooled under ``--root`` rather than ``/tmp``; the routes
  that ask for it (an image load) get their body as it arrives instead
  (:class:`StreamedBody`), the connection paused while their reader is behind.
* :meth:`PodAPISite.drain` closes idle connections and lets in-flight requests
  finish before shutdown.
* Limits: the request line and headers together may have
  :data:`MAX_HEADER_BYTES` (Go's ``http.DefaultMaxHeaderBytes``, what Podman and
  Docker serve with; more is Go's ``431``, with our error body); a request's headers
  must arrive within the header timeout (Go's ``ReadHeaderTimeout``; a client
  sending a byte at a time is dropped, nobody else waits for it); at most
  ``max_connections`` connections are open: a new one closes the longest-idle one,
  or is refused when all are busy, so idle clients cannot take every descriptor.
"""

import contextlib
import errno
import io
import random
import resource
import tempfile
from collections.abc import Callable, Hashable
from functools import partial
from typing import IO, Any, Protocol, cast

from attrs import field, frozen
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IAddress, IDelayedCall, IReactorTime
from twisted.internet.protocol import connectionDone
from twisted.logger import LogLevel
from twisted.python.failure import Failure
from twisted.web.http import HTTPChannel, combinedLogFormatter
from twisted.web.http import Request as HTTPRequest
from twisted.web.iweb import IRequest
from twisted.web.resource import IResource
from twisted.web.server import Request, Site
from zope.interface import implementer

from podapi import COMPAT_API_VERSION, LIBPOD_API_VERSION, logs
from podapi.http.errors import error_body
from podapi.http.routing import BodyReceiver
from podapi.logs import get_logger
from podapi.threads import ThreadPipe

log = get_logger(__name__)


def max_connections() -> int:
    """The default connection cap: a share of this process's descriptor limit."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return MAX_CONNECTIONS
    return max(soft // CONNECTION_FD_SHARE, 16)


class ConnectionTracker(Protocol):
    """What the site tells about its connections (``podapi.idle.IdleTracker`` listens).

    :ivar timeout: the idle window in seconds (0 = never); keep-alive lasts twice that.
    """

    timeout: float

    def request_started(self, connection: Hashable) -> None:
        """A connection began a request."""

    def hijacked(self, connection: Hashable) -> None:
        """A connection left HTTP for a raw session (attach, exec)."""

    def closed(self, connection: Hashable) -> None:
        """A connection closed."""


#: Bodies up to this size stay in memory; larger ones are spooled to disk.
SPOOL_THRESHOLD = 1024 * 1024
#: Request line plus headers, at most (Go's DefaultMaxHeaderBytes).
MAX_HEADER_BYTES = 1024 * 1024
#: Seconds a request's headers may take to arrive.
HEADER_TIMEOUT = 60.0
#: Seconds a refused client may go on sending before the connection is closed.
LINGER = 5.0
#: Connections open at once when the service does not say.
MAX_CONNECTIONS = 512
#: The share of the descriptor limit (RLIMIT_NOFILE) connections may take by default;
#: the rest is the engine's (database, processes' pipes, files).
CONNECTION_FD_SHARE = 2
SERVER_HEADER = f"Libpod/{LIBPOD_API_VERSION} (linux)"
CORS_ALLOW_HEADERS = (
    "Origin, X-Requested-With, Content-Type, Accept, X-Registry-Auth, Connection, "
    "Upgrade, X-Registry-Config"
)
CORS_ALLOW_METHODS = "HEAD, GET, POST, DELETE, PUT, OPTIONS"


@frozen
class HeaderPolicy:
    """Headers every handled response carries."""

    cors: str | None = None
    #: The fixed headers, encoded once: every request sets them.
    _fixed: tuple[tuple[bytes, list[bytes]], ...] = field(init=False)

    @_fixed.default
    def _encode_fixed(self) -> tuple[tuple[bytes, list[bytes]], ...]:
        fixed = [
            (b"Api-Version", COMPAT_API_VERSION),
            (b"Libpod-Api-Version", LIBPOD_API_VERSION),
            (b"Server", SERVER_HEADER),
        ]
        if self.cors is not None:
            fixed += [
                (b"Access-Control-Allow-Origin", self.cors),
                (b"Access-Control-Allow-Headers", CORS_ALLOW_HEADERS),
                (b"Access-Control-Allow-Methods", CORS_ALLOW_METHODS),
            ]
        return tuple((name, [value.encode()]) for name, value in fixed)

    def apply(self, request: Request) -> None:
        """Set the API headers (and CORS ones when enabled) on ``request``."""
        set_header = request.responseHeaders.setRawHeaders
        for name, values in self._fixed:
            set_header(name, values)
        ref = request.requestHeaders.getRawHeaders(b"x-reference-id")
        set_header(b"X-Reference-Id", [ref[-1] if ref else reference_id()])


def reference_id() -> bytes:
    """A new ``X-Reference-Id`` (Podman makes a UUID for each request that has none).

    128 random bits from Python's generator rather than ``uuid4()``: the ID only
    tells log lines apart, and a system call per request is what it would cost.
    """
    return b"%032x" % random.getrandbits(128)


class ApiRequest(Request):
    """A request that tells the idle tracker about itself as soon as it starts."""

    channel: "TrackedChannel"

    def __init__(self, channel: "TrackedChannel", *args: Any, **kwargs: Any) -> None:
        super().__init__(channel, *args, **kwargs)
        channel.request_started()
        #: Why the body could not be spooled (a full disk), if it could not.
        self.spool_error: OSError | None = None

    def gotLength(self, length: int | None) -> None:
        """The headers are in: hand the body to its route's receiver, or spool it."""
        site = self.channel.site
        method, uri = self.channel.request_line()
        receiver = site.body_receivers(method, uri) if site.body_receivers else None
        transport = self.channel.transport
        if receiver is not None and transport is not None:
            pipe = ThreadPipe(
                cast(Any, transport).pauseProducing,
                cast(Any, transport).resumeProducing,
                cast(Any, site.clock),
            )
            receiving = receiver(pipe)
            if receiving is not None:
                body = StreamedBody(pipe, receiving)
                self.content = body
                self.notifyFinish().addBoth(lambda _: body.close())
                return
        super().gotLength(length)

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:
        if isinstance(self.content, StreamedBody):
            self.content.end()
        elif self.content is not None and self.spool_error is None:
            # The spool file is buffered: the last write reaches the disk only now
            # (twisted.web's rewind would raise ENOSPC and drop the connection).
            self._spool(self.content.flush)
        super().requestReceived(command, path, version)

    def handleContentChunk(self, data: bytes) -> None:
        """Spool the body; on a full disk, read the rest without keeping it and answer
        the error once the request is complete (rather than dropping the connection)."""
        if self.spool_error is None:
            self._spool(partial(super().handleContentChunk, data))

    def _spool(self, write: Callable[[], object]) -> None:
        try:
            write()
        except OSError as e:
            if e.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            self.spool_error = e
            # Its buffer still holds what could not be written: every later seek or
            # close would raise again.  The handler never reads a failed body.
            spooled, self.content = self.content, io.BytesIO()
            if spooled is not None:
                with contextlib.suppress(OSError):
                    spooled.close()

    def process(self) -> None:
        if self.spool_error is None:
            super().process()
            return
        self.channel.site.headers.apply(self)
        body = error_body(
            500, f"no space left on device: {self.spool_error}", "no space left on device"
        )
        self.setResponseCode(500)
        self.setHeader(b"Content-Type", b"application/json")
        self.write(body)
        self.finish()

    def getRequestHostname(self) -> bytes:
        """A fixed name: the API ignores ``Host``, and clients fill it with anything.

        podman-py sends the URL-encoded socket path, which werkzeug's URL
        map (under Klein) refuses as a host name.
        """
        return b"localhost"


class StreamedBody:
    """A request body given to its receiver as it arrives: ``Request.content``'s stand-in.

    twisted.web writes the body to ``content`` chunk by chunk and rewinds it when
    complete; here the chunks go into a :class:`ThreadPipe` read by the receiver.

    :ivar receiving: what the route's receiver returned, for the handler.
    """

    def __init__(self, pipe: ThreadPipe, receiving: object) -> None:
        self._pipe = pipe
        self.receiving = receiving

    def write(self, data: bytes) -> None:
        self._pipe.write(data)

    def end(self) -> None:
        """The whole body has arrived."""
        self._pipe.end()

    def seek(self, offset: int, whence: int = 0) -> int:
        return 0  # the body went to the receiver: nothing to rewind

    def tell(self) -> int:
        return self._pipe.written

    def read(self, size: int = -1) -> bytes:
        return b""

    def close(self) -> None:
        """The request is over (answered or its connection lost); idempotent."""
        self._pipe.abort("the connection was lost")
        close = getattr(self.receiving, "close", None)
        if close is not None:
            close()


def streamed_body(request: IRequest) -> object | None:
    """What the route's body receiver made of a request's body, if it had one."""
    content = request.content
    return content.receiving if isinstance(content, StreamedBody) else None


@implementer(IResource)
class _Preflight:
    """The answer to a CORS pre-flight ``OPTIONS``: the allow-headers are all it needs."""

    isLeaf = True

    def render(self, request: Request) -> bytes:
        request.setResponseCode(204)
        request.setHeader(b"Access-Control-Max-Age", b"600")
        return b""

    def getChildWithDefault(self, name: bytes, request: Request) -> IResource:
        return self

    def putChild(self, path: bytes, child: IResource) -> None:
        raise NotImplementedError


class TrackedChannel(HTTPChannel):
    """An HTTP connection whose life the idle tracker and the drain can see."""

    site: "PodAPISite"
    MAX_LENGTH = MAX_HEADER_BYTES
    # Twisted's own (bare 400) check must never come before ours (431).
    totalHeadersSize = 2 * MAX_HEADER_BYTES

    def __init__(self) -> None:
        super().__init__()
        self.in_flight = 0
        self.had_request = False
        self.closing = False
        #: When the connection last finished a request (or opened): eviction order.
        self.idle_since = 0.0
        self._reading_headers = False
        self._header_deadline: IDelayedCall | None = None
        self._discarding = False
        self._head_bytes = 0

    def connectionMade(self) -> None:
        super().connectionMade()
        self.idle_since = self.site.clock.seconds()
        self.site.channels.add(self)
        if self.site.draining:
            self.closing = True

    def dataReceived(self, data: bytes) -> None:
        """The first byte of a request starts its header deadline."""
        if self._discarding:  # answered 431: the rest of the head is not read
            return
        if (
            self.line_mode
            and not self._handlingRequest
            and not self._reading_headers
            and data.strip()
        ):
            self._reading_headers = True
            self._head_bytes = 0
        super().dataReceived(data)
        if self._reading_headers and not self._discarding:
            # Counted here, not per line: Twisted holds a header line back until the
            # next one ends, and answers an oversized head with a bare 400 where Go
            # (Podman, Docker) answers 431.
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEADER_BYTES:
                self._head_too_large()
            elif self._header_deadline is None:
                # The deadline runs from the first byte, armed only once a read ends
                # with the head still incomplete: a head that comes in one read (nearly
                # every request) costs no timer.
                self._header_deadline = self.site.clock.callLater(
                    self.site.header_timeout, self._headers_too_slow
                )

    def allHeadersReceived(self) -> None:
        self._headers_done()
        super().allHeadersReceived()

    def request_line(self) -> tuple[bytes, bytes]:
        """The method and URI of the request whose headers just arrived.

        twisted.web sets them on the request only once its body is in; they
        are HTTPChannel's (private but long-standing) attributes until then.
        """
        return getattr(self, "_command", b""), getattr(self, "_path", b"")

    def _headers_done(self) -> None:
        self._reading_headers = False
        if self._header_deadline is not None and self._header_deadline.active():
            self._header_deadline.cancel()
        self._header_deadline = None

    def _headers_too_slow(self) -> None:
        self._header_deadline = None
        log.info(
            "dropping a client whose headers took over {seconds}s", seconds=self.site.header_timeout
        )
        self.forceAbortClient()

    def lineLengthExceeded(self, line: bytes) -> None:
        self._head_too_large()

    def _head_too_large(self) -> None:
        self._headers_done()
        self._discarding = True
        body = error_body(
            431, "request line and headers too large", "request header fields too large"
        )
        assert self.transport is not None
        self.transport.write(
            b"HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Type: application/json\r\n"
            + b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body)
            + body
        )
        # Go's lingering close: stop writing but read (and drop) what the client is
        # still sending for a while, so that closing does not reset the connection
        # and lose the answer before the client reads it.
        cast(Any, self.transport).loseWriteConnection()
        self._header_deadline = self.site.clock.callLater(LINGER, self.forceAbortClient)

    @property
    def idle(self) -> bool:
        """Between requests: nothing in flight and no request begun."""
        return self.in_flight == 0 and not self._reading_headers

    def request_started(self) -> None:
        """Called by :class:`ApiRequest` as each request begins."""
        self.in_flight += 1
        self.had_request = True
        self.site.tracker.request_started(self)

    def requestDone(self, request: Request) -> None:
        self.in_flight -= 1
        self.idle_since = self.site.clock.seconds()
        super().requestDone(request)
        if self.closing and self.in_flight == 0:
            self.loseConnection()

    def hijacked(self) -> None:
        """The connection left HTTP (attach/exec); it now belongs to a raw protocol."""
        self.site.channels.discard(self)
        self.site.tracker.hijacked(self)

    def close_when_idle(self) -> None:
        """Close now if nothing is in flight, else after the current request."""
        self.closing = True
        if self.in_flight == 0 and self.had_request:
            self.loseConnection()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self._headers_done()
        super().connectionLost(reason)
        self.site.forget(self)


class PodAPISite(Site):
    """The API site.

    :param resource: the Klein app's resource.
    :param tracker: the idle tracker (its timeout also sets keep-alive expiry: 2T).
    :param clock: for the drain deadline.
    :param headers: the header policy.
    :param spool_dir: where large request bodies are spooled.
    :param body_receivers: the receiver of a request's body by method and URI, for
        the routes that read bodies as they arrive (``Router.body_receiver``).
    """

    protocol = TrackedChannel  # type: ignore[assignment]
    requestFactory = ApiRequest

    def __init__(
        self,
        resource: IResource,
        tracker: ConnectionTracker,
        clock: IReactorTime,
        headers: HeaderPolicy,
        spool_dir: str | None = None,
        *,
        header_timeout: float = HEADER_TIMEOUT,
        max_connections: int = MAX_CONNECTIONS,
        body_receivers: Callable[[bytes, bytes], BodyReceiver | None] | None = None,
    ) -> None:
        # Podman's http.Server IdleTimeout is 2T; 0 means keep-alive never expires.
        keep_alive = 2 * tracker.timeout if tracker.timeout > 0 else None
        super().__init__(resource, timeout=keep_alive, reactor=clock)
        self.tracker = tracker
        self.clock = clock
        self.headers = headers
        self.spool_dir = spool_dir
        self.header_timeout = header_timeout
        self.max_connections = max_connections
        self.body_receivers = body_receivers
        self.channels: set[TrackedChannel] = set()
        #: Hijacked connections (attach, exec) and the raw protocol now owning each.
        self.hijacked: dict[TrackedChannel, Any] = {}
        self.draining = False
        self._all_closed: Deferred[None] | None = None

    def buildProtocol(self, addr: IAddress | None) -> Any:
        """A new connection; at the cap, the longest-idle one makes room, or, when every
        connection is busy, the new one is refused (closed at once)."""
        open_now = len(self.channels) + len(self.hijacked)
        if open_now >= self.max_connections:
            idle = [c for c in self.channels if c.idle and c.transport is not None]
            if not idle:
                log.warn("refusing a connection: {count} are open and busy", count=open_now)
                return None
            oldest = min(idle, key=lambda c: c.idle_since)
            oldest.transport.loseConnection()  # type: ignore[union-attr]
            self.channels.discard(oldest)
        return super().buildProtocol(addr)

    def getResourceFor(self, request: Request) -> IResource:
        """Set the API headers (after twisted.web set its own ``Server``) and route."""
        self.headers.apply(request)
        if request.method == b"OPTIONS" and self.headers.cors is not None:
            return _Preflight()
        return super().getResourceFor(request)

    def getContentFile(self, length: int | None) -> IO[bytes]:
        """Keep small bodies in memory; spool big or chunked ones under ``--root``."""
        if length is not None and length < SPOOL_THRESHOLD:
            return io.BytesIO()
        return tempfile.TemporaryFile(dir=self.spool_dir)

    def log(self, request: HTTPRequest) -> None:
        """Access log at ``info`` (Podman prints Apache combined lines at that level)."""
        if logs.enabled(__name__, LogLevel.info):
            log.info("{line}", line=combinedLogFormatter(self._logDateTime, request))

    def forget(self, channel: Any) -> None:
        """A connection (HTTP or hijacked) is gone."""
        self.channels.discard(channel)
        self.hijacked.pop(channel, None)
        self.tracker.closed(channel)
        if self._all_closed is not None and not self.channels and not self.hijacked:
            done, self._all_closed = self._all_closed, None
            done.callback(None)

    async def drain(self, deadline: float) -> None:
        """Close idle connections, give in-flight requests ``deadline`` s, then abort.

        Hijacked sessions (attach/exec) are ended at once: a drain only happens on
        idle expiry, when there are none, or on SIGTERM.
        """
        self.draining = True
        for session in list(self.hijacked.values()):
            session.transport.loseConnection()
        for channel in list(self.channels):
            channel.close_when_idle()
        if not self.channels and not self.hijacked:
            return
        self._all_closed = Deferred()
        self._all_closed.addTimeout(max(deadline, 0.1), self.clock)
        try:
            await self._all_closed
        except Exception:  # the deadline passed
            for conn in [*self.channels, *self.hijacked.values()]:
                if conn.transport is not None:
                    conn.transport.abortConnection()
