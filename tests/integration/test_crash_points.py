"""The server killed at the exact points where a crash used to leave broken state.

Each test starts a server with ``PODAPI_CRASH_AT`` naming a point
(:mod:`podapi.crashpoints`); the server kills itself with SIGKILL there (or a
``podapi.cleanup`` stops itself, for the races with a starting server); the
test starts it again and checks that what is left is consistent and usable.
The problems are numbered as in issue 18.
"""

import json
import os
import signal
import threading
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.integration.containers_support import (
    assert_nothing_leaked,
    load_image,
    mounts_below,
)
from tests.integration.crash_support import (
    API,
    crash,
    crashing_at,
    create,
    exec_output,
    inspect,
    post,
    restart,
    run,
    stopped_cleanup,
)
from tests.support import ServerProcess, wait_for

pytestmark = pytest.mark.integration

#: Runs until /stop appears, and takes it away (a restart waits again).
WAIT_FOR_STOP = ["sh", "-c", "while [ ! -e /stop ]; do sleep 0.05; done; rm /stop"]
SLEEP = ["sleep", "1000"]


@pytest.fixture
def crashing(
    start_server: Callable[..., ServerProcess], busybox_archive: Path
) -> Callable[[str], ServerProcess]:
    """A server with the test image that stops dead at the point it is given."""

    def start(point: str) -> ServerProcess:
        server = start_server(env=crashing_at(point))
        load_image(server, busybox_archive)
        return server

    return start


@pytest.mark.parametrize("policy", ["rm", "always"])
def test_server_waits_for_a_running_cleanup(
    crashing: Callable[[str], ServerProcess], policy: str
) -> None:
    """Problems 1 and 2: a container exits while no server runs, and a server starts
    while its ``podapi.cleanup`` works: the server waits for it, then starts; a ``--rm``
    container is gone, a ``--restart always`` one runs again with its network."""
    server = crashing("cleanup-locked:stop")
    options = {"AutoRemove": True} if policy == "rm" else {"RestartPolicy": {"Name": "always"}}
    container_id = run(server, WAIT_FOR_STOP, **options)
    merged = Path(
        server.get_json(f"/v5.0.0/libpod/containers/{container_id}/json")["GraphDriver"]["Data"][
            "MergedDir"
        ]
    )
    assert server.terminate() == 0
    (merged / "stop").touch()
    cleanup = stopped_cleanup(container_id)  # it holds its lock, stopped

    starting = threading.Thread(target=restart, args=(server,))
    starting.start()
    try:
        wait_for(lambda: "waiting for podapi.cleanup" in server.output(), timeout=60)
        assert starting.is_alive()  # not ready while the cleanup works
    finally:
        os.kill(cleanup, signal.SIGCONT)
        starting.join(timeout=120)
    assert not starting.is_alive()
    if policy == "rm":
        assert server.request("GET", f"{API}/containers/{container_id}/json").status == 404
        assert_nothing_leaked(server)
        return
    state = inspect(server, container_id)
    assert state["State"]["Running"] is True
    assert state["RestartCount"] == 1
    network = state["NetworkSettings"]
    assert network["IPAddress"] and os.path.exists(network["SandboxKey"])
    code, output = exec_output(server, container_id, ["cat", "/sys/class/net/eth0/operstate"])
    assert code == 0 and b"up" in output


def test_exec_killed_after_its_claim_is_settled(crashing: Callable[[str], ServerProcess]) -> None:
    """Problem 3: the session is not ``Running`` for ever; the container takes new ones."""
    server = crashing("exec-claimed")
    container_id = run(server, SLEEP)
    reply = post(server, f"{API}/containers/{container_id}/exec", {"Cmd": ["true"]})
    exec_id = reply.json()["Id"]
    crash(server, "POST", f"{API}/exec/{exec_id}/start", {"Detach": True})
    restart(server)
    session = server.get_json(f"{API}/exec/{exec_id}/json")
    assert (session["Running"], session["Pid"], session["ExitCode"]) == (False, 0, 126)
    assert exec_output(server, container_id, ["true"])[0] == 0


@pytest.mark.parametrize(
    ("point", "status"),
    [("commit-paused", "running"), ("pause-runtime", "paused"), ("unpause-runtime", "running")],
)
def test_pause_killed_midway_agrees_with_runc(
    start_server: Callable[..., ServerProcess], busybox_archive: Path, point: str, status: str
) -> None:
    """Problem 4: a commit's pause ends with the commit; a pause or unpause cut short
    says what runc says; either way pause and unpause work afterwards."""
    server = start_server()
    load_image(server, busybox_archive)
    container_id = run(server, SLEEP)
    if point == "unpause-runtime":
        assert post(server, f"{API}/containers/{container_id}/pause").status == 204
    assert server.terminate() == 0
    server.env = crashing_at(point)
    server.start()
    action = {
        "commit-paused": f"{API}/commit?container={container_id}&pause=1",
        "pause-runtime": f"{API}/containers/{container_id}/pause",
        "unpause-runtime": f"{API}/containers/{container_id}/unpause",
    }[point]
    crash(server, "POST", action)
    restart(server)
    assert inspect(server, container_id)["State"]["Status"] == status
    if status == "paused":
        assert post(server, f"{API}/containers/{container_id}/unpause").status == 204
    assert exec_output(server, container_id, ["true"])[0] == 0  # not frozen
    assert post(server, f"{API}/containers/{container_id}/pause").status == 204
    assert post(server, f"{API}/containers/{container_id}/unpause").status == 204


