"""cgroup hierarchy facts: v1 (legacy), v2 (unified) or hybrid, and the controllers.

The mode decides the OCI runtime (crun refuses hybrid hierarchies, runc
copes) and, later, where stats are read from.  Detection follows crun's own
rule (``libcrun/cgroup.c``): cgroup2 at the root is unified; a tmpfs root with a
cgroup2 ``unified`` mount is hybrid; otherwise legacy v1.
"""

import enum
import os
from collections.abc import Iterable

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
    ``name=systemd``; the v2 hierarchy by ``""``.
    """
    found: dict[str, str] = {}
    with open(path, encoding="ascii") as f:
        for line in f:
            _, controllers, cgroup = line.rstrip("\n").split(":", 2)
            found[controllers] = cgroup
    return found


def hierarchy_dirs(relative: str, root: str = CGROUP_ROOT) -> list[str]:
    """Where a cgroup given *relative* to ours lives in every hierarchy.

    With a relative ``cgroupsPath`` runc nests the container under the
    runtime's own cgroup, which differs per hierarchy (engine-recipes section 5).
    """
    dirs = []
    for key, own in own_cgroups().items():
        if key == "":
            mount = (
                os.path.join(root, "unified")
                if os.path.isdir(os.path.join(root, "unified"))
                else root
            )
        else:
            mount = os.path.join(root, key.removeprefix("name="))
        if os.path.isdir(mount):
            dirs.append(os.path.normpath(os.path.join(mount, own.lstrip("/"), relative)))
    return dirs


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
