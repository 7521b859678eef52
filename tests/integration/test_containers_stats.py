"""Container stats through real clients: docker-py, the docker CLI, podman --remote, raw HTTP."""

import json
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
from docker.models.containers import Container

from tests.integration.containers_support import IMAGE, needs_cli, needs_podman, podman
from tests.integration.containers_support import docker as docker_cli
from tests.support import ServerProcess, UnixHTTPConnection

pytestmark = pytest.mark.integration

MIB = 1024 * 1024
ZERO_TIME = "0001-01-01T00:00:00Z"
#: Burns some CPU, says so, then idles.
BUSY = "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; echo ready; sleep 1000"
PODMAN_FIELDS = {
    "AvgCPU",
    "ContainerID",
    "Name",
    "PerCPU",
    "CPU",
    "CPUNano",
    "CPUSystemNano",
    "SystemNano",
    "MemUsage",
    "MemLimit",
    "MemPerc",
    "NetInput",
    "NetOutput",
    "BlockInput",
    "BlockOutput",
    "PIDs",
    "UpTime",
    "Duration",
}


@pytest.fixture(scope="module")
def client(box: ServerProcess) -> Iterator[docker.DockerClient]:
    """docker-py on the shared server for this module."""
    c = docker.DockerClient(base_url=box.uri, version="auto")
    yield c
    c.close()


@pytest.fixture(scope="module")
def busy(client: docker.DockerClient) -> Iterator[Container]:
    """A running container limited to 64 MiB that has already used some CPU."""
    container = client.containers.run(
        IMAGE, ["sh", "-c", BUSY], detach=True, mem_limit="64m", name="stats-busy"
    )
    try:
        logs = container.logs(stream=True, follow=True)
        try:
            assert any(b"ready" in chunk for chunk in logs)
        finally:
            logs.close()
        yield container
    finally:
        container.remove(force=True)


@pytest.fixture
def stopped(client: docker.DockerClient) -> Iterator[Container]:
    """A container that was created and never started."""
    container = client.containers.create(IMAGE, ["true"], name="stats-stopped")
    try:
        yield container
    finally:
        container.remove(force=True)


def test_docker_py_one_sample(busy: Container) -> None:
    """``stats(stream=False)``: the limit, pids, CPU used, name and id; no previous sample."""
    sample = busy.stats(stream=False)
    assert sample["memory_stats"]["limit"] == 64 * MIB
    assert 0 < sample["memory_stats"]["usage"] < 64 * MIB
    assert sample["pids_stats"]["current"] >= 1
    assert sample["cpu_stats"]["cpu_usage"]["total_usage"] > 0
    assert sample["cpu_stats"]["system_cpu_usage"] > 0
    assert sample["cpu_stats"]["online_cpus"] >= 1
    assert sample["precpu_stats"]["cpu_usage"]["total_usage"] == 0
    assert sample["preread"] == ZERO_TIME
    assert (sample["name"], sample["id"]) == ("/stats-busy", busy.id)


def test_docker_py_stream_paces_cpu_with_the_previous_sample(busy: Container) -> None:
    """Streaming: each sample's precpu_stats and preread are the previous one's cpu and read."""
    samples = busy.stats(decode=True)
    try:
        first, second = next(samples), next(samples)
    finally:
        samples.close()
    assert first["precpu_stats"]["cpu_usage"]["total_usage"] > 0  # read just before the first
    assert second["precpu_stats"] == first["cpu_stats"]
    assert second["preread"] == first["read"]
    assert second["read"] > first["read"]


def test_stream_ends_when_the_container_stops(client: docker.DockerClient) -> None:
    """A stream on a container that exits ends, with no trailing sample of zeros."""
    container = client.containers.run(IMAGE, ["sleep", "1000"], detach=True)
    try:
        samples = container.stats(decode=True)
        first = next(samples)
        container.kill()
        rest = list(samples)  # ends by itself (docker-py's read timeout bounds it)
        assert first["cpu_stats"]["cpu_usage"]["total_usage"] > 0
        assert all(s["read"] != ZERO_TIME for s in rest)
    finally:
        container.remove(force=True)


@needs_cli
def test_docker_cli_stats_no_stream(box: ServerProcess, busy: Container) -> None:
    """``docker stats --no-stream NAME`` prints the container's row with its memory limit."""
    out = docker_cli(box, "stats", "--no-stream", "stats-busy").stdout
    row = next(line for line in out.splitlines() if "stats-busy" in line)
    assert row.startswith(busy.id[:12])
    assert "/ 64MiB" in row


