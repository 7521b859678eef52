"""Image errors as Docker gives them, so docker-py raises the exceptions its users catch.

``ImageNotFound`` for a pull of a repository that does not exist (and so for
``containers.run`` of a missing image), ``ImageLoadError`` for an archive that
cannot be loaded, 404 for ``save`` of an unknown name; plus ``rmi --force`` of
one name among several, and a pull by digest given as the tag.
"""

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import docker
import pytest

from tests.fixtures.images import BuiltImage
from tests.fixtures.registry import Registry
from tests.integration.test_registry_images import inspect, lines, seed
from tests.support import ServerProcess

pytestmark = pytest.mark.integration

Start = Callable[..., ServerProcess]


@pytest.fixture
def hub(start_server: Start, tmp_path: Path, registry: Registry) -> ServerProcess:
    """A server whose registries.conf sends Docker Hub (``docker.io``) to the test registry."""
    conf = tmp_path / "registries.conf"
    conf.write_text(
        f'[[registry]]\nprefix = "docker.io"\nlocation = "{registry.host}"\ninsecure = true\n'
    )
    return start_server(env={**os.environ, "CONTAINERS_REGISTRIES_CONF": str(conf)})


@pytest.fixture
def hub_client(hub: ServerProcess) -> Iterator[docker.DockerClient]:
    client = docker.DockerClient(base_url=hub.uri, version="auto")
    yield client
    client.close()


def test_pull_of_a_missing_repository_is_image_not_found(
    dock: docker.DockerClient, fresh: ServerProcess, registry: Registry, busybox_archive: Path
) -> None:
    """Docker's 404 "pull access denied ... repository does not exist": ImageNotFound."""
    with pytest.raises(docker.errors.ImageNotFound) as missing:
        dock.images.pull(f"{registry.host}/podapi-missing/repo", tag="1")
    assert missing.value.explanation.startswith(
        f"pull access denied for {registry.host}/podapi-missing/repo, repository does not "
        "exist or may require 'docker login': "
    )
    # The repository exists, the tag does not: Docker's "manifest for X not found",
    # a plain NotFound (docker-py does not call that ImageNotFound either).
    name = seed(registry, busybox_archive, "podapi-errors/tagged:1")
    repo = name.rsplit(":", 1)[0]
    with pytest.raises(docker.errors.NotFound) as no_tag:
        dock.images.pull(repo, tag="nope")
    assert not isinstance(no_tag.value, docker.errors.ImageNotFound)
    assert no_tag.value.explanation == (
        f"manifest for {repo}:nope not found: manifest unknown: manifest unknown"
    )
    # Podman's words stay on the libpod tree.
    libpod = lines(fresh.request("POST", f"/v5.0.0/libpod/images/pull?reference={repo}:nope").body)
    assert "reading manifest nope" in libpod[-1]["error"]
    assert dock.images.list() == []


def test_run_of_a_missing_image_raises_image_not_found(
    hub_client: docker.DockerClient, hub: ServerProcess
) -> None:
    """``containers.run``: create finds no image, the pull finds no repository."""
    with pytest.raises(docker.errors.ImageNotFound):
        hub_client.containers.run("podapi_image_that_does_not_exist")
    assert hub_client.containers.list(all=True) == []


def test_pull_by_digest_given_as_the_tag(
    dock: docker.DockerClient, registry: Registry, busybox: BuiltImage, busybox_archive: Path
) -> None:
    """``fromImage=X&tag=sha256:...`` (docker-py's ``pull(repo, tag=digest)``): ``X@digest``."""
    name = seed(registry, busybox_archive, "podapi-errors/bydigest:1")
    repo = name.rsplit(":", 1)[0]
    digest = inspect(name)["Digest"]
    image = dock.images.pull(repo, tag=digest)
    assert image.id == busybox.id
    assert f"{repo}@{digest}" in image.attrs["RepoDigests"]
    assert image.tags == []  # a digest pull names no tag
    dock.images.remove(image.id)
    with pytest.raises(docker.errors.NotFound) as unknown:
        dock.images.pull(repo, tag="sha256:" + "0" * 64)
    assert unknown.value.explanation.startswith(f"manifest for {repo}@sha256:000")


def test_forced_rmi_of_one_name_among_several_only_untags(
    dock: docker.DockerClient, fresh: ServerProcess, busybox: BuiltImage, busybox_archive: Path
) -> None:
    """As Docker and Podman: ``rmi -f name`` of an image with other names removes that name."""
    dock.images.load(busybox_archive.read_bytes())
    dock.images.get("acc-busybox").tag("podapi-other", "1")
    dock.images.get("acc-busybox").tag("podapi-third", "2")
    reply = fresh.request("DELETE", "/v1.41/images/podapi-other:1?force=1")
    assert reply.status == 200
    assert reply.json() == [{"Untagged": "podapi-other:1"}]
    libpod = fresh.request("DELETE", "/v5.0.0/libpod/images/podapi-third:2?force=true")
    assert libpod.status == 200
    assert libpod.json()["Untagged"] == ["docker.io/library/podapi-third:2"]
    assert not libpod.json()["Deleted"]
    assert dock.images.get(busybox.id).tags == ["acc-busybox:latest"]
    # The last name with force: the image goes.
    dock.images.remove("acc-busybox", force=True)
    assert dock.images.list() == []


def test_load_of_a_bad_archive_is_image_load_error(
    dock: docker.DockerClient, fresh: ServerProcess
) -> None:
    """Docker answers 200 and puts the error in the stream; docker-py raises ImageLoadError."""
    with pytest.raises(docker.errors.ImageLoadError):
        dock.images.load(b"abc")
    reply = fresh.request("POST", "/v1.41/images/load", body=b"abc")
    assert reply.status == 200
    last = lines(reply.body)[-1]
    assert last["error"] == last["errorDetail"]["message"]
    libpod = fresh.request("POST", "/v5.0.0/libpod/images/load", body=b"abc")
    assert libpod.status == 400
    assert set(libpod.json()) == {"cause", "message", "response"}


def test_save_of_an_unknown_name_is_404(dock: docker.DockerClient, fresh: ServerProcess) -> None:
    """``GET /images/{name}/get`` of an unknown name: 404 before any byte, ImageNotFound."""
    reply = fresh.request("GET", "/v1.41/images/podapi-nope:1/get")
    assert reply.status == 404
    assert json.loads(reply.body)["message"] == "No such image: podapi-nope:1"
    with pytest.raises(docker.errors.ImageNotFound):
        b"".join(dock.api.get_image("podapi-nope:1"))
