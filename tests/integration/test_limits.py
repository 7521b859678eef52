"""Hostile or careless clients: oversized heads and bodies, a client that sends its
headers a byte at a time, and more idle connections than the server keeps (issue 18)."""

import contextlib
import json
import os
import select
import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support import ServerProcess

pytestmark = pytest.mark.integration

Start = Callable[..., ServerProcess]


def _connect(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(str(path))  # blocking: waits in the listen backlog rather than failing
    sock.settimeout(30)
    return sock


def _answer(sock: socket.socket) -> tuple[int, dict[str, object]]:
    """Read a whole ``Connection: close`` answer: status and JSON body."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def _closed_by_server(sock: socket.socket, timeout: float) -> bool:
    """Whether the server closes ``sock`` within ``timeout`` (EOF or reset)."""
    readable, _, _ = select.select([sock], [], [], timeout)
    if not readable:
        return False
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def test_oversized_request_line_and_headers_are_431(server: ServerProcess) -> None:
    """Over 1 MiB of request line or headers: Go's 431, with Podman's error body."""
    for head in (
        b"GET /_ping?" + b"a" * (2 * 1024 * 1024) + b" HTTP/1.1\r\nHost: d\r\n\r\n",
        b"GET /_ping HTTP/1.1\r\n" + b"X-Big: " + b"b" * 600_000 + b"\r\nX-More: " + b"m" * 600_000,
    ):
        with _connect(server.sock) as sock:
            with contextlib.suppress(BrokenPipeError):  # answered before all was sent
                sock.sendall(head)
            status, body = _answer(sock)
        assert status == 431
        assert body == {
            "cause": "request header fields too large",
            "message": "request line and headers too large",
            "response": 431,
        }
    assert server.request("GET", "/_ping").body == b"OK"


def test_oversized_json_body_is_413(server: ServerProcess) -> None:
    """A JSON body over 32 MiB is refused with 413 and the error body."""
    body = b'{"Image": "' + b"x" * (33 * 1024 * 1024) + b'"}'
    reply = server.request(
        "POST", "/v1.44/containers/create", body, {"Content-Type": "application/json"}
    )
    assert reply.status == 413
    assert reply.json()["response"] == 413
    assert reply.json()["cause"] == "request body too large"


def test_a_client_sending_headers_a_byte_at_a_time_is_dropped(start_server: Start) -> None:
    """The header deadline ends a slowloris client; others are served meanwhile."""
    server = start_server("--header-timeout", "2")
    slow = _connect(server.sock)
    head = b"GET /_ping HTTP/1.1\r\nHost: d\r\nX-Slow: " + b"s" * 10_000
    started = time.monotonic()
    sent = 0
    try:
        while sent < len(head):
            try:
                slow.send(head[sent : sent + 1])
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += 1
            # Another client is answered while the slow one trickles.
            if sent == 5:
                assert server.request("GET", "/_ping", timeout=5).body == b"OK"
            if _closed_by_server(slow, 0.1):
                break
        dropped_after = time.monotonic() - started
    finally:
        slow.close()
    assert sent < len(head), "the server read 10 kB of headers at one byte per 0.1 s"
    assert 2 <= dropped_after < 15
    assert server.request("GET", "/_ping").body == b"OK"


def test_idle_connections_over_the_cap_make_room(start_server: Start) -> None:
    """With 100 idle connections and a cap of 32, a new client is still served; the
    server closes the longest-idle ones and holds few descriptors."""
    server = start_server("--max-connections", "32")
    assert server.proc is not None
    idle = [_connect(server.sock) for _ in range(100)]
    try:
        with _connect(server.sock) as newcomer:  # waits in the backlog, if need be
            newcomer.sendall(b"GET /_ping HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n")
            assert newcomer.recv(65536).startswith(b"HTTP/1.1 200 ")
        closed = sum(_closed_by_server(sock, 5 if i == 0 else 0.05) for i, sock in enumerate(idle))
        assert closed >= 100 - 32
        descriptors = len(os.listdir(f"/proc/{server.proc.pid}/fd"))
        assert descriptors < 32 + 40, descriptors
    finally:
        for sock in idle:
            sock.close()


def test_a_burst_of_clients_waits_in_the_backlog_instead_of_failing(start_server: Start) -> None:
    """While the server cannot accept (stopped here; busy under load), 200 clients connect
    without ``EAGAIN`` (the backlog is the kernel's ``somaxconn``, as Podman's and Docker's,
    not Twisted's 50) and each is served once the server goes on (found by
    ``bench/load.py``: 64 busy clients got ``Resource temporarily unavailable``)."""
    server = start_server()
    assert server.proc is not None
    waiting: list[socket.socket] = []
    os.kill(server.proc.pid, signal.SIGSTOP)
    try:
        for _ in range(200):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            waiting.append(sock)
            sock.setblocking(False)  # a full backlog is EAGAIN then, not a wait
            sock.connect(str(server.sock))
    finally:
        os.kill(server.proc.pid, signal.SIGCONT)
    try:
        for sock in waiting:
            sock.setblocking(True)
            sock.settimeout(30)
            sock.sendall(b"GET /_ping HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n")
        for sock in waiting:
            assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")
    finally:
        for sock in waiting:
            sock.close()
