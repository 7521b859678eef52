"""Joining a container's (or an exec session's) standard streams through conmon.

conmon's ``attach`` socket sends one stream byte (2 stdout, 3 stderr) and a
payload per message; bytes written to it are the process's stdin, and a
half-close closes that stdin.  The HTTP relay gets an :class:`AttachPoint` and
opens it: it sees named streams and a socket it can write to, never conmon.

Attaching before ``start`` (what ``docker run`` does) registers the caller
with the life cycle, which connects it after ``runc create`` and before
``runc start``, so no output is lost.
"""

from collections.abc import Callable

from attrs import frozen
from twisted.python.failure import Failure

from podapi.engine.containers import ContainerService
from podapi.engine.layout import ContainerPaths
from podapi.engine.lifecycle import Lifecycle
from podapi.engine.state.containers import CREATED, EXITED, INITIALIZED, ContainerRecord
from podapi.oci import attachsocket
from podapi.oci.seqpacket import SeqPacketSocket

#: The open attach socket: a Twisted producer and consumer (``write`` is the
#: process's stdin, ``loseWriteConnection`` closes it, ``close`` drops it).
ProcessSocket = SeqPacketSocket

_STREAMS = {attachsocket.CONMON_STDOUT: "stdout", attachsocket.CONMON_STDERR: "stderr"}


@frozen
class AttachPoint:
    """conmon's attach socket of a process that exists."""

    bundle: str

    def open(
        self,
        on_output: Callable[[str, bytes], None],
        on_gone: Callable[[Failure], None],
    ) -> ProcessSocket:
        """Connect: ``on_output("stdout"|"stderr", payload)`` per message, ``on_gone`` once
        when the socket closes (raises OSError when there is no socket)."""

        def received(message: bytes) -> None:
            if message:
                stream = _STREAMS.get(message[0])
                if stream is not None:
                    on_output(stream, message[1:])

        return SeqPacketSocket(attachsocket.connect(self.bundle), received, on_gone).start()


#: Called with the attach point once the process's socket exists.
Connect = Callable[[AttachPoint], None]


class ContainerAttach:
    """Connecting attach sessions to containers."""

    def __init__(self, containers: ContainerService, lifecycle: Lifecycle) -> None:
        self._containers = containers
        self._lifecycle = lifecycle

    async def join(self, record: ContainerRecord, connect: Connect) -> Callable[[], None] | None:
        """Call ``connect`` now for a live container, or when a stopped one is next created.

        :returns: cancels a pending connection (call it when the session ends);
            ``None`` when there is nothing to attach to (being removed).
        """
        current = await self._containers.get(record.id)
        self._containers.emit(current, "attach")
        if current.state in (CREATED, INITIALIZED, EXITED):

            async def hook(paths: ContainerPaths) -> None:
                connect(AttachPoint(paths.bundle))

            return self._lifecycle.add_attach_hook(record.id, hook)
        if current.alive:
            connect(AttachPoint(self._containers.paths(record.id).bundle))
            return _nothing
        return None


def _nothing() -> None:
    """Nothing pending to cancel."""
