"""Networks: definitions, addresses, and wiring containers up with netavark.

The default network (``podman`` on the bridge ``podman0``, 10.88.0.0/16
unless configured otherwise) is not stored: it is made from the configuration
at every start, as in Podman.  User networks are stored as netavark JSON.  A
container in ``bridge`` mode gets a network namespace file of its own; at
start its addresses are allocated, ``netavark setup`` wires it to every network
it joins (publishing its ports), and what was done is kept with the container
so that ``teardown`` (at its exit, even by ``podapi.cleanup``) undoes exactly
that.
"""

import hashlib
import json
import os
import re
import secrets
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from functools import partial

from attrs import evolve

from podapi.config import BRIDGE_NAME_MAX, NetworkConfig
from podapi.engine import ipam, ports
from podapi.engine.containerspec import ContainerSpec, NetworkEndpoint
from podapi.engine.events import EventBus
from podapi.engine.landrivers import DRIVERS, check_lan_network
from podapi.engine.layout import Layout
from podapi.engine.networkfilters import network_filter
from podapi.engine.state import containers as container_rows
from podapi.engine.state import networks as rows
from podapi.engine.state.containers import ContainerRecord
from podapi.engine.state.database import State
from podapi.engine.times import rfc3339_nano
from podapi.errors import Conflict, InvalidArgument, NoSuchContainer, NoSuchNetwork
from podapi.logs import get_logger
from podapi.oci import netns
from podapi.oci.netavark import (
    Endpoint,
    Joined,
    Netavark,
    Network,
    NetworkSetup,
    Subnet,
    setup_input,
)
from podapi.oci.process import Runner
from podapi.oci.runtime import RuntimeFailure
from podapi.threads import Blocking

log = get_logger(__name__)

#: Stores a container's network setup as it progresses.
SaveSetup = Callable[[NetworkSetup], Awaitable[object]]

NETWORK_MODES = ("bridge", "none", "host")
#: Podman's rule for network names.
NAME_PATTERN = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
#: Docker's (libnetwork's) rule: inner spaces too.
DOCKER_NAME_PATTERN = re.compile(r"^[a-zA-Z0-9_]+[a-zA-Z0-9_. -]*[a-zA-Z0-9_]+$")
MAC_PATTERN = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")
#: Where IPv6 subnets of dual-stack networks come from (Podman's unique local range).
IPV6_POOL = "fd00:0:0:ff00::/56"


def network_id(name: str) -> str:
    """The default network's ID (stable: derived from its name, as Podman's)."""
    return hashlib.sha256(name.encode()).hexdigest()


def _host_routes() -> list[str]:
    with (
        open("/proc/net/route", encoding="ascii") as v4,
        open("/proc/net/ipv6_route", encoding="ascii") as v6,
    ):
        return ipam.host_routes(v4.read(), v6.read())


def _host_interfaces() -> set[str]:
    try:
        return set(os.listdir("/sys/class/net"))
    except OSError:
        return set()


