"""A container's networks while it runs: set up at start, torn down at exit, joined and left."""

from podapi import crashpoints
from podapi.engine.containers import ContainerService
from podapi.engine.containerspec import NetworkEndpoint
from podapi.engine.networks import NetworkService, SaveSetup
from podapi.engine.state.containers import ContainerRecord
from podapi.errors import Conflict
from podapi.oci.netavark import NetworkSetup


class NetworkAttach:
    """Wires containers to networks, storing each step so a crash can be undone.

    :param containers: records and locks.
    :param networks: sets ``bridge`` networks up and down (netavark).
    """

    def __init__(self, containers: ContainerService, networks: NetworkService) -> None:
        self._containers = containers
        self._networks = networks

    async def connect(self, record: ContainerRecord, endpoint: NetworkEndpoint) -> None:
        """``docker network connect``: join now if running, at the next start anyway."""
        async with self._containers.lock(record.id):
            current = await self._containers.get(record.id)
            save = self._saver(record.id)
            try:
                spec, status = await self._networks.connect(current, endpoint, save)
            except BaseException:
                await save(current.network_status)  # what failed was undone
                raise
            # The setup is stored as pending until here: reconcile undoes it after a crash.
            crashpoints.reached("connect-setup")
            await self._containers.update_record(record.id, spec=spec, network_status=status)

    async def disconnect(self, record: ContainerRecord, name: str) -> None:
        """``docker network disconnect``: leave now if running, and for good (stored
        first, torn down after: :meth:`NetworkService.disconnect`)."""
        async with self._containers.lock(record.id):
            current = await self._containers.get(record.id)
            spec, status = await self._networks.disconnect(current, name)
            current = await self._containers.update_record(
                record.id, spec=spec, network_status=status
            )
            await self.finish_pending(current)

    async def finish_pending(self, record: ContainerRecord) -> None:
        """Finish a disconnect or undo a connect a crash cut short (see
        :meth:`NetworkService.finish_pending`)."""
        if record.network_status.pending:
            status = await self._networks.finish_pending(record)
            crashpoints.reached("disconnect-teardown")
            await self._containers.update_record(record.id, network_status=status)

    def _saver(self, container_id: str) -> SaveSetup:
        async def save(status: NetworkSetup) -> object:
            return await self._containers.update_record(container_id, network_status=status)

        return save

    async def set_up(self, record: ContainerRecord) -> ContainerRecord:
        """Set up the container's networks for a run (stored step by step)."""
        save = self._saver(record.id)
        try:
            status = await self._networks.setup(record, save)
        except BaseException:
            await save(NetworkSetup())  # the setup undid itself
            raise
        return await self._containers.update_record(record.id, network_status=status)

    async def down(self, record: ContainerRecord) -> None:
        """Undo the network setup of a run, if it had one."""
        if record.network_status.netns:
            await self._networks.teardown(record)
            await self._containers.update_record(record.id, network_status=NetworkSetup())

    async def namespace(self, record: ContainerRecord) -> str | None:
        """The path of the network namespace to join (None: the runtime makes a new one)."""
        mode = record.spec.network_mode
        if mode == "bridge":
            return record.network_status.netns
        if mode.startswith("ns:"):
            return mode.partition(":")[2]
        if mode.startswith("container:"):
            target = await self._containers.get(mode.partition(":")[2])
            if not target.alive:
                raise Conflict(
                    f"cannot join the network namespace of container {target.id}: "
                    "it is not running",
                    cause="container state improper",
                )
            return f"/proc/{target.pid}/ns/net"
        return None
