"""Where containers' and pods' cgroups go, and which of them go away with them.

As Podman with ``cgroup_manager = "cgroupfs"`` (``libpod/runtime_ctr.go``,
``runtime_pod_linux.go``, 4.3.1): a container's cgroup is ``<parent>/<id>``;
its parent is the one the create body gave (Docker ``HostConfig.CgroupParent``,
libpod ``cgroup_parent``), else its pod's cgroup ``<pod parent>/<pod id>``,
else the default.  Podman's default is ``/libpod_parent`` at the hierarchy
roots; ours, :data:`DEFAULT_PARENT`, and every parent a client gives are
*relative*: runc nests them under the server's own cgroup in each hierarchy
(``oci/cgroups.py``), so nothing is made at a hierarchy's root and a server
in a container or a systemd unit stays inside its own cgroup.

runc creates the parents it needs and removes only the container's own
cgroup; the empty parents are removed after it, except a pod's cgroup, which
lives as long as its pod.
"""

from collections.abc import Iterable

from podapi.engine.state.containers import ContainerRecord
from podapi.engine.state.pods import PodRecord
from podapi.errors import InvalidArgument
from podapi.oci import cgroups

#: The parent of a container's cgroup when neither its create body nor a pod names one.
DEFAULT_PARENT = "podapi"


def check_parent(given: str) -> str:
    """A cgroup parent as a client wrote it (``/custom``, ``custom/sub``), as a path
    relative to the server's cgroup; ``""`` when none was given.

    :raises InvalidArgument: a ``..`` component (it would leave the server's
        cgroup) or a systemd slice, which cgroupfs refuses as Podman does.
    """
    parts = [p for p in given.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise InvalidArgument(
            f"invalid cgroup parent {given!r}: it must not contain '..'",
            cause="invalid argument",
        )
    if parts and parts[-1].endswith(".slice"):
        raise InvalidArgument(
            "systemd slice received as cgroup parent when using cgroupfs: invalid argument",
            cause="invalid argument",
        )
    return "/".join(parts)


def container_cgroup(record: ContainerRecord) -> str:
    """The container's cgroup, relative to the server's (its ``cgroupsPath``)."""
    return f"{record.spec.cgroup_parent or DEFAULT_PARENT}/{record.id}"


def pod_parent(pod: PodRecord) -> str:
    """The parent of the pod's cgroup (Podman's pod ``CgroupParent``)."""
    return pod.spec.cgroup_parent or DEFAULT_PARENT


def pod_cgroup(pod: PodRecord) -> str:
    """The pod's cgroup, which its containers' cgroups are made under (``CgroupPath``)."""
    return f"{pod_parent(pod)}/{pod.id}"


def shown(relative: str) -> str:
    """A relative cgroup as inspect shows it (``/podapi/<id>``, as Podman's ``CgroupPath``)."""
    return f"/{relative}" if relative else ""


def container_leftovers(record: ContainerRecord) -> list[str]:
    """The container's cgroup, then its parents, deepest first, up to its pod's cgroup
    (which goes with the pod)."""
    return _and_parents(container_cgroup(record), keep=record.spec.pod)


def pod_leftovers(pod: PodRecord) -> list[str]:
    """The pod's cgroup, then its parents, deepest first."""
    return _and_parents(pod_cgroup(pod))


def _and_parents(path: str, keep: str = "") -> list[str]:
    """``a/b/c``, ``a/b``, ``a``; stopping before a cgroup named ``keep``."""
    found = []
    while path and not (keep and path.rpartition("/")[2] == keep):
        found.append(path)
        path = path.rpartition("/")[0]
    return found


def remove_empty(paths: Iterable[str], root: str = cgroups.CGROUP_ROOT) -> None:
    """rmdir each cgroup (relative to ours) that is empty, in order (blocking)."""
    for path in paths:
        cgroups.remove_empty(path, root)
