"""Containers through Podman clients: ``podman --remote`` and podman-py."""

import itertools
import json
import os
import time
import urllib.parse
from pathlib import Path

import docker
import pytest
from podman import PodmanClient

from tests.integration.containers_support import IMAGE, cgroup_file, needs_podman, podman
from tests.support import ServerProcess

pytestmark = pytest.mark.integration


@needs_podman
def test_podman_remote_run_ps_logs_stop_rm(box: ServerProcess, tmp_path: Path) -> None:
    assert podman(box, tmp_path, "run", "--rm", IMAGE, "echo", "remote").stdout == "remote\n"
    failed = podman(box, tmp_path, "run", "--rm", IMAGE, "sh", "-c", "exit 5", check=False)
    assert failed.returncode == 5
    cid = podman(
        box,
        tmp_path,
        "run",
        "-d",
        "--name",
        "podbg",
        IMAGE,
        "sh",
        "-c",
        "echo from-podman; sleep 1000",
    ).stdout.strip()
    try:
        listed = podman(box, tmp_path, "ps", "--format", "{{.Names}} {{.Status}}").stdout
        assert "podbg Up" in listed
        podman(box, tmp_path, "stop", "-t", "1", "podbg")
        assert podman(box, tmp_path, "logs", "podbg").stdout == "from-podman\n"
        inspect = json.loads(podman(box, tmp_path, "inspect", "podbg").stdout)[0]
        assert inspect["State"]["Status"] == "exited"
        assert inspect["State"]["ExitCode"] == 137
        assert inspect["Id"] == cid
    finally:
        podman(box, tmp_path, "rm", "-f", "podbg", check=False)
    assert "podbg" not in podman(box, tmp_path, "ps", "-a").stdout


def test_podman_py_containers(box: ServerProcess) -> None:
    with PodmanClient(base_url=f"http+unix://{box.sock}") as client:
        container = client.containers.create(
            IMAGE,
            command=["sh", "-c", "echo py; sleep 1000"],
            name="podpy",
            labels={"via": "podman-py"},
        )
        try:
            container.start()
            container.reload()
            assert container.status == "running"
            assert client.containers.exists("podpy")
            listed = client.containers.list(filters={"label": "via=podman-py"})
            assert [c.id for c in listed] == [container.id]
            assert b"".join(container.logs()) == b"py\n"
            container.stop(timeout=1)
            assert container.wait() == 137
            container.reload()
            assert container.status == "exited"
        finally:
            container.remove(force=True)
        assert not client.containers.exists("podpy")


def test_libpod_specific_endpoints(box: ServerProcess) -> None:
    create = box.request(
        "POST",
        "/v5.0.0/libpod/containers/create",
        body=json.dumps(
            {
                "image": IMAGE,
                "command": ["sleep", "1000"],
                "name": "libpodonly",
                "restart_policy": "always",
            }
        ).encode(),
    )
    assert create.status == 201, create.body
    cid = create.json()["Id"]
    try:
        assert box.request("POST", f"/v5.0.0/libpod/containers/{cid}/init").status == 204
        assert box.get_json(f"/v5.0.0/libpod/containers/{cid}/json")["State"]["Status"] == (
            "initialized"
        )
        assert box.get_json(f"/v1.44/containers/{cid}/json")["State"]["Status"] == "created"
        assert box.request("POST", f"/v5.0.0/libpod/containers/{cid}/start").status == 204
        assert box.request("POST", f"/v5.0.0/libpod/containers/{cid}/shouldrestart").status == 204
        mounted = box.get_json("/v5.0.0/libpod/containers/showmounted")
        assert cid in mounted and Path(mounted[cid], "bin", "busybox").exists()
        wait = box.request("POST", f"/v5.0.0/libpod/containers/{cid}/wait?condition=running")
        assert (wait.status, wait.body) == (200, b"0\n")
        changes = box.request("GET", f"/v5.0.0/libpod/containers/{cid}/changes")
        assert changes.status == 200
        for query, status in (
            ("diffType=container", 200),
            ("diffType=all", 200),
            ("diffType=bogus", 400),
            ("diffType=image", 400),
            ("parent=other", 400),
        ):
            reply = box.request("GET", f"/v5.0.0/libpod/containers/{cid}/changes?{query}")
            assert reply.status == status, (query, reply.body)
        listed = box.get_json("/v5.0.0/libpod/containers/json")
        entry = next(c for c in listed if c["Id"] == cid)
        assert entry["Names"] == ["libpodonly"] and entry["State"] == "running"
        assert box.request("GET", "/v5.0.0/libpod/containers/nope/exists").status == 404
    finally:
        box.request("DELETE", f"/v5.0.0/libpod/containers/{cid}?force=true")


def _died_exit_code(server: ServerProcess, container_id: str) -> str:
    query = urllib.parse.quote(json.dumps({"container": [container_id], "event": ["died"]}))
    reply = server.request(
        "GET", f"/v1.44/events?since=0&until={int(time.time()) + 1}&filters={query}"
    )
    assert reply.status == 200, reply.body
    (event,) = [json.loads(line) for line in reply.body.splitlines()]
    return str(event["Actor"]["Attributes"]["exitCode"])


