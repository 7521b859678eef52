"""One container's resource usage: its cgroup files, its network counters, host CPU time.

Everything here reads files and blocks: call it in the engine's thread pool.

The files are the ones runc's ``libcontainer/cgroups/fs`` (v1) and ``fs2``
(v2) read for Docker and Podman:

* cgroup v1: ``cpuacct.usage``, ``cpuacct.usage_percpu``, ``cpuacct.stat``
  (user/system in ``USER_HZ`` ticks), ``cpu.stat`` (throttling);
  ``memory.usage_in_bytes``, ``memory.max_usage_in_bytes``,
  ``memory.limit_in_bytes``, ``memory.failcnt``, ``memory.stat``;
  ``pids.current``, ``pids.max``; ``blkio.*io_service_bytes_recursive`` and
  ``blkio.*io_serviced_recursive``.
* cgroup v2: ``cpu.stat`` (``usage_usec``, ``user_usec``, ``system_usec``,
  throttling), ``memory.current``, ``memory.max``, ``memory.stat``,
  ``pids.current``, ``pids.max``, ``io.stat``.
* hybrid: a controller mounted on a v1 hierarchy is read there, the others
  in the v2 (``unified``) directory.

A file that is missing (controller not mounted, cgroup removed meanwhile)
reads as "unknown": 0, or ``None`` for limits.  The memory controller's path
differs per v1 hierarchy on a hybrid host, so directories come
from ``/proc/<pid>/cgroup`` (:func:`podapi.oci.cgroups.process_cgroup_dirs`).
"""

import os
from collections.abc import Mapping

from attrs import field, frozen

from podapi.oci import host
from podapi.oci.cgroups import (
    CGROUP_ROOT,
    CgroupDirs,
    process_cgroup_dirs,
    relative_cgroup_dirs,
)

NS = 1_000_000_000
#: cgroup v1 writes "no limit" as the page counter's maximum (9223372036854771712
#: with 4 KiB pages; a little less with bigger pages): anything this large is unlimited.
V1_UNLIMITED = 1 << 62
#: The ``blkio`` files of v1 in runc's order: CFQ, BFQ, then the throttle
#: policy (the only one that counts I/O whatever the device's scheduler).
_BLKIO_POLICIES = ("blkio.", "blkio.bfq.", "blkio.throttle.")


@frozen
class BlkioEntry:
    """One row of a blkio/io file: a device and an operation (``Read``, ``write``...)."""

    major: int
    minor: int
    op: str
    value: int


@frozen
class CpuUsage:
    """CPU time in nanoseconds; ``per_cpu_ns`` is empty on v2 (no such file)."""

    total_ns: int = 0
    per_cpu_ns: tuple[int, ...] = ()
    kernel_ns: int = 0
    user_ns: int = 0
    periods: int = 0
    throttled_periods: int = 0
    throttled_ns: int = 0


@frozen
class MemoryUsage:
    """Memory in bytes; ``limit`` is ``None`` when unlimited, v1-only fields ``None`` on v2."""

    usage: int = 0
    max_usage: int | None = None
    limit: int | None = None
    failcnt: int | None = None
    stat: Mapping[str, int] = field(factory=dict)


@frozen
class CgroupStats:
    """What a container's cgroups say about it."""

    cpu: CpuUsage = CpuUsage()
    memory: MemoryUsage = MemoryUsage()
    pids_current: int = 0
    pids_limit: int | None = None
    io_service_bytes: tuple[BlkioEntry, ...] = ()
    io_serviced: tuple[BlkioEntry, ...] = ()


@frozen
class NetworkCounters:
    """One interface's counters from ``/proc/<pid>/net/dev``."""

    rx_bytes: int = 0
    rx_packets: int = 0
    rx_errors: int = 0
    rx_dropped: int = 0
    tx_bytes: int = 0
    tx_packets: int = 0
    tx_errors: int = 0
    tx_dropped: int = 0


@frozen
class Usage:
    """Everything a stats sample needs, read in one go.

    :ivar networks: interface name -> counters, in the container's network
        namespace, without ``lo`` (empty with ``--network none``).
    :ivar system_cpu_ns: the host's CPU time since boot (:func:`system_cpu_ns`).
    :ivar online_cpus: CPUs online on the host.
    :ivar host_memory: the host's ``MemTotal`` in bytes.
    """

    cgroup: CgroupStats
    networks: Mapping[str, NetworkCounters]
    system_cpu_ns: int
    online_cpus: int
    host_memory: int


def clock_ticks() -> int:
    """``USER_HZ``: the unit of ``/proc/stat`` and ``cpuacct.stat``."""
    return os.sysconf("SC_CLK_TCK")


