"""Events of every object kind on both streams, read by the real clients with filters."""

import io
import json
import tarfile
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from tests.integration.containers_support import IMAGE, needs_cli, needs_podman, podman
from tests.integration.containers_support import docker as docker_cli
from tests.support import ServerProcess

pytestmark = pytest.mark.integration


@pytest.fixture
def loaded(fresh: ServerProcess, busybox_archive: Path) -> ServerProcess:
    """A server of the test's own (its event log holds only the test's events)."""
    reply = fresh.request("POST", "/v1.44/images/load", body=busybox_archive.read_bytes())
    assert reply.status == 200, reply.body
    return fresh


@pytest.fixture
def dclient(loaded: ServerProcess) -> Iterator[docker.DockerClient]:
    client = docker.DockerClient(base_url=loaded.uri, version="auto")
    yield client
    client.close()


def history(server: ServerProcess, prefix: str, **filters: list[str]) -> list[dict[str, Any]]:
    query = urllib.parse.quote(json.dumps(filters))
    reply = server.request("GET", f"{prefix}/events?since=0&stream=false&filters={query}")
    assert reply.status == 200, reply.body
    return [json.loads(line) for line in reply.body.splitlines() if line]


def actions(events: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(e["Type"], e["Action"]) for e in events]


def a_tar(name: str, data: bytes) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def make_one_of_each(client: docker.DockerClient) -> dict[str, str]:
    """Image, volume, network and container events, with docker-py."""
    client.images.get(IMAGE).tag("evt-tag", "v1")
    client.images.remove("evt-tag:v1")
    volume = client.volumes.create("evt-vol")
    network = client.networks.create("evt-net")
    container = client.containers.run(
        IMAGE,
        ["sleep", "1000"],
        detach=True,
        tty=True,
        name="evt-ctr",
        labels={"evt": "yes"},
        volumes={"evt-vol": {"bind": "/data", "mode": "rw"}},
    )
    network.connect(container)
    network.disconnect(container)
    assert container.exec_run(["true"]).exit_code == 0
    container.put_archive("/tmp", a_tar("hello", b"hi"))
    bits, _ = container.get_archive("/tmp/hello")
    b"".join(bits)
    b"".join(container.export())
    container.update(mem_limit="64m", memswap_limit="128m")
    assert container.top()["Processes"]
    client.api.resize(container.id, 30, 100)
    container.kill()
    container.wait()
    container.remove()
    network.remove()
    volume.remove()
    return {"container": container.id, "network": network.id}


def test_every_kind_on_both_streams_with_their_names(
    loaded: ServerProcess, dclient: docker.DockerClient
) -> None:
    ids = make_one_of_each(dclient)
    compat = actions(history(loaded, "/v1.41"))
    libpod = actions(history(loaded, "/v4.3.1/libpod"))
    docker_names = [
        ("image", "load"),
        ("image", "tag"),
        ("image", "untag"),
        ("volume", "create"),
        ("network", "create"),
        ("container", "create"),
        ("volume", "mount"),
        ("container", "start"),
        ("network", "connect"),
        ("network", "disconnect"),
        ("container", "exec_create: true"),
        ("container", "exec_start: true"),
        ("container", "exec_die"),
        ("container", "extract-to-dir"),
        ("container", "archive-path"),
        ("container", "export"),
        ("container", "update"),
        ("container", "resize"),
        ("container", "top"),
        ("container", "kill"),
        ("container", "die"),
        ("container", "destroy"),
        ("network", "destroy"),
        ("volume", "destroy"),
    ]
    for name in docker_names:
        assert name in compat, (name, compat)
    assert ("container", "died") not in compat
    # In Podman's names, without what Podman 4.3.1's client cannot decode.
    for name in [
        ("image", "loadfromarchive"),
        ("container", "exec"),
        ("container", "exec_died"),
        ("container", "died"),
        ("container", "remove"),
        ("network", "remove"),
        ("volume", "remove"),
        ("container", "export"),
    ]:
        assert name in libpod, (name, libpod)
    docker_only_names = ("exec_create", "resize", "top", "archive-path", "extract-to-dir", "update")
    for docker_only in docker_only_names:
        assert not [a for _, a in libpod if a.startswith(docker_only)], libpod
    assert ("container", "update") in actions(history(loaded, "/v5.0.0/libpod"))
    # The order of what happened is kept, on both streams.
    assert compat.index(("container", "create")) < compat.index(("container", "die"))
    assert libpod.index(("container", "died")) < libpod.index(("container", "remove"))

    container = history(loaded, "/v1.41", container=["evt-ctr"], event=["die"])
    assert len(container) == 1
    die = container[0]
    assert die["status"] == "die" and die["id"] == ids["container"]
    assert die["from"] == IMAGE  # as the client named it
    assert die["Actor"]["Attributes"]["exitCode"] == "137"
    assert die["Actor"]["Attributes"]["evt"] == "yes"
    assert die["scope"] == "local" and die["time"] == die["timeNano"] // 10**9
    volume = history(loaded, "/v1.41", type=["volume"], event=["destroy"])[0]
    assert "status" not in volume and "id" not in volume  # Docker: containers and images only
    assert volume["Actor"]["ID"] == "evt-vol"
    assert volume["Actor"]["Attributes"]["driver"] == "local"
    # Filters take the stream's names; Podman's 4.3.1 client sends its own.
    assert (
        len(history(loaded, "/v4.3.1/libpod", container=[ids["container"][:12]], event=["died"]))
        == 1
    )
    assert len(history(loaded, "/v1.41", type=["network"], network=["evt-net"])) == 4


