"""Start-up (issue 15): nothing heavy is loaded before it is needed, and the socket
answers while the engine still reconciles.

TLS (OpenSSL, cryptography) is not checked: Klein imports
``twisted.internet.endpoints``, which loads it, so it is part of the floor any
Twisted + Klein server pays.
"""

import json
import os
import select
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from tests.support import ServerProcess, network_args, wait_for

#: Modules only some requests need (kube YAML, WebSocket attach, the registry and
#: URL clients, ``docker build``): a start must not load them.
HEAVY = (
    "yaml",
    "wsproto",
    "h11",
    "treq",
    "twisted.web.client",
    "dockerfile_parse",
    "podapi.engine.kube.player",
    "podapi.engine.imagebuild.builder",
)

#: The server's start path, in-process: options (the collector off, as twistd's
#: podapi plugin leaves it), makeService, startService, and the modules loaded and
#: the collector's state when it says READY=1 (listening, reconcile done).
START = """
import gc, json, sys
from twisted.internet import reactor
from podapi import service, tap

def ready():
    print(json.dumps({"modules": sorted(sys.modules), "gc": gc.isenabled()}), flush=True)
    reactor.stop()

gc.disable()

service.notify_ready = ready
options = tap.Options()
options.parseOptions(sys.argv[1:])
started = tap.makeService(options)
reactor.addSystemEventTrigger("before", "shutdown", started.stopService)
started.startService()
reactor.run()
"""


def test_a_start_loads_no_heavy_module(tmp_path: Path) -> None:
    """Nothing only some requests need is loaded, and the collector the start ran
    without is on again."""
    argv = [
        *("--root", str(tmp_path / "root"), "--runroot", str(tmp_path / "run")),
        *network_args(0),
        f"unix://{tmp_path / 'api.sock'}",
    ]
    done = subprocess.run(
        [sys.executable, "-c", START, *argv],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    started = json.loads(done.stdout.splitlines()[-1])
    loaded = set(started["modules"])
    assert "podapi.engine.engine" in loaded  # the start did run
    assert [name for name in HEAVY if name in loaded] == []
    assert started["gc"], "the cyclic collector is still off once started"


#: The start again, the engine's import held (in its thread) while a client pings and
#: asks for a container list; the list is read once the server says READY=1.
HELD_IMPORT = """
import json, socket, sys, threading
from twisted.internet import reactor
from podapi import service, tap

path, argv = sys.argv[1], sys.argv[2:]
seen = {}


def send(target):
    client = socket.socket(socket.AF_UNIX)
    client.connect(path)
    head = f"GET {target} HTTP/1.1\\r\\nHost: d\\r\\nConnection: close\\r\\n\\r\\n"
    client.sendall(head.encode())
    return client


def status(client):
    client.settimeout(60)
    reply = b""
    while chunk := client.recv(65536):
        reply += chunk
    client.close()
    return reply.split(b"\\r\\n", 1)[0].decode()


def read_list(client):
    seen["list"] = status(client)


real_import = service._import_api


def held_import():
    seen["engine loaded at first ping"] = "podapi.engine.engine" in sys.modules
    seen["ping"] = status(send("/_ping"))
    waiting = send("/v1.44/containers/json")
    waiting.settimeout(1.0)
    try:
        seen["list answered before the engine"] = waiting.recv(1) != b""
    except TimeoutError:
        seen["list answered before the engine"] = False
    seen["reader"] = threading.Thread(target=read_list, args=(waiting,))
    seen["reader"].start()
    real_import()


def finish():
    seen.pop("reader").join(60)
    print(json.dumps(seen), flush=True)
    reactor.callFromThread(reactor.stop)


service._import_api = held_import
service.notify_ready = lambda: threading.Thread(target=finish).start()
options = tap.Options()
options.parseOptions(argv)
started = tap.makeService(options)
reactor.addSystemEventTrigger("before", "shutdown", started.stopService)
started.startService()
reactor.run()
"""


def test_the_socket_answers_ping_before_the_engine_is_imported(tmp_path: Path) -> None:
    """The socket listens and answers ``/_ping`` before the engine and the rest of the
    API are imported (most of a cold start); a request for the rest waits for them
    and is then answered."""
    sock = tmp_path / "api.sock"
    argv = [
        *("--root", str(tmp_path / "root"), "--runroot", str(tmp_path / "run")),
        *network_args(0),
        f"unix://{sock}",
    ]
    done = subprocess.run(
        [sys.executable, "-c", HELD_IMPORT, str(sock), *argv],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == {
        "engine loaded at first ping": False,
        "ping": "HTTP/1.1 200 OK",
        "list answered before the engine": False,
        "list": "HTTP/1.1 200 OK",
    }


def _request_head(method: str, target: str) -> bytes:
    return f"{method} {target} HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n".encode()


def _read_to_end(sock: socket.socket) -> bytes:
    sock.settimeout(30)
    reply = b""
    while chunk := sock.recv(65536):
        reply += chunk
    return reply


def test_the_socket_answers_while_the_engine_reconciles(
    start_server: Callable[..., ServerProcess], busybox_archive: Path
) -> None:
    """A helper a killed server left running holds the reconcile (podapi.oci.leftovers):
    ``/_ping``, ``/version`` and image lists answer meanwhile; a container list waits
    for the reconcile and is answered when it ends, and so is an image load sent
    meanwhile (its body was once streamed into the store the reconcile then tidied:
    a 500 for a missing staging file)."""
    server = start_server(spawn=False)
    server.runroot.mkdir(parents=True)
    # comm "flock" and the runroot in its command line: a leftover helper.
    helper = subprocess.Popen(
        ["flock", str(server.runroot / "leftover.lock"), "sleep", "600"],
        start_new_session=True,
    )
    try:
        server.spawn()

        def answers() -> bool:
            try:
                return server.request("GET", "/_ping", timeout=5).status == 200
            except OSError:
                return False

        wait_for(answers, timeout=60)
        assert server.request("GET", "/v1.44/version").status == 200
        assert server.request("GET", "/v5.0.0/libpod/images/json").status == 200
        archive = busybox_archive.read_bytes()
        with socket.socket(socket.AF_UNIX) as waiting, socket.socket(socket.AF_UNIX) as load:
            waiting.connect(str(server.sock))
            waiting.sendall(_request_head("GET", "/v1.44/containers/json?all=1"))
            load.connect(str(server.sock))
            load.sendall(
                b"POST /v1.44/images/load HTTP/1.1\r\nHost: d\r\nConnection: close\r\n"
                b"Content-Type: application/x-tar\r\n"
                + f"Content-Length: {len(archive)}\r\n\r\n".encode()
                + archive
            )
            readable, _, _ = select.select([waiting, load], [], [], 1.0)
            assert readable == [], "answered before the reconcile ended"
            os.killpg(helper.pid, signal.SIGKILL)
            helper.wait(timeout=10)
            reply, loaded = _read_to_end(waiting), _read_to_end(load)
        assert reply.startswith(b"HTTP/1.1 200"), reply[:200]
        assert reply.endswith(b"[]\n") or reply.endswith(b"[]"), reply[-200:]
        assert loaded.startswith(b"HTTP/1.1 200"), loaded[:300]
        assert b"Loaded image" in loaded and b"error" not in loaded, loaded[-300:]
        images = server.get_json("/v1.44/images/json")
        assert [tag for image in images for tag in image["RepoTags"]], images
    finally:
        if helper.poll() is None:
            os.killpg(helper.pid, signal.SIGKILL)
            helper.wait(timeout=10)
