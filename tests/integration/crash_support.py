"""Crashing a test server on purpose: at a named point (``podapi.crashpoints``) or at random."""

import http.client
import json
import os
import signal
from pathlib import Path
from typing import Any

from podapi.crashpoints import VARIABLE
from tests.integration.containers_support import IMAGE
from tests.support import Reply, ServerProcess, wait_for

API = "/v1.44"
JSON = {"Content-Type": "application/json"}
#: What a client sees from a server that died under its request.
CUT_OFF = (OSError, http.client.HTTPException)


def crashing_at(point: str) -> dict[str, str]:
    """A server environment that makes it stop dead at ``point``."""
    return {**os.environ, VARIABLE: point}


def post(server: ServerProcess, path: str, body: Any = None, timeout: float = 60) -> Reply:
    data = None if body is None else json.dumps(body).encode()
    return server.request("POST", path, data, JSON if data else None, timeout=timeout)


def create(server: ServerProcess, cmd: list[str], **host_config: Any) -> str:
    reply = post(
        server, f"{API}/containers/create", {"Image": IMAGE, "Cmd": cmd, "HostConfig": host_config}
    )
    assert reply.status == 201, reply.body
    return str(reply.json()["Id"])


def run(server: ServerProcess, cmd: list[str], **host_config: Any) -> str:
    container_id = create(server, cmd, **host_config)
    reply = post(server, f"{API}/containers/{container_id}/start")
    assert reply.status == 204, reply.body
    return container_id


def inspect(server: ServerProcess, container_id: str) -> dict[str, Any]:
    result: dict[str, Any] = server.get_json(f"{API}/containers/{container_id}/json")
    return result


def exec_output(server: ServerProcess, container_id: str, cmd: list[str]) -> tuple[int, bytes]:
    """Run ``cmd`` in the container; its exit code and (multiplexed) output."""
    reply = post(
        server,
        f"{API}/containers/{container_id}/exec",
        {"Cmd": cmd, "AttachStdout": True, "AttachStderr": True},
    )
    assert reply.status == 201, reply.body
    exec_id = reply.json()["Id"]
    output = post(server, f"{API}/exec/{exec_id}/start", {"Detach": False})
    assert output.status == 200, output.body
    state = server.get_json(f"{API}/exec/{exec_id}/json")
    return state["ExitCode"], output.body


def died(server: ServerProcess) -> None:
    """The server killed itself with SIGKILL (at its crash point)."""
    assert server.proc is not None
    assert server.proc.wait(timeout=60) == -signal.SIGKILL, server.output()


def crash(server: ServerProcess, method: str, path: str, body: Any = None) -> None:
    """A request that the server dies under, at the crash point it was started with."""
    data = None if body is None else json.dumps(body).encode()
    try:
        reply = server.request(method, path, data, JSON if data else None, timeout=60)
    except CUT_OFF:
        died(server)
        return
    raise AssertionError(f"the server answered {reply.status} {reply.body!r}")


def restart(server: ServerProcess) -> None:
    """Start the server again, without its crash point."""
    assert server.env is not None
    server.env = {k: v for k, v in server.env.items() if k != VARIABLE}
    server.start()


def stopped_cleanup(container_id: str) -> int:
    """The pid of the ``podapi.cleanup`` of ``container_id``, once it has stopped itself."""
    found: list[int] = []

    def stopped() -> bool:
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                cmdline = (proc / "cmdline").read_bytes().split(b"\0")
                status = (proc / "stat").read_text().rpartition(") ")[2]
            except OSError:
                continue
            ours = b"podapi.cleanup" in cmdline and container_id.encode() in cmdline
            if ours and status.startswith("T"):
                found.append(int(proc.name))
                return True
        return False

    wait_for(stopped, timeout=60)
    return found[0]
