"""Attach and exec with real clients: terminals, stdin, detach keys, exit codes."""

import json
import os
import select
import socket
import subprocess
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path

import docker
import pytest
from docker.errors import APIError, NotFound
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, BytesMessage, CloseConnection
from wsproto.events import Request as WsRequest

from tests.integration.containers_support import (
    IMAGE,
    load_image,
    needs_cli,
    needs_podman,
    podman,
    process_gone,
)
from tests.integration.containers_support import docker as docker_cli
from tests.integration.terminal import Terminal
from tests.support import ServerProcess, wait_for

pytestmark = pytest.mark.integration
CTRL_P, CTRL_Q = b"\x10", b"\x11"


def terminal(server: ServerProcess, *args: str) -> Terminal:
    return Terminal(["docker", *args], {**os.environ, "DOCKER_HOST": server.uri})


@needs_cli
def test_docker_run_it_in_a_terminal(box: ServerProcess) -> None:
    term = terminal(box, "run", "-it", "--rm", IMAGE, "sh")
    try:
        term.expect(b"# ")
        term.send(b'echo hel""lo; stty size\r')
        term.expect(b"hello\r\n")
        term.send(b"exit 3\r")
        assert term.wait() == 3
    finally:
        term.close()
    assert b"hello\r\n40 100\r\n" in term.output  # the terminal's size reached the container


def test_console_size_is_the_terminal_size_from_the_start(
    box: ServerProcess, client: docker.DockerClient
) -> None:
    """``HostConfig.ConsoleSize`` sizes the terminal before the process runs (no resize)."""
    body = {
        "Image": IMAGE,
        "Cmd": ["sh", "-c", "stty size"],
        "Tty": True,
        "HostConfig": {"ConsoleSize": [33, 77]},
    }
    reply = box.request(
        "POST",
        "/v1.44/containers/create",
        json.dumps(body).encode(),
        {"Content-Type": "application/json"},
    )
    assert reply.status == 201, reply.body
    container = client.containers.get(json.loads(reply.body)["Id"])
    assert container.attrs["HostConfig"]["ConsoleSize"] == [33, 77]
    container.start()
    assert container.wait(timeout=30)["StatusCode"] == 0
    assert container.logs() == b"33 77\r\n"


@needs_cli
def test_docker_attach_and_detach_with_ctrl_p_ctrl_q(
    box: ServerProcess, client: docker.DockerClient
) -> None:
    container = client.containers.run(IMAGE, ["sh"], detach=True, tty=True, stdin_open=True)
    term = terminal(box, "attach", container.id)
    try:
        term.send(b"\r")
        term.expect(b"# ")
        term.send(b"echo attached-$((40+2))\r")
        term.expect(b"attached-42")
        term.send(CTRL_P + CTRL_Q)
        assert term.wait() == 1  # the docker CLI reports a detach as this "error"
        assert b"read escape sequence" in term.output
    finally:
        term.close()
    container.reload()
    assert container.status == "running"


@needs_cli
def test_docker_exec_with_stdin_and_exit_codes(
    box: ServerProcess, client: docker.DockerClient
) -> None:
    container = client.containers.run(IMAGE, ["sleep", "1000"], detach=True)
    piped = docker_cli(
        box, "exec", "-i", container.id, "sh", "-c", "cat; echo done", stdin=b"typed\n"
    )
    assert piped.stdout == "typed\ndone\n"
    failed = docker_cli(box, "exec", container.id, "sh", "-c", "echo oops >&2; exit 5", check=False)
    assert (failed.returncode, failed.stderr) == (5, "oops\n")
    missing = docker_cli(box, "exec", container.id, "no-such-command", check=False)
    assert missing.returncode == 126  # Docker's code for any exec that cannot start
    assert "no-such-command" in missing.stderr
    term = terminal(box, "exec", "-it", container.id, "sh")
    try:
        term.expect(b"# ")
        term.send(b"tty; exit 4\r")
        term.expect(b"/dev/pts/")
        assert term.wait() == 4
    finally:
        term.close()


