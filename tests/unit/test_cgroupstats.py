"""Container stats from fake cgroup trees (v1, v2, hybrid) and fake /proc; Podman's numbers."""

from pathlib import Path

import pytest
from attrs import evolve

from podapi.engine.containers import run_config
from podapi.engine.containerspec import ContainerSpec
from podapi.engine.state.containers import EXITED, RUNNING, ContainerRecord
from podapi.engine.stats import ContainerStats, Sample
from podapi.http.both.stats import cpu_stats, docker_stats
from podapi.oci.cgroups import cgroup_dirs, mount_dir, process_cgroup_dirs
from podapi.oci.cgroupstats import (
    BlkioEntry,
    CgroupStats,
    CpuUsage,
    MemoryUsage,
    NetworkCounters,
    Usage,
    network_counters,
    read_stats,
    read_usage,
    system_cpu_ns,
)
from podapi.oci.spec import Resources

CID = "c" * 64
V1_UNLIMITED = "9223372036854771712"
PID = 4242
NET_DEV = """\
Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     100       2    0    0    0     0          0         0      100       2    0    0    0     0       0          0
  eth0:    1500      12    1    2    0     0          0         0      700       7    3    4    0     0       0          0
"""  # noqa: E501
PROC_STAT = "cpu  100 5 50 1000 20 1 2 7 0 0\ncpu0 50 2 25 500 10 0 1 3 0 0\n"
MEMINFO = "MemTotal:        2048000 kB\nMemFree:          100000 kB\n"


def write(directory: Path, files: dict[str, str]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text)


def fake_proc(tmp_path: Path, cgroup_lines: str) -> Path:
    """A /proc with one process (PID): its cgroup table and network, the host's stat and memory."""
    proc = tmp_path / "proc"
    write(proc / str(PID), {"cgroup": cgroup_lines})
    write(proc / str(PID) / "net", {"dev": NET_DEV})
    write(proc, {"stat": PROC_STAT, "meminfo": MEMINFO})
    return proc


V1_CPU = {
    "cpuacct.usage": "5000000000\n",
    "cpuacct.usage_percpu": "3000000000 2000000000 \n",
    "cpuacct.stat": "user 300\nsystem 150\n",
}
V1_THROTTLING = {"cpu.stat": "nr_periods 10\nnr_throttled 3\nthrottled_time 4500\n"}
V1_MEMORY = {
    "memory.usage_in_bytes": "856064\n",
    "memory.max_usage_in_bytes": "4341760\n",
    "memory.limit_in_bytes": "67108864\n",
    "memory.failcnt": "2\n",
    "memory.stat": "cache 4096\nrss 49152\ntotal_inactive_file 8192\n",
}
V1_PIDS = {"pids.current": "2\n", "pids.max": "2048\n"}
V1_BLKIO = {
    # CFQ/BFQ files exist but stay empty unless the device uses that scheduler.
    "blkio.bfq.io_service_bytes_recursive": "Total 0\n",
    "blkio.throttle.io_service_bytes_recursive": (
        "8:0 Read 4096\n8:0 Write 8192\n8:0 Sync 0\n8:0 Total 12288\nTotal 12288\n"
    ),
    "blkio.throttle.io_serviced_recursive": "8:0 Read 1\n8:0 Write 2\nTotal 3\n",
}
V2_FILES = {
    "cpu.stat": (
        "usage_usec 5000000\nuser_usec 3000000\nsystem_usec 2000000\n"
        "nr_periods 10\nnr_throttled 3\nthrottled_usec 45\n"
    ),
    "memory.current": "1048576\n",
    "memory.max": "max\n",
    "memory.stat": "anon 524288\nfile 4096\ninactive_file 4096\n",
    "pids.current": "3\n",
    "pids.max": "max\n",
    "io.stat": "8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n",
}
V1_TABLE = """\
9:name=systemd:/podapi/c1
8:pids:/podapi/c1
7:blkio:/podapi/c1
4:memory:/process_api/x/podapi/c1
2:cpuacct:/podapi/c1
1:cpu:/podapi/c1
"""


def v1_tree(root: Path) -> None:
    """A legacy host's container cgroup; memory nests under another parent, as here."""
    write(root / "cpuacct/podapi/c1", V1_CPU)
    write(root / "cpu/podapi/c1", V1_THROTTLING)
    write(root / "memory/process_api/x/podapi/c1", V1_MEMORY)
    write(root / "pids/podapi/c1", V1_PIDS)
    write(root / "blkio/podapi/c1", V1_BLKIO)
    (root / "systemd/podapi/c1").mkdir(parents=True)


# --- finding the directories ------------------------------------------------------------


