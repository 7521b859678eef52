"""Containers through Docker clients: the docker CLI and docker-py, real runc and conmon."""

import contextlib
import threading
import time

import docker
import pytest
from docker.errors import APIError, ContainerError, ImageNotFound, NotFound

from tests.integration.containers_support import IMAGE, cgroup_file, needs_cli
from tests.integration.containers_support import docker as docker_cli
from tests.support import EventStream, ServerProcess

pytestmark = pytest.mark.integration


@needs_cli
def test_docker_run_prints_output_and_exit_codes(box: ServerProcess) -> None:
    run = docker_cli(box, "run", "--rm", IMAGE, "echo", "hi")
    assert run.stdout == "hi\n"
    failed = docker_cli(box, "run", "--rm", IMAGE, "sh", "-c", "echo oops >&2; exit 7", check=False)
    assert failed.returncode == 7
    assert "oops" in failed.stderr
    assert docker_cli(box, "ps", "-a", "-q").stdout.strip() == ""


@needs_cli
def test_docker_run_rm_that_cannot_start_is_removed(box: ServerProcess) -> None:
    failed = docker_cli(box, "run", "--rm", IMAGE, "/nonexistent", check=False, timeout=30)
    assert failed.returncode == 127, failed.stderr
    assert docker_cli(box, "ps", "-a", "-q").stdout.strip() == ""


@needs_cli
def test_docker_stop_escalates_to_kill(box: ServerProcess) -> None:
    name = "stopper"
    docker_cli(box, "run", "-d", "--name", name, IMAGE, "sleep", "1000")
    try:
        t0 = time.monotonic()
        docker_cli(box, "stop", "-t", "1", name)
        assert time.monotonic() - t0 < 20  # TERM ignored by PID 1, KILL after 1 s
        state = docker_cli(box, "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", name)
        assert state.stdout.split() == ["exited", "137"]
        again = docker_cli(box, "stop", name, check=False)  # already stopped: 304 is success
        assert again.returncode == 0
    finally:
        docker_cli(box, "rm", "-f", name, check=False)


@needs_cli
def test_docker_ps_logs_rename_pause_top_wait(box: ServerProcess) -> None:
    docker_cli(
        box,
        "run",
        "-d",
        "--name",
        "chatty",
        "--label",
        "tier=test",
        IMAGE,
        "sh",
        "-c",
        "for i in 1 2 3; do echo line$i; done; echo err >&2; sleep 1000",
    )
    try:
        listed = docker_cli(
            box, "ps", "--filter", "label=tier=test", "--format", "{{.Names}} {{.State}}"
        )
        assert listed.stdout.split() == ["chatty", "running"]
        assert docker_cli(box, "ps", "--filter", "status=exited", "-q").stdout.strip() == ""
        docker_cli(box, "rename", "chatty", "talky")
        docker_cli(box, "pause", "talky")
        paused = docker_cli(box, "ps", "--filter", "name=talky", "--format", "{{.Status}}")
        assert paused.stdout.strip().endswith("(Paused)")
        docker_cli(box, "unpause", "talky")
        top = docker_cli(box, "top", "talky")
        assert "sleep 1000" in top.stdout
        follow = subprocess_follow(box, "talky")
        docker_cli(box, "kill", "talky")
        assert docker_cli(box, "wait", "talky").stdout.strip() == "137"
        assert follow.wait_output() == "line1\nline2\nline3\n"
        logs = docker_cli(box, "logs", "--tail", "2", "talky")
        assert logs.stdout == "line3\n"
        assert logs.stderr == "err\n"
        stamped = docker_cli(box, "logs", "--timestamps", "talky").stdout.splitlines()
        assert stamped[0].endswith(" line1") and stamped[0][:4].isdigit()
    finally:
        docker_cli(box, "rm", "-f", "talky", check=False)


class subprocess_follow:
    """``docker logs -f`` in the background until the container stops."""

    def __init__(self, server: ServerProcess, name: str) -> None:
        self.result: list[str] = []
        self._thread = threading.Thread(
            target=lambda: self.result.append(
                docker_cli(server, "logs", "-f", name, timeout=60).stdout
            )
        )
        self._thread.start()

    def wait_output(self) -> str:
        self._thread.join(timeout=60)
        assert self.result, "docker logs -f did not end when the container stopped"
        return self.result[0]


def test_docker_py_run_detach_and_not(client: docker.DockerClient) -> None:
    output = client.containers.run(IMAGE, ["sh", "-c", "echo out; echo err >&2"], remove=True)
    assert output == b"out\n"
    with pytest.raises(ContainerError) as failed:
        client.containers.run(IMAGE, ["sh", "-c", "exit 3"], remove=True)
    assert failed.value.exit_status == 3
    container = client.containers.run(IMAGE, ["sleep", "1000"], detach=True, name="pydetached")
    assert container.status in ("created", "running")
    container.reload()
    assert container.status == "running"
    container.kill()
    assert container.wait()["StatusCode"] == 137
    container.remove()
    with pytest.raises(NotFound):
        client.containers.get("pydetached")


