"""Images through real servers and real clients: load, save, tag, inspect, remove, import."""

import functools
import gzip
import http.server
import io
import json
import os
import signal
import socket
import subprocess
import tarfile
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from tests.fixtures.images import BuiltImage, busybox_layer, layer_tar, sha256
from tests.fixtures.registry import free_port
from tests.integration.containers_support import needs_cli, needs_podman, podman
from tests.support import ServerProcess, raw_post, wait_for

pytestmark = pytest.mark.integration

Start = Callable[..., ServerProcess]


def store_files(server: ServerProcess) -> set[str]:
    """Everything under the image store, to check nothing is left behind."""
    root = server.root / "storage"
    return {str(p.relative_to(root)) for p in root.rglob("*")} if root.exists() else set()


def load(server: ServerProcess, data: bytes, libpod: bool = False) -> tuple[int, bytes]:
    path = "/v5.0.0/libpod/images/load" if libpod else "/v1.44/images/load"
    reply = server.request("POST", path, body=data, headers={"Content-Type": "application/x-tar"})
    return reply.status, reply.body


def test_load_list_inspect_tag_save_remove_load_again(
    dock: docker.DockerClient, fresh: ServerProcess, busybox: BuiltImage, busybox_archive: Path
) -> None:
    """The round trip: the ID is the config's sha256 and survives save -> rmi -> load."""
    loaded = dock.images.load(busybox_archive.read_bytes())
    assert [image.id for image in loaded] == [busybox.id]
    listed = dock.images.list()
    assert [(i.id, i.tags) for i in listed] == [(busybox.id, ["acc-busybox:latest"])]
    image = dock.images.get("acc-busybox")
    assert image.attrs["RootFS"]["Layers"] == busybox.diff_ids
    assert image.attrs["Config"]["Cmd"] == ["sh"]
    assert image.attrs["Architecture"] == "amd64"
    assert image.tag("acc-busybox", "v2")
    assert sorted(dock.images.get(busybox.id).tags) == ["acc-busybox:latest", "acc-busybox:v2"]

    saved = b"".join(dock.api.get_image("acc-busybox:v2"))
    with tarfile.open(fileobj=io.BytesIO(saved)) as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
        assert manifest[0]["RepoTags"] == ["acc-busybox:v2"]
        layer = tar.extractfile(manifest[0]["Layers"][0]).read()  # type: ignore[union-attr]
        assert layer == busybox.layers[0]  # byte-identical layer
        assert tar.extractfile(manifest[0]["Config"]).read() == busybox.config  # type: ignore[union-attr]

    dock.images.remove("acc-busybox:v2")
    assert dock.images.get(busybox.id).tags == ["acc-busybox:latest"]
    dock.images.remove("acc-busybox:latest")
    assert dock.images.list() == []
    assert not any(p.startswith("layers/") for p in store_files(fresh))
    again = dock.images.load(saved)
    assert [i.id for i in again] == [busybox.id]
    assert dock.images.get(busybox.id).tags == ["acc-busybox:v2"]


def test_history_and_libpod_shapes(
    fresh: ServerProcess, busybox: BuiltImage, busybox_archive: Path
) -> None:
    status, body = load(fresh, busybox_archive.read_bytes(), libpod=True)
    assert status == 200
    assert json.loads(body) == {"Names": ["docker.io/library/acc-busybox:latest"]}
    summary = fresh.get_json("/v5.0.0/libpod/images/json")
    assert summary[0]["Id"] == busybox.id.split(":")[1]
    assert summary[0]["Names"] == ["docker.io/library/acc-busybox:latest"]
    assert summary[0]["Digest"].startswith("sha256:")
    inspect = fresh.get_json("/v5.0.0/libpod/images/acc-busybox/json")
    assert inspect["RootFS"]["Layers"] == busybox.diff_ids
    assert inspect["History"][0]["created_by"] == "test layer 0"
    compat = fresh.get_json("/v1.44/images/json")
    assert compat[0]["Id"] == busybox.id
    assert compat[0]["RepoTags"] == ["acc-busybox:latest"]
    history = fresh.get_json("/v1.44/images/acc-busybox/history")
    assert history[0]["Id"] == busybox.id
    assert history[0]["Tags"] == ["acc-busybox:latest"]
    assert history[0]["Size"] == len(busybox.layers[0])
    exists = fresh.request("GET", "/v5.0.0/libpod/images/acc-busybox/exists")
    assert exists.status == 204
    missing = fresh.request("GET", "/v5.0.0/libpod/images/nope/exists")
    assert missing.status == 404


