"""Downloads from a URL into a spool file (``podman import URL``), from twisted.web on loopback."""

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.task import deferLater
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request, Site

from podapi.errors import InvalidArgument
from podapi.storage.registry import DownloadFailed, UrlDownloader
from podapi.storage.registry.download import check_url
from podapi.threads import ThreadPoolService
from tests.fixtures.registry import free_port

REACTOR: Any = reactor
BODY = os.urandom(3 * 1024 * 1024 + 17)


class Files(Resource):
    """``/file``, ``/moved`` (302 to it), ``/stall``, ``/hang``, ``/cut``; anything else is 404."""

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.stalled: list[Request] = []
        self.started: Deferred[None] = Deferred()

    def render_GET(self, request: Request) -> bytes | int:
        path = request.path.decode()
        if path == "/file":
            return BODY
        if path == "/moved":
            request.redirect(b"/file")
            return b""
        if path == "/stall":
            request.setHeader(b"Content-Length", b"1000000")
            request.write(b"x" * 1000)
            self.stalled.append(request)
            if not self.started.called:
                self.started.callback(None)
            return NOT_DONE_YET
        if path == "/hang":  # not even headers
            self.stalled.append(request)
            if not self.started.called:
                self.started.callback(None)
            return NOT_DONE_YET
        if path == "/cut":
            request.setHeader(b"Content-Length", b"1000000")
            request.write(b"x" * 1000)
            REACTOR.callLater(0.05, request.channel.transport.loseConnection)
            return NOT_DONE_YET
        request.setResponseCode(404)
        return b"no such file"


@pytest_twisted.async_yield_fixture
async def files() -> AsyncIterator[tuple[Files, str]]:
    resource = Files()
    port = REACTOR.listenTCP(0, Site(resource), interface="127.0.0.1")
    yield resource, f"http://127.0.0.1:{port.getHost().port}"
    for request in resource.stalled:
        if request.channel is not None:
            request.channel.transport.abortConnection()
    await port.stopListening()


@pytest_twisted.async_yield_fixture
async def downloader(tmp_path: Path) -> AsyncIterator[UrlDownloader]:
    pool = ThreadPoolService(REACTOR, "download-test", 2)
    pool.startService()
    spool = tmp_path / "spool"
    spool.mkdir()
    yield UrlDownloader(REACTOR, blocking=pool, spool_dir=str(spool), timeout=0.5)
    pool.stopService()


@pytest_twisted.ensureDeferred
async def test_a_file_streams_into_a_spool_file(
    files: tuple[Files, str], downloader: UrlDownloader, tmp_path: Path
) -> None:
    """The whole body lands in an anonymous file under the spool directory, at offset 0."""
    _, base = files
    spooled = await downloader.fetch(base + "/file")
    try:
        assert spooled.read() == BODY
        assert os.listdir(tmp_path / "spool") == []  # anonymous: gone when closed
    finally:
        spooled.close()


@pytest_twisted.ensureDeferred
async def test_redirects_are_followed(files: tuple[Files, str], downloader: UrlDownloader) -> None:
    _, base = files
    spooled = await downloader.fetch(base + "/moved")
    with spooled:
        assert spooled.read() == BODY


@pytest_twisted.ensureDeferred
async def test_an_error_status_fails_with_the_status(
    files: tuple[Files, str], downloader: UrlDownloader
) -> None:
    _, base = files
    with pytest.raises(DownloadFailed, match=r"downloading http://.*/nothing: 404 Not Found"):
        await downloader.fetch(base + "/nothing")


@pytest_twisted.ensureDeferred
async def test_an_unreachable_host_fails(downloader: UrlDownloader) -> None:
    with pytest.raises(DownloadFailed, match="connection refused"):
        await downloader.fetch(f"http://127.0.0.1:{free_port()}/rootfs.tar")


@pytest_twisted.ensureDeferred
async def test_a_stalled_body_times_out(
    files: tuple[Files, str], downloader: UrlDownloader
) -> None:
    _, base = files
    with pytest.raises(DownloadFailed, match="i/o timeout"):
        await downloader.fetch(base + "/stall")


@pytest_twisted.ensureDeferred
async def test_a_cut_body_fails(files: tuple[Files, str], downloader: UrlDownloader) -> None:
    _, base = files
    with pytest.raises(DownloadFailed, match=r"downloading http://.*/cut"):
        await downloader.fetch(base + "/cut")


@pytest.mark.parametrize("path", ["/hang", "/stall"])
@pytest_twisted.ensureDeferred
async def test_cancelling_stops_the_download(
    files: tuple[Files, str], downloader: UrlDownloader, path: str
) -> None:
    """A client that goes away cancels the handler: waiting for headers or in the body."""
    resource, base = files
    d = Deferred.fromCoroutine(downloader.fetch(base + path))
    await resource.started
    await deferLater(REACTOR, 0.1)  # let the client get as far as the server went
    d.cancel()
    with pytest.raises(CancelledError):
        await d


@pytest.mark.parametrize(
    "url",
    [
        "ftp://127.0.0.1/rootfs.tar",
        "file:///etc/passwd",
        "/etc/passwd",
        "rootfs.tar",
        "http:///no-host",
        "http://127.0.0.1:99999999/x",
    ],
)
def test_only_http_urls_with_a_host_are_taken(url: str) -> None:
    with pytest.raises(InvalidArgument, match="invalid URL"):
        check_url(url)


def test_http_and_https_urls_are_taken() -> None:
    assert check_url("https://example.com/rootfs.tar.gz") == "https://example.com/rootfs.tar.gz"
    assert check_url("HTTP://127.0.0.1:8000/x") == "HTTP://127.0.0.1:8000/x"
