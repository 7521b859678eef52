"""SOCK_SEQPACKET sockets on the reactor: conmon's sync, start and attach channels.

conmon talks to its launcher over ``socketpair(AF_UNIX, SOCK_SEQPACKET)``
pairs whose child ends it inherits as fds 3, 4 (and 5 for an attached exec),
and serves ``attach`` as a SEQPACKET listening socket.  Every ``recv`` on such
a socket returns exactly one message, and a read of zero bytes means the
peer closed its end; :class:`SeqPacketSocket` turns that into one callback per
message and one when the socket closes.
"""

import contextlib
import errno
import socket
from collections.abc import Callable

from attrs import define
from twisted.internet import main
from twisted.internet.abstract import FileDescriptor
from twisted.internet.interfaces import IReactorFDSet
from twisted.python.failure import Failure

#: conmon reads container output in 8 KiB chunks and sends one message per
#: read; its sync lines are far shorter.  Larger messages would be truncated
#: by ``recv``, so leave generous room.
MAX_MESSAGE = 64 * 1024


@define
class SocketPair:
    """A SEQPACKET socketpair: our end stays here, the child end goes to a process.

    Both ends are close-on-exec (Python's default); ``spawnProcess`` dup2s the
    child end onto the wanted fd number in the child, which clears that flag on
    the copy only.  Close the child end in this process right after spawning
    (:meth:`close_child`) so that the child exiting is seen as EOF.
    """

    parent: socket.socket
    child: socket.socket

    def child_fd(self) -> int:
        """The fd number to put in ``childFDs``."""
        return self.child.fileno()

    def close_child(self) -> None:
        """Drop our copy of the child's end (idempotent)."""
        self.child.close()

    def close(self) -> None:
        """Close both ends (idempotent)."""
        self.child.close()
        self.parent.close()


def socketpair() -> SocketPair:
    """A new SEQPACKET socketpair whose parent end is non-blocking."""
    parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    parent.setblocking(False)
    return SocketPair(parent=parent, child=child)


class SeqPacketSocket(FileDescriptor):
    """Reads a SEQPACKET socket on the reactor, one callback per message.

    Writing (``write``) is supported for byte streams such as an attach
    socket's stdin, where conmon does not care how the bytes are split into
    messages; messages whose boundaries matter are sent with :meth:`send`.

    :param sock: the socket; this object owns it from now on and closes it.
    :param on_message: called with every message received.
    :param on_close: called once with the reason when the socket is closed,
        by the peer (``ConnectionDone``) or by us.
    :param reactor: the reactor to register with.
    """

    def __init__(
        self,
        sock: socket.socket,
        on_message: Callable[[bytes], object],
        on_close: Callable[[Failure], object] | None = None,
        reactor: IReactorFDSet | None = None,
    ) -> None:
        super().__init__(reactor)
        sock.setblocking(False)
        self._sock = sock
        self._fileno = sock.fileno()
        self._on_message = on_message
        self._on_close = on_close
        self.connected = 1

    def fileno(self) -> int:
        """The socket's fd (kept after close so the reactor can unregister it)."""
        return self._fileno

    def start(self) -> "SeqPacketSocket":
        """Start reading; returns ``self`` for chaining."""
        self.startReading()
        return self

    def send(self, message: bytes) -> None:
        """Send one whole message now, bypassing the write buffer.

        A fresh socketpair has room for far more than the few bytes conmon's
        control messages need, so a full buffer here is a protocol error.
        """
        self._sock.send(message)

    def doRead(self) -> BaseException | None:
        """Read one message and hand it on; zero bytes means the peer closed."""
        try:
            data = self._sock.recv(MAX_MESSAGE)
        except BlockingIOError:
            return None
        except OSError as e:
            if e.errno == errno.ECONNRESET:
                return main.CONNECTION_DONE
            return main.CONNECTION_LOST
        if not data:
            return main.CONNECTION_DONE
        self._on_message(data)
        return None

    def writeSomeData(self, data: bytes) -> int | BaseException:
        """Send a slice of buffered stream data as one message."""
        try:
            return self._sock.send(bytes(data[:MAX_MESSAGE]))
        except BlockingIOError:
            return 0
        except OSError:
            return main.CONNECTION_LOST

    def _closeWriteConnection(self) -> None:
        # loseWriteConnection(): conmon treats a half-closed attach socket as
        # "close the container's stdin" (conn_sock.c).
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_WR)

    def connectionLost(self, reason: Failure) -> None:
        """Close the socket and report the reason once."""
        super().connectionLost(reason)
        self._sock.close()
        on_close, self._on_close = self._on_close, None
        if on_close is not None:
            on_close(reason)

    def close(self) -> None:
        """Stop reading and close at once (pending writes are dropped)."""
        if not self.disconnected:
            self.connectionLost(Failure(main.CONNECTION_DONE))