def test_docker_py_kill_answers_once_the_container_is_dead(client: docker.DockerClient) -> None:
    """A SIGKILL on the compat tree returns after the exit: inspect shows 137, remove works."""
    container = client.containers.run(IMAGE, ["sleep", "1000"], detach=True)
    try:
        container.kill()
        container.reload()
        assert container.attrs["State"]["Running"] is False
        assert container.attrs["State"]["ExitCode"] == 137
        container.remove()  # no force: the kill left nothing running
    finally:
        with contextlib.suppress(NotFound):
            container.remove(force=True)


def test_docker_py_diff_lists_only_what_the_container_changed(
    client: docker.DockerClient,
) -> None:
    """``container.diff()`` of ``touch /test``: no /etc, /run or mounted files beside it."""
    container = client.containers.run(IMAGE, ["touch", "/test"], detach=True)
    try:
        assert container.wait()["StatusCode"] == 0
        assert container.diff() == [{"Path": "/test", "Kind": 1}]
    finally:
        container.remove(force=True)


def test_docker_py_overrides(client: docker.DockerClient) -> None:
    out = client.containers.run(
        IMAGE,
        ["sh", "-c", "echo $FOO; id -u; pwd; cat /etc/hostname"],
        environment={"FOO": "bar"},
        user="nobody",
        working_dir="/tmp",
        hostname="custom",
        remove=True,
    )
    assert out.decode().split() == ["bar", "65534", "/tmp", "custom"]
    entry = client.containers.run(IMAGE, ["hello"], entrypoint=["echo"], remove=True)
    assert entry == b"hello\n"


def test_docker_py_logs_wait_stop_list_filters(client: docker.DockerClient) -> None:
    container = client.containers.run(
        IMAGE, ["sh", "-c", "echo a; echo b >&2; sleep 1000"], detach=True, labels={"suite": "py"}
    )
    try:
        assert client.containers.list(filters={"label": "suite=py"})[0].id == container.id
        assert client.containers.list(filters={"label": "suite=none"}) == []
        assert client.containers.list(filters={"ancestor": IMAGE})[0].id == container.id
        container.stop(timeout=1)
        assert container.wait()["StatusCode"] == 137
        assert container.logs(stdout=True, stderr=False) == b"a\n"
        assert container.logs(stdout=False, stderr=True) == b"b\n"
        exited = client.containers.list(all=True, filters={"status": "exited", "label": "suite=py"})
        assert [c.id for c in exited] == [container.id]
        assert (
            client.containers.list(filters={"exited": "137", "label": "suite=py"}, all=True)[0].id
            == container.id
        )
    finally:
        container.remove(force=True)


def test_readonly_rootfs_and_resource_limits(
    client: docker.DockerClient, box: ServerProcess
) -> None:
    ro = client.containers.run(
        IMAGE,
        ["sh", "-c", "touch /x 2>/dev/null && echo rw || echo ro"],
        read_only=True,
        remove=True,
    )
    assert ro == b"ro\n"
    inside = client.containers.run(
        IMAGE,
        [
            "sh",
            "-c",
            "cat /sys/fs/cgroup/memory/memory.limit_in_bytes; cat /sys/fs/cgroup/pids/pids.max",
        ],
        mem_limit="64m",
        pids_limit=77,
        remove=True,
    )
    assert inside.decode().split() == [str(64 * 1024 * 1024), "77"]
    sleeper = client.containers.run(IMAGE, ["sleep", "1000"], detach=True, nano_cpus=500_000_000)
    try:
        sleeper.reload()
        pid = sleeper.attrs["State"]["Pid"]
        assert cgroup_file(pid, "cpu", "cpu.cfs_quota_us") == "50000"
        sleeper.update(mem_limit="32m")
        assert cgroup_file(pid, "memory", "memory.limit_in_bytes") == str(32 * 1024 * 1024)
    finally:
        sleeper.remove(force=True)


def test_inspect_shapes_use_docker_vocabulary(client: docker.DockerClient) -> None:
    created = client.containers.create(IMAGE, ["true"], name="shapes")
    try:
        attrs = client.api.inspect_container("shapes")
        assert attrs["Name"] == "/shapes"
        assert attrs["State"]["Status"] == "created"
        assert attrs["Image"].startswith("sha256:")
        assert attrs["Config"]["Image"] == IMAGE
        assert attrs["HostConfig"]["LogConfig"]["Type"] == "json-file"
        summary = client.api.containers(all=True, filters={"name": "shapes"})[0]
        assert summary["Names"] == ["/shapes"]
        assert summary["State"] == "created"
        created.start()
        assert client.api.wait(created.id)["StatusCode"] == 0
        assert client.api.inspect_container("shapes")["State"]["Status"] == "exited"
    finally:
        created.remove(force=True)