def test_v1_directories_follow_each_hierarchys_path(tmp_path: Path) -> None:
    """Each controller's directory comes from its own line; named hierarchies are skipped."""
    root = tmp_path / "cgroup"
    v1_tree(root)
    dirs = process_cgroup_dirs(PID, str(root), str(fake_proc(tmp_path, V1_TABLE)))
    assert dirs.v1["memory"] == str(root / "memory/process_api/x/podapi/c1")
    assert dirs.v1["cpuacct"] == str(root / "cpuacct/podapi/c1")
    assert "name=systemd" not in dirs.v1 and "systemd" not in dirs.v1
    assert dirs.unified is None


def test_combined_hierarchy_and_relative_path(tmp_path: Path) -> None:
    """``cpu,cpuacct`` serves both controllers; a relative path nests under our own cgroup."""
    root = tmp_path / "cgroup"
    (root / "cpu,cpuacct/srv/podapi/c1").mkdir(parents=True)
    (root / "unified/srv/podapi/c1").mkdir(parents=True)
    dirs = cgroup_dirs({"cpu,cpuacct": "/srv", "": "/srv"}, str(root), "podapi/c1")
    assert dirs.v1 == {
        "cpu": str(root / "cpu,cpuacct/srv/podapi/c1"),
        "cpuacct": str(root / "cpu,cpuacct/srv/podapi/c1"),
    }
    assert dirs.unified == str(root / "unified/srv/podapi/c1")


def test_mount_dir_falls_back_to_a_controller_symlink(tmp_path: Path) -> None:
    """Without a ``cpu,cpuacct`` directory, the per-controller name is used; unmounted is None."""
    (tmp_path / "cpuacct").mkdir()
    assert mount_dir("cpu,cpuacct", str(tmp_path)) == str(tmp_path / "cpuacct")
    assert mount_dir("memory", str(tmp_path)) is None
    assert mount_dir("", str(tmp_path)) == str(tmp_path)  # unified host: the root itself


# --- reading cgroup v1, v2 and hybrid --------------------------------------------------


def test_cgroup_v1_files(tmp_path: Path) -> None:
    """v1: cpuacct in ns and ticks, throttling, memory, pids, and the blkio policy with rows."""
    root = tmp_path / "cgroup"
    v1_tree(root)
    dirs = process_cgroup_dirs(PID, str(root), str(fake_proc(tmp_path, V1_TABLE)))
    stats = read_stats(dirs, ticks=100)
    assert stats.cpu == CpuUsage(
        total_ns=5_000_000_000,
        per_cpu_ns=(3_000_000_000, 2_000_000_000),
        kernel_ns=1_500_000_000,
        user_ns=3_000_000_000,
        periods=10,
        throttled_periods=3,
        throttled_ns=4500,
    )
    assert stats.memory == MemoryUsage(
        usage=856064,
        max_usage=4341760,
        limit=67108864,
        failcnt=2,
        stat={"cache": 4096, "rss": 49152, "total_inactive_file": 8192},
    )
    assert (stats.pids_current, stats.pids_limit) == (2, 2048)
    assert stats.io_service_bytes == (
        BlkioEntry(8, 0, "Read", 4096),
        BlkioEntry(8, 0, "Write", 8192),
        BlkioEntry(8, 0, "Sync", 0),
        BlkioEntry(8, 0, "Total", 12288),
    )
    assert stats.io_serviced == (BlkioEntry(8, 0, "Read", 1), BlkioEntry(8, 0, "Write", 2))


def test_cgroup_v1_unlimited(tmp_path: Path) -> None:
    """v1's page-counter maximum and ``pids.max`` = max both read as no limit."""
    memory = tmp_path / "memory/c1"
    write(memory, {**V1_MEMORY, "memory.limit_in_bytes": V1_UNLIMITED + "\n"})
    pids = tmp_path / "pids/c1"
    write(pids, {"pids.current": "1\n", "pids.max": "max\n"})
    stats = read_stats(cgroup_dirs({"memory": "/c1", "pids": "/c1"}, str(tmp_path)))
    assert stats.memory.limit is None
    assert stats.memory.usage == 856064
    assert (stats.pids_current, stats.pids_limit) == (1, None)


def test_cgroup_v2_files(tmp_path: Path) -> None:
    """v2 (cgroup2 at the root): usec to ns, ``max`` limits, io.stat as read/write rows."""
    write(tmp_path / "podapi/c1", V2_FILES)
    stats = read_stats(cgroup_dirs({"": "/podapi/c1"}, str(tmp_path)))
    assert stats.cpu == CpuUsage(
        total_ns=5_000_000_000,
        kernel_ns=2_000_000_000,
        user_ns=3_000_000_000,
        periods=10,
        throttled_periods=3,
        throttled_ns=45_000,
    )
    assert stats.memory == MemoryUsage(
        usage=1048576, limit=None, stat={"anon": 524288, "file": 4096, "inactive_file": 4096}
    )
    assert (stats.pids_current, stats.pids_limit) == (3, None)
    assert stats.io_service_bytes == (
        BlkioEntry(8, 0, "read", 4096),
        BlkioEntry(8, 0, "write", 8192),
    )
    assert stats.io_serviced == (BlkioEntry(8, 0, "read", 1), BlkioEntry(8, 0, "write", 2))


