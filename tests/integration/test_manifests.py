"""Manifest lists through ``podman --remote manifest`` and pulls of multi-arch images
(docker-py), against the loopback registry with two platform images."""

import json
import subprocess
import urllib.request
from pathlib import Path

import docker
import pytest
from podman import PodmanClient

from podapi.oci.host import go_arch
from tests.fixtures.images import BuiltImage
from tests.fixtures.registry import Registry
from tests.integration.containers_support import needs_podman, podman
from tests.support import ServerProcess

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(go_arch() != "amd64", reason="the busybox fixture image is amd64"),
]

DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


def skopeo(*args: str) -> str:
    result = subprocess.run(
        ["skopeo", *args], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, (args, result.stderr)
    return result.stdout


def seed(registry: Registry, image: BuiltImage, tmp_path: Path, repo: str) -> str:
    """Put ``image`` in the registry with skopeo (independent of our push)."""
    archive = tmp_path / (repo.replace("/", "_").replace(":", "_") + ".tar")
    archive.write_bytes(image.docker_archive())
    name = f"{registry.host}/{repo}"
    skopeo("copy", "--dest-tls-verify=false", f"docker-archive:{archive}", f"docker://{name}")
    return name


def registry_manifest(registry: Registry, repo: str, ref: str) -> tuple[str, dict]:
    """The registry's manifest (or index) under ``ref``: its content type and JSON."""
    request = urllib.request.Request(
        f"http://{registry.host}/v2/{repo}/manifests/{ref}",
        headers={"Accept": f"{OCI_INDEX}, {DOCKER_LIST}"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.headers["Content-Type"], json.loads(response.read())


@pytest.fixture
def arm64(busybox: BuiltImage) -> BuiltImage:
    """A second platform's image: busybox's layer, an arm64 config."""
    return BuiltImage(layers=busybox.layers, cmd=["true"], architecture="arm64", variant="v8")


@needs_podman
def test_podman_manifest_create_add_inspect_push_rm(
    fresh: ServerProcess,
    registry: Registry,
    busybox: BuiltImage,
    busybox_archive: Path,
    arm64: BuiltImage,
    tmp_path: Path,
) -> None:
    """A list of a local amd64 image and a registry arm64 one, pushed: the registry
    holds the index, and pulling it gives the host's image or, asked, the other."""
    assert (
        fresh.request("POST", "/v1.44/images/load", body=busybox_archive.read_bytes()).status == 200
    )
    arm_name = seed(registry, arm64, tmp_path, "manifests/img-arm64:1")
    arm_digest = json.loads(skopeo("inspect", "--tls-verify=false", f"docker://{arm_name}"))[
        "Digest"
    ]

    created = podman(fresh, tmp_path, "manifest", "create", "mylist").stdout.strip()
    assert len(created) == 64
    assert podman(fresh, tmp_path, "manifest", "exists", "mylist").returncode == 0
    podman(fresh, tmp_path, "manifest", "add", "mylist", "containers-storage:acc-busybox:latest")
    added = podman(
        fresh, tmp_path, "manifest", "add", "--tls-verify=false", "mylist", f"docker://{arm_name}"
    )
    assert added.stdout.strip() == created
    listed = json.loads(podman(fresh, tmp_path, "manifest", "inspect", "mylist").stdout)
    assert listed["mediaType"] == DOCKER_LIST
    assert [
        (m["platform"]["os"], m["platform"]["architecture"], m["platform"].get("variant"))
        for m in listed["manifests"]
    ] == [("linux", "amd64", None), ("linux", "arm64", "v8")]
    assert listed["manifests"][1]["digest"] == arm_digest

    # Annotate through the PUT route (podman 4.3.1's ``manifest annotate`` parses no
    # flags: "accepts 2 arg(s), received 4"); then push the list and its images.
    body = {"operation": "annotate", "images": [arm_digest], "os_version": "1.0"}
    body["annotation"] = ["org.example.note=arm"]
    reply = fresh.request("PUT", "/v4.3.1/libpod/manifests/mylist", body=json.dumps(body).encode())
    assert reply.status == 200, reply.body
    assert reply.json() == {"Id": created, "images": [arm_digest]}
    listed = json.loads(podman(fresh, tmp_path, "manifest", "inspect", "mylist").stdout)
    assert listed["manifests"][1]["platform"]["os.version"] == "1.0"
    pushed = podman(
        fresh,
        tmp_path,
        "manifest",
        "push",
        "--tls-verify=false",
        "mylist",
        f"docker://{registry.host}/multi:1",
    )
    assert "Writing manifest list to image destination" in pushed.stderr + pushed.stdout
    media_type, index = registry_manifest(registry, "multi", "1")
    assert media_type == DOCKER_LIST
    assert [m["platform"]["architecture"] for m in index["manifests"]] == ["amd64", "arm64"]
    for entry in index["manifests"]:  # every instance is in the destination repository
        assert registry_manifest(registry, "multi", entry["digest"])[1]["config"]
    # The same list as an OCI index (instances converted), read back through our
    # registry client by ``manifest inspect`` of the remote name.
    podman(
        fresh,
        tmp_path,
        "manifest",
        "push",
        "--tls-verify=false",
        "--format",
        "oci",
        "mylist",
        f"docker://{registry.host}/multi:oci",
    )
    media_type, oci = registry_manifest(registry, "multi", "oci")
    assert media_type == OCI_INDEX
    assert {m["mediaType"] for m in oci["manifests"]} == {
        "application/vnd.oci.image.manifest.v1+json"
    }
    for tag in ("1", "oci"):
        remote = json.loads(
            podman(fresh, tmp_path, "manifest", "inspect", f"{registry.host}/multi:{tag}").stdout
        )
        assert [m["platform"]["architecture"] for m in remote["manifests"]] == ["amd64", "arm64"]
    events = podman(
        fresh,
        tmp_path,
        "events",
        "--stream=false",
        "--filter",
        "type=image",
        "--format",
        "{{.Status}} {{.ID}}",
    ).stdout.splitlines()
    assert f"push {created}" in events

    client = docker.DockerClient(base_url=fresh.uri, version="auto")
    try:
        host = client.images.pull(f"{registry.host}/multi", tag="1")
        assert host.id == busybox.id
        assert host.attrs["Architecture"] == "amd64"
        other = client.images.pull(f"{registry.host}/multi", tag="1", platform="linux/arm64")
        assert other.id == arm64.id
        assert other.attrs["Architecture"] == "arm64"
    finally:
        client.close()

    removed = podman(fresh, tmp_path, "manifest", "rm", "mylist")
    assert created in removed.stdout
    assert podman(fresh, tmp_path, "manifest", "exists", "mylist", check=False).returncode == 1
    # The images the list named stay.
    assert podman(fresh, tmp_path, "image", "exists", "acc-busybox").returncode == 0


@needs_podman
def test_manifest_bad_input(
    fresh: ServerProcess, registry: Registry, busybox_archive: Path, tmp_path: Path
) -> None:
    """Unknown list 404, missing image 404, bad operation 400, taken name 409."""
    assert (
        fresh.request("POST", "/v1.44/images/load", body=busybox_archive.read_bytes()).status == 200
    )
    unknown = podman(fresh, tmp_path, "manifest", "inspect", "nolist", check=False)
    assert unknown.returncode != 0
    assert fresh.request("GET", "/v4.3.1/libpod/manifests/nolist/exists").status == 404
    assert fresh.request("GET", "/v4.3.1/libpod/manifests/nolist/json").status == 404
    assert fresh.request("DELETE", "/v4.3.1/libpod/manifests/nolist").status == 404
    reply = fresh.request("POST", "/v4.3.1/libpod/manifests/badlist")
    assert reply.status == 201
    list_id = json.loads(reply.body)["Id"]
    assert fresh.request("POST", "/v4.3.1/libpod/manifests/badlist").status == 409
    assert (
        fresh.request("POST", "/v4.3.1/libpod/manifests/docker.io/library/acc-busybox").status
        == 409
    )
    amended = fresh.request("POST", "/v4.3.1/libpod/manifests/badlist?amend=true")
    assert json.loads(amended.body)["Id"] == list_id
    missing = podman(
        fresh, tmp_path, "manifest", "add", "badlist", "containers-storage:nosuchimage", check=False
    )
    assert missing.returncode != 0
    body = json.dumps({"operation": "update", "images": ["containers-storage:nosuchimage"]})
    reply = fresh.request("PUT", "/v4.3.1/libpod/manifests/badlist", body=body.encode())
    assert reply.status == 404
    assert set(json.loads(reply.body)) == {"cause", "message", "response"}
    body = json.dumps({"operation": "bogus", "images": []})
    reply = fresh.request("PUT", "/v4.3.1/libpod/manifests/badlist", body=body.encode())
    assert reply.status == 400
    assert "illegal operation" in json.loads(reply.body)["message"]
    body = json.dumps({"operation": "remove", "images": ["sha256:" + "0" * 64]})
    reply = fresh.request("PUT", "/v4.3.1/libpod/manifests/badlist", body=body.encode())
    assert reply.status == 404
    body = json.dumps({"operation": "remove", "images": ["notadigest"]})
    reply = fresh.request("PUT", "/v4.3.1/libpod/manifests/badlist", body=body.encode())
    assert reply.status == 400
    reply = fresh.request("PUT", "/v4.3.1/libpod/manifests/badlist", body=b"{not json")
    assert reply.status == 400
    reply = fresh.request("POST", f"/v4.3.1/libpod/manifests/badlist/registry/oci:{tmp_path}/out")
    assert reply.status == 400
    # Without its instances (all=false) the registry refuses the index: 400, as Podman.
    body = json.dumps({"operation": "update", "images": ["containers-storage:acc-busybox"]})
    reply = fresh.request("PUT", "/v4.3.1/libpod/manifests/badlist", body=body.encode())
    assert reply.status == 200, reply.body
    reply = fresh.request(
        "POST",
        f"/v4.3.1/libpod/manifests/badlist/registry/{registry.host}%2Fbad:1?all=false&tlsVerify=false",
    )
    assert reply.status == 400, reply.body
    assert "pushing image" in reply.json()["message"]
    assert fresh.request("DELETE", "/v4.3.1/libpod/manifests/badlist").status == 200


def test_podman_py_manifests(
    fresh: ServerProcess,
    registry: Registry,
    busybox: BuiltImage,
    busybox_archive: Path,
    arm64: BuiltImage,
    tmp_path: Path,
) -> None:
    """podman-py: create with a local image, add a registry one with an annotation,
    push and remove; libpod pulls choose by ``platform`` (``OS``/``Arch``)."""
    assert (
        fresh.request("POST", "/v1.44/images/load", body=busybox_archive.read_bytes()).status == 200
    )
    arm_name = seed(registry, arm64, tmp_path, "manifests/py-arm64:1")
    with PodmanClient(base_url=f"http+unix://{fresh.sock}") as client:
        local = client.images.get("acc-busybox")
        manifest = client.manifests.create("pylist", images=[local])
        assert [m["platform"]["architecture"] for m in manifest.attrs["manifests"]] == ["amd64"]
        manifest.add([f"docker://{arm_name}"], annotation={"org.example.k": "v"})
        assert [m["platform"]["architecture"] for m in manifest.attrs["manifests"]] == [
            "amd64",
            "arm64",
        ]
        assert manifest.attrs["manifests"][1]["annotations"] == {"org.example.k": "v"}
        assert client.manifests.exists("pylist")
        manifest.push(f"{registry.host}/pymulti:1", all=True)
        media_type, index = registry_manifest(registry, "pymulti", "1")
        assert media_type == DOCKER_LIST and len(index["manifests"]) == 2
        pulled = client.images.pull(
            f"{registry.host}/pymulti", tag="1", platform="linux/arm64", tls_verify=False
        )
        assert pulled.id == arm64.id.split(":")[1]
        pulled = client.images.pull(f"{registry.host}/pymulti", tag="1", tls_verify=False)
        assert pulled.id == busybox.id.split(":")[1]
        report = client.manifests.remove("pylist")
        assert report["Untagged"] == ["localhost/pylist:latest"]
        assert [len(i) for i in report["Deleted"]] == [64]
        assert not client.manifests.exists("pylist")