def test_lookup_by_id_prefix_digest_and_short_name(
    fresh: ServerProcess, busybox: BuiltImage, busybox_archive: Path
) -> None:
    load(fresh, busybox_archive.read_bytes())
    short_id = busybox.id.split(":")[1][:12]
    for name in (
        short_id,
        busybox.id,
        "acc-busybox",
        "acc-busybox:latest",
        "docker.io/library/acc-busybox:latest",
        "library/acc-busybox",
    ):
        assert fresh.get_json(f"/v1.44/images/{name}/json")["Id"] == busybox.id, name
    digest = fresh.get_json("/v5.0.0/libpod/images/acc-busybox/json")["Digest"]
    by_digest = fresh.get_json(f"/v5.0.0/libpod/images/docker.io/library/acc-busybox@{digest}/json")
    assert by_digest["Id"] == busybox.id.split(":")[1]


def test_multi_image_save_and_oci_archive(
    fresh: ServerProcess, busybox: BuiltImage, busybox_archive: Path
) -> None:
    load(fresh, busybox_archive.read_bytes())
    other = BuiltImage(layers=[busybox.layers[0], layer_tar({"data/hello": b"hi\n"})])
    load(fresh, other.docker_archive(["second:1"]))
    reply = fresh.request("GET", "/v1.44/images/get?names=acc-busybox&names=second:1")
    assert reply.status == 200
    with tarfile.open(fileobj=io.BytesIO(reply.body)) as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
        names = tar.getnames()
    assert [m["RepoTags"] for m in manifest] == [["acc-busybox:latest"], ["second:1"]]
    assert len([n for n in names if n.endswith(".tar")]) == 2  # the shared layer once
    oci = fresh.request(
        "GET", "/v5.0.0/libpod/images/export?references=second:1&format=oci-archive"
    )
    assert oci.status == 200
    with tarfile.open(fileobj=io.BytesIO(oci.body)) as tar:
        index = json.loads(tar.extractfile("index.json").read())  # type: ignore[union-attr]
        assert "oci-layout" in tar.getnames()
    assert index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"] == (
        "docker.io/library/second:1"
    )
    # The OCI archive loads back as the same image.
    fresh.request("DELETE", "/v1.44/images/second:1")
    status, body = load(fresh, oci.body, libpod=True)
    assert status == 200, body
    assert fresh.get_json("/v1.44/images/second:1/json")["Id"] == other.id


def test_compressed_archive_loads(
    fresh: ServerProcess, busybox: BuiltImage, busybox_archive: Path
) -> None:
    status, body = load(fresh, gzip.compress(busybox_archive.read_bytes()))
    assert status == 200, body
    assert fresh.get_json("/v1.44/images/acc-busybox/json")["Id"] == busybox.id


def test_import_rootfs_with_changes(dock: docker.DockerClient, fresh: ServerProcess) -> None:
    rootfs = busybox_layer()
    reply = fresh.request(
        "POST",
        "/v1.44/images/create?fromSrc=-&repo=imported&tag=v1&message=hello"
        "&changes=CMD%20%5B%22echo%22%2C%22hi%22%5D&changes=ENV%20A%3Db",
        body=rootfs,
        headers={"Content-Type": "application/x-tar"},
    )
    assert reply.status == 200, reply.body
    image = dock.images.get("imported:v1")
    assert image.attrs["Config"]["Cmd"] == ["echo", "hi"]
    assert "A=b" in image.attrs["Config"]["Env"]
    assert image.attrs["Comment"] == "hello"
    assert image.attrs["RootFS"]["Layers"] == [sha256(rootfs)]
    libpod = fresh.request(
        "POST",
        "/v5.0.0/libpod/images/import?reference=podimp",
        body=rootfs,
        headers={"Content-Type": "application/x-tar"},
    )
    assert libpod.status == 200, libpod.body
    names = fresh.get_json("/v5.0.0/libpod/images/podimp/json")["RepoTags"]
    assert names == ["localhost/podimp:latest"]


