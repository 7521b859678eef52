"""Network definitions as netavark JSON, its setup answer, and the list filters."""

import json

import pytest

from podapi.engine.networkfilters import network_filter
from podapi.errors import InvalidArgument
from podapi.oci.netavark import (
    Endpoint,
    Joined,
    Network,
    NetworkSetup,
    PortMapping,
    Subnet,
    parse_setup_output,
)
from podapi.oci.runtime import RuntimeFailure

NOW = 2_000_000_000 * 10**9


def _network(name: str, **kw: object) -> Network:
    defaults: dict[str, object] = {
        "id": name * 4,
        "interface": f"br-{name}",
        "created": "2026-01-01T00:00:00Z",
        "subnets": (Subnet("10.9.0.0/24", "10.9.0.1"),),
    }
    return Network(name=name, **(defaults | kw))  # type: ignore[arg-type]


def test_network_json_round_trip_keeps_podmans_keys() -> None:
    network = _network(
        "front",
        subnets=(Subnet("10.9.0.0/24", "10.9.0.1", "10.9.0.10", "10.9.0.20"),),
        dns_enabled=True,
        labels={"a": "b"},
        options={"mtu": "1400"},
        dns_servers=("192.0.2.53",),
    )
    data = network.to_json()
    assert data["network_interface"] == "br-front"
    assert data["ipam_options"] == {"driver": "host-local"}
    assert data["subnets"][0]["lease_range"] == {"start_ip": "10.9.0.10", "end_ip": "10.9.0.20"}
    assert data["network_dns_servers"] == ["192.0.2.53"]
    assert Network.from_json(data) == network


def test_setup_output_per_network() -> None:
    output = b"""{"front": {"interfaces": {"eth0": {"mac_address": "aa:bb:cc:dd:ee:ff",
        "subnets": [{"ipnet": "10.9.0.2/24", "gateway": "10.9.0.1"}]}},
        "dns_server_ips": ["10.9.0.1"], "dns_search_domains": ["dns.podman"]}}"""
    attached = parse_setup_output(output)["front"]
    assert (attached.interface, attached.mac) == ("eth0", "aa:bb:cc:dd:ee:ff")
    assert [(a.ip, a.prefix_length, a.gateway) for a in attached.addresses] == [
        ("10.9.0.2", 24, "10.9.0.1")
    ]
    assert attached.dns_servers == ("10.9.0.1",)
    with pytest.raises(RuntimeFailure):
        parse_setup_output(b"panic")


def test_network_setup_survives_storage_and_rebuilds_the_teardown_input() -> None:
    attached = parse_setup_output(
        b'{"front": {"interfaces": {"eth0": {"mac_address": "m", "subnets": []}}}}'
    )["front"]
    done = NetworkSetup(
        netns="/run/x/netns/c",
        ports=(PortMapping(80, 8080, host_ip="127.0.0.1"),),
        joined={"front": Joined(_network("front"), Endpoint("eth0", ("10.9.0.2",)), attached)},
    )
    assert NetworkSetup.from_json(done.to_json()) == done
    data = json.loads(done.teardown_input("c" * 64, "web"))
    assert data["networks"]["front"]["static_ips"] == ["10.9.0.2"]
    assert data["port_mappings"][0]["host_port"] == 8080
    assert data["network_info"]["front"]["name"] == "front"


def _names(filters: dict[str, list[str]], users: dict[str, list[str]] | None = None) -> list[str]:
    networks = [
        _network("podman"),
        _network("front", labels={"tier": "web"}, created="2020-01-01T00:00:00Z"),
        _network("back", labels={"tier": "db"}),
    ]
    keep = network_filter(filters, "podman", users or {}, NOW)
    return [n.name for n in networks if keep(n)]


def test_filters() -> None:
    assert _names({}) == ["podman", "front", "back"]
    assert _names({"name": ["^f", "ack"]}) == ["front", "back"]
    assert _names({"id": ["frontfront"]}) == ["front"]
    assert _names({"label": ["tier"]}) == ["front", "back"]
    assert _names({"label": ["tier=db"]}) == ["back"]
    assert _names({"label!": ["tier=db"]}) == ["podman", "front"]
    assert _names({"type": ["builtin"]}) == ["podman"]
    assert _names({"type": ["custom"], "driver": ["bridge"]}) == ["front", "back"]
    assert _names({"dangling": ["true"]}, {"front": ["c1"]}) == ["podman", "back"]
    assert _names({"dangling": ["false"]}, {"front": ["c1"]}) == ["front"]
    assert _names({"until": ["2021-01-01T00:00:00Z"]}) == ["front"]


@pytest.mark.parametrize(
    "filters", [{"colour": ["red"]}, {"type": ["other"]}, {"name": ["("]}, {"dangling": ["x"]}]
)
def test_bad_filters_are_400(filters: dict[str, list[str]]) -> None:
    with pytest.raises(InvalidArgument):
        network_filter(filters, "podman", {}, NOW)