@needs_podman
def test_podman_remote_events_filters_and_format(
    loaded: ServerProcess, dclient: docker.DockerClient, tmp_path: Path
) -> None:
    make_one_of_each(dclient)

    def events(*filters: str) -> list[str]:
        args = [f"--filter={f}" for f in filters]
        fmt = "{{.Type}} {{.Status}} {{.Name}}"
        out = podman(
            loaded, tmp_path, "events", *args, "--stream=false", "--since", "1m", "--format", fmt
        )
        return out.stdout.splitlines()

    assert events("type=volume", "event=create") == ["volume create evt-vol"]
    assert events("type=container", "event=died") == ["container died evt-ctr"]
    assert events("container=evt-ctr", "event=exec_died") == ["container exec_died evt-ctr"]
    assert events("type=image", "event=untag") == ["image untag docker.io/library/evt-tag:v1"]
    # Podman 4.3.1 has no network filter (500); the default network joined at start is left out.
    assert events("type=network", "network=evt-net", "event=connect") == ["network connect evt-net"]
    assert events("volume=evt-vol", "event=remove") == ["volume remove evt-vol"]
    every = events()
    assert "container remove evt-ctr" in every and "image loadfromarchive" in " ".join(every)
    # The default (human) output decodes every event too: none is a nil event.
    plain = podman(loaded, tmp_path, "events", "--stream=false", "--since", "1m")
    assert len(plain.stdout.splitlines()) == len(every)
    # Podman 4.3.1's client decodes any error body as an event, turns it into a nil
    # event and panics printing it (with Podman's own 500 too): it fails, that is all.
    bad = podman(
        loaded, tmp_path, "events", "--stream=false", "--filter", "colour=red", check=False
    )
    assert bad.returncode != 0


@needs_cli
def test_docker_cli_events_filters(loaded: ServerProcess, dclient: docker.DockerClient) -> None:
    since = str(int(time.time()) - 1)
    make_one_of_each(dclient)
    docker_cli(loaded, "run", "--rm", "--name", "evt-run", IMAGE, "true")
    until = str(int(time.time()) + 1)
    window = ["--since", since, "--until", until]
    fmt = ["--format", "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}"]
    volumes = docker_cli(loaded, "events", *window, "--filter", "type=volume", *fmt)
    assert volumes.stdout.splitlines() == [
        "volume create evt-vol",
        "volume mount evt-vol",
        "volume unmount evt-vol",
        "volume destroy evt-vol",
    ]
    died = docker_cli(loaded, "events", *window, "--filter", "event=die", *fmt)
    assert died.stdout.splitlines() == ["container die evt-ctr", "container die evt-run"]
    run = docker_cli(loaded, "events", *window, "--filter", "container=evt-run", *fmt)
    assert run.stdout.splitlines() == [
        f"container {action} evt-run"
        for action in ("create", "attach", "start", "die", "destroy")  # as Docker
    ]
    execs = docker_cli(loaded, "events", *window, "--filter", "event=exec_start", *fmt)
    assert execs.stdout.splitlines() == ["container exec_start: true evt-ctr"]
    labelled = docker_cli(
        loaded, "events", *window, "--filter", "label=evt=yes", "--filter", "event=start", *fmt
    )
    assert labelled.stdout.splitlines() == ["container start evt-ctr"]
    bad = docker_cli(loaded, "events", *window, "--filter", "colour=red", check=False)
    assert bad.returncode != 0
    assert "colour" in bad.stderr


def test_docker_py_events_bounded_by_until(
    loaded: ServerProcess, dclient: docker.DockerClient
) -> None:
    since = int(time.time()) - 1
    make_one_of_each(dclient)
    until = int(time.time()) + 1
    networks = list(
        dclient.events(
            since=since, until=until, decode=True, filters={"type": "network", "network": "evt-net"}
        )
    )
    assert [e["Action"] for e in networks] == ["create", "connect", "disconnect", "destroy"]
    assert {e["Actor"]["Attributes"]["name"] for e in networks} == {"evt-net"}
    images = list(dclient.events(since=since, until=until, decode=True, filters={"image": IMAGE}))
    assert "create" in [e["Action"] for e in images]  # container events of that image
    # docker-py does not check the status of an events response: it decodes the error.
    bad = list(dclient.events(since=since, until=until, decode=True, filters={"colour": "red"}))
    assert [e.get("response") for e in bad] == [400]
    assert "colour" in bad[0]["message"]


def test_unknown_filter_key_and_bad_json_are_400_on_both_trees(loaded: ServerProcess) -> None:
    for prefix in ("/v1.41", "/v4.3.1/libpod"):
        for query in ('filters={"colour":["red"]}', "filters={", 'filters=["type"]'):
            reply = loaded.request("GET", f"{prefix}/events?stream=false&{query}")
            assert reply.status == 400, (prefix, query, reply.body)
            body = json.loads(reply.body)
            assert set(body) == {"cause", "message", "response"}