@needs_cli
def test_docker_cli_load_save_tag_images_rmi_import(
    fresh: ServerProcess, busybox_archive: Path, tmp_path: Path
) -> None:
    env = {**os.environ, "DOCKER_HOST": fresh.uri}

    def docker_cli(*args: str, stdin: bytes | None = None) -> str:
        result = subprocess.run(
            ["docker", *args], input=stdin, capture_output=True, env=env, timeout=60, check=False
        )
        assert result.returncode == 0, (args, result.stderr)
        return result.stdout.decode()

    assert "Loaded image: acc-busybox:latest" in docker_cli("load", "-i", str(busybox_archive))
    docker_cli("tag", "acc-busybox", "cli-box:1")
    listing = docker_cli("images", "--format", "{{.Repository}}:{{.Tag}}")
    assert sorted(listing.split()) == ["acc-busybox:latest", "cli-box:1"]
    out = tmp_path / "out.tar"
    docker_cli("save", "-o", str(out), "cli-box:1")
    with tarfile.open(out) as saved:
        assert "manifest.json" in saved.getnames()
    assert "Untagged: cli-box:1" in docker_cli("rmi", "cli-box:1")
    imported = docker_cli("import", "-", "cli-imported:1", stdin=busybox_layer())
    assert imported.strip().startswith("sha256:")
    assert "cli-imported" in docker_cli("images")


