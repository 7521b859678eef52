"""Generating an OCI runtime ``config.json`` that runc 1.1.5 runs.

The shape follows what Podman 4.3.1 writes (``podman create`` + ``podman inspect``): the same
standard mounts in the same order, masked and read-only paths, a deny-all device
cgroup and ``process.user.umask``.  Everything host-specific (rlimits, the
converted seccomp profile, capabilities) is computed by the caller with
:mod:`podapi.oci.rlimits`, :mod:`podapi.oci.seccomp` and
:mod:`podapi.oci.capabilities`, so :func:`generate` is a pure function.
"""

import os.path
import re
from collections.abc import Mapping, Sequence
from typing import Any

from attrs import field, frozen

from podapi.errors import InvalidArgument
from podapi.oci import rlimits as _rlimits
from podapi.oci.capabilities import DEFAULT_CAPABILITIES

OCI_VERSION = "1.0.2-dev"

#: Where Podman mounts the init binary (``--init``) inside the container.
INIT_PATH = "/run/podman-init"

#: Podman's default ``/dev/shm`` size (``shm_size`` in containers.conf).
DEFAULT_SHM_SIZE = 64 * 1024 * 1024

NAMESPACE_TYPES = frozenset({"pid", "network", "mount", "ipc", "uts", "user", "cgroup"})

#: Podman's order; ``network`` without a path is a new, empty network namespace.
DEFAULT_NAMESPACES: tuple[tuple[str, str | None], ...] = (
    ("pid", None),
    ("network", None),
    ("ipc", None),
    ("uts", None),
    ("mount", None),
)

#: Podman's ``linux.maskedPaths`` (none when privileged).
MASKED_PATHS: tuple[str, ...] = (
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/fs/selinux",
    "/sys/dev/block",
)

#: Podman's ``linux.readonlyPaths`` (none when privileged).
READONLY_PATHS: tuple[str, ...] = (
    "/proc/asound",
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
)


def _default_rlimits() -> list[dict[str, Any]]:
    return _rlimits.clamp(())


@frozen
class Resources:
    """cgroup limits; ``None`` leaves a limit unset (the runtime default)."""

    #: ``memory.limit_in_bytes``.
    memory: int | None = None
    #: Memory plus swap (cgroup v1 ``memsw``); -1 for unlimited.
    memory_swap: int | None = None
    #: Soft limit (``memory.soft_limit_in_bytes``).
    memory_reservation: int | None = None
    cpu_shares: int | None = None
    cpu_quota: int | None = None
    cpu_period: int | None = None
    #: cpuset lists such as ``0-1``.
    cpuset_cpus: str | None = None
    cpuset_mems: str | None = None
    pids_limit: int | None = None


@frozen
class SpecInputs:
    """Everything :func:`generate` needs for one container."""

    #: Absolute path of the container's root filesystem (the overlay merged dir).
    rootfs: str
    #: ``process.args`` (before the init prefix).
    args: Sequence[str]
    readonly_rootfs: bool = False
    #: Set only with a UTS namespace (runc refuses a hostname without one).
    hostname: str = ""
    #: ``K=V`` strings, verbatim.
    env: Sequence[str] = ()
    cwd: str = "/"
    uid: int = 0
    gid: int = 0
    additional_gids: Sequence[int] = ()
    umask: int = 0o022
    #: Must match conmon's ``-t``.
    terminal: bool = False
    #: ``(rows, columns)`` the runtime gives the terminal before the process runs.
    console_size: tuple[int, int] | None = None
    #: ``CAP_...`` names for bounding, effective and permitted (see ``capabilities.effective``).
    capabilities: Sequence[str] = DEFAULT_CAPABILITIES
    no_new_privileges: bool = False
    #: OCI rlimit objects from :mod:`podapi.oci.rlimits`; default: NOFILE as we have it.
    rlimits: Sequence[Mapping[str, Any]] = field(factory=_default_rlimits)
    oom_score_adj: int | None = None
    privileged: bool = False
    #: Size of the standard ``/dev/shm`` tmpfs, in bytes.
    shm_size: int = DEFAULT_SHM_SIZE
    #: Fully formed OCI mounts after the standard set (hosts, hostname, resolv.conf,
    #: .containerenv, user binds/tmpfs/volumes); one on a standard destination replaces it.
    mounts: Sequence[Mapping[str, Any]] = ()
    #: ``(type, path)``; a path joins an existing namespace.  Host network: leave out
    #: ``network``.
    namespaces: Sequence[tuple[str, str | None]] = DEFAULT_NAMESPACES
    #: Relative paths nest under the runtime caller's cgroup in every hierarchy.
    cgroups_path: str | None = None
    resources: Resources = Resources()
    #: A converted profile from :mod:`podapi.oci.seccomp`; ``None`` for no filter.
    seccomp: Mapping[str, Any] | None = None
    sysctl: Mapping[str, str] = field(factory=dict)
    #: OCI ``linux.devices`` entries (``--device``); each is also allowed ``rwm`` in the
    #: device cgroup.
    devices: Sequence[Mapping[str, Any]] = ()
    #: OCI ``linux.resources.devices`` entries from :func:`device_cgroup_rule`
    #: (``--device-cgroup-rule``), after the default deny.
    device_rules: Sequence[Mapping[str, Any]] = ()
    annotations: Mapping[str, str] = field(factory=dict)
    #: Host path of an init binary (catatonit) to run as PID 1 (``--init``).
    init_path: str | None = None


