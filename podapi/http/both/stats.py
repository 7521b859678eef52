"""Container stats routes: Docker's ``/containers/{name}/stats`` and libpod's ``/containers/stats``.

As in Podman, ``/libpod/containers/{name}/stats`` is the compat handler (the
Docker shape), and ``/libpod/containers/stats`` is Podman's own report
``{"Error", "Stats": [define.ContainerStats]}``.  Both stream JSON lines;
the connection stays busy meanwhile, which keeps the idle timer off.

Per-container stream, as Podman 4.3.1 (``compat/containers_stats.go``):

* ``stream=false`` gives one sample whose ``precpu_stats`` are zeros and
  ``preread`` Go's zero time, ``one-shot`` or not (Docker waits for a second
  sample instead); ``stream=true`` with ``one-shot=true`` is 400.
* While streaming, each sample's ``precpu_stats`` is the previous sample's
  ``cpu_stats``; the first one's is a reading taken just before it.
* The stream ends when the container stops (without a sample of zeros), is
  removed, or the client leaves.

Deliberate differences:

* Samples stream every second, as Docker does (Podman waits 5 s).
* ``system_cpu_usage`` is the host's CPU time from ``/proc/stat`` (Docker's);
  Podman reads the root cgroup's ``cpuacct.usage``, which leaves out idle
  time and inflates the docker CLI's CPU %.  ``online_cpus`` is the host's.
* Compat answers carry Docker's ``"id"`` and ``"name": "/name"`` (the docker
  CLI drops the first character of the name) and ``memory_stats.stats``
  (the CLI subtracts the page cache with it); libpod answers keep Podman's
  ``"Id"`` and bare name.
* A stopped container gets one all-zero sample with its name and id, as
  Docker answers ``stream=false`` (a stream ends there; Docker repeats it
  every second); Podman 4.3.1 sends 200 with an empty body, which docker-py
  and the docker CLI fail to decode.  The libpod report gives it zeros too
  (Podman's behaviour).
* libpod: an unknown container is 404 before anything is streamed (newer
  Podman; 4.3.1 streams an undecodable error report); a bad ``interval`` is
  400 (Podman: 500).
"""

from typing import Any

from twisted.internet import task
from twisted.internet.interfaces import IReactorTime

from podapi.engine.engine import Engine
from podapi.engine.ocimodel import BlkioEntry
from podapi.engine.state.containers import ContainerRecord
from podapi.engine.stats import ContainerStats, Sample
from podapi.engine.times import rfc3339_nano
from podapi.errors import NoSuchContainer
from podapi.http.call import ApiCall, BadRequest
from podapi.http.routing import Router
from podapi.http.streams import JsonLines

#: Seconds between samples of ``/containers/{name}/stats`` (Docker's period).
COMPAT_INTERVAL = 1.0
#: Docker's blkio lists we never fill (no CFQ statistics on current kernels).
_UNREAD_BLKIO = (
    "io_queue_recursive",
    "io_service_time_recursive",
    "io_wait_time_recursive",
    "io_merged_recursive",
    "io_time_recursive",
    "sectors_recursive",
)


def _present(values: dict[str, Any]) -> dict[str, Any]:
    """Drop zero/empty values, as Go's ``omitempty`` does."""
    return {k: v for k, v in values.items() if v}


def _blkio(entries: tuple[BlkioEntry, ...]) -> list[dict[str, Any]]:
    return [{"major": e.major, "minor": e.minor, "op": e.op, "value": e.value} for e in entries]


def cpu_stats(sample: Sample | None, percent: float) -> dict[str, Any]:
    """Docker's ``CPUStats`` (plus Podman's ``cpu`` percentage); zeros without a sample."""
    usage = sample.usage if sample is not None else None
    cpu = usage.cgroup.cpu if usage is not None else None
    body: dict[str, Any] = {
        "cpu_usage": {
            "total_usage": cpu.total_ns if cpu else 0,
            **({"percpu_usage": list(cpu.per_cpu_ns)} if cpu and cpu.per_cpu_ns else {}),
            "usage_in_kernelmode": cpu.kernel_ns if cpu else 0,
            "usage_in_usermode": cpu.user_ns if cpu else 0,
        }
    }
    if usage is not None:
        body.update(
            _present({"system_cpu_usage": usage.system_cpu_ns, "online_cpus": usage.online_cpus})
        )
    body["cpu"] = percent
    body["throttling_data"] = {
        "periods": cpu.periods if cpu else 0,
        "throttled_periods": cpu.throttled_periods if cpu else 0,
        "throttled_time": cpu.throttled_ns if cpu else 0,
    }
    return body


