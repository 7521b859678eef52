"""Podman's decoding rules that its own REST suite (test/apiv2) relies on (issue 16)."""

import json
from typing import Any

import pytest
import pytest_twisted
from treq.testing import StubTreq

from podapi.http.bodyfields import GoStruct


async def call(api: StubTreq, method: str, path: str, body: bytes | None = None) -> tuple[int, Any]:
    response = await api.request(method, "http://d" + path, data=body)
    content = await response.content()
    return response.code, json.loads(content) if content else None


@pytest.mark.parametrize(
    ("path", "body", "name"),
    [
        ("/v4.0.0/libpod/volumes/create", b'{"Name":"trailing1","Label":{"a":"b"}}}', "trailing1"),
        ("/v1.41/volumes/create", b'{"Name":"trailing2"} garbage', "trailing2"),
        ("/v4.0.0/libpod/volumes/create", b' \n{"Name":"trailing3"}{"Name":"x"}', "trailing3"),
    ],
)
@pytest_twisted.ensureDeferred
async def test_a_body_is_its_first_json_value(
    api: StubTreq, path: str, body: bytes, name: str
) -> None:
    """What follows the first JSON value is ignored, as Go's json.Decoder does (both trees)."""
    code, answer = await call(api, "POST", path, body)
    assert code == 201, answer
    assert answer["Name"] == name
    code, shown = await call(api, "GET", f"/v4.0.0/libpod/volumes/{name}/json")
    assert code == 200 and shown["Name"] == name


@pytest.mark.parametrize("body", [b'}{"Name":"x"}', b'{"Name":', b"\xff\xfe{}"])
@pytest_twisted.ensureDeferred
async def test_a_body_without_a_first_value_is_400(api: StubTreq, body: bytes) -> None:
    """A body that does not start with a complete JSON value is still a 400 with Podman's body."""
    code, answer = await call(api, "POST", "/v4.0.0/libpod/volumes/create", body)
    assert code == 400
    assert set(answer) == {"cause", "message", "response"}


@pytest_twisted.ensureDeferred
async def test_a_body_keeps_our_own_field_checks(api: StubTreq) -> None:
    """A first value of the wrong shape is refused by the route's checks (400)."""
    code, answer = await call(api, "POST", "/v4.0.0/libpod/volumes/create", b'["a"]}')
    assert code == 400, answer


def test_go_struct_matches_fields_in_any_case() -> None:
    """Exact key first, then one differing in case only; missing keys stay missing."""
    body = GoStruct({"Image": "a", "image_volumes": [], "NAME": "n", "name": "exact"})
    assert body["image"] == "a"
    assert body.get("name") == "exact"
    assert body.get("Image_Volumes") == []
    assert body.get("command") is None
    assert "IMAGE" in body and "command" not in body
    assert len(body) == 4 and sorted(body) == sorted(["Image", "image_volumes", "NAME", "name"])


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v3.4.0/libpod/networks/create"),
        ("GET", "/v3.4.0/libpod/networks/json"),
        ("GET", "/v3.0.0/libpod/networks/podman/json"),
        ("GET", "/v2.0.0/libpod/networks/podman/exists"),
        ("DELETE", "/v3.4.0/libpod/networks/anything"),
        ("POST", "/v3.4.0/libpod/networks/prune"),
    ],
)
@pytest_twisted.ensureDeferred
async def test_libpod_network_routes_refuse_an_api_before_4(
    api: StubTreq, method: str, path: str
) -> None:
    """Podman 4's network handlers answer 400 to ``/v3.x`` (their JSON changed in 4.0)."""
    code, answer = await call(api, method, path, b'{"name":"old"}')
    assert code == 400
    assert answer["cause"] == "given version is not supported"
    assert answer["message"].startswith("failed to parse query parameter 'version': \"")


@pytest_twisted.ensureDeferred
async def test_libpod_network_routes_serve_4_and_unchecked_ones_any(api: StubTreq) -> None:
    """``/v4.0.0`` is served; disconnect (Docker's handler in Podman) takes any version."""
    code, _ = await call(api, "GET", "/v4.0.0/libpod/networks/json")
    assert code == 200
    code, answer = await call(
        api, "POST", "/v3.4.0/libpod/networks/podman/disconnect", b'{"Container":"nonesuch"}'
    )
    assert code == 404, answer


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"name": "v1", "driver": "macvlan"},
            "macvlan driver needs at least one subnet specified",
        ),
        (
            {"name": "v2", "driver": "ipvlan", "network_interface": "nosuch0iface"},
            "parent interface nosuch0iface does not exist",
        ),
        (
            {
                "name": "v3",
                "driver": "macvlan",
                "subnets": [{"subnet": "10.10.135.0/24"}],
                "options": {"mode": "l3"},
            },
            "unknown macvlan mode 'l3'",
        ),
        (
            {
                "name": "v4",
                "driver": "ipvlan",
                "subnets": [{"subnet": "10.10.135.0/24"}],
                "options": {"isolate": "true"},
            },
            "unsupported ipvlan network option isolate",
        ),
        ({"name": "v5", "driver": "overlay"}, "unsupported driver overlay"),
    ],
)
@pytest_twisted.ensureDeferred
async def test_lan_driver_networks_are_checked_as_podman(
    api: StubTreq, body: dict[str, Any], message: str
) -> None:
    """macvlan/ipvlan need a subnet, an existing parent and their own modes and options."""
    code, answer = await call(
        api, "POST", "/v4.0.0/libpod/networks/create", json.dumps(body).encode()
    )
    assert code == 400, answer
    assert message in answer["message"]


@pytest_twisted.ensureDeferred
async def test_a_macvlan_network_takes_the_lan_subnet_as_given(api: StubTreq) -> None:
    """No pool subnet, no bridge name: the given subnet (gateway .1) on the default route's
    interface; Docker's ``parent`` and ``mode`` options name the interface and mode."""
    body = {"name": "lan1", "driver": "macvlan", "subnets": [{"subnet": "10.10.135.0/24"}]}
    code, made = await call(
        api, "POST", "/v4.0.0/libpod/networks/create", json.dumps(body).encode()
    )
    assert code == 200, made
    assert made["driver"] == "macvlan" and made["network_interface"] == ""
    assert made["subnets"] == [{"subnet": "10.10.135.0/24", "gateway": "10.10.135.1"}]
    compat = {
        "Name": "lan2",
        "Driver": "ipvlan",
        "Options": {"parent": "lo", "mode": "l3", "isolate": "x"},
        "IPAM": {"Config": [{"Subnet": "10.10.136.0/24"}]},
    }
    code, answer = await call(api, "POST", "/v1.41/networks/create", json.dumps(compat).encode())
    assert code == 201, answer
    assert answer["Warning"] == '"isolate: x" is not a recognized option'
    code, shown = await call(api, "GET", "/v4.0.0/libpod/networks/lan2/json")
    assert (shown["driver"], shown["network_interface"]) == ("ipvlan", "lo")
    assert shown["options"] == {"mode": "l3"} and shown["dns_enabled"] is False
