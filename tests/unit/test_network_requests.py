"""Network and port settings of create requests, both trees (decoding only)."""

import pytest

from podapi.engine.containerspec import NetworkEndpoint, PortSpec, parse_port
from podapi.errors import InvalidArgument
from podapi.http.call import BadRequest
from podapi.http.compat.createbody import decode_create
from podapi.http.libpod.specgen import decode_specgen


@pytest.mark.parametrize(
    ("text", "parsed"),
    [("80", (80, 1, "tcp")), ("53/udp", (53, 1, "udp")), ("8000-8009/TCP", (8000, 10, "tcp"))],
)
def test_parse_port(text: str, parsed: tuple[int, int, str]) -> None:
    assert parse_port(text) == parsed


@pytest.mark.parametrize("text", ["", "http", "80-", "0", "70000", "90-80/tcp", "1-x"])
def test_parse_port_refuses_malformed(text: str) -> None:
    with pytest.raises(InvalidArgument):
        parse_port(text)


def test_compat_port_bindings_and_networks() -> None:
    spec = decode_create(
        {
            "Image": "x",
            "HostConfig": {
                "NetworkMode": "front",
                "PortBindings": {
                    "80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}],
                    "53/udp": [{"HostPort": ""}],
                    "7000-7001/tcp": [{"HostPort": "9000-9001"}],
                },
                "PublishAllPorts": True,
            },
            "NetworkingConfig": {
                "EndpointsConfig": {
                    "front": {"Aliases": ["web"], "IPAMConfig": {"IPv4Address": "10.9.0.9"}},
                    "default": None,
                }
            },
        },
        None,
    )
    assert spec.network_mode == "front"
    assert spec.publish_all
    assert spec.ports == (
        PortSpec(container_port=80, host_port=8080, protocol="tcp", host_ip="127.0.0.1"),
        PortSpec(container_port=53, protocol="udp"),
        PortSpec(container_port=7000, host_port=9000, range=2),
    )
    assert spec.networks == (
        NetworkEndpoint("front", aliases=("web",), static_ips=("10.9.0.9",)),
        NetworkEndpoint("bridge"),
    )


def test_compat_default_network_mode_is_bridge() -> None:
    assert decode_create({"Image": "x"}, None).network_mode == "bridge"
    assert decode_create({"Image": "x", "HostConfig": {"NetworkMode": "default"}}, None)


@pytest.mark.parametrize(
    "host",
    [
        {"PortBindings": {"80/tcp": [{"HostPort": "8080-8081"}]}},  # sizes differ
        {"PortBindings": {"eighty": [{}]}},
        {"PortBindings": {"80/tcp": ["8080"]}},
        {"PortBindings": {"80/tcp": [{"HostPort": 8080}]}},
    ],
)
def test_compat_bad_port_bindings_are_400(host: dict[str, object]) -> None:
    with pytest.raises(InvalidArgument):
        decode_create({"Image": "x", "HostConfig": host}, None)


def test_libpod_network_settings() -> None:
    spec = decode_specgen(
        {
            "image": "x",
            "netns": {"nsmode": "bridge"},
            "Networks": {"front": {"aliases": ["web"], "static_ips": ["10.9.0.9"]}},
            "portmappings": [{"container_port": 80, "host_port": 8080, "host_ip": "127.0.0.1"}],
        }
    )
    assert spec.network_mode == "bridge"
    assert spec.networks == (NetworkEndpoint("front", aliases=("web",), static_ips=("10.9.0.9",)),)
    assert spec.ports == (PortSpec(container_port=80, host_port=8080, host_ip="127.0.0.1"),)
    assert decode_specgen({"image": "x", "netns": {"nsmode": "none"}}).network_mode == "none"
    joined = decode_specgen({"image": "x", "netns": {"nsmode": "container", "value": "abc"}})
    assert joined.network_mode == "container:abc"
    assert decode_specgen({"image": "x", "netns": {"nsmode": "path", "value": "/run/n"}})
    with pytest.raises(BadRequest):
        decode_specgen({"image": "x", "netns": {"nsmode": "moon"}})