def test_cgroup_v2_memory_limit(tmp_path: Path) -> None:
    """A numeric ``memory.max`` is the limit."""
    write(tmp_path / "c1", {**V2_FILES, "memory.max": "67108864\n"})
    assert read_stats(cgroup_dirs({"": "/c1"}, str(tmp_path))).memory.limit == 67108864


def test_hybrid_reads_v1_controllers_and_v2_for_the_rest(tmp_path: Path) -> None:
    """Hybrid: cpu and memory from v1 even though unified has files; pids only on v2."""
    root = tmp_path / "cgroup"
    write(root / "cpuacct/podapi/c1", V1_CPU)
    write(root / "memory/podapi/c1", V1_MEMORY)
    write(root / "unified/podapi/c1", V2_FILES)
    table = "4:memory:/podapi/c1\n2:cpuacct:/podapi/c1\n0::/podapi/c1\n"
    dirs = process_cgroup_dirs(PID, str(root), str(fake_proc(tmp_path, table)))
    assert dirs.unified == str(root / "unified/podapi/c1")
    stats = read_stats(dirs, ticks=100)
    assert stats.cpu.per_cpu_ns == (3_000_000_000, 2_000_000_000)  # only v1 has per-CPU times
    assert stats.memory.usage == 856064 and stats.memory.limit == 67108864
    assert (stats.pids_current, stats.pids_limit) == (3, None)  # from unified
    assert stats.io_service_bytes[0] == BlkioEntry(8, 0, "read", 4096)  # io.stat


def test_missing_files_read_as_unknown(tmp_path: Path) -> None:
    """Empty cgroup directories (controllers not there, files gone) give zeros, not errors."""
    for name in ("cpuacct", "cpu", "memory", "pids", "blkio"):
        (tmp_path / name / "c1").mkdir(parents=True)
    table = dict.fromkeys(("cpuacct", "cpu", "memory", "pids", "blkio"), "/c1")
    assert read_stats(cgroup_dirs(table, str(tmp_path)), ticks=100) == CgroupStats()
    assert read_stats(cgroup_dirs({}, str(tmp_path))) == CgroupStats()


# --- /proc: network, host CPU, the whole reading ----------------------------------------


def test_network_counters_skip_loopback(tmp_path: Path) -> None:
    """``/proc/<pid>/net/dev``: 4 receive and 4 transmit counters per interface, no ``lo``."""
    proc = fake_proc(tmp_path, "")
    assert network_counters(PID, str(proc)) == {
        "eth0": NetworkCounters(1500, 12, 1, 2, 700, 7, 3, 4)
    }
    assert network_counters(PID + 1, str(proc)) == {}


def test_system_cpu_is_the_first_seven_fields_in_ns(tmp_path: Path) -> None:
    """Docker's system_cpu_usage: user..softirq (not steal) ticks times 1e9 / CLK_TCK."""
    write(tmp_path, {"stat": PROC_STAT})
    assert system_cpu_ns(str(tmp_path / "stat"), ticks=100) == (
        100 + 5 + 50 + 1000 + 20 + 1 + 2
    ) * (10**7)


def test_read_usage_of_a_process(tmp_path: Path) -> None:
    """The whole reading: cgroups via /proc/<pid>/cgroup, own network, host CPU and memory."""
    root = tmp_path / "cgroup"
    v1_tree(root)
    proc = fake_proc(tmp_path, V1_TABLE)
    usage = read_usage(PID, "podapi/c1", str(root), str(proc))
    assert usage is not None
    assert usage.cgroup.memory.usage == 856064
    assert list(usage.networks) == ["eth0"]
    assert usage.host_memory == 2048000 * 1024
    assert usage.system_cpu_ns > 0 and usage.online_cpus >= 1
    host_network = read_usage(PID, "podapi/c1", str(root), str(proc), own_network=False)
    assert host_network is not None and host_network.networks == {}


def test_read_usage_of_a_gone_process_is_none(tmp_path: Path) -> None:
    """No /proc/<pid> (exited) or no cgroup directory left: nothing to report."""
    root = tmp_path / "cgroup"
    proc = fake_proc(tmp_path, V1_TABLE)
    assert read_usage(PID + 1, "podapi/c1", str(root), str(proc)) is None
    assert read_usage(PID, "podapi/c1", str(root), str(proc)) is None  # no directories


