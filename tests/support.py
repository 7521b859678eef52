"""Starting real ``twistd podapi`` servers for tests, and talking to them.

A server reports readiness over ``NOTIFY_SOCKET`` (systemd's protocol), so
tests wait for an event, never for a fixed time.
"""

import http.client
import itertools
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

TWISTD = str(Path(sys.executable).with_name("twistd"))
READY_TIMEOUT = 30.0
#: Every bridge a test server makes starts with this (this test run's mark: its PID).
BRIDGE_MARK = f"pa{os.getpid() % 10000}s"
_slots = itertools.count()


def network_args(slot: int) -> list[str]:
    """Default network and pools of a test server: its own, so servers never collide.

    Each server gets a slot: a /24 default subnet in 10.250.0.0/16 and a /20
    pool for user networks in 172.16.0.0/12, bridges named ``BRIDGE_MARK<slot>d``
    (default) and ``BRIDGE_MARK<slot>n<index>`` (user networks), and a default
    network name of its own (netavark names firewall chains after networks).
    """
    return [
        "--default-network",
        default_network_name(slot),
        "--default-bridge",
        f"{BRIDGE_MARK}{slot}d",
        "--default-subnet",
        f"10.250.{slot}.0/24",
        "--subnet-pool",
        f"172.{16 + slot // 16}.{slot % 16 * 16}.0/20",
        "--bridge-prefix",
        f"{BRIDGE_MARK}{slot}n",
    ]


def default_network_name(slot: int) -> str:
    return f"podman-{BRIDGE_MARK}{slot}"


class UnixHTTPConnection(http.client.HTTPConnection):
    """``http.client`` over a UNIX socket (synchronous helper for tests)."""

    def __init__(self, path: str, timeout: float = 30) -> None:
        super().__init__("d", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self._path)