def online_cpus() -> int:
    """CPUs online now (Docker's ``sysconf(_SC_NPROCESSORS_ONLN)``)."""
    return os.sysconf("SC_NPROCESSORS_ONLN")


def _read_text(directory: str | None, name: str) -> str | None:
    if directory is None:
        return None
    try:
        with open(os.path.join(directory, name), encoding="ascii") as f:
            return f.read()
    except (OSError, UnicodeDecodeError):
        return None


def _read_int(directory: str | None, name: str) -> int | None:
    """A one-number file; ``None`` when missing, unparsable or ``max``."""
    text = _read_text(directory, name)
    try:
        return int(text.strip()) if text is not None else None
    except ValueError:
        return None


def _read_map(directory: str | None, name: str) -> dict[str, int]:
    """A ``key value`` per line file (``memory.stat``, ``cpu.stat``...)."""
    values = {}
    for line in (_read_text(directory, name) or "").splitlines():
        key, _, value = line.partition(" ")
        try:
            values[key] = int(value)
        except ValueError:
            continue
    return values


def _cpu_v1(cpuacct: str, cpu: str | None, ticks: int) -> CpuUsage:
    times = _read_map(cpuacct, "cpuacct.stat")
    per_cpu = (_read_text(cpuacct, "cpuacct.usage_percpu") or "").split()
    throttling = _read_map(cpu, "cpu.stat")
    return CpuUsage(
        total_ns=_read_int(cpuacct, "cpuacct.usage") or 0,
        per_cpu_ns=tuple(int(v) for v in per_cpu if v.isdigit()),
        kernel_ns=times.get("system", 0) * NS // ticks,
        user_ns=times.get("user", 0) * NS // ticks,
        periods=throttling.get("nr_periods", 0),
        throttled_periods=throttling.get("nr_throttled", 0),
        throttled_ns=throttling.get("throttled_time", 0),
    )


def _cpu_v2(directory: str) -> CpuUsage:
    stat = _read_map(directory, "cpu.stat")
    return CpuUsage(
        total_ns=stat.get("usage_usec", 0) * 1000,
        kernel_ns=stat.get("system_usec", 0) * 1000,
        user_ns=stat.get("user_usec", 0) * 1000,
        periods=stat.get("nr_periods", 0),
        throttled_periods=stat.get("nr_throttled", 0),
        throttled_ns=stat.get("throttled_usec", 0) * 1000,
    )


def _memory_v1(directory: str) -> MemoryUsage:
    limit = _read_int(directory, "memory.limit_in_bytes")
    return MemoryUsage(
        usage=_read_int(directory, "memory.usage_in_bytes") or 0,
        max_usage=_read_int(directory, "memory.max_usage_in_bytes"),
        limit=limit if limit is not None and limit < V1_UNLIMITED else None,
        failcnt=_read_int(directory, "memory.failcnt"),
        stat=_read_map(directory, "memory.stat"),
    )


def _memory_v2(directory: str) -> MemoryUsage:
    return MemoryUsage(
        usage=_read_int(directory, "memory.current") or 0,
        limit=_read_int(directory, "memory.max"),  # "max" reads as None
        stat=_read_map(directory, "memory.stat"),
    )


def _blkio_rows(text: str) -> tuple[BlkioEntry, ...]:
    """``8:0 Read 4096`` rows (the ``Total`` line has no device and is skipped)."""
    rows = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) != 3 or ":" not in fields[0]:
            continue
        major, _, minor = fields[0].partition(":")
        try:
            rows.append(BlkioEntry(int(major), int(minor), fields[1], int(fields[2])))
        except ValueError:
            continue
    return tuple(rows)


def _blkio_v1(directory: str, name: str) -> tuple[BlkioEntry, ...]:
    """The first policy with rows: CFQ and BFQ files exist but stay empty on other schedulers."""
    for prefix in _BLKIO_POLICIES:
        rows = _blkio_rows(_read_text(directory, prefix + name) or "")
        if rows:
            return rows
    return ()


def _io_v2(directory: str) -> tuple[tuple[BlkioEntry, ...], tuple[BlkioEntry, ...]]:
    """``io.stat`` (``8:0 rbytes=1 wbytes=2 rios=3 wios=4 ...``) as bytes and ops rows.

    The operations are lower case ``read``/``write``, as Docker writes them on v2.
    """
    service_bytes, serviced = [], []
    for line in (_read_text(directory, "io.stat") or "").splitlines():
        device, *pairs = line.split()
        major, _, minor = device.partition(":")
        try:
            values = {k: int(v) for k, _, v in (p.partition("=") for p in pairs)}
            dev = (int(major), int(minor))
        except ValueError:
            continue
        for op in ("read", "write"):
            service_bytes.append(BlkioEntry(*dev, op, values.get(op[0] + "bytes", 0)))
            serviced.append(BlkioEntry(*dev, op, values.get(op[0] + "ios", 0)))
    return tuple(service_bytes), tuple(serviced)


