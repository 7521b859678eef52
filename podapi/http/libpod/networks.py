"""Podman's network routes: netavark's network JSON, create -> 200 with it,
``DELETE`` -> 200 ``[{"Name", "Err"}]``, ``prune`` -> ``[{"Name", "Error"}]``.

Differences from Podman 4.3.1, on purpose: malformed bodies, subnets and
addresses are 400, an overlapping subnet or a network in use 409 (Podman: 500).
"""

from functools import partial

from klein import Response

from podapi.engine.containerspec import NetworkEndpoint
from podapi.engine.engine import Engine
from podapi.engine.ocimodel import Subnet
from podapi.http.bodyfields import boolean, field, json_object, objects, string_map, strings, text
from podapi.http.both.networks import join_network, leave_network
from podapi.http.call import ApiCall, BadRequest
from podapi.http.responses import json_response, no_content, text_response
from podapi.http.routing import Router


class LibpodNetworkRoutes:
    """``/libpod/networks``."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def register(self, router: Router) -> None:
        """Add the routes."""
        # Podman 4 changed these routes' JSON (netavark's): its handlers refuse an
        # older API version with 400 (``SupportedVersion(r, ">=4.0.0")``); disconnect
        # (Docker's handler) and update (newer) do not check.
        v4 = partial(router.libpod, since=(4, 0, 0))
        v4("GET", "/networks/json", self.list_networks)
        v4("POST", "/networks/create", self.create)
        v4("POST", "/networks/prune", self.prune)
        v4("GET", "/networks/<name>/json", self.inspect)
        v4("GET", "/networks/<name>", self.inspect)
        v4("GET", "/networks/<name>/exists", self.exists)
        v4("DELETE", "/networks/<name>", self.remove)
        v4("POST", "/networks/<name>/connect", self.connect)
        router.libpod("POST", "/networks/<name>/disconnect", self.disconnect)
        router.libpod("POST", "/networks/<name>/update", self.update)

    async def list_networks(self, call: ApiCall) -> Response:
        """``GET /libpod/networks/json?filters=``."""
        found, _ = await self._engine.networks.selected(call.filters())
        return json_response([n.to_json() for n in found])

    async def inspect(self, call: ApiCall, name: str) -> Response:
        """``GET /libpod/networks/{name}/json``."""
        return json_response((await self._engine.networks.get(name)).to_json())

    async def exists(self, call: ApiCall, name: str) -> Response:
        """204 if the network exists, 404 otherwise."""
        await self._engine.networks.get(name)
        return no_content()

    async def create(self, call: ApiCall) -> Response:
        """``POST /libpod/networks/create``: netavark's network JSON in, the stored one out."""
        body = json_object(call.json_body(empty_ok=False), "the network")
        what = "Network"
        subnets = []
        for config in objects(body, "subnets", what):
            lease = json_object(field(config, "lease_range") or {}, "lease_range")
            subnets.append(
                Subnet(
                    text(config, "subnet", "subnets"),
                    text(config, "gateway", "subnets"),
                    text(lease, "start_ip", "lease_range"),
                    text(lease, "end_ip", "lease_range"),
                )
            )
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
            ipv6=boolean(body, "ipv6_enabled", what),
            internal=boolean(body, "internal", what),
            dns=boolean(body, "dns_enabled", what, default=True),
            labels=string_map(body, "labels", what),
            options=string_map(body, "options", what),
        )
        return json_response(network.to_json())

    async def remove(self, call: ApiCall, name: str) -> Response:
        """``DELETE /libpod/networks/{name}?force=&timeout=``: force removes its containers
        first (the pods whose infra container joins it, with their containers)."""
        network = await self._engine.networks.remove(
            name, force=call.flag("force"), timeout=call.integer("timeout")
        )
        return json_response([{"Name": network.name, "Err": None}])

    async def connect(self, call: ApiCall, name: str) -> Response:
        """``{"container", "aliases", "static_ips", "static_mac", "interface_name"}``."""
        body = json_object(call.json_body(empty_ok=False), "the connect request")
        what = "connect request"
        endpoint = NetworkEndpoint(
            name=name,
            aliases=strings(body, "aliases", what),
            static_ips=strings(body, "static_ips", what),
            static_mac=text(body, "static_mac", what),
        )
        await join_network(self._engine, text(body, "container", what), endpoint)
        return text_response("OK")

    async def prune(self, call: ApiCall) -> Response:
        """``POST /libpod/networks/prune``: ``[{"Name", "Error"}]``."""
        removed = await self._engine.networks.prune(call.filters())
        return json_response([{"Name": n, "Error": None} for n in removed])

    async def update(self, call: ApiCall, name: str) -> Response:
        """``POST /libpod/networks/{name}/update``: ``{"adddnsservers", "removednsservers"}``."""
        body = json_object(call.json_body(empty_ok=False), "the network update")
        what = "NetworkUpdateOptions"
        await self._engine.networks.update_dns(
            name,
            add=strings(body, "adddnsservers", what),
            drop=strings(body, "removednsservers", what),
        )
        return no_content()

    async def disconnect(self, call: ApiCall, name: str) -> Response:
        """``POST /libpod/networks/{name}/disconnect``: ``{"Container", "Force"}``."""
        await leave_network(call, self._engine, name)
        return text_response("OK")
