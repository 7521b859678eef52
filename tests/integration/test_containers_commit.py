"""Committing containers to images with real clients: docker CLI, docker-py, podman --remote."""

import json
import os
import subprocess
import urllib.parse
from pathlib import Path

import docker
import pytest

from tests.integration.containers_support import IMAGE, needs_cli, needs_podman, podman
from tests.integration.containers_support import docker as docker_cli
from tests.support import EventStream, ServerProcess, wait_for

pytestmark = pytest.mark.integration


def query(**params: str) -> str:
    return urllib.parse.urlencode(params)


@needs_cli
def test_docker_commit_keeps_writes_and_deletions_and_applies_changes(box: ServerProcess) -> None:
    """``docker commit -c``: a file written is in the image, a file deleted is gone, CMD applies."""
    docker_cli(
        box, "run", "--name", "commit-cli", IMAGE, "sh", "-c", "echo kept > /new; rm /etc/group"
    )
    events = EventStream(box, {"event": ["commit"]})
    try:
        out = docker_cli(
            box,
            "commit",
            "-c",
            'CMD ["cat","/new"]',
            "-a",
            "tester",
            "-m",
            "first commit",
            "commit-cli",
            "commit-cli-image:v1",
        )
        image_id = out.stdout.strip()
        assert image_id.startswith("sha256:") and len(image_id) == 71
        event = events.next()
        container_id = docker_cli(box, "inspect", "-f", "{{.Id}}", "commit-cli").stdout.strip()
        assert (event["Type"], event["Action"], event["Actor"]["ID"]) == (
            "container",
            "commit",
            container_id,
        )
        assert docker_cli(box, "run", "--rm", "commit-cli-image:v1").stdout == "kept\n"
        gone = docker_cli(
            box, "run", "--rm", "commit-cli-image:v1", "sh", "-c", "test -e /etc/group; echo $?"
        )
        assert gone.stdout == "1\n"
        [inspect] = json.loads(docker_cli(box, "image", "inspect", "commit-cli-image:v1").stdout)
        [base] = json.loads(docker_cli(box, "image", "inspect", IMAGE).stdout)
        assert inspect["Id"] == image_id
        assert inspect["Author"] == "tester"
        assert inspect["Comment"] == "first commit"
        assert inspect["Parent"] == base["Id"]
        assert inspect["Config"]["Cmd"] == ["cat", "/new"]
        assert not any(e.startswith("HOSTNAME=") for e in inspect["Config"]["Env"])
        assert inspect["RootFS"]["Layers"][:-1] == base["RootFS"]["Layers"]
        history = docker_cli(box, "history", "--no-trunc", "--format", "{{.CreatedBy}}", image_id)
        assert history.stdout.splitlines()[0] == "sh -c echo kept > /new; rm /etc/group"
    finally:
        events.close()
        docker_cli(box, "rm", "-f", "commit-cli", check=False)
        docker_cli(box, "rmi", "commit-cli-image:v1", check=False)


def test_docker_py_commit_with_config_overrides(client: docker.DockerClient) -> None:
    """``container.commit(conf=...)``: Cmd, Env and Labels from the body reach the image."""
    container = client.containers.run(IMAGE, ["sh", "-c", "echo py > /py"], detach=True)
    assert container.wait()["StatusCode"] == 0
    image = container.commit(
        repository="commit-py",
        tag="t1",
        conf={"Cmd": ["cat", "/py"], "Env": ["FROM_CONF=1"], "Labels": {"made": "by-conf"}},
    )
    assert image.tags == ["commit-py:t1"]
    config = image.attrs["Config"]
    assert config["Cmd"] == ["cat", "/py"]
    assert config["Labels"] == {"made": "by-conf"}
    assert "FROM_CONF=1" in config["Env"]
    assert any(e.startswith("PATH=") for e in config["Env"])  # the container's, kept
    assert client.containers.run("commit-py:t1", remove=True) == b"py\n"


def test_commit_right_after_the_process_ended_is_not_a_pause_error(
    client: docker.DockerClient,
) -> None:
    """Committing a container whose process just ended (exit not yet recorded) pauses nothing."""
    images = []
    for _ in range(5):
        container = client.api.create_container(IMAGE, ["touch", "/ran"])
        try:
            client.api.start(container)
            images.append(client.api.commit(container, pause=True)["Id"])
        finally:
            client.api.remove_container(container, force=True)
    for image in images:
        client.images.remove(image)


def test_committing_a_running_container_pauses_it_and_leaves_it_running(
    box: ServerProcess, client: docker.DockerClient
) -> None:
    """Paused while the layer is written, unpaused after; never with pause=0 or when paused."""
    container = client.containers.run(
        IMAGE, ["sh", "-c", "echo live > /live; echo ready; sleep 1000"], detach=True
    )
    wait_for(lambda: b"ready" in container.logs(), timeout=30)
    events = EventStream(
        box, {"container": [container.id], "event": ["pause", "unpause", "commit"]}
    )
    try:
        paused = container.commit(repository="commit-live")
        assert [events.next()["Action"] for _ in range(3)] == ["pause", "unpause", "commit"]
        container.reload()
        assert container.status == "running"
        unpaused = client.api.commit(container.id, pause=False)
        assert events.next()["Action"] == "commit"  # no pause/unpause before it
        container.pause()
        assert events.next()["Action"] == "pause"
        kept_paused = client.api.commit(container.id)
        assert events.next()["Action"] == "commit"  # the client's pause is left alone
        container.reload()
        assert container.status == "paused"
        container.unpause()
    finally:
        events.close()
    container.reload()
    assert container.status == "running"
    for image in (paused.id, unpaused["Id"], kept_paused["Id"]):
        assert client.containers.run(image, ["cat", "/live"], remove=True) == b"live\n"


