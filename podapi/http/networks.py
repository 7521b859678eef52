"""Network routes of both trees.

Compat: Docker's ``NetworkResource`` shapes, the default network called
``bridge`` (as Podman's compat API does), ``POST /networks/create`` -> 201
``{"Id", "Warning"}``.  Libpod: netavark's network JSON, create -> 200 with it,
``DELETE`` -> 200 ``[{"Name", "Err"}]``, ``prune`` -> ``[{"Name", "Error"}]``.

Differences from Podman 4.3.1, on purpose: malformed bodies, subnets and
addresses are 400, an overlapping subnet or a network in use 409 (Podman: 500).
"""

from typing import Any

from klein import Response

from podapi.engine import ipam
from podapi.engine.containerspec import NetworkEndpoint
from podapi.engine.engine import Engine
from podapi.engine.ocimodel import Network, Subnet
from podapi.errors import NoSuchContainer
from podapi.http.bodyfields import field, json_object, string_map, strings, text
from podapi.http.call import ApiCall, BadRequest
from podapi.http.responses import json_response, no_content, text_response
from podapi.http.routing import Router

#: The compat tree's name for the default network.
BRIDGE = "bridge"


def _ip_range(cidr: str) -> tuple[str, str]:
    """Docker's ``IPRange`` CIDR as a lease range (first and last address)."""
    network = ipam.parse_subnet(cidr)
    return str(network.network_address), str(network.broadcast_address)