# --- Podman's numbers and Docker's shape -------------------------------------------------


def record(state: str = RUNNING, memory: int | None = None) -> ContainerRecord:
    spec = ContainerSpec(image="busybox", command=("sh",), resources=Resources(memory=memory))
    return ContainerRecord(
        id=CID,
        name="web",
        image_id="i" * 64,
        image_name="busybox",
        created=1,
        spec=spec,
        run=run_config(spec, {}, CID, CID[:12]),
        state=state,
        pid=PID,
        started_at=1_000 * 10**9,
    )


def sample(read_s: float, cpu_s: float, memory: int | None = None) -> Sample:
    cgroup = CgroupStats(
        cpu=CpuUsage(total_ns=int(cpu_s * 10**9), per_cpu_ns=(1, 2), kernel_ns=10),
        memory=MemoryUsage(usage=512 * 1024**2, limit=None),
        pids_current=2,
        io_service_bytes=(BlkioEntry(8, 0, "Read", 10), BlkioEntry(8, 0, "Write", 20)),
    )
    usage = Usage(
        cgroup=cgroup,
        networks={"eth0": NetworkCounters(rx_bytes=100, tx_bytes=50)},
        system_cpu_ns=123,
        online_cpus=2,
        host_memory=2 * 1024**3,
    )
    return Sample(record(memory=memory), read_ns=int(read_s * 10**9), usage=usage)


def test_podman_numbers_from_the_start_then_between_samples() -> None:
    """CPU % since the start, then since the previous sample; memory capped to the host."""
    first = ContainerStats.of(sample(1_010, 1.0), None)  # 1 s of CPU in 10 s
    assert first.cpu == pytest.approx(10.0) and first.avg_cpu == pytest.approx(10.0)
    assert first.mem_limit == 2 * 1024**3 and first.mem_percent == pytest.approx(25.0)
    assert (first.block_input, first.block_output) == (10, 20)
    assert (first.net_input, first.net_output) == (100, 50)
    assert first.uptime_ns == first.duration_ns == first.cpu_ns == 10**9
    second = ContainerStats.of(sample(1_020, 6.0), first)  # 5 s of CPU in the next 10 s
    assert second.cpu == pytest.approx(50.0)
    assert second.avg_cpu == pytest.approx(30.0)
    restarted = ContainerStats.of(sample(1_030, 0.5), second)  # less CPU: a new cgroup
    assert restarted.cpu == pytest.approx(0.5 / 30 * 100)


def test_podman_numbers_use_the_containers_own_limit() -> None:
    """``--memory 1g`` is the limit (under the host's 2 GiB)."""
    stats = ContainerStats.of(sample(1_010, 1.0, memory=1024**3), None)
    assert stats.mem_limit == 1024**3 and stats.mem_percent == pytest.approx(50.0)


def test_stopped_container_reports_zeros() -> None:
    """No process: Podman's zero stats, and Docker's empty sample with name and id."""
    stopped = Sample(evolve(record(), state=EXITED, pid=0), read_ns=5, usage=None)
    assert ContainerStats.of(stopped, None) == ContainerStats(container_id=CID, name="web")
    zeros = cpu_stats(None, 0.0)
    body = docker_stats(stopped, zeros, None, zeros, libpod=False)
    assert body["read"] == body["preread"] == "0001-01-01T00:00:00Z"
    assert body["memory_stats"] == {} and body["pids_stats"] == {}
    assert body["cpu_stats"]["cpu_usage"] == {
        "total_usage": 0,
        "usage_in_kernelmode": 0,
        "usage_in_usermode": 0,
    }
    assert (body["name"], body["id"]) == ("/web", CID)
    assert "networks" not in body


def test_docker_shape_per_dialect() -> None:
    """Compat: ``id`` and ``/name``; libpod: Podman's ``Id`` and bare name; limits omitted if 0."""
    current = sample(1_010, 1.0)
    cpu = cpu_stats(current, 10.0)
    assert cpu["online_cpus"] == 2 and cpu["system_cpu_usage"] == 123
    compat = docker_stats(current, cpu, None, cpu_stats(None, 0.0), libpod=False)
    assert compat["memory_stats"] == {"usage": 512 * 1024**2, "limit": 2 * 1024**3}
    assert compat["pids_stats"] == {"current": 2}
    assert compat["networks"]["eth0"]["rx_bytes"] == 100
    libpod = docker_stats(current, cpu, None, cpu_stats(None, 0.0), libpod=True)
    assert (libpod["name"], libpod["Id"]) == ("web", CID)
    assert "id" not in libpod