def read_stats(dirs: CgroupDirs, ticks: int | None = None) -> CgroupStats:
    """Read one cgroup's usage; v1 controllers first, the v2 directory for the rest.

    :param ticks: ``USER_HZ`` (default: this host's).
    """
    v1, unified = dirs.v1, dirs.unified
    if "cpuacct" in v1:
        cpu = _cpu_v1(v1["cpuacct"], v1.get("cpu"), ticks or clock_ticks())
    elif unified is not None:
        cpu = _cpu_v2(unified)
    else:
        cpu = CpuUsage()
    if "memory" in v1:
        memory = _memory_v1(v1["memory"])
    elif unified is not None:
        memory = _memory_v2(unified)
    else:
        memory = MemoryUsage()
    pids_dir = v1.get("pids", unified)
    if "blkio" in v1:
        blkio = v1["blkio"]
        service_bytes = _blkio_v1(blkio, "io_service_bytes_recursive")
        serviced = _blkio_v1(blkio, "io_serviced_recursive")
    elif unified is not None:
        service_bytes, serviced = _io_v2(unified)
    else:
        service_bytes, serviced = (), ()
    return CgroupStats(
        cpu=cpu,
        memory=memory,
        pids_current=_read_int(pids_dir, "pids.current") or 0,
        pids_limit=_read_int(pids_dir, "pids.max"),
        io_service_bytes=service_bytes,
        io_serviced=serviced,
    )


def network_counters(pid: int, proc: str = "/proc") -> dict[str, NetworkCounters]:
    """Interfaces of the network namespace ``pid`` lives in, without ``lo``.

    ``/proc/<pid>/net/dev`` shows the process's own namespace, so no
    ``setns`` is needed.  Columns: 8 receive counters, then 8 transmit ones.
    """
    try:
        with open(os.path.join(proc, str(pid), "net", "dev"), encoding="ascii") as f:
            lines = f.read().splitlines()[2:]
    except OSError:
        return {}
    found = {}
    for line in lines:
        name, _, rest = line.partition(":")
        name, fields = name.strip(), rest.split()
        if name == "lo" or len(fields) < 12 or not all(v.isdigit() for v in fields[:12]):
            continue
        rx, tx = [int(v) for v in fields[0:4]], [int(v) for v in fields[8:12]]
        found[name] = NetworkCounters(*rx, *tx)
    return found


def system_cpu_ns(path: str = "/proc/stat", ticks: int | None = None) -> int:
    """The host's CPU time since boot in ns, as Docker computes ``system_cpu_usage``.

    The first seven fields of the ``cpu`` line (user, nice, system, idle,
    iowait, irq, softirq; not steal or guest), in ``USER_HZ`` ticks
    (moby ``daemon/stats/collector_unix.go``).
    """
    with open(path, encoding="ascii") as f:
        fields = f.readline().split()
    if not fields or fields[0] != "cpu":
        return 0
    return sum(int(v) for v in fields[1:8]) * NS // (ticks or clock_ticks())


def read_usage(
    pid: int,
    relative: str,
    root: str = CGROUP_ROOT,
    proc: str = "/proc",
    *,
    own_network: bool = True,
) -> Usage | None:
    """Everything about one container, or ``None`` when it has no process any more.

    :param pid: the container's init pid (host view); ``0`` if unknown, then
        the cgroup is found from ``relative``.
    :param relative: the container's ``cgroupsPath`` (``podapi/<id>``), which
        runc nests under our own cgroup in every hierarchy.
    :param own_network: false for ``--network host``: the host's interfaces
        are not the container's, so none are reported (as Docker and Podman).
    """
    try:
        dirs = (
            process_cgroup_dirs(pid, root, proc)
            if pid > 0
            else relative_cgroup_dirs(relative, root)
        )
    except OSError:
        return None  # /proc/<pid> is gone: the process has exited
    if not any(os.path.isdir(d) for d in (*dirs.v1.values(), dirs.unified) if d is not None):
        return None
    return Usage(
        cgroup=read_stats(dirs),
        networks=network_counters(pid, proc) if pid > 0 and own_network else {},
        system_cpu_ns=system_cpu_ns(os.path.join(proc, "stat")),
        online_cpus=online_cpus(),
        host_memory=host.memory(os.path.join(proc, "meminfo")).total,
    )