@needs_podman
def test_podman_remote_load_save_images_rmi(
    fresh: ServerProcess, busybox_archive: Path, tmp_path: Path
) -> None:
    def podman(*args: str) -> str:
        result = subprocess.run(
            ["podman", "--remote", "--url", fresh.uri, *args],
            capture_output=True,
            env={**os.environ, "HOME": str(tmp_path)},
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, (args, result.stderr)
        return result.stdout.decode()

    assert "docker.io/library/acc-busybox:latest" in podman("load", "-i", str(busybox_archive))
    assert "docker.io/library/acc-busybox" in podman("images")
    podman("save", "-o", str(tmp_path / "p.tar"), "acc-busybox")
    podman("save", "--format", "oci-archive", "-o", str(tmp_path / "p.oci"), "acc-busybox")
    with tarfile.open(tmp_path / "p.oci") as oci:
        assert "index.json" in oci.getnames()
    podman("rmi", "acc-busybox")
    assert "acc-busybox" not in podman("images")
    assert "acc-busybox" in podman("load", "-i", str(tmp_path / "p.oci"))


def archive_with_manifest(manifest: list[dict[str, object]], members: dict[str, bytes]) -> bytes:
    """A docker-archive built by hand, for archives that lie about their members."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in {**members, "manifest.json": json.dumps(manifest).encode()}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_bad_archives_are_400_and_leave_nothing(
    fresh: ServerProcess, busybox: BuiltImage, busybox_archive: Path
) -> None:
    before = store_files(fresh)
    good = busybox_archive.read_bytes()
    config = {"c.json": busybox.config, "l.tar": busybox.layers[0]}
    for case in (
        b"this is not a tar",
        layer_tar({"hello.txt": b"a plain tar, not an image"}),
        good[: len(good) // 2],  # truncated upload
        BuiltImage(layers=[layer_tar({"../../escaped": b"x"})]).docker_archive(["evil:1"]),
        archive_with_manifest(  # the manifest points outside the archive
            [{"Config": "c.json", "RepoTags": ["evil:2"], "Layers": ["../../etc/passwd"]}], config
        ),
        archive_with_manifest(
            [{"Config": "/etc/hostname", "RepoTags": ["evil:3"], "Layers": ["l.tar"]}], config
        ),
        archive_with_manifest(
            [{"Config": "c.json", "RepoTags": ["Bad Name"], "Layers": ["l.tar"]}], config
        ),
    ):
        status, body = load(fresh, case, libpod=True)
        assert 400 <= status < 500, body
        assert set(json.loads(body)) == {"cause", "message", "response"}
        # Docker's load answers 200 and streams the error (docker-py's ImageLoadError).
        status, body = load(fresh, case)
        assert status == 200, body
        assert "errorDetail" in json.loads(body.splitlines()[-1]), body
    assert fresh.get_json("/v1.44/images/json") == []
    assert store_files(fresh) == before
    assert not (fresh.root.parent / "escaped").exists()
    assert not Path("/escaped").exists()


def test_absolute_member_names_stay_inside_the_layer(fresh: ServerProcess) -> None:
    """Like Docker, a layer entry named /abs/x is relativised, never written to /abs/x."""
    image = BuiltImage(layers=[layer_tar({"/podapi-abs-test/x": b"x"}, dirs=[])])
    status, body = load(fresh, image.docker_archive(["absolute:1"]))
    assert status == 200, body
    assert not Path("/podapi-abs-test").exists()
    layer = fresh.root / "storage" / "layers" / image.diff_ids[0].split(":")[1]
    assert (layer / "podapi-abs-test" / "x").read_bytes() == b"x"


def test_layer_that_does_not_match_its_config_is_refused(
    fresh: ServerProcess, busybox: BuiltImage
) -> None:
    """A layer whose content hashes to another diff ID than the config says: 400."""
    archive = busybox.docker_archive(["liar:1"])
    swapped = BuiltImage(layers=[layer_tar({"other": b"x"})])
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}  # type: ignore[union-attr]
    layer_name = next(n for n in members if n.endswith("layer.tar"))
    members[layer_name] = swapped.layers[0]
    rebuilt = io.BytesIO()
    with tarfile.open(fileobj=rebuilt, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    status, body = load(fresh, rebuilt.getvalue(), libpod=True)
    assert status == 400, body
    assert b"diff ID" in body


def test_unknown_image_and_bad_reference(fresh: ServerProcess) -> None:
    missing = fresh.request("GET", "/v1.44/images/nope:1/json")
    assert missing.status == 404
    assert missing.json()["response"] == 404
    bad = fresh.request("POST", "/v1.44/images/nope/tag?repo=UPPER&tag=x")
    assert bad.status in (400, 404)
    for path in ("/v1.44/images/Bad%20Name/json", "/v5.0.0/libpod/images/a::b/json"):
        reply = fresh.request("GET", path)
        assert reply.status in (400, 404), path
    delete = fresh.request("DELETE", "/v1.44/images/nope")
    assert delete.status == 404


def test_rmi_of_image_with_several_names_by_id_needs_force(
    fresh: ServerProcess, busybox: BuiltImage, busybox_archive: Path
) -> None:
    load(fresh, busybox_archive.read_bytes())
    fresh.request("POST", "/v1.44/images/acc-busybox/tag?repo=other&tag=1")
    conflict = fresh.request("DELETE", f"/v1.44/images/{busybox.id}")
    assert conflict.status == 409
    forced = fresh.request("DELETE", f"/v1.44/images/{busybox.id}?force=1")
    assert forced.status == 200
    assert {"Deleted": busybox.id} in forced.json()


def test_prune_dangling_only_by_default(
    fresh: ServerProcess, busybox: BuiltImage, busybox_archive: Path
) -> None:
    load(fresh, busybox_archive.read_bytes())
    dangling = BuiltImage(layers=[layer_tar({"x": b"dangling"})])
    load(fresh, dangling.docker_archive([]))
    pruned = fresh.request("POST", "/v1.44/images/prune").json()
    assert pruned["ImagesDeleted"] == [{"Deleted": dangling.id}]
    assert pruned["SpaceReclaimed"] > 0
    remaining = [i["Id"] for i in fresh.get_json("/v1.44/images/json")]
    assert remaining == [busybox.id]
    everything = fresh.request("POST", '/v1.44/images/prune?filters={"dangling":["false"]}')
    assert everything.json()["ImagesDeleted"]
    assert fresh.get_json("/v1.44/images/json") == []


def test_concurrent_loads_of_the_same_layer(
    fresh: ServerProcess, busybox: BuiltImage, busybox_archive: Path
) -> None:
    """Two loads of images sharing a layer at once: both succeed, one layer is stored."""
    other = BuiltImage(layers=[busybox.layers[0]], cmd=["true"])
    archives = [busybox_archive.read_bytes(), other.docker_archive(["other:1"])]
    results: list[tuple[int, bytes]] = []
    threads = [
        threading.Thread(target=lambda a=a: results.append(load(fresh, a))) for a in archives
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert [status for status, _ in results] == [200, 200]
    assert {i["Id"] for i in fresh.get_json("/v1.44/images/json")} == {busybox.id, other.id}
    layers = [p for p in store_files(fresh) if p.startswith("layers/") and p.count("/") == 1]
    assert layers == ["layers/" + busybox.diff_ids[0].split(":")[1]]


def test_kill_during_load_leaves_no_half_image(start_server: Start, busybox: BuiltImage) -> None:
    """kill -9 while a big load is being ingested: the next server shows no image, no leftovers."""
    server = start_server(timeout="0")
    big = BuiltImage(layers=[busybox.layers[0], layer_tar({"big": os.urandom(64 << 20)})])
    # The archive's end withheld: the load streams in as it arrives (one pass), and a
    # whole body could be ingested before the staging below was ever seen.
    sock = raw_post(server.sock, "/v1.44/images/load", big.docker_archive(["big:1"]), withhold=1024)
    try:
        staging = server.root / "storage" / "layers-staging"
        wait_for(lambda: any(staging.glob("layer-*")), timeout=30)  # ingesting now
        assert server.proc is not None
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait(timeout=15)
    finally:
        sock.close()
    again = ServerProcess(server.base, timeout="0").start()
    try:
        assert again.get_json("/v1.44/images/json") == []
        leftovers = [
            p
            for p in store_files(again)
            if p.startswith(("layers/", "layers-staging/", "blobs/staging/"))
        ]
        assert leftovers == []
        blobs = {p for p in store_files(again) if p.startswith("blobs/sha256/")}
        assert blobs == set()
    finally:
        again.stop()


def test_a_load_is_read_as_it_uploads_and_an_abandoned_one_leaves_nothing(
    fresh: ServerProcess, busybox: BuiltImage
) -> None:
    """The body is not spooled first: layers are being extracted while the client is
    still sending.  A client that goes away halfway leaves no image and no staging."""
    big = BuiltImage(layers=[busybox.layers[0], layer_tar({"big": os.urandom(32 << 20)})])
    archive = big.docker_archive(["half:1"])
    storage = fresh.root / "storage"
    head = (
        f"POST /v1.44/images/load HTTP/1.1\r\nHost: d\r\nContent-Length: {len(archive)}\r\n"
        "Content-Type: application/x-tar\r\n\r\n"
    ).encode()
    half = len(archive) // 2

    def staged() -> list[Path]:
        layers = (storage / "layers-staging").glob("layer-*")
        return [*layers, *(storage / "blobs/staging").iterdir()]

    for finish in (False, True):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(60)
            sock.connect(str(fresh.sock))
            sock.sendall(head + archive[:half])
            wait_for(lambda: bool(staged()), timeout=30)  # half the body sent, already at work
            assert list((fresh.root / "tmp").iterdir()) == []  # nothing spooled
            if finish:
                sock.sendall(archive[half:])
                reply = b""
                while b"Loaded image" not in reply and (data := sock.recv(65536)):
                    reply += data
                assert b"Loaded image: half:1" in reply, reply
        if not finish:
            wait_for(lambda: not staged(), timeout=30)
            assert fresh.get_json("/v1.44/images/json") == []
    assert [i["Id"] for i in fresh.get_json("/v1.44/images/json")] == [big.id]
    assert not staged()


def test_image_events_in_both_dialects(
    fresh: ServerProcess, busybox: BuiltImage, busybox_archive: Path
) -> None:
    load(fresh, busybox_archive.read_bytes())
    fresh.request("POST", "/v1.44/images/acc-busybox/tag?repo=evt&tag=1")
    fresh.request("DELETE", "/v1.44/images/evt:1")
    fresh.request("GET", "/v1.44/images/acc-busybox/get")
    fresh.request("DELETE", "/v1.44/images/acc-busybox")
    compat = [
        json.loads(line)
        for line in fresh.request(
            "GET", '/v1.44/events?since=0&stream=false&filters={"type":["image"]}'
        ).body.splitlines()
    ]
    # A removal that only untags still ends with ``delete`` (libimage's ``remove``).
    assert [e["Action"] for e in compat] == [
        "load",
        "tag",
        "untag",
        "delete",
        "save",
        "untag",
        "delete",
    ]
    assert compat[0]["Actor"]["ID"] == busybox.id.split(":")[1]
    assert compat[1]["Actor"]["Attributes"]["name"] == "evt:1"
    libpod = [
        json.loads(line)
        for line in fresh.request(
            "GET", "/v5.0.0/libpod/events?since=0&stream=false"
        ).body.splitlines()
    ]
    assert libpod[-1]["Action"] == "remove"
    assert libpod[1]["Actor"]["Attributes"]["name"] == "docker.io/library/evt:1"


@pytest.fixture
def file_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A loopback HTTP server (stdlib, in a thread) serving a directory: ``(base URL, dir)``.

    Bound before its thread starts, so it is ready at once.
    """
    root = tmp_path / "www"
    root.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(root))
    )
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", root
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=15)