class NetworkRoutes:
    """``/networks`` on both trees."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def register(self, router: Router) -> None:
        """Add the routes."""
        compat, libpod = router.compat, router.libpod
        compat("GET", "/networks", self.compat_list)
        compat("POST", "/networks/create", self.compat_create)
        compat("POST", "/networks/prune", self.compat_prune)
        compat("GET", "/networks/<name>", self.compat_inspect)
        compat("DELETE", "/networks/<name>", self.compat_remove)
        compat("POST", "/networks/<name>/connect", self.compat_connect)
        compat("POST", "/networks/<name>/disconnect", self.disconnect)
        libpod("GET", "/networks/json", self.libpod_list)
        libpod("POST", "/networks/create", self.libpod_create)
        libpod("POST", "/networks/prune", self.libpod_prune)
        libpod("GET", "/networks/<name>/json", self.libpod_inspect)
        libpod("GET", "/networks/<name>", self.libpod_inspect)
        libpod("GET", "/networks/<name>/exists", self.exists)
        libpod("DELETE", "/networks/<name>", self.libpod_remove)
        libpod("POST", "/networks/<name>/connect", self.libpod_connect)
        libpod("POST", "/networks/<name>/disconnect", self.disconnect)
        libpod("POST", "/networks/<name>/update", self.libpod_update)

    def _name(self, call: ApiCall, name: str) -> str:
        """The compat tree's ``bridge`` is the default network."""
        networks = self._engine.networks
        return networks.default.name if not call.libpod and name == BRIDGE else name

    # --- compat ---------------------------------------------------------------------

    async def _resource(self, network: Network, users: list[str]) -> dict[str, Any]:
        """Docker's ``NetworkResource``."""
        containers = {}
        for container_id in users:
            try:
                record = await self._engine.containers.get(container_id)
            except NoSuchContainer:  # removed meanwhile
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
                "Options": {"driver": "host-local"},
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

    async def compat_list(self, call: ApiCall) -> Response:
        """``GET /networks?filters=``."""
        found, users = await self._engine.networks.selected(call.filters())
        return json_response([await self._resource(n, users.get(n.name, [])) for n in found])

    async def compat_inspect(self, call: ApiCall, name: str) -> Response:
        """``GET /networks/{name}``; ``scope`` other than ``local`` is 400."""
        scope = call.text("scope")
        if scope not in (None, "", "local"):
            raise BadRequest(f"invalid scope {scope!r}: only local networks exist")
        networks = self._engine.networks
        network = await networks.get(self._name(call, name))
        return json_response(await self._resource(network, await networks.users(network)))

    async def compat_create(self, call: ApiCall) -> Response:
        """``POST /networks/create``: Docker's ``NetworkCreateRequest``."""
        body = json_object(call.json_body(empty_ok=False), "the network configuration")
        what = "NetworkCreateRequest"
        options = string_map(body, "Options", what)
        warnings = [
            f'"{k}: {v}" is not a recognized option'
            for k, v in options.items()
            if k not in _KNOWN_OPTIONS
        ]
        ipam = json_object(field(body, "IPAM") or {}, f"{what}.IPAM")
        subnets = []
        for item in field(ipam, "Config") or []:
            config = json_object(item, f"{what}.IPAM.Config[]")
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
            interface=options.get("com.docker.network.bridge.name", ""),
            driver=text(body, "Driver", what) or "bridge",
            ipv6=bool(field(body, "EnableIPv6")),
            internal=bool(field(body, "Internal")),
            labels=string_map(body, "Labels", what),
            options={"isolate": "true"} | {k: v for k, v in options.items() if k == "mtu"},
        )
        return json_response({"Id": network.id, "Warning": "; ".join(warnings)}, 201)

    async def compat_remove(self, call: ApiCall, name: str) -> Response:
        """``DELETE /networks/{name}``: 204; 409 in use or the default one."""
        await self._engine.networks.remove(self._name(call, name))
        return no_content()

    async def compat_connect(self, call: ApiCall, name: str) -> Response:
        """``POST /networks/{name}/connect``: ``{"Container", "EndpointConfig"}``."""
        body = json_object(call.json_body(empty_ok=False), "the connect request")
        config = json_object(field(body, "EndpointConfig") or {}, "EndpointConfig")
        ipam = json_object(field(config, "IPAMConfig") or {}, "EndpointConfig.IPAMConfig")
        addresses = [
            text(config, "IPAddress", "EndpointConfig"),
            text(ipam, "IPv4Address", "IPAMConfig"),
            text(ipam, "IPv6Address", "IPAMConfig"),
        ]
        endpoint = NetworkEndpoint(
            name=self._name(call, name),
            aliases=strings(config, "Aliases", "EndpointConfig"),
            static_ips=tuple(dict.fromkeys(a for a in addresses if a)),
            static_mac=text(config, "MacAddress", "EndpointConfig"),
        )
        await self._connect(text(body, "Container", "connect request"), endpoint)
        return text_response("OK")

    async def _connect(self, container: str, endpoint: NetworkEndpoint) -> None:
        if not container:
            raise BadRequest("the connect request names no Container")
        await self._engine.connect_network(container, endpoint)

    async def disconnect(self, call: ApiCall, name: str) -> Response:
        """``POST /networks/{name}/disconnect``: ``{"Container", "Force"}`` (both trees)."""
        body = json_object(call.json_body(empty_ok=False), "the disconnect request")
        container = text(body, "Container", "disconnect request") or text(
            body, "container", "disconnect request"
        )
        if not container:
            raise BadRequest("the disconnect request names no Container")
        await self._engine.disconnect_network(container, self._name(call, name))
        return text_response("OK")

    async def compat_prune(self, call: ApiCall) -> Response:
        """``POST /networks/prune?filters=``: unused networks."""
        removed = await self._engine.networks.prune(call.filters())
        return json_response({"NetworksDeleted": removed})

    # --- libpod ---------------------------------------------------------------------

    async def libpod_list(self, call: ApiCall) -> Response:
        """``GET /libpod/networks/json?filters=``."""
        found, _ = await self._engine.networks.selected(call.filters())
        return json_response([n.to_json() for n in found])

    async def libpod_inspect(self, call: ApiCall, name: str) -> Response:
        """``GET /libpod/networks/{name}/json``."""
        return json_response((await self._engine.networks.get(name)).to_json())

    async def exists(self, call: ApiCall, name: str) -> Response:
        """204 if the network exists, 404 otherwise."""
        await self._engine.networks.get(name)
        return no_content()

    async def libpod_create(self, call: ApiCall) -> Response:
        """``POST /libpod/networks/create``: netavark's network JSON in, the stored one out."""
        body = json_object(call.json_body(empty_ok=False), "the network")
        what = "Network"
        subnets = []
        for item in field(body, "subnets") or []:
            config = json_object(item, f"{what}.subnets[]")
            lease = json_object(field(config, "lease_range") or {}, "lease_range")
            subnets.append(
                Subnet(
                    text(config, "subnet", "subnets"),
                    text(config, "gateway", "subnets"),
                    text(lease, "start_ip", "lease_range"),
                    text(lease, "end_ip", "lease_range"),
                )
            )
        dns = field(body, "dns_enabled")
        ipam = string_map(body, "ipam_options", what)
        if ipam.get("driver", "host-local") not in ("", "host-local"):
            raise BadRequest(
                f"unsupported ipam driver {ipam['driver']!r}: only host-local is supported"
            )
        network = await self._engine.networks.create(
            text(body, "name", what),
            subnets=subnets,
            interface=text(body, "network_interface", what),
            driver=text(body, "driver", what) or "bridge",
            ipv6=bool(field(body, "ipv6_enabled")),
            internal=bool(field(body, "internal")),
            dns=True if dns is None else bool(dns),
            labels=string_map(body, "labels", what),
            options=string_map(body, "options", what),
        )
        return json_response(network.to_json())

    async def libpod_remove(self, call: ApiCall, name: str) -> Response:
        """``DELETE /libpod/networks/{name}?force=``: force removes its containers first."""
        network = await self._engine.networks.remove(name, force=call.flag("force"))
        return json_response([{"Name": network.name, "Err": None}])

    async def libpod_connect(self, call: ApiCall, name: str) -> Response:
        """``{"container", "aliases", "static_ips", "static_mac", "interface_name"}``."""
        body = json_object(call.json_body(empty_ok=False), "the connect request")
        what = "connect request"
        endpoint = NetworkEndpoint(
            name=name,
            aliases=strings(body, "aliases", what),
            static_ips=strings(body, "static_ips", what),
            static_mac=text(body, "static_mac", what),
        )
        await self._connect(text(body, "container", what), endpoint)
        return text_response("OK")

    async def libpod_prune(self, call: ApiCall) -> Response:
        """``POST /libpod/networks/prune``: ``[{"Name", "Error"}]``."""
        removed = await self._engine.networks.prune(call.filters())
        return json_response([{"Name": n, "Error": None} for n in removed])

    async def libpod_update(self, call: ApiCall, name: str) -> Response:
        """``POST /libpod/networks/{name}/update``: ``{"adddnsservers", "removednsservers"}``."""
        body = json_object(call.json_body(empty_ok=False), "the network update")
        what = "NetworkUpdateOptions"
        await self._engine.networks.update_dns(
            name,
            add=strings(body, "adddnsservers", what),
            drop=strings(body, "removednsservers", what),
        )
        return no_content()


#: Docker bridge options podapi understands (others come back as a warning, as in Podman).
_KNOWN_OPTIONS = frozenset({"com.docker.network.bridge.name", "mtu"})