@needs_podman
def test_podman_remote_update_ps_top_and_rm_timeout(box: ServerProcess, tmp_path: Path) -> None:
    """What ``podman --remote`` sends on the libpod tree: update's OCI resources body,
    ps ``--last``/``--size``, top descriptors, ``rm -f -t`` (stop signal first)."""
    podman(box, tmp_path, "run", "--name", "pod-old", IMAGE, "true")
    podman(box, tmp_path, "create", "--name", "pod-new", IMAGE, "true")
    script = "trap 'exit 0' TERM; sleep 1000 & wait"
    cid = podman(
        box,
        tmp_path,
        "run",
        "-d",
        "--name",
        "pod-live",
        "--cpu-shares",
        "512",
        IMAGE,
        "sh",
        "-c",
        script,
    ).stdout.strip()
    try:
        podman(box, tmp_path, "update", "--memory", "64m", "pod-live")
        pid = box.get_json(f"/v1.44/containers/{cid}/json")["State"]["Pid"]
        assert cgroup_file(pid, "memory", "memory.limit_in_bytes") == str(64 * 1024 * 1024)
        assert cgroup_file(pid, "cpu", "cpu.shares") == "512"  # kept: only memory was given
        host_config = box.get_json(f"/v1.44/containers/{cid}/json")["HostConfig"]
        assert (host_config["Memory"], host_config["CpuShares"]) == (64 * 1024 * 1024, 512)

        last = podman(box, tmp_path, "ps", "--last", "2", "--format", "{{.Names}}").stdout
        assert last.split() == ["pod-live", "pod-new"]
        sized = podman(box, tmp_path, "ps", "--size", "--format", "{{.Names}} {{.Size}}").stdout
        (live_size,) = [line for line in sized.splitlines() if line.startswith("pod-live ")]
        assert "(virtual " in live_size  # e.g. "0B (virtual 2.02MB)": sizes were sent

        top = podman(box, tmp_path, "top", "pod-live", "pid", "args").stdout.splitlines()
        assert top[0].split() == ["PID", "COMMAND"]
        assert any(line.split(None, 1)[1] == "sleep 1000" for line in top[1:])

        podman(box, tmp_path, "exec", "pod-live", "touch", "/made")
        assert "A /made" in podman(box, tmp_path, "diff", "pod-live").stdout.splitlines()

        podman(box, tmp_path, "rm", "-f", "-t", "10", "pod-live")
        assert _died_exit_code(box, cid) == "0"  # TERM reached the trap, no KILL
    finally:
        podman(box, tmp_path, "rm", "-f", "pod-live", "pod-new", "pod-old", check=False)


def test_libpod_list_namespaces_and_sizes(box: ServerProcess, client: docker.DockerClient) -> None:
    running = client.containers.run(IMAGE, ["sleep", "1000"], detach=True)
    try:
        listed = box.get_json("/v4.3.1/libpod/containers/json?namespace=true&size=true")
        (entry,) = [c for c in listed if c["Id"] == running.id]
        pid = entry["Pid"]
        net = os.readlink(f"/proc/{pid}/ns/net")
        assert f"net:[{entry['Namespaces']['Net']}]" == net
        assert set(entry["Size"]) == {"rootFsSize", "rwSize"}
        assert entry["Size"]["rootFsSize"] >= entry["Size"]["rwSize"] >= 0
        compat = box.get_json("/v1.44/containers/json?size=1")
        (summary,) = [c for c in compat if c["Id"] == running.id]
        assert summary["SizeRootFs"] == entry["Size"]["rootFsSize"]
    finally:
        running.remove(force=True)


@needs_podman
def test_podman_remote_volume_rm_force_stops_its_containers(
    box: ServerProcess, tmp_path: Path
) -> None:
    """``volume rm -f -t N``: a running container using it gets its stop signal first."""
    script = "trap 'exit 0' TERM; sleep 1000 & wait"
    cid = podman(
        box, tmp_path, "run", "-d", "-v", "forced:/data", IMAGE, "sh", "-c", script
    ).stdout.strip()
    try:
        podman(box, tmp_path, "volume", "rm", "-f", "-t", "10", "forced")
        assert box.request("GET", f"/v1.44/containers/{cid}/json").status == 404
        assert box.request("GET", "/v1.44/volumes/forced").status == 404
        assert _died_exit_code(box, cid) == "0"
    finally:
        podman(box, tmp_path, "rm", "-f", cid, check=False)
        podman(box, tmp_path, "volume", "rm", "-f", "forced", check=False)


@needs_podman
def test_podman_remote_rm_depend_removes_dependents_first(
    box: ServerProcess, tmp_path: Path
) -> None:
    base = podman(box, tmp_path, "run", "-d", IMAGE, "sleep", "1000").stdout.strip()
    joined = podman(
        box, tmp_path, "run", "-d", "--network", f"container:{base}", IMAGE, "sleep", "1000"
    ).stdout.strip()
    try:
        removed = podman(box, tmp_path, "rm", "-f", "-t", "0", "--depend", base).stdout.split()
        assert removed == [joined, base]  # dependents first
        for gone in (base, joined):
            assert box.request("GET", f"/v1.44/containers/{gone}/json").status == 404
    finally:
        podman(box, tmp_path, "rm", "-f", joined, base, check=False)


def test_podman_py_top_streams_until_the_container_stops(box: ServerProcess) -> None:
    """``stream=true``: a table every ``delay`` seconds (podman-py leaves Podman's 5); the
    stream ends when the container stops."""
    with PodmanClient(base_url=f"http+unix://{box.sock}") as client:
        container = client.containers.run(IMAGE, ["sleep", "1000"], detach=True)
        try:
            tables = container.top(stream=True)
            first = next(tables)
            assert "PID" in first["Titles"]
            assert any(row[-1] == "sleep 1000" for row in first["Processes"])
            container.kill()
            # The next round finds it stopped and the stream ends (bounded: no hang if not).
            assert len(list(itertools.islice(tables, 3))) <= 1
        finally:
            container.remove(force=True)
    refused = box.request("GET", "/v4.3.1/libpod/containers/nope/top?delay=0")
    assert refused.status == 400, refused.body