def docker_stats(
    sample: Sample,
    cpu: dict[str, Any],
    previous: Sample | None,
    precpu: dict[str, Any],
    *,
    libpod: bool,
) -> dict[str, Any]:
    """Docker's ``StatsJSON`` for one sample (all zeros, with name and id, when stopped)."""
    record, usage = sample.record, sample.usage
    body: dict[str, Any] = {
        "read": rfc3339_nano(sample.read_ns if usage is not None else 0),
        "preread": rfc3339_nano(
            previous.read_ns if previous is not None and usage is not None else 0
        ),
    }
    if usage is None:
        body["pids_stats"] = {}
        blkio: dict[str, Any] = {"io_service_bytes_recursive": None, "io_serviced_recursive": None}
        memory: dict[str, Any] = {}
    else:
        cgroup = usage.cgroup
        body["pids_stats"] = _present({"current": cgroup.pids_current, "limit": cgroup.pids_limit})
        blkio = {
            "io_service_bytes_recursive": _blkio(cgroup.io_service_bytes),
            "io_serviced_recursive": _blkio(cgroup.io_serviced),
        }
        mem = cgroup.memory
        memory = _present(
            {
                "usage": mem.usage,
                "max_usage": mem.max_usage,
                "stats": dict(mem.stat),
                "failcnt": mem.failcnt,
                "limit": sample.memory_limit,
            }
        )
    body["blkio_stats"] = {**blkio, **dict.fromkeys(_UNREAD_BLKIO)}
    body["num_procs"] = 0
    body["storage_stats"] = {}
    body["cpu_stats"] = cpu
    body["precpu_stats"] = precpu
    body["memory_stats"] = memory
    if libpod:
        body["name"], body["Id"] = record.name, record.id
    else:
        body["name"], body["id"] = "/" + record.name, record.id
    networks = {
        name: {
            "rx_bytes": n.rx_bytes,
            "rx_packets": n.rx_packets,
            "rx_errors": n.rx_errors,
            "rx_dropped": n.rx_dropped,
            "tx_bytes": n.tx_bytes,
            "tx_packets": n.tx_packets,
            "tx_errors": n.tx_errors,
            "tx_dropped": n.tx_dropped,
        }
        for name, n in (usage.networks.items() if usage is not None else ())
    }
    if networks:
        body["networks"] = networks
    return body


def podman_stats(stats: ContainerStats) -> dict[str, Any]:
    """Podman's ``define.ContainerStats`` JSON (Go field names)."""
    return {
        "AvgCPU": stats.avg_cpu,
        "ContainerID": stats.container_id,
        "Name": stats.name,
        "PerCPU": list(stats.per_cpu_ns) if stats.per_cpu_ns is not None else None,
        "CPU": stats.cpu,
        "CPUNano": stats.cpu_ns,
        "CPUSystemNano": stats.cpu_system_ns,
        "SystemNano": stats.system_ns,
        "MemUsage": stats.mem_usage,
        "MemLimit": stats.mem_limit,
        "MemPerc": stats.mem_percent,
        "NetInput": stats.net_input,
        "NetOutput": stats.net_output,
        "BlockInput": stats.block_input,
        "BlockOutput": stats.block_output,
        "PIDs": stats.pids,
        "UpTime": stats.uptime_ns,
        "Duration": stats.duration_ns,
    }


class StatsRoutes:
    """The stats routes of both trees.

    :param engine: the engine.
    :param clock: paces the streams.
    """

    def __init__(self, engine: Engine, clock: IReactorTime) -> None:
        self._engine = engine
        self._clock = clock
        self._reader = engine.stats

    def register(self, router: Router) -> None:
        """Add the routes."""
        router.compat("GET", "/containers/<name>/stats", self.container_stats)
        router.libpod("GET", "/containers/<name>/stats", self.container_stats)
        router.libpod("GET", "/containers/stats", self.libpod_stats)

    async def _refreshed(self, record: ContainerRecord) -> ContainerRecord | None:
        """The container as it is now (``None`` once removed)."""
        try:
            return await self._engine.containers.get(record.id)
        except NoSuchContainer:
            return None

    async def container_stats(self, call: ApiCall, name: str) -> None:
        """``GET /containers/{name}/stats?stream=&one-shot=``: Docker's stats JSON lines."""
        stream = call.flag("stream", default=True)
        if stream and call.flag("one-shot"):
            raise BadRequest("invalid argument: one-shot needs stream=false")
        record = await self._engine.containers.resolve(name)
        out = JsonLines(call.request)
        out.start()
        previous: Sample | None = None
        previous_stats: ContainerStats | None = None
        precpu = cpu_stats(None, 0.0)
        if stream:
            previous = await self._reader.sample(record)
            previous_stats = ContainerStats.of(previous, None)
            precpu = cpu_stats(previous, previous_stats.cpu)
        while True:
            current = await self._reader.sample(record)
            if current.usage is None and previous is not None and previous.usage is not None:
                return  # it stopped while streaming: end without a sample of zeros (Podman)
            stats = ContainerStats.of(current, previous_stats)
            cpu = cpu_stats(current, stats.cpu)
            out.write(docker_stats(current, cpu, previous, precpu, libpod=call.libpod))
            if not stream or current.usage is None:
                return
            previous, previous_stats, precpu = current, stats, cpu
            await task.deferLater(self._clock, COMPAT_INTERVAL)
            refreshed = await self._refreshed(record)
            if refreshed is None:
                return
            record = refreshed

    async def libpod_stats(self, call: ApiCall) -> None:
        """``GET /libpod/containers/stats?containers=&stream=&interval=``: Podman's reports.

        Without ``containers`` every container is reported (Podman 4.3.1).
        The stream ends when a named container is removed or the client leaves.
        """
        names = call.texts("containers")
        stream = call.flag("stream", default=True)
        interval = call.integer("interval", 5) or 0
        if interval < 1:
            raise BadRequest("invalid interval, must be a positive number greater zero")
        records = [await self._engine.containers.resolve(n) for n in names]
        out = JsonLines(call.request)
        out.start()
        previous: dict[str, ContainerStats] = {}
        while True:
            if not names:
                records = await self._engine.containers.all()
            report = []
            for record in records:
                stats = ContainerStats.of(
                    await self._reader.sample(record), previous.get(record.id)
                )
                previous[record.id] = stats
                report.append(podman_stats(stats))
            out.write({"Error": None, "Stats": report})
            if not stream:
                return
            await task.deferLater(self._clock, interval)
            if names:
                refreshed = [await self._refreshed(r) for r in records]
                if None in refreshed:
                    return
                records = [r for r in refreshed if r is not None]
