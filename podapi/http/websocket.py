"""``GET /containers/{id}/attach/ws``: attach over a WebSocket, as Docker offers it.

The handshake and framing are wsproto's (sans-IO, on the hijacked socket).
The relay is the same :class:`StreamSession` as a plain attach, given a
transport that turns its writes into WebSocket messages and the client's
messages into its input.  As in Docker: output is never multiplexed; messages
are binary from API 1.28 (text before); ``stdin``/``stdout``/``stderr`` are
read from the query from 1.42 (all three before); ``logs`` and ``stream``
default to false.
"""

import contextlib
from typing import Any

from twisted.web.iweb import IRequest
from twisted.web.server import Request
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Message,
    Ping,
    TextMessage,
)
from wsproto.events import (
    Request as HandshakeRequest,
)
from wsproto.utilities import LocalProtocolError, RemoteProtocolError

from podapi.http.call import BadRequest
from podapi.http.hijack import RawSession
from podapi.http.streamsession import StreamSession


def handshake(request: IRequest) -> WSConnection:
    """A server-side WebSocket connection that has read ``request`` (400 if not an upgrade)."""
    connection = WSConnection(ConnectionType.SERVER)
    head = [b"GET " + request.uri + b" HTTP/1.1"]
    for name, values in request.requestHeaders.getAllRawHeaders():
        head += [name + b": " + value for value in values]
    try:
        connection.receive_data(b"\r\n".join(head) + b"\r\n\r\n")
        events = list(connection.events())
    except RemoteProtocolError as e:
        raise BadRequest(f"not a WebSocket handshake: {e}") from None
    if not any(isinstance(event, HandshakeRequest) for event in events):
        raise BadRequest("not a WebSocket handshake: Upgrade: websocket is required")
    return connection


class WebSocketSession(RawSession):
    """Owns the client's socket: WebSocket frames outside, a :class:`StreamSession` inside."""

    def __init__(self, connection: WSConnection, inner: StreamSession, binary: bool) -> None:
        self._ws = connection
        self._inner = inner
        self._binary = binary

    def accept(self, request: Request) -> bytes:
        """The ``101 Switching Protocols`` head (for :class:`HijackResource`)."""
        return self._ws.send(AcceptConnection())

    def session_started(self) -> None:
        self._inner.makeConnection(_MessageTransport(self))
        self._inner.session_started()

    def send_message(self, data: bytes) -> None:
        """One output chunk as one message."""
        event: Message[Any] = (
            BytesMessage(data=data)
            if self._binary
            else TextMessage(data=data.decode("utf-8", "replace"))
        )
        if self.transport is not None:
            self.transport.write(self._ws.send(event))

    def close(self) -> None:
        """End the WebSocket (close frame), then the connection."""
        if self.transport is None:
            return
        with contextlib.suppress(LocalProtocolError):  # the close frame went already
            self.transport.write(self._ws.send(CloseConnection(code=1000)))
        self.transport.loseConnection()

    def dataReceived(self, data: bytes) -> None:
        try:
            self._ws.receive_data(data)
            events = list(self._ws.events())
        except RemoteProtocolError:
            self.close()
            return
        for event in events:
            if isinstance(event, (BytesMessage, TextMessage)):
                message = event.data
                self._inner.dataReceived(
                    message.encode() if isinstance(message, str) else bytes(message)
                )
            elif isinstance(event, Ping) and self.transport is not None:
                self.transport.write(self._ws.send(event.response()))
            elif isinstance(event, CloseConnection):
                self.close()

    def connectionLost(self, reason: Any = None) -> None:
        self._inner.connectionLost(reason)
        super().connectionLost(reason)


class _MessageTransport:
    """The inner :class:`StreamSession`'s client: messages out, the socket's flow control."""

    def __init__(self, outer: WebSocketSession) -> None:
        self._outer = outer

    def _socket(self) -> Any:
        return self._outer.transport

    def write(self, data: bytes) -> None:
        self._outer.send_message(data)

    def loseConnection(self) -> None:
        self._outer.close()

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        self._socket().registerProducer(producer, streaming)

    def unregisterProducer(self) -> None:
        self._socket().unregisterProducer()

    def pauseProducing(self) -> None:
        self._socket().pauseProducing()

    def resumeProducing(self) -> None:
        self._socket().resumeProducing()

    def stopProducing(self) -> None:
        self._outer.close()
