"""Facts about the host read from /proc, /sys and /etc (cheap, in-memory kernel files).

These reads touch procfs/sysfs only (no disk I/O), so they are done inline;
anything that spawns a process lives in ``oci/probe.py`` and is cached.
"""

import os
import platform
import socket
from collections.abc import Iterable

from attrs import frozen

#: Python's machine names mapped to the GOARCH names Docker and Podman report.
GO_ARCH = {
    "x86_64": "amd64",
    "aarch64": "arm64",
    "armv7l": "arm",
    "armv6l": "arm",
    "i686": "386",
    "i386": "386",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
    "riscv64": "riscv64",
}

#: Filesystem types as Podman names them in ``Backing Filesystem``.
BACKING_FS = {"ext2": "extfs", "ext3": "extfs", "ext4": "extfs", "overlay": "overlayfs"}


def go_arch() -> str:
    """The GOARCH name of this machine (``amd64``, ``arm64``, ...)."""
    machine = platform.machine()
    return GO_ARCH.get(machine, machine)


@frozen
class OSRelease:
    """``/etc/os-release`` essentials."""

    id: str
    version_id: str
    codename: str
    pretty_name: str


def os_release(path: str = "/etc/os-release") -> OSRelease:
    """Parse ``os-release`` (missing file: ``linux`` with empty versions)."""
    values: dict[str, str] = {}
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                key, sep, value = line.strip().partition("=")
                if sep:
                    values[key] = value.strip().strip('"')
    except FileNotFoundError:
        pass
    return OSRelease(
        id=values.get("ID", "linux"),
        version_id=values.get("VERSION_ID", ""),
        codename=values.get("VERSION_CODENAME", ""),
        pretty_name=values.get("PRETTY_NAME", "Linux"),
    )


@frozen
class Memory:
    """Memory and swap in bytes."""

    total: int
    free: int
    swap_total: int
    swap_free: int


def memory(path: str = "/proc/meminfo") -> Memory:
    """Read ``/proc/meminfo``."""
    kib: dict[str, int] = {}
    with open(path, encoding="ascii") as f:
        for line in f:
            key, _, rest = line.partition(":")
            fields = rest.split()
            if fields:
                kib[key] = int(fields[0])
    return Memory(
        total=kib.get("MemTotal", 0) * 1024,
        free=kib.get("MemFree", 0) * 1024,
        swap_total=kib.get("SwapTotal", 0) * 1024,
        swap_free=kib.get("SwapFree", 0) * 1024,
    )


def uptime_seconds(path: str = "/proc/uptime") -> float:
    """Seconds since boot."""
    with open(path, encoding="ascii") as f:
        return float(f.read().split()[0])


def format_uptime(seconds: float) -> str:
    """Podman's uptime string: ``0h 6m 49.00s``."""
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{int(hours)}h {int(minutes)}m {secs:.2f}s"


@frozen
class CPUUtilization:
    """Percentages of CPU time since boot, as ``podman info`` shows them."""

    user: float
    system: float
    idle: float


def cpu_utilization(path: str = "/proc/stat") -> CPUUtilization:
    """Aggregate CPU time split from the ``cpu`` line of ``/proc/stat``."""
    with open(path, encoding="ascii") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    total = sum(fields) or 1
    user = fields[0] + fields[1]
    system = (
        fields[2] + (fields[5] if len(fields) > 5 else 0) + (fields[6] if len(fields) > 6 else 0)
    )
    idle = fields[3]
    return CPUUtilization(
        user=round(100 * user / total, 2),
        system=round(100 * system / total, 2),
        idle=round(100 * idle / total, 2),
    )


def hostname() -> str:
    """The host's name."""
    return socket.gethostname()


def kernel_release() -> str:
    """``uname -r``."""
    return os.uname().release


@frozen
class Mount:
    """One line of ``/proc/self/mountinfo`` (the fields we use)."""

    mount_point: str
    fs_type: str
    source: str
    options: str


def _unescape(path: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as octal.
    return (
        path.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
    )


def mounts(path: str = "/proc/self/mountinfo") -> list[Mount]:
    """Parse mountinfo."""
    result = []
    with open(path, encoding="utf-8", errors="surrogateescape") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fields = left.split()
            rfields = right.split()
            if len(fields) < 5 or len(rfields) < 2:
                continue
            result.append(
                Mount(
                    mount_point=_unescape(fields[4]),
                    fs_type=rfields[0],
                    source=_unescape(rfields[1]),
                    options=fields[5] if len(fields) > 5 else "",
                )
            )
    return result


def mount_for(path: str, table: Iterable[Mount]) -> Mount | None:
    """The mount that holds ``path`` (longest matching mount point, last wins)."""
    path = os.path.realpath(path)
    best: Mount | None = None
    for m in table:
        mp = m.mount_point
        inside = path == mp or path.startswith(mp.rstrip("/") + "/")
        if inside and (best is None or len(mp) >= len(best.mount_point)):
            best = m
    return best


def backing_filesystem(path: str) -> str:
    """The filesystem type under ``path``, named as Podman does (``extfs``, ``xfs``...)."""
    probe = path
    while not os.path.exists(probe) and probe not in ("", "/"):
        probe = os.path.dirname(probe)
    m = mount_for(probe or "/", mounts())
    if m is None:
        return "unknown"
    return BACKING_FS.get(m.fs_type, m.fs_type)


def kernel_filesystems(path: str = "/proc/filesystems") -> set[str]:
    """Filesystem types the kernel supports right now."""
    with open(path, encoding="ascii") as f:
        return {line.split()[-1] for line in f if line.strip()}


@frozen
class DiskSpace:
    """Bytes allocated to and used on the filesystem holding a path."""

    allocated: int
    used: int


def disk_space(path: str) -> DiskSpace:
    """``statvfs`` of ``path`` (or its nearest existing parent)."""
    while not os.path.exists(path) and path not in ("", "/"):
        path = os.path.dirname(path)
    st = os.statvfs(path or "/")
    allocated = st.f_blocks * st.f_frsize
    return DiskSpace(allocated=allocated, used=allocated - st.f_bfree * st.f_frsize)


def ip_forwarding() -> bool:
    """Whether the kernel forwards IPv4 packets."""
    try:
        with open("/proc/sys/net/ipv4/ip_forward", encoding="ascii") as f:
            return f.read().strip() == "1"
    except OSError:
        return False