def libpod_import(server: ServerProcess, **params: str) -> Any:
    """``POST /libpod/images/import`` with these query parameters and an empty body."""
    query = urllib.parse.urlencode(params)
    return server.request("POST", f"/v5.0.0/libpod/images/import?{query}", body=b"")


def test_libpod_import_from_a_url_with_os_arch_variant(
    fresh: ServerProcess, file_server: tuple[str, Path]
) -> None:
    """``URL`` is downloaded (plain or gzip tarball); ``OS``/``Architecture``/``Variant`` land
    in the config; the spool file is gone afterwards."""
    base, www = file_server
    rootfs = busybox_layer()
    (www / "rootfs.tar").write_bytes(rootfs)
    (www / "rootfs.tar.gz").write_bytes(gzip.compress(rootfs))
    # Podman's documented spelling, then what `podman --remote` sends (lowercased).
    plain = libpod_import(
        fresh,
        URL=f"{base}/rootfs.tar",
        reference="fromurl:1",
        OS="linux",
        Architecture="arm64",
        Variant="v8",
        message="from the web",
    )
    assert plain.status == 200, plain.body
    zipped = libpod_import(
        fresh, url=f"{base}/rootfs.tar.gz", reference="fromurl:gz", architecture="s390x"
    )
    assert zipped.status == 200, zipped.body

    image = fresh.get_json("/v5.0.0/libpod/images/fromurl:1/json")
    assert image["Id"] == plain.json()["Id"]
    assert image["RepoTags"] == ["localhost/fromurl:1"]
    assert (image["Os"], image["Architecture"]) == ("linux", "arm64")
    assert image["Comment"] == "from the web"
    assert image["RootFS"]["Layers"] == [sha256(rootfs)]
    assert fresh.get_json("/v1.44/images/localhost/fromurl:1/json")["Variant"] == "v8"
    other = fresh.get_json("/v1.44/images/localhost/fromurl:gz/json")
    assert (other["Os"], other["Architecture"]) == ("linux", "s390x")
    assert "Variant" not in other
    assert other["RootFS"]["Layers"] == [sha256(rootfs)]
    assert list((fresh.root / "tmp").iterdir()) == []