def _standard_mounts(inputs: SpecInputs) -> list[dict[str, Any]]:
    sys_mode = "rw" if inputs.privileged else "ro"
    return [
        {
            "destination": "/proc",
            "type": "proc",
            "source": "proc",
            "options": ["nosuid", "noexec", "nodev"],
        },
        {
            "destination": "/dev",
            "type": "tmpfs",
            "source": "tmpfs",
            "options": ["nosuid", "noexec", "strictatime", "mode=755", "size=65536k"],
        },
        {
            "destination": "/sys",
            "type": "sysfs",
            "source": "sysfs",
            "options": ["nosuid", "noexec", "nodev", sys_mode],
        },
        {
            "destination": "/dev/pts",
            "type": "devpts",
            "source": "devpts",
            "options": [
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        },
        {
            "destination": "/dev/mqueue",
            "type": "mqueue",
            "source": "mqueue",
            "options": ["nosuid", "noexec", "nodev"],
        },
        {
            # runc spec's own tmpfs rather than Podman's separately mounted shm
            # directory: nothing to mount or unmount outside the container.
            "destination": "/dev/shm",
            "type": "tmpfs",
            "source": "shm",
            "options": ["nosuid", "noexec", "nodev", "mode=1777", f"size={inputs.shm_size}"],
        },
        {
            "destination": "/sys/fs/cgroup",
            "type": "cgroup",
            "source": "cgroup",
            "options": ["rprivate", "nosuid", "noexec", "nodev", "relatime", sys_mode],
        },
    ]


def _destination(mount: Mapping[str, Any]) -> str:
    return os.path.normpath(mount["destination"])


def _mounts(inputs: SpecInputs) -> list[dict[str, Any]]:
    extra = {_destination(m): dict(m) for m in inputs.mounts}
    # A caller's /dev replaces the whole standard /dev tree (as Docker does).
    own_dev = "/dev" in extra
    result: list[dict[str, Any]] = []
    placed: set[str] = set()
    for standard in _standard_mounts(inputs):
        dest = standard["destination"]
        if own_dev and dest.startswith("/dev/"):
            continue
        if dest in extra:
            # In place, so mounts nested below it still come after it.
            result.append(extra[dest])
            placed.add(dest)
        else:
            result.append(standard)
    for mount in inputs.mounts:
        dest = _destination(mount)
        if dest not in placed:
            result.append(extra[dest])
            placed.add(dest)
    if inputs.init_path is not None:
        result.append(
            {
                "destination": INIT_PATH,
                "type": "bind",
                "source": inputs.init_path,
                "options": ["bind", "ro"],
            }
        )
    return result


def _process(inputs: SpecInputs) -> dict[str, Any]:
    args = list(inputs.args)
    if inputs.init_path is not None:
        args = [INIT_PATH, "--", *args]
    if not args:
        raise InvalidArgument("no command specified", cause="no command")
    user: dict[str, Any] = {"uid": inputs.uid, "gid": inputs.gid, "umask": inputs.umask}
    if inputs.additional_gids:
        user["additionalGids"] = list(inputs.additional_gids)
    caps = list(inputs.capabilities)
    process: dict[str, Any] = {
        "terminal": inputs.terminal,
        "user": user,
        "args": args,
        "env": list(inputs.env),
        "cwd": inputs.cwd,
        "capabilities": {"bounding": caps, "effective": list(caps), "permitted": list(caps)},
        "rlimits": [dict(r) for r in inputs.rlimits],
    }
    if inputs.terminal and inputs.console_size:
        height, width = inputs.console_size
        process["consoleSize"] = {"height": height, "width": width}
    if inputs.no_new_privileges:
        process["noNewPrivileges"] = True
    if inputs.oom_score_adj is not None:
        process["oomScoreAdj"] = inputs.oom_score_adj
    return process


def _resources(inputs: SpecInputs) -> dict[str, Any]:
    devices: list[dict[str, Any]]
    if inputs.privileged:
        devices = [{"allow": True, "access": "rwm"}]
    else:
        devices = [{"allow": False, "access": "rwm"}]
        devices.extend(
            {
                "allow": True,
                "type": d["type"],
                "major": d["major"],
                "minor": d["minor"],
                "access": "rwm",
            }
            for d in inputs.devices
        )
        devices.extend(dict(rule) for rule in inputs.device_rules)
    return {"devices": devices, **limits(inputs.resources)}


DEVICE_RULE = re.compile(r"^([acb]) ([0-9]+|\*):([0-9]+|\*) ([rwm]{1,3})$")


def device_cgroup_rule(text: str) -> dict[str, Any]:
    """Docker's ``c 7:128 rwm`` (type, major:minor with ``*``, access) as an allowing
    OCI ``LinuxDeviceCgroup``; InvalidArgument when malformed (Docker's pattern)."""
    match = DEVICE_RULE.match(text)
    if not match:
        raise InvalidArgument(f"invalid device cgroup rule format: '{text}'")
    kind, major, minor, access = match.groups()
    rule: dict[str, Any] = {"allow": True, "type": kind, "access": access}
    if major != "*":
        rule["major"] = int(major)
    if minor != "*":
        rule["minor"] = int(minor)
    return rule


def limits(r: Resources) -> dict[str, Any]:
    """OCI ``LinuxResources`` for the limits that are set (also ``runc update --resources``)."""
    out: dict[str, Any] = {}
    memory = _only_set(limit=r.memory, swap=r.memory_swap, reservation=r.memory_reservation)
    if memory:
        out["memory"] = memory
    cpu = _only_set(
        shares=r.cpu_shares,
        quota=r.cpu_quota,
        period=r.cpu_period,
        cpus=r.cpuset_cpus,
        mems=r.cpuset_mems,
    )
    if cpu:
        out["cpu"] = cpu
    if r.pids_limit is not None:
        out["pids"] = {"limit": r.pids_limit}
    return out


def _only_set(**values: object) -> dict[str, object]:
    return {key: value for key, value in values.items() if value is not None}


def _linux(inputs: SpecInputs) -> dict[str, Any]:
    namespaces = []
    for ns_type, path in inputs.namespaces:
        if ns_type not in NAMESPACE_TYPES:
            raise InvalidArgument(f"unknown namespace type {ns_type!r}")
        namespaces.append({"type": ns_type} if path is None else {"type": ns_type, "path": path})
    linux: dict[str, Any] = {"namespaces": namespaces, "resources": _resources(inputs)}
    if inputs.cgroups_path is not None:
        linux["cgroupsPath"] = inputs.cgroups_path
    if inputs.devices:
        linux["devices"] = [dict(d) for d in inputs.devices]
    if inputs.sysctl:
        linux["sysctl"] = dict(inputs.sysctl)
    if not inputs.privileged:
        linux["maskedPaths"] = list(MASKED_PATHS)
        linux["readonlyPaths"] = list(READONLY_PATHS)
    if inputs.seccomp is not None:
        # Shared with other containers (seccomp.Converter caches it); only serialised.
        linux["seccomp"] = inputs.seccomp
    return linux


def generate(inputs: SpecInputs) -> dict[str, Any]:
    """The OCI runtime configuration (``config.json`` content) for ``inputs``.

    :raises InvalidArgument: for a relative rootfs, no command, or an unknown
        namespace type.
    """
    if not os.path.isabs(inputs.rootfs):
        raise InvalidArgument(f"rootfs must be an absolute path: {inputs.rootfs!r}")
    spec: dict[str, Any] = {
        "ociVersion": OCI_VERSION,
        "process": _process(inputs),
        "root": {"path": inputs.rootfs, "readonly": inputs.readonly_rootfs},
    }
    if inputs.hostname and any(ns == "uts" for ns, _ in inputs.namespaces):
        spec["hostname"] = inputs.hostname
    spec["mounts"] = _mounts(inputs)
    if inputs.annotations:
        spec["annotations"] = dict(inputs.annotations)
    spec["linux"] = _linux(inputs)
    return spec


def exec_process(
    container: Mapping[str, Any],
    *,
    args: Sequence[str],
    env: Sequence[str],
    cwd: str,
    terminal: bool,
    user: tuple[int, int, Sequence[int]] | None = None,
    capabilities: Sequence[str] | None = None,
) -> dict[str, Any]:
    """The OCI ``process`` of an exec session: the container's, with the session's changes.

    Everything not overridden (rlimits, no-new-privileges, umask, the
    capabilities of an unprivileged session...) stays as the container has it,
    as Podman does.

    :param container: ``process`` from the container's ``config.json``.
    :param user: ``(uid, gid, additional gids)`` when the session names a user.
    :param capabilities: the set for a privileged session.
    """
    if not args:
        raise InvalidArgument("no exec command specified", cause="no command")
    process = dict(container)
    process.update(args=list(args), env=list(env), cwd=cwd, terminal=terminal)
    process.pop("consoleSize", None)
    if user is not None:
        uid, gid, additional = user
        process["user"] = {
            **container.get("user", {}),
            "uid": uid,
            "gid": gid,
            "additionalGids": list(additional),
        }
    if capabilities is not None:
        caps = list(capabilities)
        process["capabilities"] = {
            "bounding": caps,
            "effective": list(caps),
            "permitted": list(caps),
        }
    return process
