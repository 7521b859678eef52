"""Container behaviour Podman's own REST suite (test/apiv2) checks, on a real server
(issue 16): libpod create without a command, compat inspect of a libpod-made container,
tiny NanoCpus, libpod mount/unmount counting, attach replaying logs then closing."""

import json
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from tests.fixtures.images import BuiltImage
from tests.integration.containers_support import IMAGE
from tests.support import ServerProcess, wait_for

pytestmark = pytest.mark.integration

LIBPOD = "/v4.0.0/libpod"


def _libpod_create(box: ServerProcess, body: dict[str, object]) -> str:
    reply = box.request("POST", f"{LIBPOD}/containers/create", json.dumps(body).encode())
    assert reply.status == 201, reply.body
    return str(reply.json()["Id"])


@pytest.fixture
def cmd_image(box: ServerProcess, busybox: BuiltImage) -> Iterator[str]:
    """An image whose CMD (no ENTRYPOINT) prints a line, loaded on the shared server."""
    name = "acc-cmd-only:latest"
    image = BuiltImage(layers=busybox.layers, cmd=["echo", "said by the image"])
    reply = box.request("POST", "/v1.44/images/load", body=image.docker_archive([name]))
    assert reply.status == 200, reply.body
    yield name
    box.request("DELETE", f"/v1.44/images/{name}?force=1")


def test_libpod_create_without_a_command_runs_the_image_cmd(
    box: ServerProcess, cmd_image: str
) -> None:
    """``{"Image": ...}`` alone (Go matches ``image`` in any case): the image's CMD runs."""
    cid = _libpod_create(box, {"Image": cmd_image, "Name": "acc-noargs"})
    try:
        inspect = box.get_json(f"{LIBPOD}/containers/acc-noargs/json")
        assert inspect["Id"] == cid
        assert inspect["Config"]["Cmd"] == ["echo", "said by the image"]
        assert box.request("POST", f"{LIBPOD}/containers/{cid}/start").status == 204
        waited = box.request("POST", f"{LIBPOD}/containers/{cid}/wait", timeout=60)
        assert (waited.status, waited.body) == (200, b"0\n")
        logs = box.request("GET", f"/v1.44/containers/{cid}/logs?stdout=1")
        assert logs.body.endswith(b"said by the image\n")
    finally:
        box.request("DELETE", f"{LIBPOD}/containers/{cid}?force=true")


def test_compat_inspect_of_a_libpod_container(box: ServerProcess, tmp_path: Path) -> None:
    """Binds, Tmpfs, NanoCpus (from a quota over 100ms), the health check's defaults and
    ``Cmd: []`` (an entrypoint resets the image's CMD), as Podman's compat inspect shows."""
    cid = _libpod_create(
        box,
        {
            "image": IMAGE,
            "entrypoint": ["top"],
            "mounts": [
                {"type": "bind", "source": str(tmp_path), "destination": "/data"},
                {"type": "tmpfs", "destination": "/scratch", "options": ["size=1024"]},
            ],
            "resource_limits": {"cpu": {"quota": 50000, "period": 100000}},
            "healthconfig": {"Test": ["CMD", "true"]},
        },
    )
    try:
        inspect = box.get_json(f"/v1.41/containers/{cid}/json")
        host, config = inspect["HostConfig"], inspect["Config"]
        assert [b.split(":")[:2] for b in host["Binds"]] == [[str(tmp_path), "/data"]]
        assert "size=1024" in host["Tmpfs"]["/scratch"].split(",")
        assert host["NanoCpus"] == 500_000_000
        assert (host["CpuQuota"], host["CpuPeriod"]) == (50000, 100000)
        assert config["Healthcheck"] == {
            "Test": ["CMD", "true"],
            "Interval": 30_000_000_000,
            "Timeout": 30_000_000_000,
            "StartPeriod": 0,
            "Retries": 3,
        }
        assert (config["Entrypoint"], config["Cmd"]) == (["top"], [])
    finally:
        box.request("DELETE", f"{LIBPOD}/containers/{cid}?force=true")


def test_a_share_under_a_hundredth_of_a_cpu_is_created(client: docker.DockerClient) -> None:
    """NanoCpus 500000 passes create as in Docker and Podman (no 0.01 floor), shows as
    given, and the container starts (its quota is the kernel's smallest, 1 ms)."""
    api = client.api
    created = api.create_container(
        IMAGE, ["true"], host_config=api.create_host_config(nano_cpus=500_000)
    )
    assert api.inspect_container(created["Id"])["HostConfig"]["NanoCpus"] == 500_000
    api.start(created["Id"])
    assert api.wait(created["Id"], timeout=30)["StatusCode"] == 0