def test_docker_py_exec_run(client: docker.DockerClient) -> None:
    container = client.containers.run(IMAGE, ["sleep", "1000"], detach=True)
    assert container.exec_run(["sh", "-c", "echo hi; exit 42"]) == (42, b"hi\n")
    # Docker: 126 for any command the runtime cannot start, missing or not executable.
    assert container.exec_run("no-such-command").exit_code == 126
    assert container.exec_run(["/etc/passwd"]).exit_code == 126
    cmd = ["sh", "-c", "echo out; sleep 0.1; echo err >&2"]
    assert container.exec_run(cmd, demux=True).output == (b"out\n", b"err\n")
    streamed = container.exec_run(cmd, stream=True, demux=True).output
    assert list(streamed) == [(b"out\n", None), (None, b"err\n")]
    assert container.exec_run(cmd, tty=True).output == b"out\r\nerr\r\n"
    env = container.exec_run(
        ["sh", "-c", "id -u; pwd; echo $GREETING"],
        user="nobody",
        workdir="/tmp",
        environment={"GREETING": "hi"},
    )
    assert env.output == b"65534\n/tmp\nhi\n"
    privileged = container.exec_run(["sh", "-c", "grep CapEff /proc/self/status"], privileged=True)
    plain = container.exec_run(["sh", "-c", "grep CapEff /proc/self/status"])
    assert privileged.output != plain.output


def test_exec_api_details(client: docker.DockerClient, box: ServerProcess) -> None:
    api = client.api
    container = client.containers.run(IMAGE, ["sleep", "1000"], detach=True)
    exec_id = api.exec_create(container.id, ["sh", "-c", "echo x > /tmp/d; sleep 1000"])["Id"]
    assert api.exec_start(exec_id, detach=True) == ""
    info = api.exec_inspect(exec_id)
    assert info["Running"] is True and info["Pid"] > 0
    assert info["ProcessConfig"]["entrypoint"] == "sh"
    assert container.exec_run(["cat", "/tmp/d"]).output == b"x\n"
    again = box.request("POST", f"/v1.44/exec/{exec_id}/start", body=b'{"Detach":true}')
    assert again.status == 409
    assert box.request("GET", "/v1.44/exec/nope/json").status == 404
    bad_env = box.request(
        "POST",
        f"/v1.44/containers/{container.id}/exec",
        body=b'{"Cmd":["true"],"Env":["NOEQUALS"]}',
    )
    assert bad_env.status == 400
    bad_keys = box.request(
        "POST",
        f"/v1.44/containers/{container.id}/exec",
        body=b'{"Cmd":["true"],"DetachKeys":"ctrl-1"}',
    )
    assert bad_keys.status == 400
    no_cmd = box.request("POST", f"/v1.44/containers/{container.id}/exec", body=b'{"Cmd":[]}')
    assert (no_cmd.status, set(no_cmd.json())) == (400, {"cause", "message", "response"})
    container.pause()
    with pytest.raises(APIError) as paused:
        api.exec_create(container.id, ["true"])
    assert paused.value.status_code == 409
    container.unpause()
    container.kill()
    container.wait()
    with pytest.raises(APIError) as stopped:
        api.exec_create(container.id, ["true"])
    assert stopped.value.status_code == 409
    assert api.exec_inspect(exec_id)["Running"] is False  # killed with its container
    container.remove()
    with pytest.raises(NotFound):
        api.exec_inspect(exec_id)


def test_exec_detach_keys(client: docker.DockerClient) -> None:
    """docker-py's own check: typing the keys closes our connection, the process runs on."""
    container = client.containers.run(IMAGE, ["sleep", "1000"], detach=True)
    exec_id = client.api.exec_create(
        container.id,
        ["sh", "-c", "cat; echo cat-ended >/tmp/mark"],
        stdin=True,
        tty=True,
        detach_keys="ctrl-x",
    )["Id"]
    sock = client.api.exec_start(exec_id, tty=True, socket=True)
    raw = sock._sock
    try:
        raw.sendall(b"\x18")
        raw.settimeout(30)
        while raw.recv(4096):
            pass
    finally:
        sock.close()
    assert client.api.exec_inspect(exec_id)["Running"] is True