@needs_podman
def test_podman_remote_stats_json(box: ServerProcess, busy: Container, tmp_path: Path) -> None:
    """``podman --remote stats --no-stream --format json NAME`` reports the container."""
    out = podman(box, tmp_path, "stats", "--no-stream", "--format", "json", "stats-busy")
    [row] = json.loads(out.stdout)
    assert row["id"] == busy.id[:12] and row["name"] == "stats-busy"
    assert row["mem_usage"].endswith("/ 67.11MB")
    assert int(row["pids"]) >= 1


def test_libpod_report_shape(box: ServerProcess, busy: Container) -> None:
    """``/libpod/containers/stats?stream=false``: one report with Podman's fields and units."""
    reply = box.request("GET", f"/v4.3.1/libpod/containers/stats?stream=false&containers={busy.id}")
    assert reply.status == 200
    lines = reply.body.splitlines()
    assert len(lines) == 1
    report = json.loads(lines[0])
    assert report["Error"] is None
    [stats] = report["Stats"]
    assert set(stats) == PODMAN_FIELDS
    assert (stats["ContainerID"], stats["Name"]) == (busy.id, "stats-busy")
    assert stats["MemLimit"] == 64 * MIB
    assert stats["MemPerc"] == pytest.approx(stats["MemUsage"] / (64 * MIB) * 100)
    assert stats["PIDs"] >= 1
    assert stats["CPUNano"] > 0 and stats["CPUNano"] == stats["Duration"]


def test_libpod_per_container_route_keeps_podmans_keys(box: ServerProcess, busy: Container) -> None:
    """``/libpod/containers/{name}/stats``: the Docker shape with ``Id`` and the bare name."""
    reply = box.request("GET", "/v4.3.1/libpod/containers/stats-busy/stats?stream=false")
    assert reply.status == 200
    sample = json.loads(reply.body)
    assert (sample["name"], sample["Id"]) == ("stats-busy", busy.id)
    assert sample["memory_stats"]["limit"] == 64 * MIB


def test_stopped_container_reports_zeros(box: ServerProcess, stopped: Container) -> None:
    """Compat: Docker's empty sample with name and id; libpod: zero stats."""
    sample = stopped.stats(stream=False)
    assert (sample["name"], sample["id"]) == ("/stats-stopped", stopped.id)
    assert sample["read"] == ZERO_TIME
    assert sample["cpu_stats"]["cpu_usage"]["total_usage"] == 0
    assert sample["memory_stats"] == {}
    report = box.get_json(f"/v4.3.1/libpod/containers/stats?stream=false&containers={stopped.id}")
    [stats] = report["Stats"]
    assert stats["ContainerID"] == stopped.id
    assert stats["CPUNano"] == stats["MemUsage"] == stats["PIDs"] == 0


def test_unknown_containers_and_bad_parameters(box: ServerProcess) -> None:
    """404 with Podman's error body for unknown containers; 400 for contradictory parameters."""
    for path in (
        "/v1.44/containers/nope/stats?stream=false",
        "/v4.3.1/libpod/containers/nope/stats?stream=false",
        "/v4.3.1/libpod/containers/stats?stream=false&containers=nope",
    ):
        reply = box.request("GET", path)
        assert reply.status == 404, path
        assert reply.json()["response"] == 404
        assert "nope" in reply.json()["message"]
    assert box.request("GET", "/v1.44/containers/x/stats?stream=true&one-shot=true").status == 400
    assert box.request("GET", "/v4.3.1/libpod/containers/stats?interval=0").status == 400


def test_libpod_stream_reports_every_interval(box: ServerProcess, busy: Container) -> None:
    """A libpod stream sends one report per interval; CPU is paced by the previous report."""
    conn = UnixHTTPConnection(str(box.sock), timeout=30)
    try:
        conn.request("GET", f"/v4.3.1/libpod/containers/stats?interval=1&containers={busy.id}")
        response = conn.getresponse()
        assert response.status == 200
        first, second = (json.loads(response.readline())["Stats"][0] for _ in range(2))
    finally:
        conn.close()
    assert second["SystemNano"] - first["SystemNano"] >= 900_000_000
    assert second["CPUNano"] >= first["CPUNano"]
