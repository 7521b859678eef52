"""cgroup hierarchy facts: v1 (legacy), v2 (unified) or hybrid, and the controllers.

The mode decides the OCI runtime (crun refuses hybrid hierarchies, runc
copes).  Detection follows crun's own rule (``libcrun/cgroup.c``): cgroup2 at
the root is unified; a tmpfs root with a cgroup2 ``unified`` mount is hybrid;
otherwise legacy v1.  :func:`cgroup_dirs` finds where one cgroup lives in
every hierarchy, which is where stats are read from (``oci/cgroupstats.py``).
"""

import enum
import os
from collections.abc import Iterable, Mapping

from attrs import frozen

from podapi.oci.host import Mount, mounts

CGROUP_ROOT = "/sys/fs/cgroup"


class CgroupMode(enum.Enum):
    """The three shapes a cgroup filesystem can have."""

    LEGACY = "legacy"
    HYBRID = "hybrid"
    UNIFIED = "unified"

    @property
    def version(self) -> str:
        """Podman's ``cgroupVersion`` (``v1`` for legacy and hybrid)."""
        return "v2" if self is CgroupMode.UNIFIED else "v1"


def cgroup_mode(table: Iterable[Mount] | None = None, root: str = CGROUP_ROOT) -> CgroupMode:
    """Classify the cgroup mounts of this host."""
    by_point = {m.mount_point: m.fs_type for m in (table if table is not None else mounts())}
    if by_point.get(root) == "cgroup2":
        return CgroupMode.UNIFIED
    if by_point.get(os.path.join(root, "unified")) == "cgroup2":
        return CgroupMode.HYBRID
    return CgroupMode.LEGACY


def controllers(
    mode: CgroupMode, root: str = CGROUP_ROOT, proc_cgroups: str = "/proc/cgroups"
) -> list[str]:
    """The controllers containers can use: the v2 root's list, or the mounted v1 ones."""
    try:
        if mode is CgroupMode.UNIFIED:
            with open(os.path.join(root, "cgroup.controllers"), encoding="ascii") as f:
                return f.read().split()
        with open(proc_cgroups, encoding="ascii") as f:
            rows = [line.split() for line in f if not line.startswith("#")]
    except OSError:
        return []
    # Columns: subsys_name hierarchy num_cgroups enabled; hierarchy 0 = not mounted on v1.
    return [row[0] for row in rows if len(row) == 4 and row[1] != "0" and row[3] == "1"]


def own_cgroups(path: str = "/proc/self/cgroup") -> dict[str, str]:
    """This process's cgroup per hierarchy: ``{"memory": "/process_api/x", "": "/", ...}``.

    v1 hierarchies are keyed by their controllers (``cpu,cpuacct``) or
    ``name=systemd``; the v2 hierarchy by ``""``.  Any ``/proc/<pid>/cgroup``
    reads the same way.
    """
    found: dict[str, str] = {}
    with open(path, encoding="ascii") as f:
        for line in f:
            _, controllers, cgroup = line.rstrip("\n").split(":", 2)
            found[controllers] = cgroup
    return found


def mount_dir(key: str, root: str = CGROUP_ROOT) -> str | None:
    """Where the hierarchy a ``/proc/<pid>/cgroup`` key names is mounted, if it is.

    ``""`` is the v2 tree: ``<root>/unified`` on hybrid hosts, ``<root>``
    itself on unified ones.  A v1 hierarchy is mounted under its name
    (``cpu,cpuacct``), often with a symlink per controller (``cpu``).
    """
    if key == "":
        unified = os.path.join(root, "unified")
        candidates = [unified if os.path.isdir(unified) else root]
    else:
        name = key.removeprefix("name=")
        candidates = [os.path.join(root, name)]
        candidates += [os.path.join(root, c) for c in name.split(",") if c != name]
    return next((c for c in candidates if os.path.isdir(c)), None)


def hierarchy_dirs(relative: str, root: str = CGROUP_ROOT) -> list[str]:
    """Where a cgroup given *relative* to ours lives in every hierarchy.

    With a relative ``cgroupsPath`` runc nests the container under the
    runtime's own cgroup, which differs per hierarchy on a hybrid v1 host.
    """
    dirs = []
    for key, own in own_cgroups().items():
        mount = mount_dir(key, root)
        if mount is not None:
            dirs.append(os.path.normpath(os.path.join(mount, own.lstrip("/"), relative)))
    return dirs


@frozen
class CgroupDirs:
    """Where one cgroup lives: a directory per v1 controller, and in the v2 tree.

    :ivar v1: controller name (``memory``, ``cpuacct``...) -> directory, for the
        controllers mounted on v1 hierarchies (none on a unified host).
    :ivar unified: the cgroup's v2 directory (``None`` on a legacy host).
    """

    v1: Mapping[str, str]
    unified: str | None


def cgroup_dirs(
    table: Mapping[str, str], root: str = CGROUP_ROOT, relative: str = ""
) -> CgroupDirs:
    """The directories of the cgroups a ``/proc/<pid>/cgroup`` table names (and ``relative``).

    Named hierarchies (``name=systemd``) carry no controller and are left out.
    """
    v1: dict[str, str] = {}
    unified = None
    for key, path in table.items():
        mount = mount_dir(key, root)
        if mount is None or key.startswith("name="):
            continue
        directory = os.path.normpath(os.path.join(mount, path.lstrip("/"), relative))
        if key == "":
            unified = directory
        else:
            v1.update(dict.fromkeys(key.split(","), directory))
    return CgroupDirs(v1=v1, unified=unified)


def process_cgroup_dirs(pid: int, root: str = CGROUP_ROOT, proc: str = "/proc") -> CgroupDirs:
    """The cgroup directories of a running process (``OSError`` once it is gone)."""
    return cgroup_dirs(own_cgroups(os.path.join(proc, str(pid), "cgroup")), root)


def relative_cgroup_dirs(relative: str, root: str = CGROUP_ROOT) -> CgroupDirs:
    """The directories of a cgroup created *relative* to ours (a container's ``podapi/<id>``)."""
    return cgroup_dirs(own_cgroups(), root, relative)


def oom_killed(relative: str, root: str = CGROUP_ROOT) -> bool:
    """Whether the kernel OOM-killed a process in the cgroup (read before it is deleted)."""
    for directory in hierarchy_dirs(relative, root):
        for name, key in (("memory.oom_control", "oom_kill"), ("memory.events", "oom_kill")):
            try:
                with open(os.path.join(directory, name), encoding="ascii") as f:
                    for line in f:
                        field, _, value = line.partition(" ")
                        if field == key and int(value) > 0:
                            return True
            except OSError:
                continue
    return False


def remove_empty(relative: str, root: str = CGROUP_ROOT) -> None:
    """rmdir a cgroup (relative to ours) in every hierarchy, if it is empty.

    runc removes a container's own cgroup but not the parents it created.
    """
    for directory in hierarchy_dirs(relative, root):
        try:
            os.rmdir(directory)
        except OSError:
            continue
