"""Pods through the real socket: ``podman --remote pod ...``, podman-py ``client.pods``,
the docker CLI, and the API's answers for bad input."""

import json
import socket
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from podman import PodmanClient

from tests.integration.containers_support import (
    IMAGE,
    assert_nothing_leaked,
    docker,
    load_image,
    needs_cli,
    needs_podman,
    podman,
)
from tests.support import EventStream, ServerProcess, wait_for

pytestmark = pytest.mark.integration

LIBPOD = "/v5.0.0/libpod"

#: Serves "hello-pod" on 127.0.0.1:8080 inside the pod's network namespace.
HTTPD = (
    "mkdir -p /www && echo hello-pod > /www/index.html && exec httpd -f -p 127.0.0.1:8080 -h /www"
)
#: Fetches it from the other container, retrying until the server listens (bounded).
FETCH = (
    "for i in $(seq 100); do wget -qO- http://127.0.0.1:8080/ && exit 0; sleep 0.1; done; exit 1"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pod_inspect(box: ServerProcess, name: str) -> dict[str, Any]:
    result: dict[str, Any] = box.get_json(f"{LIBPOD}/pods/{name}/json")
    return result


def post(box: ServerProcess, path: str, body: Any = None) -> Any:
    data = json.dumps(body).encode() if body is not None else b""
    return box.request("POST", path, data, {"Content-Type": "application/json"})


@needs_podman
def test_podman_remote_pod_commands(box: ServerProcess, tmp_path: Path) -> None:
    pod_id = podman(box, tmp_path, "pod", "create", "--name", "pcli", "--label", "a=b").stdout
    pod_id = pod_id.strip()
    try:
        listed = podman(
            box, tmp_path, "pod", "ps", "--format", "{{.Name}} {{.Status}} {{.InfraId}}"
        )
        name, status, infra = listed.stdout.split("\n")[0].split()
        assert (name, status) == ("pcli", "Created")
        inspect = json.loads(podman(box, tmp_path, "pod", "inspect", "pcli").stdout)
        inspect = inspect[0] if isinstance(inspect, list) else inspect
        assert inspect["Id"] == pod_id and inspect["Labels"] == {"a": "b"}
        assert inspect["InfraContainerID"].startswith(infra)
        assert sorted(inspect["SharedNamespaces"]) == ["ipc", "net", "uts"]
        infra_info = box.get_json(f"{LIBPOD}/containers/{inspect['InfraContainerID']}/json")
        assert infra_info["Name"] == f"{pod_id[:12]}-infra" and infra_info["IsInfra"]
        assert infra_info["ImageName"].startswith("localhost/podman-pause:")

        podman(box, tmp_path, "run", "-d", "--pod", "pcli", "--name", "pcli-sleep", IMAGE,
               "sleep", "1000")  # fmt: skip
        assert pod_inspect(box, "pcli")["State"] == "Running"
        ps = podman(box, tmp_path, "ps", "-a", "--pod", "--format", "{{.Names}} {{.PodName}}")
        assert "pcli-sleep pcli" in ps.stdout
        uts = podman(box, tmp_path, "exec", "pcli-sleep", "hostname").stdout.strip()
        assert uts == "pcli"

        top = podman(box, tmp_path, "pod", "top", "pcli").stdout
        assert "sleep 1000" in top and "catatonit -P" in top
        stats = podman(box, tmp_path, "pod", "stats", "--no-stream", "--format", "{{.Name}}",
                       "pcli")  # fmt: skip
        assert "pcli-sleep" in stats.stdout

        podman(box, tmp_path, "pod", "pause", "pcli")
        assert pod_inspect(box, "pcli")["State"] == "Paused"
        podman(box, tmp_path, "pod", "unpause", "pcli")
        assert pod_inspect(box, "pcli")["State"] == "Running"

        podman(box, tmp_path, "pod", "stop", "-t", "1", "pcli")
        assert pod_inspect(box, "pcli")["State"] == "Exited"
        podman(box, tmp_path, "pod", "start", "pcli")
        assert pod_inspect(box, "pcli")["State"] == "Running"
        podman(box, tmp_path, "pod", "restart", "pcli")
        assert pod_inspect(box, "pcli")["State"] == "Running"
        podman(box, tmp_path, "pod", "kill", "pcli")
        wait_for(lambda: pod_inspect(box, "pcli")["State"] == "Exited", timeout=30)

        podman(box, tmp_path, "pod", "start", "pcli")
        refused = podman(box, tmp_path, "pod", "rm", "pcli", check=False)
        assert refused.returncode != 0
        podman(box, tmp_path, "pod", "rm", "-f", "-t", "1", "pcli")
        assert podman(box, tmp_path, "pod", "exists", "pcli", check=False).returncode == 1
        assert "pcli-sleep" not in podman(box, tmp_path, "ps", "-a").stdout

        podman(box, tmp_path, "pod", "create", "--name", "pprune")
        pruned = podman(box, tmp_path, "pod", "prune", "-f").stdout
        assert pruned.split() and "pprune" not in podman(box, tmp_path, "pod", "ps").stdout
    finally:
        box.request("DELETE", f"{LIBPOD}/pods/pcli?force=true")
        box.request("DELETE", f"{LIBPOD}/pods/pprune?force=true")


@needs_podman
def test_two_containers_in_a_pod_share_localhost(box: ServerProcess, tmp_path: Path) -> None:
    podman(box, tmp_path, "pod", "create", "--name", "pweb")
    try:
        podman(box, tmp_path, "run", "-d", "--pod", "pweb", IMAGE, "sh", "-c", HTTPD)
        fetched = podman(box, tmp_path, "run", "--rm", "--pod", "pweb", IMAGE, "sh", "-c", FETCH)
        assert fetched.stdout == "hello-pod\n"
    finally:
        box.request("DELETE", f"{LIBPOD}/pods/pweb?force=true&timeout=1")


@needs_podman
@needs_cli
def test_published_port_reached_from_host_and_docker_ps(box: ServerProcess, tmp_path: Path) -> None:
    port = free_port()
    podman(box, tmp_path, "pod", "create", "--name", "pport", "-p", f"{port}:8080")
    try:
        serve = HTTPD.replace("127.0.0.1:8080", "8080")
        podman(box, tmp_path, "run", "-d", "--pod", "pport", "--name", "pport-web", IMAGE,
               "sh", "-c", serve)  # fmt: skip
        body: list[bytes] = []

        def answered() -> bool:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as reply:
                    body.append(reply.read())
                    return True
            except OSError:
                return False

        wait_for(answered, timeout=30, interval=0.1)
        assert body[-1] == b"hello-pod\n"
        names = docker(box, "ps", "--format", "{{.Names}}").stdout.split()
        assert "pport-web" in names
        inspect = pod_inspect(box, "pport")
        assert inspect["InfraConfig"]["PortBindings"] == {
            "8080/tcp": [{"HostIp": "", "HostPort": str(port)}]
        }
    finally:
        box.request("DELETE", f"{LIBPOD}/pods/pport?force=true&timeout=1")


def test_podman_py_pods(box: ServerProcess) -> None:
    with PodmanClient(base_url=f"http+unix://{box.sock}") as client:
        pod = client.pods.create(name="ppy", labels={"via": "podman-py"})
        try:
            assert client.pods.exists("ppy")
            container = client.containers.create(IMAGE, command=["sleep", "1000"], pod="ppy")
            pod.start()
            pod.reload()
            assert pod.attrs["State"] == "Running"
            container.reload()
            assert container.attrs["Pod"] == pod.id
            listed = client.pods.list(filters={"label": "via=podman-py"})
            assert [p.id for p in listed] == [pod.id]
            assert [p.id for p in client.pods.list(filters={"ctr-number": "2"})] == [pod.id]
            pod.stop(timeout=1)
            pod.reload()
            assert pod.attrs["State"] == "Exited"
        finally:
            pod.remove(force=True)
        assert not client.pods.exists("ppy")


def test_pod_api_errors(box: ServerProcess) -> None:
    for method, path in (
        ("GET", "/pods/nope/json"),
        ("GET", "/pods/nope/exists"),
        ("POST", "/pods/nope/start"),
        ("POST", "/pods/nope/stop"),
        ("DELETE", "/pods/nope"),
    ):
        reply = box.request(method, f"{LIBPOD}{path}")
        assert reply.status == 404, (path, reply.body)
        assert reply.json()["cause"] == "no such pod"
    reply = box.request("GET", f"{LIBPOD}/pods/json?filters=" + '{"bogus":["x"]}')
    assert reply.status == 400 and "bogus" in reply.json()["message"]
    reply = post(box, f"{LIBPOD}/pods/create", {"name": "perr", "share": ["mnt"]})
    assert reply.status == 400, reply.body

    created = post(box, f"{LIBPOD}/pods/create", {"name": "perr"})
    assert created.status == 201, created.body
    pod_id = created.json()["Id"]
    try:
        assert post(box, f"{LIBPOD}/pods/create", {"name": "perr"}).status == 409
        spec = {"image": IMAGE, "command": ["sleep", "1000"], "pod": "perr"}
        made = post(box, f"{LIBPOD}/containers/create", spec)
        assert made.status == 201, made.body
        assert post(box, f"{LIBPOD}/pods/perr/stop").status == 304
        started = post(box, f"{LIBPOD}/pods/perr/start")
        assert started.status == 200 and started.json() == {"Errs": None, "Id": pod_id}
        assert post(box, f"{LIBPOD}/pods/perr/start").status == 304
        refused = box.request("DELETE", f"{LIBPOD}/pods/perr")
        assert refused.status == 409, refused.body
        infra = pod_inspect(box, "perr")["InfraContainerID"]
        assert box.request("DELETE", f"/v1.44/containers/{infra}?force=1").status == 409
        bad = post(box, f"{LIBPOD}/containers/create", {**spec, "pod": "nope"})
        assert bad.status == 404, bad.body
        removed = box.request("DELETE", f"{LIBPOD}/pods/perr?force=true&timeout=1")
        assert removed.status == 200 and removed.json() == {"Err": None, "Id": pod_id}
    finally:
        box.request("DELETE", f"{LIBPOD}/pods/perr?force=true")


def test_running_pod_of_only_infra_removes_without_force_and_until_filter(
    box: ServerProcess,
) -> None:
    """As Podman 4.3.1: a running pod holding only its infra container is removed
    without force; ``until`` selects pods made before a time; pod stats of an unknown
    pod is a 404 saying the list could not be made."""
    created = post(box, f"{LIBPOD}/pods/create", {"name": "lonely"})
    assert created.status == 201, created.body
    try:
        assert post(box, f"{LIBPOD}/pods/lonely/start").status == 200
        for until, expected in (("500000", []), ("5000000000", ["lonely"])):
            query = quote(json.dumps({"until": [until], "name": ["^lonely$"]}))
            listed = box.request("GET", f"{LIBPOD}/pods/json?filters={query}").json()
            assert [p["Name"] for p in listed] == expected
        stats = box.request("GET", f"{LIBPOD}/pods/stats?namesOrIDs=nope")
        assert stats.status == 404
        assert stats.json()["message"].startswith("unable to get list of pods: no pod")
        removed = box.request("DELETE", f"{LIBPOD}/pods/lonely")
        assert removed.status == 200, removed.body
        assert box.request("DELETE", f"{LIBPOD}/pods/lonely").status == 404
    finally:
        box.request("DELETE", f"{LIBPOD}/pods/lonely?force=true")


def test_pod_survives_server_restart(
    start_server: Callable[..., ServerProcess], busybox_archive: Path
) -> None:
    server = start_server()
    load_image(server, busybox_archive)
    created = post(server, f"{LIBPOD}/pods/create", {"name": "pdur"})
    assert created.status == 201, created.body
    spec = {"image": IMAGE, "command": ["sleep", "1000"], "pod": "pdur"}
    assert post(server, f"{LIBPOD}/containers/create", spec).status == 201
    assert post(server, f"{LIBPOD}/pods/pdur/start").status == 200
    before = pod_inspect(server, "pdur")
    assert server.terminate() == 0
    server.start()
    after = pod_inspect(server, "pdur")
    assert after["State"] == "Running"
    assert after["Containers"] == before["Containers"]
    server.kill()
    server.start()
    assert pod_inspect(server, "pdur")["State"] == "Running"
    stopped = post(server, f"{LIBPOD}/pods/pdur/stop?t=1")
    assert stopped.status == 200, stopped.body
    assert server.request("DELETE", f"{LIBPOD}/pods/pdur").status == 200
    assert server.get_json(f"{LIBPOD}/pods/json") == []
    assert_nothing_leaked(server)


def test_pod_events_and_parallel_stop(box: ServerProcess) -> None:
    """Pod events reach both streams; a stop waits the timeout once for all the containers
    that ignore SIGTERM (Podman 4.3.1 waits it once per container)."""
    libpod_events = EventStream(box, {"type": ["pod"]}, libpod=True)
    compat_events = EventStream(box, {"type": ["pod"]})
    created = post(box, f"{LIBPOD}/pods/create", {"name": "pevents"})
    assert created.status == 201, created.body
    pod_id = created.json()["Id"]
    try:
        stubborn = "trap '' TERM; while :; do sleep 0.1; done"
        for _ in range(3):
            spec = {"image": IMAGE, "command": ["sh", "-c", stubborn], "pod": "pevents"}
            assert post(box, f"{LIBPOD}/containers/create", spec).status == 201
        assert post(box, f"{LIBPOD}/pods/pevents/start").status == 200
        began = time.monotonic()
        stopped = post(box, f"{LIBPOD}/pods/pevents/stop?t=2")
        elapsed = time.monotonic() - began
        assert stopped.status == 200, stopped.body
        assert 2 <= elapsed < 4, elapsed  # once, not three times
        assert box.request("DELETE", f"{LIBPOD}/pods/pevents").status == 200
        for events in (libpod_events, compat_events):
            seen = []
            while "remove" not in seen:
                event = events.next()
                assert event["Actor"]["ID"] == pod_id
                assert event["Actor"]["Attributes"]["name"] == "pevents"
                seen.append(event["Action"])
            assert seen == ["create", "start", "stop", "remove"]
    finally:
        libpod_events.close()
        compat_events.close()
        box.request("DELETE", f"{LIBPOD}/pods/pevents?force=true&timeout=0")
