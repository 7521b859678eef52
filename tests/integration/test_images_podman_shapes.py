"""Image calls as Podman answers them, through real clients: archives that ``file``
knows, several images in one save, the events of a removal, ``podman image tree``."""

import json
import shutil
import subprocess
import urllib.parse
from pathlib import Path

import docker
import pytest

from tests.fixtures.images import BuiltImage, layer_tar
from tests.integration.containers_support import docker as docker_cli
from tests.integration.containers_support import needs_cli, needs_podman, podman
from tests.support import ServerProcess

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("file") is None, reason="file(1) not installed"),
]


def load(server: ServerProcess, data: bytes) -> None:
    reply = server.request("POST", "/v1.41/images/load", body=data)
    assert reply.status == 200, reply.body


def second(busybox: BuiltImage) -> BuiltImage:
    """An image on top of busybox's layer."""
    return BuiltImage(layers=[busybox.layers[0], layer_tar({"etc/second": b"2\n"})])


def file_type(path: Path) -> str:
    result = subprocess.run(
        ["file", "--brief", str(path)], capture_output=True, text=True, timeout=30, check=True
    )
    return result.stdout.strip()


def curl(server: ServerProcess, path: str, out: Path) -> tuple[str, str]:
    """GET with curl into ``out``: ``(status, content type)``."""
    result = subprocess.run(
        [
            "curl",
            "-s",
            "--unix-socket",
            str(server.sock),
            "-o",
            str(out),
            "-w",
            "%{http_code} %{content_type}",
            f"http://d{path}",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    status, _, content_type = result.stdout.partition(" ")
    return status, content_type


@needs_cli
def test_docker_save_of_two_images_is_a_posix_tar_that_loads_back(
    fresh: ServerProcess, busybox: BuiltImage, busybox_archive: Path, tmp_path: Path
) -> None:
    """``docker save a b`` (``/images/get?names=a&names=b``): one archive that
    ``file`` calls a POSIX tar and ``docker load`` takes back, both images named."""
    load(fresh, busybox_archive.read_bytes())
    other = second(busybox)
    load(fresh, other.docker_archive(["second:1"]))
    saved = tmp_path / "two.tar"
    docker_cli(fresh, "save", "-o", str(saved), "acc-busybox:latest", "second:1")
    assert file_type(saved) == "POSIX tar archive"
    docker_cli(fresh, "rmi", "acc-busybox:latest", "second:1")
    assert docker_cli(fresh, "images", "-q").stdout.strip() == ""
    out = docker_cli(fresh, "load", "-i", str(saved)).stdout
    assert "Loaded image: acc-busybox:latest" in out
    assert "Loaded image: second:1" in out
    listing = "{{.Repository}}:{{.Tag}} {{.ID}}"
    listed = docker_cli(fresh, "images", "--no-trunc", "--format", listing)
    assert sorted(listed.stdout.split("\n")[:-1]) == [
        f"acc-busybox:latest {busybox.id}",
        f"second:1 {other.id}",
    ]


def test_libpod_saves_are_posix_tars_of_podmans_type(
    fresh: ServerProcess, busybox: BuiltImage, busybox_archive: Path, tmp_path: Path
) -> None:
    """curl of ``/libpod/images/{name}/get`` (oci-archive by default, ``compress``
    either way) and of ``/libpod/images/export``: POSIX tars typed
    ``application/octet; charset=us-ascii``; ``compress=bar`` is a 400."""
    load(fresh, busybox_archive.read_bytes())
    load(fresh, second(busybox).docker_archive(["second:1"]))
    out = tmp_path / "out"
    for query in (
        "images/acc-busybox/get",
        "images/acc-busybox/get?compress=true",
        "images/acc-busybox/get?compress=false&format=docker-archive",
        "images/export?references=acc-busybox&references=second:1&format=docker-archive",
    ):
        status, content_type = curl(fresh, f"/v4.0.0/libpod/{query}", out)
        assert (status, content_type) == ("200", "application/octet; charset=us-ascii"), query
        assert file_type(out) == "POSIX tar archive", query
    status, content_type = curl(fresh, "/v4.0.0/libpod/images/acc-busybox/get?compress=bar", out)
    assert (status, content_type) == ("400", "application/json")
    assert "invalid boolean" in json.loads(out.read_text())["message"]


def test_removal_events_on_docker_py_and_libpod_streams(
    dock: docker.DockerClient, fresh: ServerProcess, busybox_archive: Path, tmp_path: Path
) -> None:
    """Removing a name, then the image: docker-py's stream shows ``untag`` then
    ``delete`` each time; the libpod stream shows ``untag`` then ``remove``."""
    dock.images.load(busybox_archive.read_bytes())
    dock.images.get("acc-busybox").tag("evt", "1")
    stream = dock.events(decode=True, filters={"type": "image"})
    try:
        dock.images.remove("evt:1")
        dock.images.remove("acc-busybox")
        seen = [next(stream) for _ in range(4)]
    finally:
        stream.close()
    assert [(e["Action"], e["Actor"]["Attributes"]["name"]) for e in seen] == [
        ("untag", "evt:1"),
        ("delete", "evt:1"),
        ("untag", "acc-busybox:latest"),
        ("delete", "acc-busybox"),
    ]
    out = tmp_path / "events"
    filters = urllib.parse.quote('{"type":["image"],"event":["untag","remove"]}')
    status, _ = curl(fresh, f"/v4.0.0/libpod/events?stream=false&since=0&filters={filters}", out)
    assert status == "200"
    libpod = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(e["Action"], e["Actor"]["Attributes"]["name"]) for e in libpod] == [
        ("untag", "docker.io/library/evt:1"),
        ("remove", "evt:1"),
        ("untag", "docker.io/library/acc-busybox:latest"),
        ("remove", "acc-busybox"),
    ]


@needs_podman
def test_podman_remote_image_tree(
    fresh: ServerProcess, busybox: BuiltImage, busybox_archive: Path, tmp_path: Path
) -> None:
    """``podman --remote image tree [--whatrequires]`` prints the tree we send."""
    load(fresh, busybox_archive.read_bytes())
    other = second(busybox)
    load(fresh, other.docker_archive(["second:1"]))
    base = busybox.diff_ids[0].split(":")[1][:12]
    tree = podman(fresh, tmp_path, "image", "tree", "second:1").stdout.splitlines()
    assert tree[:4] == [
        f"Image ID: {other.id[7:19]}",
        "Tags:     [docker.io/library/second:1]",
        f"Size:     {tree[2].split()[1]}",
        "Image Layers",
    ]
    assert tree[4].startswith(f"├── ID: {base} Size: ")
    assert tree[4].endswith(" Top Layer of: [docker.io/library/acc-busybox:latest]")
    assert tree[5].startswith("└── ID: ")
    assert tree[5].endswith(" Top Layer of: [docker.io/library/second:1]")
    requires = podman(fresh, tmp_path, "image", "tree", "--whatrequires", "acc-busybox")
    lines = requires.stdout.rstrip("\n").splitlines()
    assert lines[0] == f"Image ID: {busybox.id[7:19]}"
    assert [line[:8] for line in lines[4:]] == ["├── ID: ", "└── ID: "]
    assert lines[5].endswith("[docker.io/library/second:1]")
    missing = podman(fresh, tmp_path, "image", "tree", "nonesuch", check=False)
    assert missing.returncode != 0


@needs_podman
def test_podman_remote_save_to_directories(
    fresh: ServerProcess, busybox_archive: Path, tmp_path: Path
) -> None:
    """``podman --remote save --format oci-dir|docker-dir`` get the archive of that
    family (Podman's ``ExportImages``) and unpack it into the directory."""
    load(fresh, busybox_archive.read_bytes())
    oci, docker_dir = tmp_path / "oci", tmp_path / "dockerdir"
    podman(fresh, tmp_path, "save", "--format", "oci-dir", "-o", str(oci), "acc-busybox")
    assert json.loads((oci / "index.json").read_text())["schemaVersion"] == 2
    assert (oci / "oci-layout").is_file()
    podman(fresh, tmp_path, "save", "--format", "docker-dir", "-o", str(docker_dir), "acc-busybox")
    manifest = json.loads((docker_dir / "manifest.json").read_text())
    assert manifest[0]["RepoTags"] == ["docker.io/library/acc-busybox:latest"]
