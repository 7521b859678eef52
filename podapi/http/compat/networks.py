"""Docker's network routes: ``NetworkResource`` shapes, the default network called ``bridge``
(as Podman's compat API does), ``POST /networks/create`` -> 201 ``{"Id", "Warning"}``.

Differences from Podman 4.3.1, on purpose: malformed bodies, subnets and
addresses are 400, an overlapping subnet or a network in use 409 (Podman: 500).
"""

from collections.abc import Iterable, Mapping
from typing import Any

from klein import Response

from podapi.engine import ipam
from podapi.engine.engine import Engine
from podapi.engine.ocimodel import Network, Subnet
from podapi.engine.state.containers import ContainerRecord
from podapi.http.bodyfields import boolean, field, json_object, objects, string_map, text
from podapi.http.both.networks import join_network, leave_network
from podapi.http.call import ApiCall, BadRequest
from podapi.http.compat.createbody import decode_endpoint
from podapi.http.responses import json_response, no_content, text_response
from podapi.http.routing import Router

#: The compat tree's name for the default network.
BRIDGE = "bridge"


def _ip_range(cidr: str) -> tuple[str, str]:
    """Docker's ``IPRange`` CIDR as a lease range (first and last address)."""
    network = ipam.parse_subnet(cidr)
    return str(network.network_address), str(network.broadcast_address)


