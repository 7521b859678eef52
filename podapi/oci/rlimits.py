"""Process rlimits for ``config.json``: Docker ``--ulimit`` names, clamped to what runc can set.

Raising a limit above the caller's own hard limit needs ``CAP_SYS_RESOURCE``;
without it runc fails with ``error setting rlimit type N: operation not
permitted``, so every hard limit is clamped to ours.
"""

import resource
from collections.abc import Iterable
from typing import Any

from podapi.errors import InvalidArgument
from podapi.oci.capabilities import has_capability

#: ``RLIM_INFINITY`` as the OCI spec's unsigned 64-bit field spells it.
UNLIMITED = 2**64 - 1

#: Docker ``--ulimit`` names to OCI types.
TYPES: dict[str, str] = {
    "as": "RLIMIT_AS",
    "core": "RLIMIT_CORE",
    "cpu": "RLIMIT_CPU",
    "data": "RLIMIT_DATA",
    "fsize": "RLIMIT_FSIZE",
    "locks": "RLIMIT_LOCKS",
    "memlock": "RLIMIT_MEMLOCK",
    "msgqueue": "RLIMIT_MSGQUEUE",
    "nice": "RLIMIT_NICE",
    "nofile": "RLIMIT_NOFILE",
    "nproc": "RLIMIT_NPROC",
    "rss": "RLIMIT_RSS",
    "rtprio": "RLIMIT_RTPRIO",
    "rttime": "RLIMIT_RTTIME",
    "sigpending": "RLIMIT_SIGPENDING",
    "stack": "RLIMIT_STACK",
}

#: Linux's generic resource numbers, for the types Python's ``resource`` lacks (LOCKS).
_GENERIC_NUMBERS = {"RLIMIT_LOCKS": 10}


def _number(rlimit_type: str) -> int:
    number = getattr(resource, rlimit_type, None)
    return number if isinstance(number, int) else _GENERIC_NUMBERS[rlimit_type]


def _to_oci(value: int) -> int:
    # Python reports RLIM_INFINITY as -1; the spec wants the unsigned value.
    return UNLIMITED if value < 0 or value == resource.RLIM_INFINITY else value


def own_limit(rlimit_type: str) -> tuple[int, int]:
    """This process's (soft, hard) limit of ``rlimit_type``, in OCI numbers."""
    soft, hard = resource.getrlimit(_number(rlimit_type))
    return _to_oci(soft), _to_oci(hard)


def _entry(rlimit_type: str, soft: int, hard: int) -> dict[str, Any]:
    return {"type": rlimit_type, "hard": hard, "soft": soft}


def inherited() -> list[dict[str, Any]]:
    """``RLIMIT_NOFILE`` and ``RLIMIT_NPROC`` exactly as this process has them."""
    return [_entry(t, *own_limit(t)) for t in ("RLIMIT_NOFILE", "RLIMIT_NPROC")]


def _type_of(name: str) -> str:
    key = name.strip().lower()
    key = key.removeprefix("rlimit_")
    try:
        return TYPES[key]
    except KeyError:
        raise InvalidArgument(f"invalid ulimit type: {name}", cause="invalid ulimit") from None


def _nr_open(path: str = "/proc/sys/fs/nr_open") -> int:
    try:
        with open(path, encoding="ascii") as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return 1048576


def check(requested: Iterable[tuple[str, int, int]]) -> dict[str, tuple[int, int]]:
    """The OCI type and (soft, hard) of each ``(name, soft, hard)`` request, a later
    request for the same type winning; create calls it so a bad ulimit is a 400 there,
    not a failed start.

    :raises InvalidArgument: for an unknown name, a negative value other than -1 (Docker's
        unlimited), or a soft limit above the hard one (go-units' message, as Docker).
    """
    chosen: dict[str, tuple[int, int]] = {}
    for name, soft, hard in requested:
        rlimit_type = _type_of(name)
        for value in (soft, hard):
            if value < -1:
                raise InvalidArgument(
                    f"invalid ulimit {name}={soft}:{hard}: negative value",
                    cause="invalid ulimit",
                )
        chosen[rlimit_type] = (_to_oci(soft), _to_oci(hard))
        if chosen[rlimit_type][0] > chosen[rlimit_type][1]:
            raise InvalidArgument(
                f"ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}",
                cause="invalid ulimit",
            )
    return chosen


def clamp(
    requested: Iterable[tuple[str, int, int]], *, privileged_resources: bool | None = None
) -> list[dict[str, Any]]:
    """OCI ``process.rlimits`` for ``(name, soft, hard)`` requests that runc can apply.

    Names are Docker's (``nofile``; ``RLIMIT_NOFILE`` is accepted too) and -1
    means unlimited.  Without ``CAP_SYS_RESOURCE`` every hard limit is clamped
    to our own hard limit; the soft limit is then clamped to the hard one.
    ``RLIMIT_NOFILE`` is always present (inherited when not requested), as
    Podman always sets it.  A later request for the same type wins.

    :param privileged_resources: whether we hold ``CAP_SYS_RESOURCE``; read from
        ``/proc/self/status`` when not given.
    :raises InvalidArgument: as :func:`check`.
    """
    if privileged_resources is None:
        privileged_resources = has_capability("CAP_SYS_RESOURCE")
    chosen = check(requested)
    result = []
    if "RLIMIT_NOFILE" not in chosen:
        result.append(_entry("RLIMIT_NOFILE", *own_limit("RLIMIT_NOFILE")))
    for rlimit_type, (soft, wanted_hard) in chosen.items():
        if privileged_resources:
            # Even CAP_SYS_RESOURCE cannot lift NOFILE above fs.nr_open.
            limit = _nr_open() if rlimit_type == "RLIMIT_NOFILE" else UNLIMITED
        else:
            limit = own_limit(rlimit_type)[1]
        hard = min(wanted_hard, limit)
        result.append(_entry(rlimit_type, min(soft, hard), hard))
    return result


def clamp_oom_score_adj(
    requested: int | None,
    *,
    privileged_resources: bool | None = None,
    own_path: str = "/proc/self/oom_score_adj",
) -> int | None:
    """The ``oomScoreAdj`` runc can apply: without ``CAP_SYS_RESOURCE`` a process may not
    go below its parent's score, so a lower request is raised to ours (as Podman does for
    rootless containers) rather than failing every start."""
    if requested is None:
        return None
    if privileged_resources is None:
        privileged_resources = has_capability("CAP_SYS_RESOURCE")
    if privileged_resources:
        return requested
    with open(own_path, encoding="ascii") as own:
        return max(requested, int(own.read().strip() or 0))