def test_libpod_import_from_a_bad_url_is_a_json_error(
    fresh: ServerProcess, file_server: tuple[str, Path]
) -> None:
    """Unreachable host or missing file: 500 (as Podman); not http(s) or not a tarball: 400."""
    base, www = file_server
    (www / "notes.txt").write_text("not a tarball\n" * 100)
    cases = [
        (f"http://127.0.0.1:{free_port()}/rootfs.tar", 500, "connection refused"),
        (f"{base}/missing.tar", 500, "404"),
        ("ftp://127.0.0.1/rootfs.tar", 400, "unsupported protocol scheme"),
        ("/etc/passwd", 400, "invalid URL"),
        (f"{base}/notes.txt", 400, "tar"),
    ]
    for url, status, words in cases:
        reply = libpod_import(fresh, URL=url, reference="bad")
        assert reply.status == status, (url, reply.body)
        body = reply.json()
        assert set(body) == {"cause", "message", "response"}, body
        assert body["response"] == status
        assert words in body["message"], (url, body)
    assert fresh.get_json("/v5.0.0/libpod/images/json") == []
    assert "Traceback" not in fresh.output()
    assert list((fresh.root / "tmp").iterdir()) == []


@needs_podman
def test_podman_remote_import_sets_os_arch_variant(fresh: ServerProcess, tmp_path: Path) -> None:
    """``podman --remote import --os --arch --variant`` (podman 4.3.1's client cannot send
    ``URL`` itself: it refuses a URL together with its nil file, so that is tested over HTTP)."""
    tarball = tmp_path / "rootfs.tar"
    tarball.write_bytes(busybox_layer())
    out = podman(
        fresh,
        tmp_path,
        "import",
        "--os",
        "linux",
        "--arch",
        "arm",
        "--variant",
        "v7",
        str(tarball),
        "armbox:1",
    ).stdout
    image_id = out.strip().removeprefix("sha256:")
    shown = podman(
        fresh, tmp_path, "image", "inspect", "--format", "{{.Os}}/{{.Architecture}}", "armbox:1"
    ).stdout
    assert shown.strip() == "linux/arm"
    inspect = fresh.get_json("/v1.44/images/localhost/armbox:1/json")
    assert inspect["Id"] == "sha256:" + image_id
    assert inspect["Variant"] == "v7"


