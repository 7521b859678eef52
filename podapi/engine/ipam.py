"""Choosing subnets for new networks and addresses for containers (pure functions).

The engine allocates addresses itself, as Podman does with netavark's
``host-local`` mode: the gateway is a subnet's first host address, containers
get the lowest free one in the lease range.  New networks take the first /24
of the subnet pool that overlaps neither another network nor a route of the
host (another bridge, a VPN...).
"""

import ipaddress
from collections.abc import Iterable, Iterator

from podapi.errors import Conflict, InvalidArgument
from podapi.oci.netavark import Subnet

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_subnet(text: str) -> IPNetwork:
    """A CIDR (host bits must be zero, as Podman wants them); 400 otherwise."""
    try:
        return ipaddress.ip_network(text, strict=True)
    except ValueError as e:
        raise InvalidArgument(f"invalid subnet {text!r}: {e}") from None


def parse_address(text: str) -> IPAddress:
    try:
        return ipaddress.ip_address(text)
    except ValueError as e:
        raise InvalidArgument(f"invalid IP address {text!r}: {e}") from None


def complete(subnet: Subnet) -> Subnet:
    """A subnet with its gateway filled in and checked (a host address of the subnet)."""
    network = parse_subnet(subnet.subnet)
    if network.num_addresses < 4:
        raise InvalidArgument(f"subnet {subnet.subnet} is too small")
    gateway = parse_address(subnet.gateway) if subnet.gateway else network.network_address + 1
    if gateway not in network or gateway == network.network_address:
        raise InvalidArgument(f"gateway {gateway} is not a host address of subnet {network}")
    for bound in (subnet.lease_start, subnet.lease_end):
        if bound and parse_address(bound) not in network:
            raise InvalidArgument(f"IP range bound {bound} is not in subnet {network}")
    return Subnet(
        subnet=str(network),
        gateway=str(gateway),
        lease_start=subnet.lease_start,
        lease_end=subnet.lease_end,
    )


def check_no_overlap(subnets: Iterable[str], taken: Iterable[str], what: str = "network") -> None:
    """409 when one of ``subnets`` overlaps one of ``taken``."""
    taken_networks = [parse_subnet(t) for t in taken]
    for text in subnets:
        network = parse_subnet(text)
        for other in taken_networks:
            if network.version == other.version and network.overlaps(other):
                raise Conflict(
                    f"subnet {network} is already used on the host or by another {what}: {other}",
                    cause="subnet already in use",
                )


def free_subnet(pool: str, taken: Iterable[str], prefix: int = 24) -> str:
    """The first ``/prefix`` of ``pool`` that overlaps nothing in ``taken``."""
    blocked = [parse_subnet(t) for t in taken]
    for candidate in parse_subnet(pool).subnets(new_prefix=prefix):
        if not any(candidate.version == b.version and candidate.overlaps(b) for b in blocked):
            return str(candidate)
    raise Conflict(f"no free subnet left in the pool {pool}", cause="subnet pool exhausted")


def _leases(subnet: Subnet) -> Iterator[IPAddress]:
    network = parse_subnet(subnet.subnet)
    first = int(parse_address(subnet.lease_start)) if subnet.lease_start else None
    last = int(parse_address(subnet.lease_end)) if subnet.lease_end else None
    if first is None:
        first = int(network.network_address) + 1
    if last is None:  # IPv4's broadcast address is no host's
        last = int(network.broadcast_address) - (1 if network.version == 4 else 0)
    for value in range(first, last + 1):
        yield ipaddress.ip_address(value) if network.version == 4 else ipaddress.IPv6Address(value)


def free_address(subnet: Subnet, used: Iterable[str]) -> str:
    """The lowest address of the lease range that is neither the gateway nor used."""
    busy = {parse_address(u) for u in used}
    busy.add(parse_address(subnet.gateway))
    for address in _leases(subnet):
        if address not in busy:
            return str(address)
    raise Conflict(f"no free IP address left in subnet {subnet.subnet}", cause="subnet full")


def check_static(subnet: Subnet, address: str, used: Iterable[str]) -> None:
    """A requested address must be a free host address of the subnet (400/409)."""
    network = parse_subnet(subnet.subnet)
    ip = parse_address(address)
    if ip not in network or ip in (network.network_address, network.broadcast_address):
        raise InvalidArgument(f"IP address {address} is not a host address of subnet {network}")
    if address == subnet.gateway:
        raise Conflict(f"IP address {address} is the gateway of subnet {network}")
    if address in set(used):
        raise Conflict(
            f"IP address {address} is already in use in subnet {network}",
            cause="address already in use",
        )


def host_routes(ipv4_table: str, ipv6_table: str) -> list[str]:
    """Destinations of the host's routes, from ``/proc/net/route`` and ``/proc/net/ipv6_route``
    texts (default routes left out): subnets new networks must not overlap."""
    found = []
    for line in ipv4_table.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 8:
            continue
        destination = ipaddress.IPv4Address(int(fields[1], 16).to_bytes(4, "little"))
        mask = ipaddress.IPv4Address(int(fields[7], 16).to_bytes(4, "little"))
        network = ipaddress.IPv4Network(f"{destination}/{mask}", strict=False)
        if network.prefixlen:
            found.append(str(network))
    for line in ipv6_table.splitlines():
        fields = line.split()
        if len(fields) < 2:
            continue
        prefix = int(fields[1], 16)
        if prefix in {0, 128}:
            continue
        address = ipaddress.IPv6Address(int(fields[0], 16))
        network6 = ipaddress.IPv6Network(f"{address}/{prefix}", strict=False)
        if not network6.is_link_local and not network6.is_multicast:
            found.append(str(network6))
    return found