class Reply:
    """A complete HTTP response."""

    def __init__(self, status: int, headers: http.client.HTTPMessage, body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def json(self) -> Any:
        return json.loads(self.body)


def request(
    sock: str,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 30,
) -> Reply:
    """One request on a fresh connection."""
    conn = UnixHTTPConnection(sock, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return Reply(response.status, response.headers, response.read())
    finally:
        conn.close()


class ServerProcess:
    """A ``twistd -n podapi`` child with its own root, runroot and socket."""

    def __init__(
        self,
        base: Path,
        *args: str,
        timeout: str = "0",
        socket_path: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.base = base
        self.root = base / "root"
        self.runroot = base / "run"
        self.sock = socket_path or base / "x" / "api.sock"
        self.log = base / "server.log"
        slot = next(_slots) % 256
        #: The default network's name (Docker clients call it ``bridge``).
        self.default_network = default_network_name(slot)
        self.args = [*network_args(slot), *args]
        self.timeout = timeout
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def uri(self) -> str:
        return f"unix://{self.sock}"

    def argv(self) -> list[str]:
        return [
            TWISTD,
            "-n",
            "--pidfile=",
            "podapi",
            "--root",
            str(self.root),
            "--runroot",
            str(self.runroot),
            self.uri,
            "-t",
            self.timeout,
            *self.args,
        ]

    def spawn(self) -> subprocess.Popen[bytes]:
        """Start the process without waiting for it (for tests of failed starts)."""
        env = dict(os.environ if self.env is None else self.env)
        self.base.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                self.argv(), stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.base
            )
        return self.proc

    def start(self, ready_timeout: float = READY_TIMEOUT) -> "ServerProcess":
        """Start and wait for READY=1 (or fail with the server's log)."""
        notify = self.base / "notify.sock"
        self.base.mkdir(parents=True, exist_ok=True)
        if notify.exists():
            notify.unlink()
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        listener.bind(str(notify))
        try:
            env = dict(os.environ if self.env is None else self.env)
            env["NOTIFY_SOCKET"] = str(notify)
            self.env = env
            proc = self.spawn()
            deadline = time.monotonic() + ready_timeout
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self.kill()
                    raise AssertionError(f"server not ready in {ready_timeout}s:\n{self.output()}")
                readable, _, _ = select.select([listener], [], [], min(remaining, 0.5))
                if readable and b"READY=1" in listener.recv(4096):
                    return self
                if proc.poll() is not None:
                    raise AssertionError(f"server exited with {proc.returncode}:\n{self.output()}")
        finally:
            listener.close()
            del self.env["NOTIFY_SOCKET"]
            notify.unlink(missing_ok=True)

    def output(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 30,
    ) -> Reply:
        return request(str(self.sock), method, path, body, headers, timeout)

    def get_json(self, path: str) -> Any:
        reply = self.request("GET", path)
        assert reply.status == 200, (path, reply.status, reply.body)
        return reply.json()

    def wait(self, timeout: float) -> int:
        """Wait for the process to exit by itself; return its status."""
        assert self.proc is not None
        return self.proc.wait(timeout=timeout)

    def terminate(self, timeout: float = 15) -> int:
        """SIGTERM and wait."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=15)

    def has_containers(self) -> bool:
        """Whether container files exist under the root (the server need not run)."""
        directory = self.root / "containers"
        return directory.is_dir() and any(directory.iterdir())

    def remove_containers(self) -> None:
        """Force-remove every container, starting the server again if needed (teardown).

        Containers outlive their server, so a test that stops or kills it
        still leaves them running: teardown must end them.
        """
        if not self.has_containers():
            return
        if self.proc is None or self.proc.poll() is not None:
            self.start()
        for pod in self.get_json("/v5.0.0/libpod/pods/json"):  # their infra containers too
            reply = self.request("DELETE", f"/v5.0.0/libpod/pods/{pod['Id']}?force=1", timeout=60)
            assert reply.status in (200, 404), reply.body
        for container in self.get_json("/v1.44/containers/json?all=1"):
            target = f"/v1.44/containers/{container['Id']}?force=1"
            reply = self.request("DELETE", target, timeout=60)
            assert reply.status in (204, 404), reply.body

    def stop(self) -> None:
        """Terminate if still running (fixture teardown)."""
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.terminate()
            except subprocess.TimeoutExpired:
                self.kill()


def raw_post(path: Path, target: str, body: bytes, *, withhold: int = 0) -> socket.socket:
    """Send a POST on a new connection and return the socket, response unread.

    :param withhold: bytes at the end of ``body`` not sent (the request stays
        unfinished: a load cannot complete however fast the server reads).
    """
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(60)
    sock.connect(str(path))
    head = f"POST {target} HTTP/1.1\r\nHost: d\r\nContent-Length: {len(body)}\r\n"
    sent = body[: len(body) - withhold]
    sock.sendall(head.encode() + b"Content-Type: application/x-tar\r\n\r\n" + sent)
    return sock


def wait_for(condition: Callable[[], bool], timeout: float, interval: float = 0.02) -> None:
    """Wait for a state change that has no event to wait on (files appearing); bounded."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


class EventStream:
    """A live ``/events`` stream: wait for events instead of polling."""

    def __init__(
        self, server: ServerProcess, filters: dict[str, list[str]], libpod: bool = False
    ) -> None:
        query = urllib.parse.quote(json.dumps(filters))
        prefix = "/v5.0.0/libpod" if libpod else "/v1.44"
        self._conn = UnixHTTPConnection(str(server.sock), timeout=60)
        self._conn.request("GET", f"{prefix}/events?filters={query}")
        self._response = self._conn.getresponse()
        assert self._response.status == 200

    def next(self, timeout: float = 30) -> dict[str, Any]:
        """The next event (AssertionError after ``timeout`` without one)."""
        assert self._conn.sock is not None
        self._conn.sock.settimeout(timeout)
        try:
            line = self._response.readline()
        except TimeoutError:
            raise AssertionError(f"no event within {timeout}s") from None
        assert line, "the events stream ended"
        return json.loads(line)

    def until(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 30
    ) -> dict[str, Any]:
        """Read events until one matches ``predicate`` (each read bounded by ``timeout``)."""
        while True:
            event = self.next(timeout)
            if predicate(event):
                return event

    def close(self) -> None:
        self._conn.close()
