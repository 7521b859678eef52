"""Published ports: checking requests, ``PublishAllPorts``, and choosing free host ports."""

import errno
import socket
from collections.abc import Sequence

from podapi.engine import ipam
from podapi.engine.containerspec import PortSpec
from podapi.engine.state.containers import ContainerRecord
from podapi.errors import Conflict, InvalidArgument
from podapi.oci.netavark import PortMapping

PROTOCOLS = ("tcp", "udp", "sctp")


def check(port: PortSpec) -> None:
    if port.protocol not in PROTOCOLS:
        raise InvalidArgument(f"invalid port protocol {port.protocol!r}: use tcp, udp or sctp")
    last = port.container_port + port.range - 1
    if not 0 < port.container_port <= last <= 65535 or port.range < 1:
        raise InvalidArgument(f"invalid container port {port.container_port}")
    if port.host_port and not 0 < port.host_port + port.range - 1 <= 65535:
        raise InvalidArgument(f"invalid host port {port.host_port}")
    if port.host_ip:
        ipam.parse_address(port.host_ip)


def parse_exposed(item: str) -> tuple[int, str]:
    """An ``ExposedPorts`` key (``80/tcp``, ``53/udp``, ``8080``) as (port, protocol)."""
    number, _, protocol = item.partition("/")
    return int(number), protocol or "tcp"


def exposed(record: ContainerRecord) -> list[PortSpec]:
    """``PublishAllPorts``: every exposed port not published already gets a free host port."""
    if not record.spec.publish_all:
        return []
    published = {(p.container_port, p.protocol) for p in record.spec.ports}
    found = []
    for item in record.run.exposed_ports:
        key = parse_exposed(item)
        if key not in published:
            found.append(PortSpec(container_port=key[0], protocol=key[1]))
    return found


def resolve(ports: Sequence[PortSpec], unpublished: Sequence[PortSpec]) -> list[PortMapping]:
    """Port mappings with host ports chosen where the request left them open (blocking)."""
    resolved = []
    for port in (*ports, *unpublished):
        host_port = port.host_port or _free_ports(port.host_ip, port.protocol, port.range)
        for protocol in port.protocol.split(","):
            resolved.append(
                PortMapping(
                    container_port=port.container_port,
                    host_port=host_port,
                    protocol=protocol,
                    host_ip=port.host_ip,
                    range=port.range,
                )
            )
    return resolved


def _free_ports(host_ip: str, protocol: str, count: int) -> int:
    """The first of ``count`` consecutive ports free on ``host_ip`` (the kernel picks a start)."""
    kind = socket.SOCK_DGRAM if protocol == "udp" else socket.SOCK_STREAM
    family = socket.AF_INET6 if ":" in host_ip else socket.AF_INET
    for _ in range(100):
        with socket.socket(family, kind) as probe:
            probe.bind((host_ip, 0))
            start = probe.getsockname()[1]
        if start + count - 1 <= 65535 and all(
            _port_free(family, kind, host_ip, p) for p in range(start, start + count)
        ):
            return start
    raise Conflict(f"no {count} free consecutive host ports", cause="no free port")


def _port_free(family: int, kind: int, host_ip: str, port: int) -> bool:
    with socket.socket(family, kind) as probe:
        try:
            probe.bind((host_ip, port))
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                return False
            raise
    return True
