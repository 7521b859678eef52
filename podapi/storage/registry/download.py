"""Downloading a file from an ``http``/``https`` URL into a spool file (``podman import URL``).

Not a registry operation, but it needs the same machinery, so it lives here:
the body streams into an anonymous temporary file under ``--root`` through the
thread pool, one write at a time, with the transport paused while the disk is
behind (:class:`~.transfer._BlobSink`); response headers and a stalled body
time out; failures below HTTP are described as they are for registries.
Nothing is held in memory beyond the sink's high-water mark.

Podman (containers/common ``download.FromURL``) uses Go's ``http.Get``.  Where
we deliberately differ:

* Only absolute ``http``/``https`` URLs are taken (400 otherwise).  Podman
  treats text that does not parse as a URL as a path on the *server* and
  imports that file; a remote client has no business reading the server's
  files.
* A final status other than 2xx is an error naming the status.  Go saves the
  error page, and the import then fails on it as a bad tarball.
"""

import contextlib
import tempfile
from typing import TYPE_CHECKING, BinaryIO
from urllib.parse import urlsplit

from twisted.internet import error as neterror
from twisted.internet.defer import CancelledError
from twisted.internet.interfaces import IDelayedCall
from twisted.web.http_headers import Headers
from twisted.web.iweb import IResponse

from podapi.errors import InvalidArgument, UpstreamError
from podapi.storage.registry.errors import _describe_network, _IdleTimeout
from podapi.storage.registry.session import USER_AGENT, IWebReactor
from podapi.storage.registry.transfer import MAX_ERROR_BODY, _BlobSink, _detached, _read
from podapi.threads import Blocking

if TYPE_CHECKING:
    from treq.client import HTTPClient

SCHEMES = ("http", "https")


class DownloadFailed(UpstreamError):
    """The server could not be reached, or did not send the file (500, as in Podman)."""

    cause = "download failed"


def check_url(url: str) -> str:
    """``url`` if it is an absolute http(s) URL with a host.

    :raises InvalidArgument: otherwise (Podman's ``url.ParseRequestURI`` plus
        Go's ``unsupported protocol scheme``).
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError as e:
        raise InvalidArgument(f"invalid URL {url!r}: {e}") from None
    if parts.scheme.lower() not in SCHEMES:
        scheme = parts.scheme or "(none)"
        raise InvalidArgument(
            f"invalid URL {url!r}: unsupported protocol scheme {scheme!r}: use http or https"
        )
    if not host:
        raise InvalidArgument(f"invalid URL {url!r}: no host")
    return url


def _cancelled(exc: BaseException) -> bool:
    """Whether ``exc`` is, or wraps (``ResponseNeverReceived``), a cancellation."""
    if isinstance(exc, CancelledError):
        return True
    return any(reason.check(CancelledError) for reason in getattr(exc, "reasons", None) or ())


def _spool_file(spool_dir: str) -> BinaryIO:
    return tempfile.TemporaryFile(dir=spool_dir)


class UrlDownloader:
    """Fetches whole files over HTTP(S), following redirects, into spool files.

    :param reactor: provides TCP/TLS connections and ``callLater``.
    :param blocking: runs file creation and writes off the reactor.
    :param spool_dir: where the (anonymous) spool files are created.
    :param timeout: seconds for connecting, for the response headers and of
        body idleness (the download as a whole is not bounded).
    """

    def __init__(
        self, reactor: IWebReactor, *, blocking: Blocking, spool_dir: str, timeout: float = 60
    ) -> None:
        self._clock = reactor
        self._blocking = blocking
        self._spool_dir = spool_dir
        self._timeout = timeout
        self._client: HTTPClient | None = None

    def _http(self) -> "HTTPClient":
        """The HTTP client, made for the first download (not at start: see below)."""
        if self._client is None:
            # treq and twisted.web.client load on first use: a server start needs neither.
            from treq.client import HTTPClient  # noqa: PLC0415
            from twisted.web.client import (  # noqa: PLC0415
                Agent,
                BrowserLikePolicyForHTTPS,
                HTTPConnectionPool,
            )

            # Not persistent: downloads are rare, and nothing is left to close at stop.
            pool = HTTPConnectionPool(self._clock, persistent=False)
            self._client = HTTPClient(
                Agent(
                    self._clock,
                    contextFactory=BrowserLikePolicyForHTTPS(),
                    connectTimeout=self._timeout,
                    pool=pool,
                )
            )
        return self._client

    async def fetch(self, url: str) -> BinaryIO:
        """Download ``url`` into a new spool file, returned positioned at its start.

        The caller closes the file (which deletes it).  On failure or
        cancellation nothing is left behind.

        :raises InvalidArgument: ``url`` is not an http(s) URL.
        :raises DownloadFailed: the host is unreachable, the transfer stalled or
            broke, or the server answered with a status other than 2xx.
        """
        from twisted.web.client import ResponseFailed  # noqa: PLC0415 (on first use: the HTTP client is not needed to start)

        check_url(url)
        what = f"downloading {url}"
        # A thread cannot be interrupted: if we are cancelled while it opens
        # the file, the file is closed when it arrives.
        spool: BinaryIO = await _detached(
            self._blocking(_spool_file, self._spool_dir),
            lambda late: self._blocking(late.close),
        )
        sink: _BlobSink | None = None
        done = False
        try:
            response = await self._get(url, what)
            if not 200 <= response.code < 300:
                phrase = response.phrase.decode("latin-1", "replace")
                with contextlib.suppress(Exception):  # only draining: the status is the error
                    await _read(response, MAX_ERROR_BODY)
                raise DownloadFailed(f"{what}: {response.code} {phrase}".rstrip())
            sink = _BlobSink(
                clock=self._clock,
                blocking=self._blocking,
                writer=spool,
                expected_size=None,
                timeout=self._timeout,
                progress=lambda _done: None,
            )
            response.deliverBody(sink)
            try:
                await sink.done
            except (ResponseFailed, _IdleTimeout, neterror.ConnectionLost) as e:
                raise DownloadFailed(f"{what}: {_describe_network(e).reason}") from e
            except OSError as e:  # the spool file's disk (full, read-only)
                raise DownloadFailed(f"{what}: writing the spool file: {e}") from e
            await self._blocking(spool.seek, 0)
            done = True
            return spool
        finally:
            if sink is not None:
                await sink.settle()
            if not done:
                await self._blocking(spool.close)

    async def _get(self, url: str, what: str) -> IResponse:
        """``GET url`` up to the response headers (redirects followed), with a timeout."""
        d = self._http().get(
            url,
            headers=Headers({"User-Agent": [USER_AGENT]}),
            allow_redirects=True,
            unbuffered=True,
        )
        timed_out = False

        def expire() -> None:
            nonlocal timed_out
            timed_out = True
            d.cancel()

        timer: IDelayedCall = self._clock.callLater(self._timeout, expire)
        try:
            response: IResponse = await d
        except Exception as e:
            if timed_out:
                raise DownloadFailed(f"{what}: i/o timeout") from e
            if _cancelled(e):
                raise CancelledError() from e  # the client went away
            raise DownloadFailed(f"{what}: {_describe_network(e).reason}") from e
        finally:
            if timer.active():
                timer.cancel()
        return response
