"""Containers through Podman clients: ``podman --remote`` and podman-py."""

import json
import shutil
from pathlib import Path

import pytest
from podman import PodmanClient

from tests.integration.containers_support import IMAGE, podman
from tests.support import ServerProcess

pytestmark = pytest.mark.integration


@pytest.mark.skipif(shutil.which("podman") is None, reason="podman not installed")
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
        listed = box.get_json("/v5.0.0/libpod/containers/json")
        entry = next(c for c in listed if c["Id"] == cid)
        assert entry["Names"] == ["libpodonly"] and entry["State"] == "running"
        assert box.request("GET", "/v5.0.0/libpod/containers/nope/exists").status == 404
    finally:
        box.request("DELETE", f"/v5.0.0/libpod/containers/{cid}?force=true")