def test_libpod_mount_and_unmount_count_as_podman(box: ServerProcess) -> None:
    """A running container's rootfs stays up through ``mount``+``unmount``; unmounting what
    only the running container holds is 409; a stopped container's comes down."""
    cid = _libpod_create(box, {"image": IMAGE, "command": ["sleep", "1000"]})
    try:
        assert box.request("POST", f"{LIBPOD}/containers/{cid}/start").status == 204
        mounted = box.request("POST", f"{LIBPOD}/containers/{cid}/mount")
        assert mounted.status == 200
        assert mounted.headers["Content-Type"] == "text/plain; charset=us-ascii"
        path = mounted.body.decode()
        assert path.endswith("/merged\n") and Path(path.strip(), "bin", "busybox").exists()
        assert box.request("POST", f"{LIBPOD}/containers/{cid}/unmount").status == 204
        assert cid in box.get_json(f"{LIBPOD}/containers/showmounted")
        refused = box.request("POST", f"{LIBPOD}/containers/{cid}/unmount")
        assert refused.status == 409 and refused.json()["cause"] == "container state improper"
        assert box.request("POST", f"{LIBPOD}/containers/{cid}/kill").status == 204
        stopped = box.request("POST", f"{LIBPOD}/containers/{cid}/wait", timeout=60)
        assert stopped.status == 200
        for _ in range(2):  # two holds: the first unmount keeps it up
            assert box.request("POST", f"{LIBPOD}/containers/{cid}/mount").status == 200
        assert box.request("POST", f"{LIBPOD}/containers/{cid}/unmount").status == 204
        assert cid in box.get_json(f"{LIBPOD}/containers/showmounted")
        assert box.request("POST", f"{LIBPOD}/containers/{cid}/unmount").status == 204
        assert cid not in box.get_json(f"{LIBPOD}/containers/showmounted")
    finally:
        box.request("DELETE", f"{LIBPOD}/containers/{cid}?force=true")


def test_attach_with_logs_and_no_stream_replays_and_closes(client: docker.DockerClient) -> None:
    """``attach?logs=1&stream=0`` on a running container: its log, framed, then EOF."""
    container = client.containers.run(IMAGE, ["sh", "-c", "echo first; sleep 1000"], detach=True)
    wait_for(lambda: container.logs() == b"first\n", timeout=30)
    sock = client.api.attach_socket(container.id, params={"logs": 1, "stream": 0, "stdout": 1})
    sock._sock.settimeout(30)
    received = b""
    while chunk := sock._sock.recv(4096):
        received += chunk
    sock.close()
    assert received == b"\x01\x00\x00\x00\x00\x00\x00\x06first\n"


def test_a_missing_binds_source_is_made_as_docker_does(
    client: docker.DockerClient, tmp_path: Path
) -> None:
    """``Binds`` with a host path that does not exist: made as a directory, mounted
    (Docker's ``-v`` rule; Podman's compat create too), the container runs."""
    source = tmp_path / "made" / "here"
    output = client.containers.run(
        IMAGE, ["sh", "-c", "touch /b/seen && echo ok"], volumes=[f"{source}:/b"], remove=True
    )
    assert output == b"ok\n"
    assert source.is_dir() and (source / "seen").exists()


def test_died_is_logged_when_the_exit_shows(box: ServerProcess) -> None:
    """Once inspect shows a container exited, the event log already has ``died`` with its
    code (the event goes out as the exit is recorded, before the slower teardown)."""

    def exited(cid: str) -> bool:
        state = box.get_json(f"{LIBPOD}/containers/{cid}/json")["State"]
        return bool(state["Status"] == "exited")

    for attempt in range(5):
        cid = _libpod_create(box, {"image": IMAGE, "command": ["false"]})
        try:
            assert box.request("POST", f"{LIBPOD}/containers/{cid}/start").status == 204
            wait_for(lambda: exited(cid), timeout=30, interval=0.002)  # noqa: B023
            query = f"stream=false&filters=%7B%22container%22%3A%5B%22{cid}%22%5D%7D"
            reply = box.request("GET", f"{LIBPOD}/events?{query}")
            events = [json.loads(line) for line in reply.body.splitlines() if line.strip()]
            died = [e for e in events if e["Action"] == "died"]
            assert len(died) == 1, (attempt, [e["Action"] for e in events])
            assert died[0]["Actor"]["Attributes"]["containerExitCode"] == "1"
        finally:
            box.request("DELETE", f"{LIBPOD}/containers/{cid}?force=true")
