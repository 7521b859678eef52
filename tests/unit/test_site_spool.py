"""A body spooled to a full disk is answered with the error body, not a dropped connection."""

import errno
import io
from collections.abc import Hashable

from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.web.resource import Resource

from podapi.http.site import SPOOL_THRESHOLD, HeaderPolicy, PodAPISite


class _Tracker:
    timeout = 0.0

    def request_started(self, connection: Hashable) -> None:
        pass

    def hijacked(self, connection: Hashable) -> None:
        pass

    def closed(self, connection: Hashable) -> None:
        pass


class _Handler(Resource):
    isLeaf = True

    def render_POST(self, request: object) -> bytes:
        raise AssertionError("a body that could not be spooled reached its handler")


class _FlushesToFullDisk(io.BytesIO):
    """A buffered spool file: every write fits its buffer, the disk fills when it is
    flushed (where ENOSPC surfaces on a tmpfs that just filled up)."""

    def flush(self) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")


def test_a_spool_that_fills_the_disk_when_flushed_is_answered_500() -> None:
    site = PodAPISite(_Handler(), _Tracker(), Clock(), HeaderPolicy())
    site.getContentFile = lambda length: _FlushesToFullDisk()  # type: ignore[method-assign]
    channel = site.buildProtocol(None)
    transport = StringTransport()
    channel.makeConnection(transport)
    size = SPOOL_THRESHOLD + 1
    channel.dataReceived(
        b"POST /x HTTP/1.1\r\nHost: d\r\nContent-Length: %d\r\n\r\n" % size + b"x" * size
    )
    head, _, body = transport.value().partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 500"), head
    assert not transport.disconnecting
    assert b'"cause":"no space left on device"' in body, body