def _networks_of(server: ServerProcess, container_id: str) -> set[str]:
    return set(inspect(server, container_id)["NetworkSettings"]["Networks"])


@pytest.mark.parametrize("point", ["connect-setup", "disconnect-teardown"])
def test_network_connect_and_disconnect_killed_midway(
    crashing: Callable[[str], ServerProcess], point: str
) -> None:
    """Problems 5 and 6: a connect cut short is undone (a retry succeeds), a disconnect
    is finished (a retry is the usual 409, not a 500); the network then goes cleanly."""
    server = crashing(point)
    assert post(server, f"{API}/networks/create", {"Name": "side"}).status == 201
    container_id = run(server, SLEEP)
    connect = f"{API}/networks/side/connect"
    disconnect = f"{API}/networks/side/disconnect"
    if point == "connect-setup":
        crash(server, "POST", connect, {"Container": container_id})
        restart(server)
        assert "side" not in _networks_of(server, container_id)
        reply = post(server, connect, {"Container": container_id})
        assert reply.status == 200, reply.body
        assert "side" in _networks_of(server, container_id)
        code, _ = exec_output(server, container_id, ["cat", "/sys/class/net/eth1/operstate"])
        assert code == 0
        assert post(server, disconnect, {"Container": container_id}).status == 200
    else:
        # Connected while the server still lives; it dies at the disconnect.
        assert post(server, connect, {"Container": container_id}).status == 200
        crash(server, "POST", disconnect, {"Container": container_id})
        restart(server)
        assert "side" not in _networks_of(server, container_id)
        assert post(server, disconnect, {"Container": container_id}).status == 409
    code, _ = exec_output(server, container_id, ["test", "-e", "/sys/class/net/eth1"])
    assert code == 1  # the interface is gone from the container
    assert server.request("DELETE", f"{API}/containers/{container_id}?force=1").status == 204
    assert server.request("DELETE", f"{API}/networks/side").status == 204
    assert_nothing_leaked(server)


def test_volume_create_killed_before_its_directory(
    crashing: Callable[[str], ServerProcess],
) -> None:
    """Problem 7: the volume a crash left without a directory is usable after a restart."""
    server = crashing("volume-row")
    crash(server, "POST", f"{API}/volumes/create", {"Name": "half"})
    restart(server)
    assert server.get_json(f"{API}/volumes/half")["Name"] == "half"
    container_id = run(server, ["sh", "-c", "echo hi > /data/f"], Binds=["half:/data"])
    reply = post(server, f"{API}/containers/{container_id}/wait")
    assert reply.json()["StatusCode"] == 0
    assert server.request("DELETE", f"{API}/containers/{container_id}").status == 204
    assert server.request("DELETE", f"{API}/volumes/half").status == 204


@pytest.mark.parametrize("auto_remove", [False, True])
def test_start_killed_after_mounting(
    crashing: Callable[[str], ServerProcess], auto_remove: bool
) -> None:
    """Problems 8 and 10: nothing stays mounted; a ``--rm`` container is removed at the
    restart (as Docker does), another one starts."""
    server = crashing("start-mounted")
    container_id = create(server, ["true"], AutoRemove=auto_remove)
    crash(server, "POST", f"{API}/containers/{container_id}/start")
    restart(server)
    assert mounts_below(server.base) == []
    if auto_remove:
        assert server.request("GET", f"{API}/containers/{container_id}/json").status == 404
    else:
        assert inspect(server, container_id)["State"]["Status"] == "created"
        assert post(server, f"{API}/containers/{container_id}/start").status == 204
        assert post(server, f"{API}/containers/{container_id}/wait").json()["StatusCode"] == 0
        assert server.request("DELETE", f"{API}/containers/{container_id}").status == 204
    assert_nothing_leaked(server)


def test_exit_settled_at_restart_emits_its_events(
    crashing: Callable[[str], ServerProcess],
) -> None:
    """Problem 9: killed between claiming an exit and its events, the restart emits
    ``die`` and ``stop`` (a ``docker stop``), and the clean-up is done."""
    server = crashing("exit-claimed")
    container_id = run(server, SLEEP)
    since = int(time.time()) - 1
    crash(server, "POST", f"{API}/containers/{container_id}/stop?t=0")
    restart(server)
    filters = urllib.parse.quote(json.dumps({"container": [container_id]}))
    reply = server.request(
        "GET", f"{API}/events?since={since}&until={int(time.time()) + 1}&filters={filters}"
    )
    actions = [json.loads(line)["Action"] for line in reply.body.splitlines()]
    assert actions[-2:] == ["die", "stop"], actions
    assert inspect(server, container_id)["State"]["Status"] == "exited"
    assert mounts_below(server.base) == []
    assert server.request("DELETE", f"{API}/containers/{container_id}").status == 204
    assert_nothing_leaked(server)
