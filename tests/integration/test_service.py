"""The service as users run it: ``twistd -n podapi`` child processes on real sockets."""

import json
import os
import shutil
import signal
import socket
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support import ServerProcess

pytestmark = pytest.mark.integration

Start = Callable[..., ServerProcess]
API_HEADERS = ("Api-Version", "Libpod-Api-Version", "Server", "X-Reference-Id")


def raw_connect(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(30)
    sock.connect(str(path))
    return sock


def read_until(sock: socket.socket, marker: bytes) -> bytes:
    data = b""
    while marker not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def test_socket_parents_created_and_mode_0600(start_server: Start) -> None:
    server = start_server()
    assert server.sock.parent.is_dir()
    mode = server.sock.stat().st_mode
    assert stat.S_ISSOCK(mode)
    assert stat.S_IMODE(mode) == 0o600


def test_system_endpoints_carry_the_api_headers(server: ServerProcess) -> None:
    for path in ("/_ping", "/v1.44/version", "/v3.0.0/libpod/info", "/info", "/nope"):
        reply = server.request("GET", path)
        for header in API_HEADERS:
            assert reply.headers[header], (path, header)
        assert reply.headers["Api-Version"] == "1.44"
        assert reply.headers["Libpod-Api-Version"].startswith("5.")
        assert reply.headers["Server"].startswith("Libpod/")
    ping = server.request("GET", "/_ping")
    assert (ping.status, ping.body) == (200, b"OK")
    sent = server.request("GET", "/_ping", headers={"X-Reference-Id": "abc-123"})
    assert sent.headers["X-Reference-Id"] == "abc-123"


def test_curl_commands_from_the_readme(server: ServerProcess) -> None:
    """Every curl line of the README works against a real server."""
    readme = (Path(__file__).parents[2] / "README.rst").read_text()
    commands = [line.strip() for line in readme.splitlines() if line.strip().startswith("curl ")]
    assert len(commands) >= 3
    for line in commands:
        command = line.replace("/run/podman/podman.sock", str(server.sock))
        result = subprocess.run(
            ["sh", "-c", command + " --fail --silent --show-error --include"],
            capture_output=True,
            timeout=30,
            check=False,
        )
        assert result.returncode == 0, (command, result.stderr)
        assert b"Libpod-Api-Version:" in result.stdout


def test_errors_use_podmans_error_body(server: ServerProcess) -> None:
    for method, path, code in [
        ("GET", "/nope", 404),
        ("POST", "/v1.44/info", 405),
        ("GET", "/v1.44/events?since=never", 400),
        ("GET", "/libpod/info", 404),
    ]:
        reply = server.request(method, path)
        assert reply.status == code, path
        assert reply.headers["Content-Type"] == "application/json"
        body = reply.json()
        assert set(body) == {"cause", "message", "response"}
        assert body["response"] == code


def test_exits_after_the_idle_window_and_removes_its_socket(start_server: Start) -> None:
    server = start_server(timeout="2")
    assert server.request("GET", "/_ping").status == 200
    with pytest.raises(subprocess.TimeoutExpired):
        server.wait(timeout=1)  # not before the window has passed
    assert server.wait(timeout=20) == 0
    assert not server.sock.exists()


def test_open_events_stream_holds_the_server(start_server: Start) -> None:
    """A held /events stream keeps the server up; it exits once the client leaves."""
    server = start_server(timeout="1")
    stream = raw_connect(server.sock)
    stream.sendall(b"GET /v1.44/events HTTP/1.1\r\nHost: d\r\n\r\n")
    head = read_until(stream, b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")  # headers are flushed before any event
    with pytest.raises(subprocess.TimeoutExpired):
        server.wait(timeout=4)  # > 2T with the stream open
    stream.close()
    assert server.wait(timeout=20) == 0
    assert not server.sock.exists()


def test_idle_keepalive_connection_is_closed_after_twice_the_window(start_server: Start) -> None:
    """Podman's rule: an idle keep-alive connection counts until the server closes it (2T)."""
    server = start_server(timeout="1")
    conn = raw_connect(server.sock)
    conn.sendall(b"GET /_ping HTTP/1.1\r\nHost: d\r\n\r\n")
    assert read_until(conn, b"OK").endswith(b"OK")
    assert conn.recv(1) == b""  # the server closed the idle connection
    assert server.wait(timeout=20) == 0
    conn.close()


def test_connection_without_request_does_not_hold_the_server(start_server: Start) -> None:
    server = start_server(timeout="1")
    silent = raw_connect(server.sock)
    try:
        assert server.wait(timeout=20) == 0
    finally:
        silent.close()


def test_zero_timeout_keeps_running(start_server: Start) -> None:
    server = start_server(timeout="0")
    with pytest.raises(subprocess.TimeoutExpired):
        server.wait(timeout=3)
    assert server.request("GET", "/_ping").status == 200


def test_second_server_refuses_a_live_socket(start_server: Start) -> None:
    first = start_server(name="first")
    second = start_server(name="second", socket_path=first.sock, wait=False)
    assert second.wait(timeout=30) != 0
    assert "in use" in second.output()
    assert first.request("GET", "/_ping").status == 200


def test_stale_socket_is_replaced(start_server: Start, tmp_path: Path) -> None:
    path = tmp_path / "stale" / "api.sock"
    path.parent.mkdir()
    dead = socket.socket(socket.AF_UNIX)
    dead.bind(str(path))
    dead.close()  # a socket file nobody listens on: a crashed server's leftover
    server = start_server(socket_path=path)
    assert server.request("GET", "/_ping").status == 200


def test_sigterm_exits_zero_and_removes_the_socket(start_server: Start) -> None:
    server = start_server(timeout="0")
    assert server.request("GET", "/_ping").status == 200
    assert server.terminate() == 0
    assert not server.sock.exists()


def test_sigint_exits_zero(start_server: Start) -> None:
    server = start_server(timeout="0")
    assert server.proc is not None
    server.proc.send_signal(signal.SIGINT)
    assert server.wait(timeout=20) == 0


def test_usage_errors_exit_nonzero_with_a_message(start_server: Start) -> None:
    bad = start_server(wait=False, socket_path=Path("relative.sock"))
    assert bad.wait(timeout=30) != 0
    assert "absolute" in bad.output()


def test_cors_headers_and_preflight(start_server: Start) -> None:
    server = start_server("--cors", "*")
    ping = server.request("GET", "/_ping")
    assert ping.headers["Access-Control-Allow-Origin"] == "*"
    assert "X-Registry-Auth" in ping.headers["Access-Control-Allow-Headers"]
    preflight = server.request(
        "OPTIONS",
        "/v1.44/containers/json",
        headers={"Origin": "http://example.com", "Access-Control-Request-Method": "GET"},
    )
    assert preflight.status == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == "*"
    assert "GET" in preflight.headers["Access-Control-Allow-Methods"]


def test_no_cors_headers_by_default(server: ServerProcess) -> None:
    ping = server.request("GET", "/_ping")
    assert "Access-Control-Allow-Origin" not in ping.headers
    assert server.request("OPTIONS", "/_ping").status == 405


def test_events_survive_a_restart(start_server: Start, tmp_path: Path) -> None:
    """`since` reads the persisted log, so history outlives the server."""
    server = start_server(timeout="0")
    log = server.root / "events" / "events.log"
    record = {
        "type": "system",
        "action": "refresh",
        "id": "",
        "timeNano": 1_000_000_000,
        "attributes": {},
    }
    with open(log, "a") as f:  # what a previous run (or podapi.cleanup) left
        f.write(json.dumps(record) + "\n")
    server.terminate()
    again = ServerProcess(server.base, timeout="0").start()
    try:
        reply = again.request("GET", "/v5.0.0/libpod/events?since=0&stream=false")
        actions = [json.loads(line)["Action"] for line in reply.body.splitlines()]
        assert actions == ["refresh"]
    finally:
        again.stop()


def test_info_reports_real_host_facts(server: ServerProcess) -> None:
    info = server.get_json("/v5.0.0/libpod/info")
    host = info["host"]
    assert host["kernel"] == os.uname().release
    assert host["cpus"] == os.cpu_count()
    assert host["ociRuntime"]["name"] in ("runc", "crun")
    assert host["ociRuntime"]["version"].startswith(host["ociRuntime"]["name"])
    assert host["conmon"]["version"].startswith("conmon version")
    assert host["cgroupVersion"] in ("v1", "v2")
    assert info["store"]["graphRoot"] == str(server.root)
    assert info["store"]["runRoot"] == str(server.runroot)
    compat = server.get_json("/v1.44/info")
    assert compat["NCPU"] == os.cpu_count()
    assert compat["DefaultRuntime"] == host["ociRuntime"]["name"]
    assert compat["DockerRootDir"] == str(server.root)


def fs_type(path: str) -> str:
    return subprocess.run(
        ["stat", "-f", "-c", "%T", path], capture_output=True, text=True, check=False
    ).stdout.strip()


def test_runtime_choice_follows_the_cgroup_layout(server: ServerProcess) -> None:
    """crun where it works; runc on hybrid cgroups, which crun refuses."""
    hybrid = (
        fs_type("/sys/fs/cgroup") == "tmpfs" and fs_type("/sys/fs/cgroup/unified") == "cgroup2fs"
    )
    runtime = server.get_json("/v5.0.0/libpod/info")["host"]["ociRuntime"]["name"]
    if hybrid:
        assert runtime == "runc"
    elif shutil.which("crun"):
        assert runtime == "crun"
