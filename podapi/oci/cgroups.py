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
