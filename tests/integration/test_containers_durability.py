"""Containers outlive the server: idle exits, exits while no server runs, kill -9 of the server."""

import json
import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.integration.containers_support import (
    IMAGE,
    assert_nothing_leaked,
    load_image,
    mounts_below,
    process_gone,
)
from tests.support import EventStream, ServerProcess, wait_for

pytestmark = pytest.mark.integration

API = "/v1.44"


def create(server: ServerProcess, cmd: list[str], **host_config: Any) -> str:
    body = json.dumps({"Image": IMAGE, "Cmd": cmd, "HostConfig": host_config}).encode()
    reply = server.request(
        "POST", f"{API}/containers/create", body, {"Content-Type": "application/json"}
    )
    assert reply.status == 201, reply.body
    return str(reply.json()["Id"])


def start(server: ServerProcess, container_id: str) -> None:
    reply = server.request("POST", f"{API}/containers/{container_id}/start")
    assert reply.status == 204, reply.body


def inspect(server: ServerProcess, container_id: str) -> dict[str, Any]:
    result: dict[str, Any] = server.get_json(f"{API}/containers/{container_id}/json")
    return result


def test_container_outlives_idle_server_and_exits_without_it(
    start_server: Callable[..., ServerProcess], busybox_archive: Path
) -> None:
    server = start_server(timeout="1")
    load_image(server, busybox_archive)
    sleeper = create(server, ["sleep", "1000"])
    start(server, sleeper)
    pid = inspect(server, sleeper)["State"]["Pid"]
    conmon_pid = server.get_json(f"/v5.0.0/libpod/containers/{sleeper}/json")["State"]["ConmonPid"]

    assert server.wait(timeout=30) == 0  # idle timeout, with the container running
    os.kill(pid, 0)
    server.start()
    state = inspect(server, sleeper)["State"]
    assert (state["Status"], state["Running"], state["Pid"]) == ("running", True, pid)
    assert server.terminate() == 0

    os.kill(pid, signal.SIGKILL)  # while no server runs
    wait_for(process_gone(conmon_pid), timeout=30)
    server.start()
    state = inspect(server, sleeper)["State"]
    assert (state["Status"], state["ExitCode"], state["Running"]) == ("exited", 137, False)
    assert mounts_below(server.base) == []
    reply = server.request("DELETE", f"{API}/containers/{sleeper}")
    assert reply.status == 204, reply.body
    assert_nothing_leaked(server)


def test_auto_remove_container_exiting_without_server_is_gone(
    start_server: Callable[..., ServerProcess], busybox_archive: Path
) -> None:
    server = start_server()
    load_image(server, busybox_archive)
    waiter = create(
        server, ["sh", "-c", "while [ ! -e /stop ]; do sleep 0.05; done; exit 3"], AutoRemove=True
    )
    start(server, waiter)
    merged = Path(
        server.get_json(f"/v5.0.0/libpod/containers/{waiter}/json")["GraphDriver"]["Data"][
            "MergedDir"
        ]
    )
    assert server.terminate() == 0

    (merged / "stop").touch()  # the container exits by itself, with no server
    wait_for(lambda: not (server.root / "containers" / waiter).exists(), timeout=30)
    server.start()
    assert server.request("GET", f"{API}/containers/{waiter}/json").status == 404
    assert_nothing_leaked(server)


def test_restart_policy_applies_without_server(
    start_server: Callable[..., ServerProcess], busybox_archive: Path
) -> None:
    server = start_server()
    load_image(server, busybox_archive)
    flaky = create(
        server,
        ["sh", "-c", "while [ ! -e /stop ]; do sleep 0.05; done; rm /stop; exit 1"],
        RestartPolicy={"Name": "on-failure", "MaximumRetryCount": 1},
    )
    start(server, flaky)
    first = inspect(server, flaky)["State"]["Pid"]
    libpod = server.get_json(f"/v5.0.0/libpod/containers/{flaky}/json")
    merged = Path(libpod["GraphDriver"]["Data"]["MergedDir"])
    assert server.terminate() == 0

    (merged / "stop").touch()
    # conmon waits for its exit command (podapi.cleanup, which restarts the container).
    wait_for(process_gone(libpod["State"]["ConmonPid"]), timeout=60)
    server.start()
    state = inspect(server, flaky)
    assert state["RestartCount"] == 1
    assert state["State"]["Running"] is True
    assert state["State"]["Pid"] != first


@pytest.mark.parametrize("stage", ["create", "start"])
def test_server_killed_mid_operation_leaves_usable_state(
    start_server: Callable[..., ServerProcess], busybox_archive: Path, stage: str
) -> None:
    """kill -9 the server while clients create and start containers, after the third
    ``stage`` event: whatever exists afterwards starts, runs and removes cleanly."""
    server = start_server()
    load_image(server, busybox_archive)
    events = EventStream(server, {"type": ["container"], "event": [stage]})
    stop = threading.Event()

    def client() -> None:
        for _ in range(10):  # bounded; ends early once the server is gone
            if stop.is_set():
                return
            try:
                start(server, create(server, ["true"]))
            except (AssertionError, OSError):
                return

    clients = [threading.Thread(target=client) for _ in range(4)]
    for thread in clients:
        thread.start()
    try:
        for _ in range(3):
            events.until(lambda e: True, timeout=60)
        server.kill()
    finally:
        stop.set()
        events.close()
        for thread in clients:
            thread.join(timeout=60)

    server.start()
    survivors = server.get_json(f"{API}/containers/json?all=1")
    assert survivors
    for container in survivors:
        cid = container["Id"]
        if container["State"] == "running":
            wait = server.request("POST", f"{API}/containers/{cid}/wait", timeout=60)
            assert wait.status == 200, wait.body
        start(server, cid)
        wait = server.request("POST", f"{API}/containers/{cid}/wait", timeout=60)
        assert wait.json()["StatusCode"] == 0, inspect(server, cid)["State"]
        assert server.request("DELETE", f"{API}/containers/{cid}").status == 204
    assert_nothing_leaked(server)