def test_docker_py_attach_socket(client: docker.DockerClient) -> None:
    container = client.containers.create(
        IMAGE, ["sh", "-c", "read line; echo got-$line"], stdin_open=True
    )
    sock = container.attach_socket(params={"stdin": 1, "stdout": 1, "stream": 1})
    raw = sock._sock
    try:
        container.start()
        raw.sendall(b"ping\n")
        raw.shutdown(socket.SHUT_WR)
        raw.settimeout(30)
        data = b""
        while chunk := raw.recv(4096):
            data += chunk
    finally:
        sock.close()
    assert data.endswith(b"got-ping\n")
    assert container.wait()["StatusCode"] == 0


@needs_podman
def test_podman_remote_exec_and_attach(
    box: ServerProcess, client: docker.DockerClient, tmp_path: Path
) -> None:
    container = client.containers.run(
        IMAGE,
        ["sh", "-c", "while [ ! -e /go ]; do echo tick; sleep 0.1; done; echo bye"],
        detach=True,
    )
    ran = podman(
        box, tmp_path, "exec", container.id, "sh", "-c", "echo in-podman; exit 6", check=False
    )
    assert (ran.returncode, ran.stdout) == (6, "in-podman\n")
    missing = podman(box, tmp_path, "exec", container.id, "no-such-command", check=False)
    assert missing.returncode == 127  # Podman's code for "not found" on its own tree
    piped = podman(box, tmp_path, "exec", "-i", container.id, "cat", stdin="via-stdin\n")
    assert piped.stdout == "via-stdin\n"
    attach = subprocess.Popen(
        ["podman", "--remote", "--url", box.uri, "attach", "--no-stdin", container.id],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert attach.stdout is not None
        readable, _, _ = select.select([attach.stdout], [], [], 30)
        assert readable and attach.stdout.readline() == b"tick\n"  # attached
        podman(box, tmp_path, "exec", container.id, "touch", "/go")
        rest, _ = attach.communicate(timeout=60)
    finally:
        if attach.poll() is None:
            attach.kill()
            attach.communicate()
    assert rest.endswith(b"bye\n")
    assert attach.returncode == 0


def test_idle_timeout_waits_for_exec_and_attach_sessions(
    start_server: Callable[..., ServerProcess], busybox_archive: Path
) -> None:
    server = start_server(timeout="1")
    load_image(server, busybox_archive)
    api = docker.APIClient(base_url=server.uri, version="1.44")
    try:
        container = api.create_container(IMAGE, ["sleep", "1000"])
        api.start(container)
        exec_id = api.exec_create(container, ["sh", "-c", "sleep 3; echo finished"])["Id"]
        t0 = time.monotonic()
        output = api.exec_start(exec_id)  # the server's idle window is 1 s
        assert output == b"finished\n"
        assert time.monotonic() - t0 >= 3
        assert api.exec_inspect(exec_id)["ExitCode"] == 0
        api.remove_container(container, force=True)
    finally:
        api.close()
    assert server.wait(timeout=30) == 0


def test_exec_inspect_after_server_restart(
    start_server: Callable[..., ServerProcess], busybox_archive: Path
) -> None:
    """A detached exec that ends while no server runs is settled from its exit file."""
    server = start_server()
    load_image(server, busybox_archive)
    api = docker.APIClient(base_url=server.uri, version="1.44")
    container = api.create_container(IMAGE, ["sleep", "1000"])
    api.start(container)
    exec_id = api.exec_create(
        container, ["sh", "-c", "while [ ! -e /go ]; do sleep 0.05; done; exit 9"]
    )["Id"]
    api.exec_start(exec_id, detach=True)
    merged = api.inspect_container(container)["GraphDriver"]["Data"]["MergedDir"]
    pid = api.exec_inspect(exec_id)["Pid"]
    api.close()
    assert server.terminate() == 0
    with open(os.path.join(merged, "go"), "w"):
        pass
    wait_for(process_gone(pid), timeout=30)
    server.start()
    api = docker.APIClient(base_url=server.uri, version="1.44")
    try:
        wait_for(lambda: not api.exec_inspect(exec_id)["Running"], timeout=30)
        assert api.exec_inspect(exec_id)["ExitCode"] == 9
    finally:
        api.close()


def test_exec_events(client: docker.DockerClient, box: ServerProcess) -> None:
    container = client.containers.run(IMAGE, ["sleep", "1000"], detach=True)
    since = int(time.time()) - 1
    assert container.exec_run(["sh", "-c", "exit 2"]).exit_code == 2
    query = urllib.parse.quote(json.dumps({"container": [container.id]}))
    events = (
        box.request("GET", f"/v5.0.0/libpod/events?stream=false&since={since}&filters={query}")
        .body.decode()
        .splitlines()
    )
    actions = [json.loads(e)["Action"] for e in events if e]
    assert "exec" in actions and "exec_died" in actions


def test_websocket_attach(client: docker.DockerClient, box: ServerProcess) -> None:
    container = client.containers.create(
        IMAGE, ["sh", "-c", "read line; echo got-$line; echo err-$line >&2"], stdin_open=True
    )
    ws = WSConnection(ConnectionType.CLIENT)
    target = f"/v1.44/containers/{container.id}/attach/ws?stream=1&stdin=1&stdout=1&stderr=1"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(30)
        sock.connect(str(box.sock))
        sock.sendall(ws.send(WsRequest(host="localhost", target=target)))
        received: list[object] = []
        while not any(isinstance(e, AcceptConnection) for e in received):
            ws.receive_data(sock.recv(4096))
            received += list(ws.events())
        container.start()
        sock.sendall(ws.send(BytesMessage(data=b"ping\n")))
        output = b""
        while True:
            data = sock.recv(4096)
            ws.receive_data(data or None)
            events = list(ws.events())
            output += b"".join(bytes(e.data) for e in events if isinstance(e, BytesMessage))
            if not data or any(isinstance(e, CloseConnection) for e in events):
                break
    assert b"got-ping\n" in output and b"err-ping\n" in output
    assert container.wait()["StatusCode"] == 0
    plain = box.request("GET", f"/v1.44/containers/{container.id}/attach/ws?stream=1")
    assert plain.status == 400  # not a WebSocket handshake


def test_exec_resize_of_a_session_not_running(
    box: ServerProcess, client: docker.DockerClient
) -> None:
    """409, or ignored (201) with ``running=true`` as podman's client sends it."""
    container = client.containers.run(IMAGE, ["sleep", "1000"], detach=True)
    try:
        exec_id = client.api.exec_create(container.id, ["true"], tty=True)["Id"]
        refused = box.request("POST", f"/v1.44/exec/{exec_id}/resize?h=10&w=20")
        assert refused.status == 409, refused.body
        ignored = box.request(
            "POST", f"/v4.3.1/libpod/exec/{exec_id}/resize?h=10&w=20&running=true"
        )
        assert ignored.status == 201, ignored.body
    finally:
        container.remove(force=True)


def test_container_resize_needs_a_running_container(
    box: ServerProcess, client: docker.DockerClient
) -> None:
    """A running TTY container's terminal takes the size; created or exited is 409 with
    Podman's ``AttachResize`` error, on both trees."""
    refused_body = {
        "cause": "container state improper",
        "message": "can only resize created or running containers: container state improper",
        "response": 409,
    }
    container = client.containers.create(IMAGE, ["sleep", "1000"], tty=True)
    try:
        for path in ("/v1.44", "/v4.3.1/libpod"):
            created = box.request("POST", f"{path}/containers/{container.id}/resize?h=10&w=20")
            assert created.status == 409, created.body
            assert created.json() == refused_body
        container.start()
        resized = box.request("POST", f"/v1.44/containers/{container.id}/resize?h=33&w=77")
        assert resized.status == 200, resized.body
        size = container.exec_run(["sh", "-c", "stty -F /dev/console size"])
        assert size.output.decode().split() == ["33", "77"], size
        container.kill()
        container.wait()
        exited = box.request("POST", f"/v4.3.1/libpod/containers/{container.id}/resize?h=1&w=1")
        assert exited.status == 409, exited.body
        assert exited.json() == refused_body
    finally:
        container.remove(force=True)
