"""Bodies of the right shape with the wrong types are a 400 naming the field (issue 18:
``"IPAM": {"Config": 5}`` was a 500 ``'float' object is not iterable``)."""

import json
from typing import Any

import pytest
import pytest_twisted
from treq.testing import StubTreq


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1.44/networks/create", {"Name": "n", "IPAM": {"Config": 5}}, "IPAM.Config"),
        ("/v1.44/networks/create", {"Name": "n", "IPAM": {"Config": [5]}}, "IPAM.Config"),
        ("/v1.44/networks/create", {"Name": "n", "Internal": "yes"}, "Internal"),
        ("/v5.0.0/libpod/networks/create", {"name": "n", "subnets": 1.5}, "subnets"),
        ("/v5.0.0/libpod/networks/create", {"name": "n", "dns_enabled": 1}, "dns_enabled"),
        ("/v5.0.0/libpod/containers/create", {"image": "x", "expose": {"x": "tcp"}}, "expose"),
        ("/v5.0.0/libpod/containers/create", {"image": "x", "labels": {"a": 1}}, "labels"),
        ("/v5.0.0/libpod/containers/create", {"image": "x", "r_limits": [True]}, "r_limits"),
        ("/v1.44/containers/create", {"Image": "x", "Labels": {"a": 1}}, "Labels"),
        ("/v1.44/containers/create", {"Image": "x", "HostConfig": {"Memory": 2**64}}, "Memory"),
        (
            "/v1.44/containers/create",
            {"Image": "x", "HostConfig": {"PortBindings": {"80/tcp": 5}}},
            "PortBindings",
        ),
        (
            "/v1.44/containers/create",
            {"Image": "x", "HostConfig": {"Ulimits": [{"Name": "nofile", "Soft": "1"}]}},
            "Ulimits",
        ),
    ],
)
@pytest_twisted.ensureDeferred
async def test_wrong_types_are_400_naming_the_field(
    api: StubTreq, path: str, body: dict[str, Any], field: str
) -> None:
    response = await api.post("http://d" + path, data=json.dumps(body).encode())
    answer = await response.json()
    assert response.code == 400, answer
    assert field in answer["message"]
    assert answer["response"] == 400
