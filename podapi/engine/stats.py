"""Container stats: samples of a container's usage and Podman's numbers derived from them.

A :class:`Sample` is one reading (``oci/cgroupstats.py`` does the reading in
the I/O pool); :class:`ContainerStats` is Podman's ``define.ContainerStats``
(``libpod/stats_linux.go``, 4.3.1), computed from a sample and the previous one.
"""

from collections.abc import Callable

from attrs import frozen

from podapi.engine.cgroupplace import container_cgroup
from podapi.engine.state.containers import ContainerRecord
from podapi.oci.cgroupstats import Usage, read_usage
from podapi.threads import Blocking


@frozen
class Sample:
    """One reading of a container.

    :ivar record: the container when it was read.
    :ivar read_ns: wall clock of the reading, in ns.
    :ivar usage: ``None`` when the container has no process (not running).
    """

    record: ContainerRecord
    read_ns: int
    usage: Usage | None

    @property
    def memory_limit(self) -> int:
        """The container's memory limit (its own, else its cgroup's), capped to the host's RAM.

        Podman (both trees) and Docker cap to the host's memory, so "no
        limit" reads as the host's total.
        """
        if self.usage is None:
            return 0
        own = self.record.spec.resources.memory or self.usage.cgroup.memory.limit
        host_total = self.usage.host_memory
        return min(own, host_total) if own and host_total else own or host_total


class StatsReader:
    """Takes samples of containers.

    :param io: the I/O thread pool (the reading blocks).
    :param now_ns: wall clock in ns.
    """

    def __init__(self, io: Blocking, now_ns: Callable[[], int]) -> None:
        self._io = io
        self._now_ns = now_ns

    async def sample(self, record: ContainerRecord) -> Sample:
        """Read ``record``'s usage now (no usage unless it is running or paused)."""
        usage = None
        if record.alive:
            usage = await self._io(
                read_usage,
                record.pid,
                container_cgroup(record),
                own_network=record.spec.network_mode != "host",
            )
        return Sample(record=record, read_ns=self._now_ns(), usage=usage)


def cpu_percent(cpu_ns: int, previous_cpu_ns: int, now_ns: int, previous_ns: int) -> float:
    """CPU time used between two readings as a percentage of the wall time between them.

    Podman's ``calculateCPUPercent``: 100 % is one CPU busy all the time.
    """
    cpu_delta, wall_delta = cpu_ns - previous_cpu_ns, now_ns - previous_ns
    if cpu_delta <= 0 or wall_delta <= 0:
        return 0.0
    return cpu_delta / wall_delta * 100


@frozen
class ContainerStats:
    """Podman's ``define.ContainerStats`` (units as Podman's: ns, bytes, percent).

    Podman's quirks are kept: ``uptime_ns`` and ``duration_ns`` are both the
    CPU time used (not the time since start), and ``avg_cpu`` is the CPU
    percentage since the container started.  Unlike 4.3.1 (fixed in 4.4),
    ``net_input`` is what the container received and ``net_output`` what it sent.
    """

    container_id: str
    name: str
    avg_cpu: float = 0.0
    per_cpu_ns: tuple[int, ...] | None = None
    cpu: float = 0.0
    cpu_ns: int = 0
    cpu_system_ns: int = 0
    system_ns: int = 0
    mem_usage: int = 0
    mem_limit: int = 0
    mem_percent: float = 0.0
    net_input: int = 0
    net_output: int = 0
    block_input: int = 0
    block_output: int = 0
    pids: int = 0
    uptime_ns: int = 0
    duration_ns: int = 0

    @classmethod
    def of(cls, current: Sample, previous: "ContainerStats | None") -> "ContainerStats":
        """Stats from a sample; ``previous`` (the last result for this container) paces ``cpu``.

        Without a previous result, ``cpu`` covers the time since the start.  A
        stopped container has zeros only, as in Podman.
        """
        record, usage = current.record, current.usage
        if usage is None:
            return cls(container_id=record.id, name=record.name)
        cpu_ns = usage.cgroup.cpu.total_ns
        if previous is None or previous.duration_ns > cpu_ns:  # restarted: a new cgroup
            previous_cpu, previous_ns = 0, record.started_at
        else:
            previous_cpu, previous_ns = previous.cpu_ns, previous.system_ns
        memory, limit = usage.cgroup.memory, current.memory_limit
        blkio = usage.cgroup.io_service_bytes
        return cls(
            container_id=record.id,
            name=record.name,
            avg_cpu=cpu_percent(cpu_ns, 0, current.read_ns, record.started_at),
            per_cpu_ns=usage.cgroup.cpu.per_cpu_ns or None,
            cpu=cpu_percent(cpu_ns, previous_cpu, current.read_ns, previous_ns),
            cpu_ns=cpu_ns,
            cpu_system_ns=usage.cgroup.cpu.kernel_ns,
            system_ns=current.read_ns,
            mem_usage=memory.usage,
            mem_limit=limit,
            mem_percent=memory.usage / limit * 100 if limit else 0.0,
            net_input=sum(n.rx_bytes for n in usage.networks.values()),
            net_output=sum(n.tx_bytes for n in usage.networks.values()),
            block_input=sum(e.value for e in blkio if e.op.lower() == "read"),
            block_output=sum(e.value for e in blkio if e.op.lower() == "write"),
            pids=usage.cgroup.pids_current,
            uptime_ns=cpu_ns,
            duration_ns=cpu_ns,
        )
