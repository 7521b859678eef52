"""Docker's swarm routes answer as a Docker daemon that is in no swarm."""

import pytest
import pytest_twisted
from treq.testing import StubTreq

NOT_A_MANAGER = (
    'This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" '
    "to connect this node to swarm and try again."
)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/swarm"),
        ("GET", "/v1.44/swarm/unlockkey"),
        ("POST", "/swarm/update?version=1"),
        ("POST", "/swarm/unlock"),
        ("GET", "/v1.44/services"),
        ("POST", "/services/create"),
        ("GET", "/services/web"),
        ("DELETE", "/services/web"),
        ("POST", "/services/web/update"),
        ("GET", "/services/web/logs"),
        ("GET", "/nodes"),
        ("GET", "/nodes/abc"),
        ("DELETE", "/nodes/abc"),
        ("POST", "/nodes/abc/update"),
        ("GET", "/tasks"),
        ("GET", "/tasks/abc/logs"),
        ("GET", "/v1.44/configs"),
        ("POST", "/configs/create"),
        ("DELETE", "/configs/abc"),
    ],
)
@pytest_twisted.ensureDeferred
async def test_manager_routes_are_503_not_a_manager(api: StubTreq, method: str, path: str) -> None:
    response = await api.request(method, "http://d" + path)
    assert response.code == 503
    body = await response.json()
    assert body["message"] == NOT_A_MANAGER
    assert body["response"] == 503


@pytest_twisted.ensureDeferred
async def test_leave_is_503_not_part_of_a_swarm(api: StubTreq) -> None:
    """docker-py's ``leave_swarm(force=True)`` treats exactly this 503 as "nothing to leave"."""
    response = await api.post("http://d/v1.44/swarm/leave?force=true")
    assert response.code == 503
    assert (await response.json())["message"] == "This node is not part of a swarm"


@pytest.mark.parametrize("path", ["/swarm/init", "/swarm/join"])
@pytest_twisted.ensureDeferred
async def test_init_and_join_are_503_unsupported(api: StubTreq, path: str) -> None:
    response = await api.post("http://d/v1.44" + path, data=b"{}")
    assert response.code == 503
    body = await response.json()
    assert body["message"] == f"Podman does not support service: /v1.44{path}"


@pytest_twisted.ensureDeferred
async def test_secrets_are_not_swarm_routes(api: StubTreq) -> None:
    """``/secrets`` belongs to Podman's secrets (``http/compat/secrets.py``), never to the
    swarm stub."""
    response = await api.get("http://d/v1.44/secrets")
    assert response.code == 200
    assert await response.json() == []


@pytest_twisted.ensureDeferred
async def test_info_says_swarm_inactive(api: StubTreq) -> None:
    """Docker's ``swarm.Info`` of a node in no swarm, field for field."""
    info = await (await api.get("http://d/v1.44/info")).json()
    assert info["Swarm"] == {
        "NodeID": "",
        "NodeAddr": "",
        "LocalNodeState": "inactive",
        "ControlAvailable": False,
        "Error": "",
        "RemoteManagers": None,
    }