def commit_child(server: ServerProcess, home: Path, base: str, name: str) -> str:
    """A child image of ``base`` (commit of a container made from it); its ID."""
    podman(server, home, "create", "--name", "to-commit", base, "true")
    try:
        return podman(server, home, "commit", "to-commit", name).stdout.strip()
    finally:
        podman(server, home, "rm", "to-commit")


def image_ids(server: ServerProcess) -> set[str]:
    return {i["Id"] for i in server.get_json("/v5.0.0/libpod/images/json?all=true")}


@needs_podman
def test_noprune_keeps_the_parent_the_removal_leaves_dangling(
    fresh: ServerProcess, busybox: BuiltImage, busybox_archive: Path, tmp_path: Path
) -> None:
    """``podman rmi --no-prune`` and ``DELETE /libpod/images/{name}?noprune=true`` keep the
    untagged parent; a plain ``podman rmi`` removes it with its last child."""
    load(fresh, busybox_archive.read_bytes())
    parent = busybox.id.split(":")[1]
    first = commit_child(fresh, tmp_path, "acc-busybox", "child:a")
    podman(fresh, tmp_path, "untag", "acc-busybox")  # the parent is now dangling
    assert image_ids(fresh) == {parent, first}

    out = podman(fresh, tmp_path, "rmi", "--no-prune", "child:a").stdout
    assert f"Deleted: {first}" in out
    assert parent not in out
    assert image_ids(fresh) == {parent}

    second = commit_child(fresh, tmp_path, parent, "child:b")
    reply = fresh.request("DELETE", "/v5.0.0/libpod/images/child:b?noprune=true")
    assert reply.status == 200, reply.body
    assert reply.json()["Deleted"] == [second]
    assert image_ids(fresh) == {parent}

    third = commit_child(fresh, tmp_path, parent, "child:c")
    out = podman(fresh, tmp_path, "rmi", "child:c").stdout
    assert f"Deleted: {third}" in out
    assert f"Deleted: {parent}" in out
    assert image_ids(fresh) == set()


def test_compat_import_from_a_url(
    dock: docker.DockerClient, fresh: ServerProcess, file_server: tuple[str, Path]
) -> None:
    """``fromSrc=<URL>`` (``docker import URL``); Docker reads ``host:port/path`` as http."""
    base, www = file_server
    rootfs = busybox_layer()
    (www / "rootfs.tar").write_bytes(rootfs)
    dock.api.import_image_from_url(f"{base}/rootfs.tar", repository="webimport", tag="1")
    bare = base.removeprefix("http://")
    dock.api.import_image_from_url(f"{bare}/rootfs.tar", repository="webimport", tag="2")
    first, second = (dock.images.get(f"webimport:{tag}") for tag in ("1", "2"))
    assert first.attrs["RootFS"]["Layers"] == second.attrs["RootFS"]["Layers"] == [sha256(rootfs)]
    with pytest.raises(docker.errors.APIError) as refused:
        dock.api.import_image_from_url(f"{base}/missing.tar", repository="webimport", tag="3")
    assert "404" in str(refused.value)