class CompatNetworkRoutes:
    """``/networks``."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def register(self, router: Router) -> None:
        """Add the routes."""
        add = router.compat
        add("GET", "/networks", self.list_networks)
        add("POST", "/networks/create", self.create)
        add("POST", "/networks/prune", self.prune)
        add("GET", "/networks/<name>", self.inspect)
        add("DELETE", "/networks/<name>", self.remove)
        add("POST", "/networks/<name>/connect", self.connect)
        add("POST", "/networks/<name>/disconnect", self.disconnect)

    def _name(self, name: str) -> str:
        """``bridge`` is the default network."""
        return self._engine.networks.default.name if name == BRIDGE else name

    async def _users(self, users: Iterable[str]) -> Mapping[str, ContainerRecord]:
        """The users' records by ID, in one read (those removed meanwhile are left out)."""
        return {record.id: record for record in await self._engine.containers.some(users)}

    def _resource(
        self, network: Network, users: list[str], records: Mapping[str, ContainerRecord]
    ) -> dict[str, Any]:
        """Docker's ``NetworkResource``; ``records`` holds the users' records."""
        containers = {}
        for container_id in users:
            record = records.get(container_id)
            if record is None:  # removed meanwhile
                continue
            joined = record.network_status.joined.get(network.name)
            endpoint = {"Name": record.name, "EndpointID": "", "MacAddress": "", "IPv4Address": ""}
            endpoint["IPv6Address"] = ""
            if joined is not None:
                endpoint["EndpointID"] = network.id[:12] + record.id[:12]
                endpoint["MacAddress"] = joined.attached.mac
                for address in joined.attached.addresses:
                    key = "IPv6Address" if ":" in address.ip else "IPv4Address"
                    endpoint[key] = f"{address.ip}/{address.prefix_length}"
            containers[record.id] = endpoint
        default = network.name == self._engine.networks.default.name
        options = {k: v for k, v in network.options.items() if k != "isolate"}
        return {
            "Name": BRIDGE if default else network.name,
            "Id": network.id,
            "Created": network.created,
            "Scope": "local",
            "Driver": network.driver,
            "EnableIPv6": network.ipv6_enabled,
            "IPAM": {
                "Driver": "default",
                # Docker shows the create request's IPAM options, null when none were
                # given (Podman 4.3.1 shows its own {"driver": "host-local"}).
                "Options": None,
                "Config": [
                    {"Subnet": s.subnet, "Gateway": s.gateway}
                    | ({"IPRange": f"{s.lease_start}-{s.lease_end}"} if s.lease_start else {})
                    for s in network.subnets
                ],
            },
            "Internal": network.internal,
            "Attachable": False,
            "Ingress": False,
            "ConfigFrom": {"Network": ""},
            "ConfigOnly": False,
            "Containers": containers,
            "Options": {**options, "com.docker.network.bridge.name": network.interface},
            "Labels": dict(network.labels),
        }

    async def list_networks(self, call: ApiCall) -> Response:
        """``GET /networks?filters=``."""
        found, users = await self._engine.networks.selected(call.filters())
        records = await self._users(i for n in found for i in users.get(n.name, []))
        return json_response([self._resource(n, users.get(n.name, []), records) for n in found])

    async def inspect(self, call: ApiCall, name: str) -> Response:
        """``GET /networks/{name}``; ``scope`` other than ``local`` is 400."""
        scope = call.text("scope")
        if scope not in (None, "", "local"):
            raise BadRequest(f"invalid scope {scope!r}: only local networks exist")
        networks = self._engine.networks
        network = await networks.get(self._name(name))
        users = await networks.users(network)
        return json_response(self._resource(network, users, await self._users(users)))

    async def create(self, call: ApiCall) -> Response:
        """``POST /networks/create``: Docker's ``NetworkCreateRequest``."""
        body = json_object(call.json_body(empty_ok=False), "the network configuration")
        what = "NetworkCreateRequest"
        driver = text(body, "Driver", what) or "bridge"
        interface, options, warnings = _driver_options(driver, string_map(body, "Options", what))
        ipam = json_object(field(body, "IPAM") or {}, f"{what}.IPAM")
        subnets = []
        for config in objects(ipam, "Config", f"{what}.IPAM"):
            start = end = ""
            if field(config, "IPRange"):
                start, end = _ip_range(text(config, "IPRange", "IPAM.Config"))
            subnet = text(config, "Subnet", "IPAM.Config")
            if not subnet:
                raise BadRequest("IPAM.Config entries need a Subnet")
            subnets.append(Subnet(subnet, text(config, "Gateway", "IPAM.Config"), start, end))
        network = await self._engine.networks.create(
            text(body, "Name", what),
            subnets=subnets,
            interface=interface,
            driver=driver,
            ipv6=boolean(body, "EnableIPv6", what),
            internal=boolean(body, "Internal", what),
            dns=driver == "bridge",  # Podman: "dns is only enabled for the bridge driver"
            labels=string_map(body, "Labels", what),
            options=options,
            docker_names=True,
        )
        return json_response({"Id": network.id, "Warning": "; ".join(warnings)}, 201)

    async def remove(self, call: ApiCall, name: str) -> Response:
        """``DELETE /networks/{name}?force=&timeout=``: 204; 409 in use or the default one.

        ``force`` and ``timeout`` are Podman's additions to Docker's route (its compat
        ``RemoveNetwork``): the containers and pods using the network go first."""
        await self._engine.networks.remove(
            self._name(name), force=call.flag("force"), timeout=call.integer("timeout")
        )
        return no_content()

    async def connect(self, call: ApiCall, name: str) -> Response:
        """``POST /networks/{name}/connect``: ``{"Container", "EndpointConfig"}``."""
        body = json_object(call.json_body(empty_ok=False), "the connect request")
        config = json_object(field(body, "EndpointConfig") or {}, "EndpointConfig")
        endpoint = decode_endpoint(config, self._name(name), "EndpointConfig.")
        await join_network(self._engine, text(body, "Container", "connect request"), endpoint)
        return text_response("OK")

    async def prune(self, call: ApiCall) -> Response:
        """``POST /networks/prune?filters=``: unused networks."""
        removed = await self._engine.networks.prune(call.filters())
        return json_response({"NetworksDeleted": removed})

    async def disconnect(self, call: ApiCall, name: str) -> Response:
        """``POST /networks/{name}/disconnect``: ``{"Container", "Force"}``."""
        await leave_network(call, self._engine, self._name(name))
        return text_response("OK")


#: Docker's names of the MTU option.
_MTU_OPTIONS = frozenset({"mtu", "com.docker.network.driver.mtu"})


def _driver_options(driver: str, given: dict[str, str]) -> tuple[str, dict[str, str], list[str]]:
    """Docker's ``Options`` as Podman's compat create reads them: ``(interface,
    netavark options, warnings)``.

    A bridge is isolated from other bridges (Docker's rule) and may be named
    (``com.docker.network.bridge.name``); ``macvlan`` and ``ipvlan`` take their
    ``parent`` interface and ``mode``; the MTU goes to every driver.  Any other
    option comes back as a warning (``"k: v" is not a recognized option``).
    """
    bridge = driver == "bridge"
    interface = ""
    options = {"isolate": "true"} if bridge else {}
    warnings = []
    for key, value in given.items():
        if key in _MTU_OPTIONS:
            options["mtu"] = value
        elif key == "com.docker.network.bridge.name":
            interface = value if bridge else interface
        elif key == "parent":
            interface = interface if bridge else value
        elif key == "mode":
            if not bridge:
                options["mode"] = value
        else:
            warnings.append(f'"{key}: {value}" is not a recognized option')
    return interface, options, warnings
