"""What Cockpit's Podman page asks of the libpod API, each answered as Podman answers it.

The page (cockpit-podman) creates console containers with a terminal and no
stdin, attaches with a raw ``Upgrade: tcp`` request, reads libpod logs as
framed streams, shows the resolved image name and logs unknown events.
"""

import json
import socket
import struct
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.integration.containers_support import IMAGE
from tests.support import EventStream, ServerProcess

pytestmark = pytest.mark.integration

LIBPOD = "/v1.12/libpod"  # what the page sends
RESOLVED = f"docker.io/library/{IMAGE}:latest"


def post(box: ServerProcess, path: str, body: Any = None) -> Any:
    data = json.dumps(body).encode() if body is not None else b""
    reply = box.request("POST", path, data, {"Content-Type": "application/json"})
    assert reply.status < 300, (path, reply.status, reply.body)
    return reply.json() if reply.body else None


@pytest.fixture
def made(box: ServerProcess) -> Iterator[list[str]]:
    """IDs of the containers a test makes; all removed afterwards."""
    ids: list[str] = []
    yield ids
    for container_id in ids:
        box.request("DELETE", f"{LIBPOD}/containers/{container_id}?force=true&t=0", timeout=60)


def console_container(box: ServerProcess, made: list[str], **extra: Any) -> str:
    """A running ``sh`` with a terminal, as the page's "Create container" makes it."""
    body = {"image": IMAGE, "command": ["sh"], "terminal": True, **extra}
    container_id: str = post(box, f"{LIBPOD}/containers/create", body)["Id"]
    made.append(container_id)
    post(box, f"{LIBPOD}/containers/{container_id}/start")
    return container_id


