"""netavark, the network backend, and the JSON it speaks (netavark 1.4's ``types``).

A network definition is netavark's ``types.Network`` (the same object Podman
keeps as ``<name>.json`` and libpod's API returns); ``netavark setup <netns>``
reads the networks a container joins on stdin and prints what it set up;
``teardown`` needs the same input again.  IP addresses are chosen by the engine
(``ipam_options.driver = host-local``): netavark does not allocate them.
netavark's ``--config`` is its private state directory (aardvark-dns
configuration, locks), one per podapi runroot, never Podman's shared one.
"""

import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

from attrs import field, frozen

from podapi.oci.process import Runner
from podapi.oci.runtime import RuntimeFailure

HOST_LOCAL = "host-local"


@frozen
class Subnet:
    """One subnet of a network; ``lease_start``/``lease_end`` bound the addresses handed out."""

    subnet: str
    gateway: str = ""
    lease_start: str = ""
    lease_end: str = ""

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"subnet": self.subnet}
        if self.gateway:
            body["gateway"] = self.gateway
        if self.lease_start or self.lease_end:
            body["lease_range"] = {"start_ip": self.lease_start, "end_ip": self.lease_end}
        return body

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Subnet":
        lease = data.get("lease_range") or {}
        return cls(
            subnet=str(data["subnet"]),
            gateway=str(data.get("gateway") or ""),
            lease_start=str(lease.get("start_ip") or ""),
            lease_end=str(lease.get("end_ip") or ""),
        )


@frozen
class Network:
    """A network definition: netavark's and libpod's ``types.Network``."""

    name: str
    id: str
    interface: str
    created: str
    subnets: tuple[Subnet, ...]
    driver: str = "bridge"
    ipv6_enabled: bool = False
    internal: bool = False
    dns_enabled: bool = False
    labels: Mapping[str, str] = field(factory=dict)
    options: Mapping[str, str] = field(factory=dict)
    #: Where aardvark-dns forwards names it does not know (the host's resolvers if none).
    dns_servers: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The JSON object, key for key as Podman writes it."""
        body: dict[str, Any] = {
            "name": self.name,
            "id": self.id,
            "driver": self.driver,
            "network_interface": self.interface,
            "created": self.created,
            "subnets": [s.to_json() for s in self.subnets],
            "ipv6_enabled": self.ipv6_enabled,
            "internal": self.internal,
            "dns_enabled": self.dns_enabled,
            "ipam_options": {"driver": HOST_LOCAL},
        }
        if self.labels:
            body["labels"] = dict(self.labels)
        if self.options:
            body["options"] = dict(self.options)
        if self.dns_servers:
            body["network_dns_servers"] = list(self.dns_servers)
        return body

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Network":
        return cls(
            name=str(data["name"]),
            id=str(data["id"]),
            interface=str(data.get("network_interface") or ""),
            created=str(data.get("created") or ""),
            subnets=tuple(Subnet.from_json(s) for s in data.get("subnets") or ()),
            driver=str(data.get("driver") or "bridge"),
            ipv6_enabled=bool(data.get("ipv6_enabled")),
            internal=bool(data.get("internal")),
            dns_enabled=bool(data.get("dns_enabled")),
            labels=dict(data.get("labels") or {}),
            options=dict(data.get("options") or {}),
            dns_servers=tuple(data.get("network_dns_servers") or ()),
        )


@frozen
class PortMapping:
    """A published port: ``range`` consecutive ports from ``host_port``/``container_port``."""

    container_port: int
    host_port: int
    protocol: str = "tcp"
    host_ip: str = ""
    range: int = 1

    def to_json(self) -> dict[str, Any]:
        return {
            "host_ip": self.host_ip,
            "container_port": self.container_port,
            "host_port": self.host_port,
            "range": self.range,
            "protocol": self.protocol,
        }


@frozen
class Endpoint:
    """How a container joins one network (netavark's ``PerNetworkOptions``)."""

    interface_name: str
    static_ips: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    static_mac: str = ""

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "static_ips": list(self.static_ips),
            "aliases": list(self.aliases),
            "interface_name": self.interface_name,
        }
        if self.static_mac:
            body["static_mac"] = self.static_mac
        return body


def setup_input(
    container_id: str,
    container_name: str,
    endpoints: Mapping[str, Endpoint],
    networks: Mapping[str, Network],
    ports: Sequence[PortMapping] = (),
) -> bytes:
    """What ``setup`` and ``teardown`` read on stdin (keyed by network name)."""
    return json.dumps(
        {
            "container_id": container_id,
            "container_name": container_name,
            "port_mappings": [p.to_json() for p in ports],
            "networks": {name: e.to_json() for name, e in endpoints.items()},
            "network_info": {name: networks[name].to_json() for name in endpoints},
        }
    ).encode()


@frozen
class Address:
    """One address of an interface: ``10.88.0.5/16`` via ``gateway``."""

    ip: str
    prefix_length: int
    gateway: str = ""


@frozen
class Attached:
    """What setup did for one network: the interface and the DNS to use."""

    interface: str
    mac: str
    addresses: tuple[Address, ...]
    dns_servers: tuple[str, ...] = ()
    dns_search: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "interface": self.interface,
            "mac": self.mac,
            "addresses": [[a.ip, a.prefix_length, a.gateway] for a in self.addresses],
            "dns_servers": list(self.dns_servers),
            "dns_search": list(self.dns_search),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Attached":
        return cls(
            interface=str(data["interface"]),
            mac=str(data["mac"]),
            addresses=tuple(Address(str(a[0]), int(a[1]), str(a[2])) for a in data["addresses"]),
            dns_servers=tuple(data.get("dns_servers") or ()),
            dns_search=tuple(data.get("dns_search") or ()),
        )


