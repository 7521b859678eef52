"""What a pod is asked to be (``POST /libpod/pods/create``), and how its status is derived.

Podman's ``PodSpecGenerator`` decodes into :class:`PodSpec`; the pod's infra
container (unless ``no_infra``) is made from it and holds the shared
namespaces, the published ports and the networks.
"""

from collections.abc import Iterable, Mapping

import cattrs
from attrs import field, frozen

from podapi.engine.containerspec import NetworkEndpoint, PortSpec
from podapi.errors import InvalidArgument

#: Podman's default ``--share`` (``containers.conf`` ``infra``): ipc, net, uts.
DEFAULT_SHARE = ("ipc", "net", "uts")
#: The namespaces we can share through the infra container.
SHAREABLE = ("ipc", "net", "uts", "pid")

CREATED, RUNNING, DEGRADED, STOPPED, EXITED, PAUSED, DEAD = (
    "Created",
    "Running",
    "Degraded",
    "Stopped",
    "Exited",
    "Paused",
    "Dead",
)


@frozen
class PodSpec:
    """A pod as the client described it."""

    name: str = ""
    labels: Mapping[str, str] = field(factory=dict)
    hostname: str = ""
    share: tuple[str, ...] = DEFAULT_SHARE
    no_infra: bool = False
    ports: tuple[PortSpec, ...] = ()
    #: ``bridge`` (our networks), ``host`` or ``none`` for the infra container.
    network_mode: str = "bridge"
    networks: tuple[NetworkEndpoint, ...] = ()
    dns: tuple[str, ...] = ()
    dns_search: tuple[str, ...] = ()
    dns_options: tuple[str, ...] = ()
    extra_hosts: tuple[str, ...] = ()
    cgroup_parent: str = ""


def check_share(share: Iterable[str]) -> tuple[str, ...]:
    """``--share`` kinds, checked (``cgroup`` is accepted and means nothing more here)."""
    kinds = []
    for given in share:
        kind = given.strip()
        if not kind or kind == "cgroup":
            continue
        if kind not in SHAREABLE:
            raise InvalidArgument(
                f"invalid kernel namespace to share: {kind}: options are net, pid, ipc, "
                "uts or none",
                cause="invalid namespace",
            )
        kinds.append(kind)
    return tuple(dict.fromkeys(kinds))


def pod_status(states: Iterable[str]) -> str:
    """A pod's status from its containers' states (Podman's ``createPodStatusResults``)."""
    counts = {RUNNING: 0, STOPPED: 0, PAUSED: 0, CREATED: 0, DEAD: 0}
    total = 0
    for state in states:
        total += 1
        if state in ("exited", "stopped"):
            counts[STOPPED] += 1
        elif state == "running":
            counts[RUNNING] += 1
        elif state == "paused":
            counts[PAUSED] += 1
        elif state in ("created", "configured", "initialized"):
            counts[CREATED] += 1
        else:
            counts[DEAD] += 1
    if total == 0:
        return CREATED
    if counts[RUNNING] == total:
        return RUNNING
    if counts[RUNNING] > 0:
        return DEGRADED
    if counts[PAUSED] == total:
        return PAUSED
    if counts[STOPPED] == total:
        return EXITED
    if counts[STOPPED] > 0:
        return STOPPED
    if counts[DEAD] > 0:
        return DEAD
    return CREATED


_converter = cattrs.Converter()


def pod_spec_to_json(spec: PodSpec) -> dict[str, object]:
    """A JSON-able dict of a pod spec (for the state database)."""
    return _converter.unstructure(spec)


def pod_spec_from_json(data: Mapping[str, object]) -> PodSpec:
    """The inverse of :func:`pod_spec_to_json`."""
    return _converter.structure(data, PodSpec)
