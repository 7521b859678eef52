"""A container's network settings in Docker's shapes, for both trees' inspect and list.

Configured networks are listed whether or not the container runs; addresses,
MACs and published host ports only while it runs (as in Docker and Podman),
but a MAC asked for is shown from the start (as Docker does).
The compat tree calls the default network ``bridge``, as Podman's does.
"""

from collections.abc import Iterator
from typing import Any

from podapi.engine.ocimodel import Joined
from podapi.engine.ports import parse_exposed
from podapi.engine.state.containers import ContainerRecord


def _endpoint(record: ContainerRecord, name: str, joined: Joined | None) -> dict[str, Any]:
    """Docker's ``EndpointSettings``."""
    body: dict[str, Any] = {
        "IPAMConfig": None,
        "Links": None,
        "Aliases": None,
        "NetworkID": name,
        "EndpointID": "",
        "Gateway": "",
        "IPAddress": "",
        "IPPrefixLen": 0,
        "IPv6Gateway": "",
        "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0,
        "MacAddress": "",
        "DriverOpts": None,
    }
    for endpoint in record.spec.networks:
        if endpoint.name == name:
            body["Aliases"] = [*endpoint.aliases, record.id[:12]]
            body["Links"] = list(endpoint.links) or None
            body["DriverOpts"] = dict(endpoint.driver_opts) or None
            body["MacAddress"] = endpoint.static_mac
            if endpoint.static_ips or endpoint.link_local_ips:
                body["IPAMConfig"] = {
                    "IPv4Address": next((a for a in endpoint.static_ips if ":" not in a), ""),
                    "IPv6Address": next((a for a in endpoint.static_ips if ":" in a), ""),
                }
            if endpoint.link_local_ips:
                body["IPAMConfig"]["LinkLocalIPs"] = list(endpoint.link_local_ips)
    if joined is None:
        return body
    body["NetworkID"] = joined.network.id
    body["EndpointID"] = joined.network.id[:12] + record.id[:12]
    body["MacAddress"] = joined.attached.mac or body["MacAddress"]
    for address in joined.attached.addresses:
        if ":" in address.ip:
            body["GlobalIPv6Address"] = address.ip
            body["GlobalIPv6PrefixLen"] = address.prefix_length
            body["IPv6Gateway"] = address.gateway
        else:
            body["IPAddress"] = address.ip
            body["IPPrefixLen"] = address.prefix_length
            body["Gateway"] = address.gateway
    return body


def networks(record: ContainerRecord, default: str, compat: bool) -> dict[str, Any]:
    """``NetworkSettings.Networks``: name -> endpoint settings."""
    mode = record.spec.network_mode
    if mode != "bridge":
        shown = mode.partition(":")[0] if ":" in mode else mode
        return {shown: _endpoint(record, shown, None)}
    found = {}
    for endpoint in record.spec.networks:
        joined = record.network_status.joined.get(endpoint.name)
        shown = "bridge" if compat and endpoint.name == default else endpoint.name
        found[shown] = _endpoint(record, endpoint.name, joined)
    return found


def _published(record: ContainerRecord) -> Iterator[tuple[int, int, str, str]]:
    """(container port, host port, protocol, host IP) of each port published now, one by one."""
    for mapping in record.network_status.ports:
        for offset in range(mapping.range):
            yield (
                mapping.container_port + offset,
                mapping.host_port + offset,
                mapping.protocol,
                mapping.host_ip or "0.0.0.0",
            )


def ports(record: ContainerRecord) -> dict[str, Any]:
    """``NetworkSettings.Ports``: ``{"80/tcp": [{"HostIp", "HostPort"}]}``; exposed only: None."""
    found: dict[str, Any] = {port: None for port in record.run.exposed_ports}
    for container_port, host_port, protocol, host_ip in _published(record):
        key = f"{container_port}/{protocol}"
        entry = {"HostIp": host_ip, "HostPort": str(host_port)}
        found[key] = [*(found.get(key) or []), entry]
    return found


def port_bindings(record: ContainerRecord) -> dict[str, Any]:
    """``HostConfig.PortBindings`` as asked (host port "" when any is fine)."""
    found: dict[str, Any] = {}
    for port in record.spec.ports:
        for offset in range(port.range):
            key = f"{port.container_port + offset}/{port.protocol}"
            host = str(port.host_port + offset) if port.host_port else ""
            found.setdefault(key, []).append({"HostIp": port.host_ip, "HostPort": host})
    return found


def summary_ports(record: ContainerRecord) -> list[dict[str, Any]]:
    """The list's ``Ports``: published ports while running, then exposed ones."""
    found = []
    published = set()
    for container_port, host_port, protocol, host_ip in _published(record):
        published.add((container_port, protocol))
        found.append(
            {
                "IP": host_ip,
                "PrivatePort": container_port,
                "PublicPort": host_port,
                "Type": protocol,
            }
        )
    for item in record.run.exposed_ports:
        port, protocol = parse_exposed(item)
        if (port, protocol) not in published:
            found.append({"PrivatePort": port, "Type": protocol})
    return found


def settings(record: ContainerRecord, default: str, compat: bool) -> dict[str, Any]:
    """Docker's whole ``NetworkSettings`` (the legacy top-level fields from the default network)."""
    joined = networks(record, default, compat)
    first: dict[str, Any] = joined.get("bridge" if compat else default) or next(
        iter(joined.values()), {}
    )
    return {
        "Bridge": "",
        "SandboxID": "",
        "HairpinMode": False,
        "LinkLocalIPv6Address": "",
        "LinkLocalIPv6PrefixLen": 0,
        "Ports": ports(record),
        "SandboxKey": record.network_status.netns,
        "SecondaryIPAddresses": None,
        "SecondaryIPv6Addresses": None,
        "EndpointID": first.get("EndpointID", ""),
        "Gateway": first.get("Gateway", ""),
        "GlobalIPv6Address": first.get("GlobalIPv6Address", ""),
        "GlobalIPv6PrefixLen": first.get("GlobalIPv6PrefixLen", 0),
        "IPAddress": first.get("IPAddress", ""),
        "IPPrefixLen": first.get("IPPrefixLen", 0),
        "IPv6Gateway": first.get("IPv6Gateway", ""),
        "MacAddress": first.get("MacAddress", ""),
        "Networks": joined,
    }
