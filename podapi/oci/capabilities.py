"""Linux capability names and Docker's ``--cap-add``/``--cap-drop``/``--privileged`` rules.

Names use the ``CAP_...`` spelling everywhere (the OCI spec's and the seccomp
profile's); :func:`normalise` accepts the short forms users type.
"""

from collections.abc import Iterable

from podapi.errors import InvalidArgument

#: Capability numbers (``linux/capability.h``) to names; the index is the bit number.
CAPABILITY_NAMES: tuple[str, ...] = (
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
)

#: containers-common 0.50's ``default_capabilities`` (the newer Podman default; Podman
#: 4.3.1's built-in list adds AUDIT_WRITE, MKNOD and NET_RAW).
DEFAULT_CAPABILITIES: tuple[str, ...] = (
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_NET_BIND_SERVICE",
    "CAP_SETFCAP",
    "CAP_SETGID",
    "CAP_SETPCAP",
    "CAP_SETUID",
    "CAP_SYS_CHROOT",
)

#: The pseudo-capability that means "every capability" in ``--cap-add``/``--cap-drop``.
ALL = "ALL"


def known_capabilities(path: str = "/proc/sys/kernel/cap_last_cap") -> tuple[str, ...]:
    """The capabilities the running kernel knows, in bit order.

    :param path: the kernel's highest capability number; when it cannot be read
        (very old kernels) the whole table is assumed.
    """
    try:
        with open(path, encoding="ascii") as f:
            last = int(f.read().strip())
    except (OSError, ValueError):
        return CAPABILITY_NAMES
    return CAPABILITY_NAMES[: last + 1]


#: Every capability the running kernel knows.
ALL_CAPABILITIES: tuple[str, ...] = known_capabilities()


def bounding_set(
    status_path: str = "/proc/self/status", known: Iterable[str] = ALL_CAPABILITIES
) -> list[str]:
    """The known capabilities in this process's bounding set (``CapBnd``).

    A runtime cannot hand a container a capability it does not hold itself
    (here ``CAP_SYS_RESOURCE`` is missing), so "all capabilities" means this set,
    as in containers/common's ``BoundingSet``.
    """
    mask = _status_mask("CapBnd", status_path)
    if mask is None:
        return list(known)
    return [name for name in known if mask >> CAPABILITY_NAMES.index(name) & 1]


def has_capability(name: str, status_path: str = "/proc/self/status") -> bool:
    """Whether this process has ``name`` in its effective set (``CapEff``)."""
    mask = _status_mask("CapEff", status_path)
    return mask is not None and bool(mask >> CAPABILITY_NAMES.index(normalise(name)) & 1)


def mask(names: Iterable[str]) -> int:
    """The bit mask of capability names, as ``/proc/PID/status`` shows it (hex)."""
    result = 0
    for name in names:
        result |= 1 << CAPABILITY_NAMES.index(normalise(name))
    return result


def _status_mask(key: str, status_path: str) -> int | None:
    try:
        with open(status_path, encoding="ascii") as f:
            for line in f:
                field, _, value = line.partition(":")
                if field == key:
                    return int(value.strip(), 16)
    except OSError:
        pass
    return None


def normalise(name: str) -> str:
    """``chown``, ``CHOWN`` or ``CAP_CHOWN`` -> ``CAP_CHOWN``.

    :raises InvalidArgument: when the kernel does not know the capability.
    """
    upper = name.strip().upper()
    if not upper.startswith("CAP_"):
        upper = "CAP_" + upper
    if upper not in ALL_CAPABILITIES:
        raise InvalidArgument(f"unknown capability {name!r}", cause="unknown capability")
    return upper


def effective(
    cap_add: Iterable[str],
    cap_drop: Iterable[str],
    privileged: bool,
    *,
    default: Iterable[str] = DEFAULT_CAPABILITIES,
    all_capabilities: Iterable[str] | None = None,
) -> list[str]:
    """The container's capability list, with Docker's rules (moby ``TweakCapabilities``).

    * privileged: every capability;
    * ``ALL`` in ``cap_add``: every capability except those dropped;
    * ``ALL`` in ``cap_drop``: only those added;
    * otherwise the defaults minus the dropped ones, plus the added ones.

    :param all_capabilities: what "every capability" means; default: the known
        capabilities in our own bounding set (see :func:`bounding_set`).
    :raises InvalidArgument: for an unknown capability name.
    """
    every = list(all_capabilities) if all_capabilities is not None else bounding_set()
    if privileged:
        return every
    adds = [c.strip().upper() for c in cap_add]
    drops = [c.strip().upper() for c in cap_drop]
    add_all = ALL in adds
    drop_all = ALL in drops
    added = [normalise(c) for c in adds if c != ALL]
    dropped = {normalise(c) for c in drops if c != ALL}
    if add_all:
        return [c for c in every if c not in dropped]
    base = [] if drop_all else [normalise(c) for c in default if normalise(c) not in dropped]
    result: list[str] = []
    for cap in [*base, *added]:
        if cap not in result:
            result.append(cap)
    return result