class NetworkService:
    """Network definitions and container wiring.

    :param netavark: the backend (None when netavark is not installed: then only
        ``none`` and ``host`` work, with a clear error otherwise).
    :param remove_container: force-removes a container by ID (the ``None``: KILL at
        once); a container that is gone already is no error.  The container
        lifecycle sits above this service (it wires containers up through it), so
        the engine hands that use case down.
    """

    def __init__(
        self,
        config: NetworkConfig,
        *,
        layout: Layout,
        state: State,
        io: Blocking,
        events: EventBus,
        runner: Runner,
        netavark: Netavark | None,
        remove_container: Callable[[str, int | None], Awaitable[None]],
    ) -> None:
        self.config = config
        self._remove_container = remove_container
        self._layout = layout
        self._state = state
        self._io = io
        self._events = events
        self._runner = runner
        self._netavark = netavark
        self.default = Network(
            name=config.default_name,
            id=network_id(config.default_name),
            interface=config.default_bridge,
            created=rfc3339_nano(events.now_ns()),
            subnets=(ipam.complete(Subnet(config.default_subnet)),),
        )

    async def start(self, *, serve: bool) -> None:
        """The server records its default network; ``podapi.cleanup`` takes the server's."""
        if serve:
            await self._state.write(partial(rows.save_default, network=self.default))
            return
        stored = await self._state.read(rows.load_default)
        if stored is not None:
            self.default = stored

    # --- definitions ------------------------------------------------------------------

    async def all(self) -> list[Network]:
        """The default network first, then the stored ones by name."""
        return [self.default, *await self._state.read(rows.load_all)]

    async def get(self, text: str) -> Network:
        """By name, full ID or unique ID prefix; 404 otherwise."""
        networks = await self.all()
        for network in networks:
            if text in (network.name, network.id):
                return network
        matches = [n for n in networks if text and n.id.startswith(text)]
        if len(matches) == 1:
            return matches[0]
        if matches:
            raise Conflict(f"more than one network matches {text!r}", cause="ambiguous network")
        raise NoSuchNetwork(f"unable to find network with name or ID {text}: network not found")

    async def create(
        self,
        name: str,
        *,
        subnets: Sequence[Subnet] = (),
        interface: str = "",
        driver: str = "bridge",
        ipv6: bool = False,
        internal: bool = False,
        dns: bool = True,
        labels: Mapping[str, str] | None = None,
        options: Mapping[str, str] | None = None,
        docker_names: bool = False,
    ) -> Network:
        """A new network: a bridge (free subnets and a free bridge name when not given)
        or a ``macvlan``/``ipvlan`` network on the host interface ``interface``.

        :param docker_names: Docker's name rule too (the compat tree), which allows
            spaces (``test 01``) where Podman refuses them.  netavark copes: the bridge
            name is ours, firewall chains are named by hashes, and aardvark-dns keeps a
            file per network name.
        """
        if driver not in DRIVERS:
            raise InvalidArgument(f"unsupported driver {driver}: invalid argument")
        if not name:
            name = f"{self.config.bridge_prefix}{secrets.token_hex(3)}"
        if not NAME_PATTERN.match(name) and not (docker_names and DOCKER_NAME_PATTERN.match(name)):
            raise InvalidArgument(
                f"invalid network name {name!r}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
            )
        if name == self.default.name:
            raise Conflict(f"network name {name} already used: network already exists")
        existing = await self.all()
        if driver == "bridge":
            chosen = await self._bridge_subnets(subnets, ipv6, existing)
            interface = interface or await self._free_bridge(existing)
            if any(n.interface == interface for n in existing):
                raise Conflict(f"bridge name {interface} already used by another network")
        else:
            chosen = [ipam.complete(s) for s in subnets]
            host_interfaces = await self._io(_host_interfaces)
            check_lan_network(driver, interface, chosen, options or {}, host_interfaces)
        network = Network(
            name=name,
            id=secrets.token_hex(32),
            interface=interface,
            driver=driver,
            created=rfc3339_nano(self._events.now_ns()),
            subnets=tuple(chosen),
            ipv6_enabled=ipv6,
            internal=internal,
            dns_enabled=dns,
            labels=dict(labels or {}),
            options=dict(options or {}),
        )
        await self._state.write(partial(rows.insert, network=network))
        self._emit("create", network)
        return network

    async def _bridge_subnets(
        self, subnets: Sequence[Subnet], ipv6: bool, existing: Sequence[Network]
    ) -> list[Subnet]:
        """A bridge's subnets: as given, free of other networks' and the host's routes,
        plus a free IPv4 one (and an IPv6 one for ``ipv6``) from the pools if none given."""
        taken = [s.subnet for n in existing for s in n.subnets]
        taken += await self._io(_host_routes)
        chosen = [ipam.complete(s) for s in subnets]
        ipam.check_no_overlap([s.subnet for s in chosen], taken)
        if not any(ipam.parse_subnet(s.subnet).version == 4 for s in chosen):
            chosen.insert(
                0, ipam.complete(Subnet(ipam.free_subnet(self.config.subnet_pool, taken)))
            )
        if ipv6 and not any(ipam.parse_subnet(s.subnet).version == 6 for s in chosen):
            chosen.append(ipam.complete(Subnet(ipam.free_subnet(IPV6_POOL, taken, 64))))
        return chosen

    def _emit(self, action: str, network: Network, **attributes: str) -> None:
        """A network event with Docker's attributes (name, type)."""
        self._events.emit(
            "network", action, network.id, name=network.name, type=network.driver, **attributes
        )

    async def _free_bridge(self, existing: Iterable[Network]) -> str:
        used = {n.interface for n in existing} | await self._io(_host_interfaces)
        prefix = self.config.bridge_prefix[: BRIDGE_NAME_MAX - 3]
        for index in range(1, 1000):
            candidate = f"{prefix}{index}"
            if candidate not in used:
                return candidate
        raise Conflict("no free bridge name left", cause="bridge names exhausted")

    async def all_users(self) -> Mapping[str, list[str]]:
        """Network name -> IDs of the containers configured to join it."""
        return await self._state.read(rows.users)

    async def users(self, network: Network) -> list[str]:
        """IDs of the containers configured to join ``network``."""
        return list((await self.all_users()).get(network.name, []))

    async def selected(
        self, filters: Mapping[str, Sequence[str]]
    ) -> tuple[list[Network], Mapping[str, list[str]]]:
        """The networks list ``filters`` select, and every network's users (name -> IDs)."""
        users = await self.all_users()
        keep = network_filter(filters, self.default.name, users, self._events.now_ns())
        return [n for n in await self.all() if keep(n)], users

    async def update_dns(self, name: str, add: Sequence[str], drop: Sequence[str]) -> None:
        """Change the upstream DNS servers of a user network (and its running aardvark-dns)."""
        network = await self.get(name)
        if network.name == self.default.name:
            raise InvalidArgument(
                f"default network {network.name} cannot be modified", cause="default network"
            )
        if not network.dns_enabled:
            raise InvalidArgument(
                f"network {network.name} has DNS disabled: it has no DNS servers to update",
                cause="dns is disabled",
            )
        for server in add:
            ipam.parse_address(server)
        servers = tuple(dict.fromkeys([*(s for s in network.dns_servers if s not in drop), *add]))
        if servers == network.dns_servers:
            return
        await self._state.write(partial(rows.replace, network=evolve(network, dns_servers=servers)))
        if self._netavark is not None and await self.users(network):
            await self._netavark.update_dns(network.name, servers)

    async def remove(
        self, name: str, *, force: bool = False, timeout: int | None = None
    ) -> Network:
        """Delete a user network; 409 for the default one or one in use, 404 when unknown.

        :param force: remove the containers configured to join it first (libpod's
            ``force``); a pod's infra container takes its pod along.
        :param timeout: with ``force``, seconds a running container gets between its
            stop signal and KILL (None: KILL at once).
        :returns: the network removed.
        """
        network = await self.get(name)
        if force:
            for container_id in await self.users(network):
                await self._remove_container(container_id, timeout)
        await self._delete(network)
        return network

    async def prune(self, filters: Mapping[str, Sequence[str]]) -> list[str]:
        """Delete the user networks no container is configured to join, among those
        ``filters`` (``until``, ``label``, ``label!``) select; their names."""
        if set(filters) - {"until", "label", "label!"}:
            raise InvalidArgument("network prune accepts the filters until and label only")
        found, users = await self.selected(filters)
        removed = []
        for network in found:
            if network.name != self.default.name and not users.get(network.name):
                await self._delete(network)
                removed.append(network.name)
        return removed

    async def _delete(self, network: Network) -> None:
        if network.name == self.default.name:
            raise Conflict(
                f"default network {network.name} cannot be removed",
                cause="default network",
            )
        users = await self.users(network)
        if users:
            raise Conflict(
                f'"{network.name}" has associated containers with it. Use -f to forcibly '
                f"delete containers and pods: network is being used ({', '.join(users)})",
                cause="network is being used",
            )
        await self._state.write(partial(rows.delete, name=network.name))
        self._emit("remove", network)

    # --- containers: create time ------------------------------------------------------

    async def normalize(self, spec: ContainerSpec) -> ContainerSpec:
        """Check a new container's network settings; fill in the default network."""
        mode = spec.network_mode
        if mode in ("", "default", "private"):
            mode = "bridge"
        if mode.startswith("container:"):
            target = mode.partition(":")[2]
            found = await self._state.read(partial(container_rows.resolve, text=target))
            if found is None:
                raise NoSuchContainer(f"no container with name or ID {target!r} found")
            return evolve(spec, network_mode=f"container:{found}", networks=(), ports=())
        if mode.startswith("ns:"):
            path = mode.partition(":")[2]
            if not os.path.isabs(path):
                raise InvalidArgument(f"network namespace path {path!r} must be absolute")
            return evolve(spec, networks=(), ports=())
        if mode not in NETWORK_MODES:
            # Docker: a NetworkMode that names a network joins it.
            spec = evolve(spec, networks=(NetworkEndpoint(mode), *spec.networks))
            mode = "bridge"
        for port in spec.ports:
            ports.check(port)
        if mode != "bridge":
            if spec.networks:
                raise InvalidArgument(f"networks cannot be joined in network mode {mode}")
            return evolve(spec, network_mode=mode, ports=() if mode == "host" else spec.ports)
        endpoints: dict[str, NetworkEndpoint] = {}
        for endpoint in spec.networks or (NetworkEndpoint(self.default.name),):
            # Docker's name for the default network.
            network = await self.get(
                self.default.name if endpoint.name == "bridge" else endpoint.name
            )
            named = evolve(endpoint, name=network.name)
            if network.name in endpoints:  # NetworkMode and EndpointsConfig name it both
                named = _merge(endpoints[network.name], named)
            _check_endpoint(named)
            endpoints[network.name] = named
        chosen = list(endpoints.values())
        if spec.mac_address and not chosen[0].static_mac:
            # Docker's Config.MacAddress: the MAC on the first network.
            chosen[0] = evolve(chosen[0], static_mac=spec.mac_address)
            _check_endpoint(chosen[0])
        return evolve(spec, network_mode="bridge", networks=tuple(chosen))

    # --- containers: start and stop ---------------------------------------------------

    def netns_path(self, container_id: str) -> str:
        return os.path.join(self._layout.runroot, "netns", container_id)

    def _backend(self) -> Netavark:
        if self._netavark is None:
            raise InvalidArgument(
                "netavark is not installed: only network modes none and host work",
                cause="network backend not available",
            )
        return self._netavark

    async def setup(self, record: ContainerRecord, save: SaveSetup) -> NetworkSetup:
        """Create the namespace, allocate addresses, run ``netavark setup`` (bridge mode).

        :param save: stores the progress with the container before each step that
            changes the host, so a teardown after a crash knows what to undo.
        """
        backend = self._backend()
        path = self.netns_path(record.id)
        done = NetworkSetup(netns=path)
        await save(done)
        try:
            await self._io(netns.prepare, path)
            await netns.create(self._runner, path)
            published = await self._io(ports.resolve, record.spec.ports, ports.exposed(record))
            done = evolve(done, ports=tuple(published))
            joined = await self._join(backend, record, done, record.spec.networks, save=save)
            return evolve(done, joined=joined)
        except BaseException:
            await self.teardown(record, done)
            raise

    async def _join(
        self,
        backend: Netavark,
        record: ContainerRecord,
        done: NetworkSetup,
        endpoints: Sequence[NetworkEndpoint],
        *,
        save: SaveSetup,
    ) -> dict[str, Joined]:
        """Wire the namespace of ``done`` to more networks (its ports go with the first)."""
        first_interface = len(done.joined)
        published = () if done.joined else done.ports
        networks = {e.name: await self.get(e.name) for e in endpoints}
        wanted: dict[str, Endpoint] = {}
        for index, endpoint in enumerate(endpoints):
            addresses = await self._state.write(
                partial(
                    rows.allocate,
                    network=networks[endpoint.name],
                    container_id=record.id,
                    static=endpoint.static_ips,
                )
            )
            wanted[endpoint.name] = Endpoint(
                interface_name=f"eth{first_interface + index}",
                static_ips=tuple(addresses),
                aliases=(*endpoint.aliases, record.id[:12]),
                static_mac=endpoint.static_mac,
            )
        options = setup_input(record.id, record.name, wanted, networks, published)
        await save(evolve(done, pending=options.decode()))
        try:
            attached = await backend.setup(done.netns, options)
        except BaseException:
            # A failed setup may have made bridges and firewall rules already.
            await self._undo_setup(backend, record.id, done.netns, options, list(wanted))
            raise
        return {
            name: Joined(networks[name], wanted[name], attached[name])
            for name in wanted
            if name in attached
        }

    async def _undo_setup(
        self, backend: Netavark, container_id: str, path: str, options: bytes, names: list[str]
    ) -> None:
        try:
            await backend.teardown(path, options)
        except RuntimeFailure as e:
            log.debug("teardown after a failed setup of {id}: {error}", id=container_id, error=e)
        await self._state.write(partial(rows.release, container_id=container_id, networks=names))

    async def teardown(self, record: ContainerRecord, done: NetworkSetup | None = None) -> None:
        """Undo :meth:`setup` (idempotent: a missing namespace or an error is logged)."""
        done = record.network_status if done is None else done
        if not done.netns:
            return
        if self._netavark is not None:
            inputs = [done.pending.encode()] if done.pending else []
            if done.joined:
                inputs.append(done.teardown_input(record.id, record.name))
            for options in inputs:
                try:
                    await self._netavark.teardown(done.netns, options)
                except RuntimeFailure as e:
                    log.warn("network teardown of {id}: {error}", id=record.id, error=e.message)
        await self._state.write(partial(rows.release, container_id=record.id))
        await self._io(netns.remove, done.netns)

    async def connect(
        self, record: ContainerRecord, endpoint: NetworkEndpoint, save: SaveSetup
    ) -> tuple[ContainerSpec, NetworkSetup]:
        """Join one more network (now, if the container runs); the new spec and setup."""
        if record.spec.network_mode != "bridge":
            raise InvalidArgument(
                f"container {record.id} is in network mode {record.spec.network_mode}: "
                "it cannot join networks",
                cause="invalid network mode",
            )
        network = await self.get(endpoint.name)
        if any(e.name == network.name for e in record.spec.networks):
            raise Conflict(
                f"container {record.id} is already connected to network {network.name}",
                cause="network connection already exists",
            )
        endpoint = evolve(endpoint, name=network.name)
        _check_endpoint(endpoint)
        spec = evolve(record.spec, networks=(*record.spec.networks, endpoint))
        done = record.network_status
        if done.netns:
            joined = await self._join(self._backend(), record, done, [endpoint], save=save)
            done = evolve(done, joined={**done.joined, **joined})
        # Podman (NetworkConnect) reports the connection whether the container runs or
        # not, and only here: starting and stopping a container emit no network events.
        self._emit("connect", network, container=record.id)
        return spec, done

    async def disconnect(
        self, record: ContainerRecord, name: str
    ) -> tuple[ContainerSpec, NetworkSetup]:
        """Leave a network: the new spec and setup, the setup with the network's
        teardown still ``pending`` (store them, then :meth:`finish_pending`), so a
        crash between the two is finished at restart and never leaves the network
        half-left."""
        network = await self.get(name)
        if not any(e.name == network.name for e in record.spec.networks):
            raise Conflict(
                f"container {record.id} is not connected to network {network.name}",
                cause="network connection does not exist",
            )
        spec = evolve(
            record.spec, networks=tuple(e for e in record.spec.networks if e.name != network.name)
        )
        done = record.network_status
        joined = done.joined.get(network.name)
        if joined is not None:
            leaving = NetworkSetup(netns=done.netns, joined={network.name: joined})
            done = evolve(
                done,
                joined={n: j for n, j in done.joined.items() if n != network.name},
                pending=leaving.teardown_input(record.id, record.name).decode(),
            )
        self._emit("disconnect", network, container=record.id)
        return spec, done

    async def finish_pending(self, record: ContainerRecord) -> NetworkSetup:
        """Tear down the ``pending`` input of a running container's setup and give its
        networks' addresses back; the setup without it.

        The pending input is a disconnect's (finished: the network is left) or a
        connect's whose ``netavark setup`` may or may not have run before a crash
        (undone: the connect never answered, and a retry starts afresh).  A
        teardown error is logged: there may be nothing left to tear down.
        """
        done = record.network_status
        if not done.pending:
            return done
        names = [n for n in json.loads(done.pending)["networks"] if n not in done.joined]
        if self._netavark is not None:
            try:
                await self._netavark.teardown(done.netns, done.pending.encode())
            except RuntimeFailure as e:
                log.info("pending network teardown of {id}: {error}", id=record.id, error=e)
        await self._state.write(partial(rows.release, container_id=record.id, networks=names))
        return evolve(done, pending="")


def _merge(first: NetworkEndpoint, second: NetworkEndpoint) -> NetworkEndpoint:
    return NetworkEndpoint(
        name=first.name,
        aliases=tuple(dict.fromkeys((*first.aliases, *second.aliases))),
        static_ips=second.static_ips or first.static_ips,
        static_mac=second.static_mac or first.static_mac,
        links=tuple(dict.fromkeys((*first.links, *second.links))),
        driver_opts={**first.driver_opts, **second.driver_opts},
        link_local_ips=second.link_local_ips or first.link_local_ips,
    )


def _check_endpoint(endpoint: NetworkEndpoint) -> None:
    for address in (*endpoint.static_ips, *endpoint.link_local_ips):
        ipam.parse_address(address)
    if endpoint.static_mac and not MAC_PATTERN.match(endpoint.static_mac):
        raise InvalidArgument(f"invalid MAC address {endpoint.static_mac!r}")
