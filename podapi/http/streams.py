"""Streaming JSON-lines responses (events, progress, stats).

Podman flushes the headers at once and then one JSON object per line, each
line flushed as it is produced (``pkg/api/handlers/compat/events.go``).
twisted.web writes straight to the transport and uses chunked encoding when
no Content-Length is set, so each line reaches the client immediately.
"""

from typing import Any

from twisted.web.iweb import IRequest

from podapi.http.responses import JSON, encode_json


class JsonLines:
    """Write JSON objects, one per line, to a streaming response."""

    def __init__(self, request: IRequest, content_type: str = JSON) -> None:
        self._request = request
        request.setHeader(b"Content-Type", content_type.encode())

    def start(self) -> None:
        """Send the status line and headers now, before any object."""
        self._request.write(b"")

    def write(self, value: Any) -> None:
        """Send one object as a line."""
        self._request.write(encode_json(value))