def test_bad_input(client: docker.DockerClient, box: ServerProcess) -> None:
    with pytest.raises(ImageNotFound):
        client.containers.create("no-such-image:1", ["true"])
    with pytest.raises(APIError) as bad_name:
        client.containers.create(IMAGE, ["true"], name="bad name!")
    assert bad_name.value.status_code == 400
    client.containers.create(IMAGE, ["true"], name="taken")
    try:
        with pytest.raises(APIError) as taken:
            client.containers.create(IMAGE, ["true"], name="taken")
        assert taken.value.status_code == 409
    finally:
        client.containers.get("taken").remove()
    memory = box.request(
        "POST",
        "/v1.44/containers/create",
        body=b'{"Image":"acc-busybox","Cmd":["true"],"HostConfig":{"Memory":"lots"}}',
        headers={"Content-Type": "application/json"},
    )
    assert memory.status == 400
    assert set(memory.json()) == {"cause", "message", "response"}
    tiny = box.request(
        "POST",
        "/v1.44/containers/create",
        body=b'{"Image":"acc-busybox","Cmd":["true"],"HostConfig":{"Memory":1024}}',
    )
    assert tiny.status == 400
    running = client.containers.run(IMAGE, ["sleep", "1000"], detach=True)
    try:
        with pytest.raises(APIError) as signal:
            running.kill(signal="SIGNOPE")
        assert signal.value.status_code == 400
        with pytest.raises(APIError) as in_use:
            running.remove()
        assert in_use.value.status_code == 409
        assert "cannot remove a running container" in in_use.value.explanation
    finally:
        running.remove(force=True)
    stopped = client.containers.run(IMAGE, ["true"], detach=True)
    stopped.wait()
    assert box.request("POST", f"/v1.44/containers/{stopped.id}/stop").status == 304
    kill = box.request("POST", f"/v1.44/containers/{stopped.id}/kill")
    assert kill.status == 409
    stopped.remove()
    empty = box.request("POST", "/v1.44/containers/create", body=b"")
    assert empty.status == 400
    assert box.request("GET", "/v1.44/containers/nope/json").status == 404


def test_image_in_use_cannot_be_removed(client: docker.DockerClient, box: ServerProcess) -> None:
    client.images.get(IMAGE).tag("inuse", "1")
    container = client.containers.create("inuse:1", ["true"])
    try:
        conflict = box.request("DELETE", "/v1.44/images/" + client.images.get(IMAGE).id)
        assert conflict.status == 409
        assert box.request("DELETE", "/v1.44/images/inuse:1").status == 200  # one name of two
    finally:
        container.remove()


def test_restart_policy_on_failure(client: docker.DockerClient, box: ServerProcess) -> None:
    events = EventStream(box, {"type": ["container"], "event": ["die"]})
    try:
        container = client.containers.run(
            IMAGE,
            ["sh", "-c", "exit 3"],
            detach=True,
            restart_policy={"Name": "on-failure", "MaximumRetryCount": 2},
        )
        for _ in range(3):  # the first run and two restarts
            events.until(lambda e: e["id"] == container.id)
        container.reload()
        assert container.attrs["RestartCount"] == 2
        assert container.attrs["State"]["ExitCode"] == 3
        assert container.status == "exited"
    finally:
        events.close()
        container.remove(force=True)


def test_healthcheck_status_and_filter(client: docker.DockerClient, box: ServerProcess) -> None:
    events = EventStream(box, {"event": ["health_status"]})
    healthy = client.containers.run(
        IMAGE,
        ["sleep", "1000"],
        detach=True,
        healthcheck={
            "test": ["CMD-SHELL", "test -e /etc/passwd"],
            "interval": 200_000_000,
            "retries": 1,
        },
    )
    sick = client.containers.run(
        IMAGE,
        ["sleep", "1000"],
        detach=True,
        healthcheck={"test": ["CMD", "false"], "interval": 200_000_000, "retries": 1},
    )
    try:
        seen: dict[str, str] = {}
        while seen.get(healthy.id) != "healthy" or seen.get(sick.id) != "unhealthy":
            event = events.next()
            seen[event["id"]] = event["Actor"]["Attributes"]["health_status"]
        assert [c.id for c in client.containers.list(filters={"health": "healthy"})] == [healthy.id]
        assert [c.id for c in client.containers.list(filters={"health": "unhealthy"})] == [sick.id]
        healthy.reload()
        assert healthy.attrs["State"]["Health"]["Status"] == "healthy"
        assert healthy.attrs["State"]["Health"]["Log"][-1]["ExitCode"] == 0
    finally:
        events.close()
        healthy.remove(force=True)
        sick.remove(force=True)