def parse_setup_output(stdout: bytes) -> dict[str, Attached]:
    """netavark's setup answer, per network name."""
    try:
        data = json.loads(stdout)
    except ValueError as e:
        raise RuntimeFailure(f"netavark setup printed no JSON: {stdout[:200]!r}") from e
    result = {}
    for name, status in data.items():
        for interface, info in (status.get("interfaces") or {}).items():
            addresses = []
            for subnet in info.get("subnets") or ():
                ip, _, prefix = str(subnet["ipnet"]).partition("/")
                addresses.append(Address(ip, int(prefix), str(subnet.get("gateway") or "")))
            result[name] = Attached(
                interface=interface,
                mac=str(info.get("mac_address") or ""),
                addresses=tuple(addresses),
                dns_servers=tuple(status.get("dns_server_ips") or ()),
                dns_search=tuple(status.get("dns_search_domains") or ()),
            )
    return result


class Netavark:
    """Runs ``netavark setup``/``teardown`` with a private state directory.

    :param binary: netavark's path.
    :param aardvark: aardvark-dns's path (DNS on networks that enable it).
    :param state_dir: netavark's ``--config``.
    """

    def __init__(self, runner: Runner, binary: str, aardvark: str | None, state_dir: str) -> None:
        self._runner = runner
        self._binary = binary
        self._aardvark = aardvark
        self._state_dir = state_dir

    def _argv(self, command: str, *arguments: str) -> list[str]:
        # One netavark at a time per state directory, across processes (the server and
        # podapi.cleanup): concurrent runs race on bridges and firewall chains (a
        # bridge created twice, rules added twice and left behind), as Podman's lock
        # around netavark prevents.  flock(1) waits in its own process, not in ours, and
        # keeps the lock from the aardvark-dns daemon netavark may start (--close).
        lock = os.path.join(self._state_dir, "netavark.lock")
        argv = ["flock", "--close", lock, self._binary]
        argv += ["--config", self._state_dir, "--rootless=false"]
        if self._aardvark:
            argv.append(f"--aardvark-binary={self._aardvark}")
        return [*argv, command, *arguments]

    async def _run(self, command: str, *arguments: str, options: bytes = b"") -> bytes:
        result = await self._runner.run(
            self._argv(command, *arguments),
            stdin=options,
            env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "RUST_LOG": "netavark=warn"},
            timeout=60,
        )
        if not result.ok:
            raise RuntimeFailure(
                f"netavark {command}: {_message(result.stderr, result.describe())}"
            )
        return result.stdout

    async def setup(self, netns: str, options: bytes) -> dict[str, Attached]:
        """Configure the namespace; what was set up, per network."""
        return parse_setup_output(await self._run("setup", netns, options=options))

    async def teardown(self, netns: str, options: bytes) -> None:
        """Undo :meth:`setup` (the same ``options``)."""
        await self._run("teardown", netns, options=options)

    async def update_dns(self, network: str, servers: Sequence[str]) -> None:
        """Point the running aardvark-dns of ``network`` at other upstream servers."""
        await self._run("update", network, "--network-dns-servers", ",".join(servers))


def _message(stderr: bytes, fallback: str) -> str:
    """netavark's error: a JSON ``{"error": ...}`` line when it has one."""
    for line in reversed(stderr.decode("utf-8", "replace").splitlines()):
        try:
            data = json.loads(line)
        except ValueError:
            continue
        if isinstance(data, dict) and data.get("error"):
            return str(data["error"])
    return fallback


@frozen
class Joined:
    """One network a running container is on: its definition then, the endpoint, the result."""

    network: Network
    endpoint: Endpoint
    attached: Attached

    def to_json(self) -> dict[str, Any]:
        return {
            "network": self.network.to_json(),
            "endpoint": self.endpoint.to_json(),
            "attached": self.attached.to_json(),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Joined":
        endpoint = data["endpoint"]
        return cls(
            network=Network.from_json(data["network"]),
            endpoint=Endpoint(
                interface_name=str(endpoint["interface_name"]),
                static_ips=tuple(endpoint.get("static_ips") or ()),
                aliases=tuple(endpoint.get("aliases") or ()),
                static_mac=str(endpoint.get("static_mac") or ""),
            ),
            attached=Attached.from_json(data["attached"]),
        )


@frozen
class NetworkSetup:
    """What is set up for a running container: enough to tear it all down again.

    :ivar netns: the namespace file ("" when the container has none of ours).
    :ivar ports: published ports, host ports resolved.
    :ivar joined: network name -> what netavark did there.
    :ivar pending: the input of a ``netavark setup`` under way (kept until it answers,
        so that a server killed meanwhile is undone by a teardown with it).
    """

    netns: str = ""
    ports: tuple[PortMapping, ...] = ()
    joined: Mapping[str, Joined] = field(factory=dict)
    pending: str = ""

    def teardown_input(self, container_id: str, container_name: str) -> bytes:
        """The ``setup`` input again, for ``teardown``."""
        return setup_input(
            container_id,
            container_name,
            {name: j.endpoint for name, j in self.joined.items()},
            {name: j.network for name, j in self.joined.items()},
            self.ports,
        )

    def to_json(self) -> dict[str, Any]:
        if not self.netns:
            return {}
        return {
            "netns": self.netns,
            "ports": [p.to_json() for p in self.ports],
            "joined": {name: j.to_json() for name, j in self.joined.items()},
            "pending": self.pending,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "NetworkSetup":
        if not data:
            return cls()
        return cls(
            netns=str(data["netns"]),
            ports=tuple(PortMapping(**p) for p in data.get("ports") or ()),
            joined={n: Joined.from_json(j) for n, j in (data.get("joined") or {}).items()},
            pending=str(data.get("pending") or ""),
        )
