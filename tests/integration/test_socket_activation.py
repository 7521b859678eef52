"""systemd socket activation for real: ``systemd-socket-activate`` holds the socket.

``systemd-socket-activate -l SOCK CMD`` binds SOCK, waits for the first
connection, then execs CMD with the socket as fd 3 and ``LISTEN_PID`` /
``LISTEN_FDS`` set (no ``LISTEN_FDNAMES``), as systemd starts a
``Type=notify`` service from its ``.socket`` unit.  Each activation below is
one lifetime of podapi.service.
"""

import json
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import TWISTD, ServerProcess, request, wait_for

SOCKET_ACTIVATE = shutil.which("systemd-socket-activate")
IDLE = "2"

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        SOCKET_ACTIVATE is None, reason="systemd-socket-activate missing (Debian: systemd)"
    ),
]


class Activator:
    """Runs podapi the way podapi.socket + podapi.service do, one lifetime at a time."""

    def __init__(self, base: Path) -> None:
        # Only its root, runroot and own network settings are used: no server runs as it.
        self.layout = ServerProcess(base)
        self.sock = base / "x" / "api.sock"
        self.sock.parent.mkdir(parents=True, exist_ok=True)
        self.procs: list[subprocess.Popen[bytes]] = []

    def listen(self, *uri: str) -> subprocess.Popen[bytes]:
        """Bind the socket and wait for the first client, as systemd does."""
        assert SOCKET_ACTIVATE is not None
        argv = [
            SOCKET_ACTIVATE,
            "-l",
            str(self.sock),
            *(TWISTD, "-n", "--pidfile=", "podapi"),
            *("--root", str(self.layout.root), "--runroot", str(self.layout.runroot)),
            *("-t", IDLE, *self.layout.args, *uri),
        ]
        bound = f"Listening on {self.sock} as 3."
        before = self.log().count(bound)
        with open(self.layout.base / "server.log", "ab") as log:
            proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        self.procs.append(proc)
        # The file of the last lifetime is there already: wait for this one's bind.
        wait_for(lambda: self.log().count(bound) > before, 10)
        return proc

    def log(self) -> str:
        path = self.layout.base / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=15)


def program(proc: subprocess.Popen[bytes]) -> str:
    """The name of the program ``proc`` runs now (it changes at exec)."""
    argv = Path(f"/proc/{proc.pid}/cmdline").read_bytes().split(b"\0")
    name = Path(argv[0].decode()).name
    return Path(argv[1].decode()).name if name.startswith("python") else name


@pytest.fixture
def activator(tmp_path: Path) -> Iterator[Activator]:
    activator = Activator(tmp_path / "activated")
    yield activator
    activator.stop()
    if activator.layout.has_containers():  # a failed run left one: a last lifetime removes it
        activator.listen()
        request(str(activator.sock), "DELETE", "/v1.44/containers/activated?force=1", timeout=60)
        activator.stop()


def test_first_request_starts_the_service_and_idle_exit_loses_nothing(
    activator: Activator, busybox_archive: Path
) -> None:
    """Twisted's own form first (systemd:domain=UNIX:index=0), then Podman's bare form."""
    sock = str(activator.sock)
    first = activator.listen("systemd:domain=UNIX:index=0")
    assert program(first) == "systemd-socket-activate"  # nothing serves until a client comes

    loaded = request(sock, "POST", "/v1.44/images/load", body=busybox_archive.read_bytes())
    assert loaded.status == 200, (loaded.body, activator.log())
    assert program(first) == "twistd"
    created = request(
        sock,
        "POST",
        "/v1.44/containers/create?name=activated",
        body=json.dumps({"Image": "acc-busybox:latest", "Cmd": ["true"]}).encode(),
        headers={"Content-Type": "application/json"},
    )
    assert created.status == 201, created.body
    info = request(sock, "GET", "/v5.0.0/libpod/info").json()
    assert info["host"]["remoteSocket"]["path"] == f"unix://{sock}"

    assert first.wait(timeout=30) == 0, activator.log()  # the idle window ends it
    # The socket file is systemd's: still there for the next start; nobody answers now.
    assert activator.sock.is_socket()
    with socket.socket(socket.AF_UNIX) as probe, pytest.raises(ConnectionRefusedError):
        probe.connect(sock)

    second = activator.listen()  # podman.service's form: no URI, the passed socket
    names = [c["Names"] for c in request(sock, "GET", "/v1.44/containers/json?all=1").json()]
    assert names == [["/activated"]], activator.log()
    assert program(second) == "twistd"
    removed = request(sock, "DELETE", "/v1.44/containers/activated")
    assert removed.status == 204, removed.body
    assert second.wait(timeout=30) == 0, activator.log()