@needs_podman
def test_podman_remote_commit(box: ServerProcess, tmp_path: Path) -> None:
    """``podman --remote commit``: short names become ``localhost/``, the ID is bare hex."""
    podman(box, tmp_path, "run", "--name", "commit-pod", IMAGE, "sh", "-c", "echo pod > /pod")
    try:
        image_id = podman(
            box, tmp_path, "commit", "-c", 'CMD ["cat","/pod"]', "commit-pod", "commit-pod-img"
        ).stdout.strip()
        assert len(image_id) == 64 and all(c in "0123456789abcdef" for c in image_id)
        run = podman(box, tmp_path, "run", "--rm", "localhost/commit-pod-img:latest")
        assert run.stdout == "pod\n"
        [inspect] = json.loads(podman(box, tmp_path, "image", "inspect", image_id).stdout)
        assert inspect["RepoTags"] == ["localhost/commit-pod-img:latest"]
    finally:
        subprocess.run(
            ["podman", "--remote", "--url", box.uri, "rm", "-f", "commit-pod"],
            capture_output=True,
            timeout=60,
            check=False,
            env={**os.environ, "HOME": str(tmp_path)},
        )
        box.request("DELETE", "/v1.44/images/localhost/commit-pod-img:latest?force=1")


@needs_podman
def test_podman_remote_commit_squash(box: ServerProcess, tmp_path: Path) -> None:
    """``commit --squash``: one layer with the whole filesystem; the base's history stays,
    marked as empty layers."""
    script = "echo sq > /sq; rm /bin/true 2>/dev/null; sleep 1000"
    podman(box, tmp_path, "run", "-d", "--name", "squash-me", IMAGE, "sh", "-c", script)
    try:
        podman(box, tmp_path, "commit", "--squash", "squash-me", "squashed")
        image = box.get_json("/v4.3.1/libpod/images/localhost/squashed:latest/json")
        assert len(image["RootFS"]["Layers"]) == 1
        history = image["History"]
        assert len(history) >= 2
        assert [bool(entry.get("empty_layer")) for entry in history][-2:] == [True, False]
        run = podman(
            box,
            tmp_path,
            "run",
            "--rm",
            "localhost/squashed",
            "sh",
            "-c",
            "cat /sq; ls /bin/true 2>&1 || echo gone; busybox true && echo busybox",
        )
        assert run.stdout.splitlines()[0] == "sq"
        assert run.stdout.splitlines()[-1] == "busybox"
        running = box.get_json("/v1.44/containers/squash-me/json")["State"]["Status"]
        assert running == "running"
    finally:
        podman(box, tmp_path, "rm", "-f", "-t", "0", "squash-me", check=False)
        box.request("DELETE", "/v1.44/images/localhost/squashed:latest?force=1")


def test_commit_answers_and_errors_on_both_trees(box: ServerProcess) -> None:
    """201/200 with each tree's ID form; 404 unknown container; 400 for bad input."""
    created = box.request(
        "POST",
        "/v1.44/containers/create",
        body=json.dumps({"Image": IMAGE, "Cmd": ["true"]}).encode(),
    )
    assert created.status == 201, created.body
    cid = created.json()["Id"]
    made: list[str] = []
    try:
        compat = box.request("POST", f"/v1.44/commit?{query(container=cid, repo='commit-http')}")
        assert compat.status == 201, compat.body
        assert compat.json()["Id"].startswith("sha256:")
        made.append(compat.json()["Id"])
        libpod = box.request(
            "POST",
            f"/v5.0.0/libpod/commit?{query(container=cid, format='docker', comment='hi')}",
            body=json.dumps({"Labels": {"via": "libpod"}}).encode(),
        )
        assert libpod.status == 200, libpod.body
        made.append(libpod.json()["Id"])
        assert len(made[-1]) == 64
        inspect = box.get_json(f"/v5.0.0/libpod/images/{made[-1]}/json")
        assert inspect["Comment"] == "hi"
        assert inspect["Config"]["Labels"] == {"via": "libpod"}
        assert box.get_json("/v1.44/images/commit-http/json")["Id"] == made[0]

        for path in ("/v1.44/commit", "/v5.0.0/libpod/commit"):
            missing = box.request("POST", f"{path}?{query(container='no-such-container')}")
            assert missing.status == 404
            assert missing.json()["cause"] == "no such container"
        bad = [
            ("/v1.44/commit", {"changes": "FROB x"}, None),
            ("/v1.44/commit", {"repo": "Not A Name!"}, None),
            ("/v1.44/commit", {}, b"[1]"),
            ("/v1.44/commit", {}, b'{"Cmd": 5}'),
            ("/v5.0.0/libpod/commit", {"format": "xml"}, None),
            ("/v5.0.0/libpod/commit", {"comment": "oci has no comments"}, None),
        ]
        for path, params, body in bad:
            reply = box.request("POST", f"{path}?{query(container=cid, **params)}", body=body)
            assert reply.status == 400, (params, body, reply.body)
            assert set(reply.json()) == {"cause", "message", "response"}
    finally:
        box.request("DELETE", f"/v1.44/containers/{cid}?force=1")
        for image_id in made:
            box.request("DELETE", f"/v1.44/images/{image_id}?force=1")
