"""A container's process as the host sees it: its terminal, namespaces and cgroup."""

import os

from podapi.engine.cgroupplace import container_cgroup, shown
from podapi.engine.containers import ContainerService
from podapi.engine.state.containers import INITIALIZED, RUNNING, ContainerRecord
from podapi.errors import Conflict
from podapi.oci import conmon
from podapi.threads import Blocking

#: ``ListContainerNamespaces`` keys and the ``/proc/<pid>/ns`` entries they show.
NAMESPACE_KEYS = {
    "Mnt": "mnt",
    "Cgroup": "cgroup",
    "Ipc": "ipc",
    "Net": "net",
    "Pidns": "pid",
    "Uts": "uts",
    "User": "user",
}


class ContainerProcesses:
    """What the host knows of containers' processes.

    :param io: the blocking-work executor (conmon's control FIFO is written there).
    """

    def __init__(self, containers: ContainerService, io: Blocking) -> None:
        self._containers = containers
        self._io = io

    async def resize(self, record: ContainerRecord, height: int, width: int) -> None:
        """Set a TTY container's terminal size through its conmon (nothing without a TTY).

        :raises Conflict: the container is neither initialized nor running
            (Podman's ``AttachResize``: "created or running" in its terms).
        """
        if record.state not in (INITIALIZED, RUNNING):
            raise Conflict(
                "can only resize created or running containers: container state improper",
                cause="container state improper",
            )
        if record.spec.tty:
            await self._io(conmon.resize, self._containers.paths(record.id).bundle, height, width)
        self._containers.emit(record, "resize", height=str(height), width=str(width))

    def namespaces(self, record: ContainerRecord) -> dict[str, str]:
        """The inode numbers of a running container's namespaces (``net:[4026532]`` -> the
        number), as ``podman ps --ns`` shows them; none for a process gone meanwhile."""
        found: dict[str, str] = {}
        for key, kind in NAMESPACE_KEYS.items():
            try:
                link = os.readlink(f"/proc/{record.pid}/ns/{kind}")  # procfs: no disk behind it
            except OSError:
                continue
            found[key] = link.partition("[")[2].rstrip("]")
        return found

    def cgroup_path(self, record: ContainerRecord) -> str:
        """The container's cgroup, relative to the cgroup root (what inspect shows)."""
        return shown(container_cgroup(record))