class Console:
    """The page's attach: a raw HTTP upgrade on the socket, then bytes both ways."""

    def __init__(self, box: ServerProcess, target: str, body: bytes = b"") -> None:
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(30)
        self.sock.connect(str(box.sock))
        self.sock.sendall(
            f"POST {target} HTTP/1.1\r\nHost: localhost\r\nUpgrade: tcp\r\n"
            f"Connection: Upgrade\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        self.output = b""
        while b"\r\n\r\n" not in self.output:
            self.output += self.sock.recv(4096)
        head, _, self.output = self.output.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head

    @classmethod
    def attach(cls, box: ServerProcess, container_id: str) -> "Console":
        query = "stdin=true&stdout=true&stderr=true&stream=true"
        return cls(box, f"{LIBPOD}/containers/{container_id}/attach?{query}")

    def run(self, command: str, marker: str) -> None:
        """Type ``command`` and wait for ``marker`` to be printed back (bounded)."""
        self.sock.sendall(command.encode() + b"\r")
        self.expect(marker)

    def expect(self, marker: str) -> None:
        deadline = time.monotonic() + 30
        while marker.encode() not in self.output:
            assert time.monotonic() < deadline, self.output
            chunk = self.sock.recv(4096)
            assert chunk, f"stream ended: {self.output!r}"
            self.output += chunk

    def close(self) -> None:
        self.sock.close()


@pytest.mark.parametrize("stdin", [False, True])
def test_console_of_a_terminal_container_works_for_every_attach(
    box: ServerProcess, made: list[str], stdin: bool
) -> None:
    """Podman writes to a terminal container's console with or without ``stdin`` and runs
    conmon without -i for a terminal: each attach, not only the first, types and reads."""
    container_id = console_container(box, made, stdin=stdin)
    for word in ("first", "second", "third"):
        console = Console.attach(box, container_id)
        try:
            console.run(f"echo {word}-$((6*7))", f"{word}-42")
        finally:
            console.close()
    state = box.get_json(f"{LIBPOD}/containers/{container_id}/json")["State"]
    assert state["Status"] == "running"


def frames(data: bytes) -> list[tuple[int, bytes]]:
    """Split a multiplexed stream into (stream, payload); AssertionError if not framed."""
    found = []
    while data:
        assert len(data) >= 8 and data[1:4] == b"\0\0\0", data[:16]
        kind, size = data[0], struct.unpack(">I", data[4:8])[0]
        found.append((kind, data[8 : 8 + size]))
        data = data[8 + size :]
    return found


def test_libpod_logs_of_a_terminal_container_are_framed(
    box: ServerProcess, made: list[str]
) -> None:
    """Podman frames every libpod logs stream; Docker's API sends a TTY's log raw."""
    body = {"image": IMAGE, "command": ["echo", "hello-log"], "terminal": True}
    container_id = post(box, f"{LIBPOD}/containers/create", body)["Id"]
    made.append(container_id)
    post(box, f"{LIBPOD}/containers/{container_id}/start")
    post(box, f"{LIBPOD}/containers/{container_id}/wait")
    libpod = box.request("GET", f"{LIBPOD}/containers/{container_id}/logs?stdout=true")
    assert frames(libpod.body) == [(1, b"hello-log\r\n")]
    compat = box.request("GET", f"/v1.44/containers/{container_id}/logs?stdout=1")
    assert compat.body == b"hello-log\r\n"


def test_libpod_list_shows_the_resolved_image_name(box: ServerProcess, made: list[str]) -> None:
    """Podman's ListContainer.Image is RootfsImageName; Docker's list shows what was asked."""
    body = {"image": IMAGE, "command": ["true"]}
    container_id = post(box, f"{LIBPOD}/containers/create", body)["Id"]
    made.append(container_id)
    (listed,) = [
        c for c in box.get_json(f"{LIBPOD}/containers/json?all=true") if c["Id"] == container_id
    ]
    assert listed["Image"] == RESOLVED
    assert box.get_json(f"{LIBPOD}/containers/{container_id}/json")["ImageName"] == RESOLVED
    (compat,) = [c for c in box.get_json("/v1.44/containers/json?all=1") if c["Id"] == container_id]
    assert compat["Image"] == IMAGE


def test_starting_a_container_emits_no_network_events(box: ServerProcess, made: list[str]) -> None:
    """Podman (4.3.1 and 5) reports connect/disconnect for `network connect` only."""
    events = EventStream(box, {"type": ["network", "container"]}, libpod=True)
    try:
        container_id = post(
            box, f"{LIBPOD}/containers/create", {"image": IMAGE, "command": ["true"]}
        )["Id"]
        made.append(container_id)
        post(box, f"{LIBPOD}/containers/{container_id}/start")
        post(box, f"{LIBPOD}/containers/{container_id}/wait")
        box.request("DELETE", f"{LIBPOD}/containers/{container_id}")
        seen = []
        while not seen or seen[-1] != ("container", "remove"):
            event = events.next()
            seen.append((event["Type"], event["Action"]))
    finally:
        events.close()
    assert [kind for kind, _ in seen if kind == "network"] == []
    assert ("container", "start") in seen


def test_exec_resize_sent_with_the_start_waits_for_the_session(
    box: ServerProcess, made: list[str]
) -> None:
    """The page's console starts an exec and resizes it at once, on two connections; a
    resize that comes first waits for the start (as Docker's daemon, up to 10 s)."""
    container_id = console_container(box, made)
    body = {"Cmd": ["sh", "-c", "sleep 1; stty size"], "Tty": True, "AttachStdout": True}
    exec_id = post(box, f"{LIBPOD}/containers/{container_id}/exec", body)["Id"]
    with ThreadPoolExecutor(1) as pool:
        resized = pool.submit(box.request, "POST", f"{LIBPOD}/exec/{exec_id}/resize?h=33&w=77")
        start = json.dumps({"Detach": False, "Tty": True}).encode()
        session = Console(box, f"{LIBPOD}/exec/{exec_id}/start", start)
        try:
            session.expect("33 77")
        finally:
            session.close()
        assert resized.result(timeout=30).status == 201
