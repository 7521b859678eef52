"""Pull, push, search and auth against a real registry, through real clients."""

import base64
import json
import os
import re
import subprocess
import threading
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import docker
import pytest
from podman import PodmanClient

from tests.fixtures.images import BuiltImage
from tests.fixtures.registry import Registry, free_port
from tests.integration.containers_support import needs_cli, needs_podman, podman
from tests.support import ServerProcess

pytestmark = pytest.mark.integration

Start = Callable[..., ServerProcess]


def skopeo(*args: str) -> str:
    result = subprocess.run(
        ["skopeo", *args], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, (args, result.stderr)
    return result.stdout


def seed(registry: Registry, archive: Path, repo: str) -> str:
    """Put an image in the registry with skopeo (independent of our push); return its name."""
    name = f"{registry.host}/{repo}"
    skopeo("copy", "--dest-tls-verify=false", f"docker-archive:{archive}", f"docker://{name}")
    return name


def inspect(name: str, raw: bool = False, creds: str | None = None) -> dict:
    extra = ["--creds", creds] if creds else []
    out = skopeo(
        "inspect", *(["--raw"] if raw else []), "--tls-verify=false", *extra, f"docker://{name}"
    )
    return json.loads(out)


def lines(body: bytes) -> list[dict]:
    return [json.loads(line) for line in body.splitlines() if line.strip()]


def test_compat_pull_progress_and_digest(
    fresh: ServerProcess, registry: Registry, busybox: BuiltImage, busybox_archive: Path
) -> None:
    name = seed(registry, busybox_archive, "pull/compat:1")
    remote = inspect(name)
    reply = fresh.request("POST", f"/v1.44/images/create?fromImage={name.rsplit(':', 1)[0]}&tag=1")
    assert reply.status == 200
    messages = lines(reply.body)
    statuses = [m.get("status") for m in messages]
    assert statuses[0] == "Pulling from pull/compat"
    assert "Pull complete" in statuses
    downloading = [m for m in messages if m.get("status") == "Downloading"]
    assert downloading and downloading[-1]["progressDetail"]["total"] > 0
    assert f"Digest: {remote['Digest']}" in statuses
    assert statuses[-1] == f"Status: Downloaded newer image for {name}"
    image = fresh.get_json(f"/v1.44/images/{name}/json")
    assert image["Id"] == busybox.id
    assert image["RootFS"]["Layers"] == busybox.diff_ids
    assert image["RepoDigests"] == [f"{name.rsplit(':', 1)[0]}@{remote['Digest']}"]
    again = lines(fresh.request("POST", f"/v1.44/images/create?fromImage={name}").body)
    assert again[-1]["status"] == f"Status: Image is up to date for {name}"
    assert any(m.get("status") == "Already exists" for m in again)


def test_libpod_pull_stream_and_report(
    fresh: ServerProcess, registry: Registry, busybox: BuiltImage, busybox_archive: Path
) -> None:
    name = seed(registry, busybox_archive, "pull/libpod:1")
    reply = fresh.request("POST", f"/v5.0.0/libpod/images/pull?reference={name}")
    assert reply.status == 200
    messages = lines(reply.body)
    assert messages[0] == {"stream": f"Trying to pull {name}...\n"}
    assert any(m.get("stream", "").startswith("Copying blob") for m in messages)
    assert messages[-1] == {"images": [busybox.id.split(":")[1]], "id": busybox.id.split(":")[1]}
    quiet = fresh.request("POST", f"/v5.0.0/libpod/images/pull?reference={name}&quiet=true")
    assert lines(quiet.body) == [messages[-1]]


def test_push_then_remove_then_pull_back(
    dock: docker.DockerClient,
    fresh: ServerProcess,
    registry: Registry,
    busybox: BuiltImage,
    busybox_archive: Path,
) -> None:
    """docker-py load -> tag -> push; skopeo agrees; rmi; pull back (both dialects)."""
    dock.images.load(busybox_archive.read_bytes())
    repo = f"{registry.host}/roundtrip/busybox"
    dock.images.get("acc-busybox").tag(repo, "v1")
    progress = list(dock.images.push(repo, tag="v1", stream=True, decode=True))
    assert any(p.get("status") == "Pushed" for p in progress)
    aux = next(p["aux"] for p in progress if "aux" in p)
    remote = inspect(f"{repo}:v1")
    assert remote["Digest"] == aux["Digest"]
    raw = inspect(f"{repo}:v1", raw=True)
    assert raw["config"]["digest"] == busybox.id
    assert len(raw["layers"]) == 1
    assert raw["layers"][0]["mediaType"].endswith("gzip")
    assert dock.images.get(f"{repo}:v1").attrs["RepoDigests"] == [f"{repo}@{aux['Digest']}"]

    dock.images.remove(f"{repo}:v1")
    dock.images.remove("acc-busybox")
    assert dock.images.list() == []
    pulled = dock.images.pull(repo, tag="v1")
    assert pulled.id == busybox.id
    assert pulled.attrs["RootFS"]["Layers"] == busybox.diff_ids
    dock.images.remove(f"{repo}:v1")
    report = lines(fresh.request("POST", f"/v5.0.0/libpod/images/pull?reference={repo}:v1").body)
    assert report[-1]["id"] == busybox.id.split(":")[1]


def test_pull_save_load_push_keeps_layer_digests(
    fresh: ServerProcess, registry: Registry, busybox: BuiltImage, busybox_archive: Path
) -> None:
    name = seed(registry, busybox_archive, "keep/digests:1")
    original = inspect(name, raw=True)
    fresh.request("POST", f"/v5.0.0/libpod/images/pull?reference={name}")
    saved = fresh.request("GET", f"/v1.44/images/{name}/get").body
    assert fresh.request("DELETE", f"/v1.44/images/{name}").status == 200
    assert fresh.request("POST", "/v1.44/images/load", body=saved).status == 200
    target = f"{registry.host}/keep/again"
    fresh.request("POST", f"/v1.44/images/{name}/tag?repo={target}&tag=2")
    push = lines(fresh.request("POST", f"/v1.44/images/{target}/push?tag=2").body)
    assert not any("errorDetail" in m for m in push), push
    pushed = inspect(f"{target}:2", raw=True)
    assert [layer["digest"] for layer in pushed["layers"]] == [
        layer["digest"] for layer in original["layers"]
    ]
    assert pushed["config"]["digest"] == original["config"]["digest"] == busybox.id
    assert inspect(f"{target}:2")["Layers"] == inspect(name)["Layers"]


def test_push_of_a_loaded_image_compresses_stably(
    fresh: ServerProcess, registry: Registry, busybox: BuiltImage, busybox_archive: Path
) -> None:
    """An image that only exists uncompressed gets a gzip layer; pushing twice gives one digest."""
    unique = BuiltImage(layers=busybox.layers, cmd=["echo", "stable"])
    fresh.request("POST", "/v1.44/images/load", body=unique.docker_archive(["stable:1"]))
    digests = []
    for tag in ("a", "b"):
        target = f"{registry.host}/stable/{tag}"
        fresh.request("POST", f"/v1.44/images/stable:1/tag?repo={target}&tag=1")
        push = lines(fresh.request("POST", f"/v1.44/images/{target}/push?tag=1").body)
        digests.append(next(m["aux"]["Digest"] for m in push if "aux" in m))
    assert digests[0] == digests[1]
    assert (
        inspect(f"{registry.host}/stable/a:1")["Layers"]
        == inspect(f"{registry.host}/stable/b:1")["Layers"]
    )


def test_basic_auth_login_push_pull(
    start_server: Start, tmp_path: Path, busybox_archive: Path, busybox: BuiltImage
) -> None:
    private = Registry(tmp_path / "private", users={"alice": "s3cret"}).start()
    server = start_server()
    client = docker.DockerClient(base_url=server.uri, version="auto")
    try:
        with pytest.raises(docker.errors.APIError) as refused:
            client.login("alice", "wrong", registry=private.host)
        assert refused.value.status_code == 401
        assert client.login("alice", "s3cret", registry=private.host)["Status"] == (
            "Login Succeeded"
        )
        client.images.load(busybox_archive.read_bytes())
        repo = f"{private.host}/secret/busybox"
        client.images.get("acc-busybox").tag(repo, "1")
        anonymous = lines(server.request("POST", f"/v1.44/images/{repo}/push?tag=1").body)
        assert "errorDetail" in anonymous[-1]
        assert "unauthorized" in anonymous[-1]["errorDetail"]["message"].lower()
        auth = (
            base64.urlsafe_b64encode(
                json.dumps(
                    {"username": "alice", "password": "s3cret", "serveraddress": private.host}
                ).encode()
            )
            .decode()
            .rstrip("=")
        )
        pushed = lines(
            server.request(
                "POST", f"/v1.44/images/{repo}/push?tag=1", headers={"X-Registry-Auth": auth}
            ).body
        )
        assert "aux" in pushed[-1], pushed
        assert inspect(f"{repo}:1", creds="alice:s3cret")["Digest"] == pushed[-1]["aux"]["Digest"]
        server.request("DELETE", f"/v1.44/images/{repo}:1")
        server.request("DELETE", "/v1.44/images/acc-busybox")
        pulled = client.images.pull(
            repo, tag="1", auth_config={"username": "alice", "password": "s3cret"}
        )
        assert pulled.id == busybox.id
    finally:
        client.close()
        private.stop()


def test_registry_down_and_unknown_image(fresh: ServerProcess, registry: Registry) -> None:
    down = f"127.0.0.1:{free_port()}/nothing/here:1"
    compat = fresh.request("POST", f"/v1.44/images/create?fromImage={down}")
    assert compat.status >= 400
    assert set(compat.json()) == {"cause", "message", "response"}
    assert "127.0.0.1" in compat.json()["message"]
    libpod = lines(fresh.request("POST", f"/v5.0.0/libpod/images/pull?reference={down}").body)
    assert "error" in libpod[-1]
    unknown = fresh.request("POST", f"/v1.44/images/create?fromImage={registry.host}/no/such&tag=1")
    assert unknown.status == 404
    assert unknown.json()["response"] == 404
    bad = fresh.request("POST", "/v1.44/images/create?fromImage=UPPER/Case:x")
    assert bad.status == 400
    empty = fresh.request("POST", "/v5.0.0/libpod/images/pull")
    assert empty.status == 400
    assert fresh.get_json("/v1.44/images/json") == []


def test_search_uses_the_catalog(
    fresh: ServerProcess, registry: Registry, busybox_archive: Path
) -> None:
    seed(registry, busybox_archive, "searchme/busybox:1")
    found = fresh.get_json(f"/v1.44/images/search?term={registry.host}/searchme")
    assert {
        "name": f"{registry.host}/searchme/busybox",
        "description": "",
        "star_count": 0,
        "is_official": False,
        "is_automated": False,
    } in found
    libpod = fresh.get_json(f"/v5.0.0/libpod/images/search?term={registry.host}/searchme")
    assert libpod[0]["Name"] == f"{registry.host}/searchme/busybox"
    nothing = fresh.request("GET", "/v1.44/images/search")
    assert nothing.status == 400


def test_libpod_short_names_use_registries_conf(
    start_server: Start,
    tmp_path: Path,
    registry: Registry,
    busybox: BuiltImage,
    busybox_archive: Path,
) -> None:
    seed(registry, busybox_archive, "shorty:1")
    conf = tmp_path / "registries.conf"
    conf.write_text(f'unqualified-search-registries = ["{registry.host}"]\n')
    server = start_server(env={**os.environ, "CONTAINERS_REGISTRIES_CONF": str(conf)})
    report = lines(server.request("POST", "/v5.0.0/libpod/images/pull?reference=shorty:1").body)
    assert report[-1]["id"] == busybox.id.split(":")[1], report
    names = server.get_json("/v5.0.0/libpod/images/shorty:1/json")["RepoTags"]
    assert names == [f"{registry.host}/shorty:1"]
    info = server.get_json("/v5.0.0/libpod/info")
    assert info["registries"]["search"] == [registry.host]


@needs_cli
def test_docker_cli_pull_push(
    fresh: ServerProcess, registry: Registry, busybox_archive: Path
) -> None:
    env = {**os.environ, "DOCKER_HOST": fresh.uri}
    name = seed(registry, busybox_archive, "cli/busybox:1")

    def run(*args: str) -> str:
        result = subprocess.run(
            ["docker", *args], capture_output=True, text=True, env=env, timeout=60, check=False
        )
        assert result.returncode == 0, (args, result.stderr)
        return result.stdout

    out = run("pull", name)
    assert "Downloaded newer image" in out
    # Docker's per-layer lines, as the CLI prints them without a terminal.
    layer = inspect(name)["Layers"][0].split(":")[1][:12]
    for status in ("Pulling fs layer", "Download complete", "Pull complete"):
        assert f"{layer}: {status}\n" in out, (status, out)
    target = f"{registry.host}/cli/pushed:2"
    run("tag", name, target)
    pushed = run("push", target)
    assert inspect(target)["Layers"] == inspect(name)["Layers"]
    first, preparing, sent, last = pushed.splitlines()
    assert first == f"The push refers to repository [{registry.host}/cli/pushed]"
    assert preparing == f"{layer}: Preparing"
    assert sent in (f"{layer}: Pushed", f"{layer}: Layer already exists")
    assert re.fullmatch(f"2: digest: {inspect(target)['Digest']} size: [0-9]+", last), last


@needs_podman
def test_podman_remote_pull(
    fresh: ServerProcess,
    registry: Registry,
    busybox: BuiltImage,
    busybox_archive: Path,
    tmp_path: Path,
) -> None:
    name = seed(registry, busybox_archive, "podman/busybox:1")
    result = subprocess.run(
        ["podman", "--remote", "--url", fresh.uri, "pull", "--tls-verify=false", name],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "HOME": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr
    assert busybox.id.split(":")[1] in result.stdout


def test_podman_py_pull_and_push(
    fresh: ServerProcess, registry: Registry, busybox: BuiltImage, busybox_archive: Path
) -> None:
    name = seed(registry, busybox_archive, "podmanpy/busybox:1")
    with PodmanClient(base_url=f"http+unix://{fresh.sock}") as client:
        image = client.images.pull(name, tls_verify=False)
        assert image.id == busybox.id.split(":")[1]
        target = f"{registry.host}/podmanpy/pushed"
        assert image.tag(target, "3")
        client.images.push(target, tag="3", tls_verify=False)
    assert inspect(f"{target}:3")["Layers"] == inspect(name)["Layers"]


def test_concurrent_pulls_sharing_a_layer(
    fresh: ServerProcess,
    registry: Registry,
    busybox: BuiltImage,
    busybox_archive: Path,
    tmp_path: Path,
) -> None:
    """Two pulls at once of images with the same layer: both images, one stored layer."""
    other = BuiltImage(layers=busybox.layers, cmd=["true"])
    other_archive = tmp_path / "other.tar"
    other_archive.write_bytes(other.docker_archive(["other:1"]))
    names = [seed(registry, busybox_archive, "conc/a:1"), seed(registry, other_archive, "conc/b:1")]
    replies: dict[str, bytes] = {}

    def pull(name: str) -> None:
        replies[name] = fresh.request("POST", f"/v5.0.0/libpod/images/pull?reference={name}").body

    threads = [threading.Thread(target=pull, args=(name,)) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    ids = {lines(replies[name])[-1].get("id") for name in names}
    assert ids == {busybox.id.split(":")[1], other.id.split(":")[1]}
    layers = list((fresh.root / "storage" / "layers").iterdir())
    assert [p.name for p in layers] == [busybox.diff_ids[0].split(":")[1]]
    assert not list((fresh.root / "storage" / "layers-staging").iterdir())


def podman_remote(
    server: ServerProcess, home: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    """``podman --remote`` against ``server``; the caller checks the outcome."""
    return podman(server, home, *args, check=False)


@needs_podman
def test_search_filters_and_list_tags(
    fresh: ServerProcess, registry: Registry, busybox_archive: Path, tmp_path: Path
) -> None:
    """``podman search --filter`` / ``--list-tags`` and the same parameters on both trees."""
    name = seed(registry, busybox_archive, "listme/busybox:1").rsplit(":", 1)[0]
    seed(registry, busybox_archive, "listme/busybox:2")
    term = f"{registry.host}/listme"

    def found(*flags: str) -> list[str]:
        result = podman(
            fresh, tmp_path, "search", "--tls-verify=false", "--format", "json", *flags, term
        )
        return [r["Name"] for r in json.loads(result.stdout or "[]")]

    assert found() == [name]
    assert found("--filter", "is-official=false", "--filter", "is-automated=false") == [name]
    assert found("--filter", "stars=1") == []  # a catalog has no stars: 0 for all
    assert found("--filter", "is-official=true") == []

    tags = podman(
        fresh, tmp_path, "search", "--tls-verify=false", "--list-tags", "--format", "json", name
    )
    [entry] = json.loads(tags.stdout)
    assert (entry["Name"], sorted(entry["Tags"])) == (name, ["1", "2"])  # in the registry's order

    listed = fresh.get_json(f"/v5.0.0/libpod/images/search?term={name}&listTags=true&limit=1")
    assert listed == [
        {
            "Index": registry.host,
            "Name": name,
            "Description": "",
            "Stars": 0,
            "Official": "",
            "Automated": "",
            "Tag": entry["Tags"][0],
        }
    ]
    compat = fresh.get_json(f"/v1.44/images/search?term={name}&listTags=1")
    assert [(r["Name"], r["Tag"]) for r in compat] == [(name, tag) for tag in entry["Tags"]]

    def search(path: str, filters: dict[str, list[str]]) -> Any:
        query = urllib.parse.urlencode({"term": term, "filters": json.dumps(filters)})
        return fresh.request("GET", f"{path}?{query}")

    for path in ("/v5.0.0/libpod/images/search", "/v1.44/images/search"):
        assert len(search(path, {"is-official": ["false"]}).json()) == 1
        assert search(path, {"stars": ["3"]}).json() == []
        for bad, words in (
            ({"nope": ["1"]}, 'invalid filter type "nope=1"'),
            ({"stars": ["many"]}, "incorrect value type for stars filter"),
        ):
            reply = search(path, bad)
            assert reply.status == 400, (path, reply.body)
            assert words in reply.json()["message"]
            assert set(reply.json()) == {"cause", "message", "response"}
    missing = fresh.request(
        "GET", f"/v5.0.0/libpod/images/search?term={registry.host}/no/such&listTags=true"
    )
    assert missing.status == 404, missing.body


@needs_podman
def test_podman_push_format_converts_the_manifest(
    fresh: ServerProcess,
    registry: Registry,
    busybox: BuiltImage,
    busybox_archive: Path,
    tmp_path: Path,
) -> None:
    """``podman push --format oci|v2s2``: the manifest (and config/layer media types) asked for,
    over the same blobs; without ``--format`` a pulled image goes as it was pulled."""
    name = seed(registry, busybox_archive, "fmt/src:1")
    original = inspect(name, raw=True)
    assert original["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
    podman(fresh, tmp_path, "pull", "--tls-verify=false", name)

    oci = f"{registry.host}/fmt/oci:1"
    podman(fresh, tmp_path, "push", "--tls-verify=false", "--format", "oci", name, oci)
    pushed = inspect(oci, raw=True)
    assert pushed["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert pushed["config"]["mediaType"] == "application/vnd.oci.image.config.v1+json"
    assert pushed["config"]["digest"] == busybox.id
    assert [layer["mediaType"] for layer in pushed["layers"]] == [
        "application/vnd.oci.image.layer.v1.tar+gzip"
    ]
    assert [layer["digest"] for layer in pushed["layers"]] == [
        layer["digest"] for layer in original["layers"]
    ]

    same = f"{registry.host}/fmt/same:1"
    podman(fresh, tmp_path, "push", "--tls-verify=false", name, same)
    assert inspect(same)["Digest"] == inspect(name)["Digest"]

    # Pulled back from the OCI copy, the image's stored manifest is OCI; to Docker schema 2.
    podman(fresh, tmp_path, "rmi", name)
    podman(fresh, tmp_path, "pull", "--tls-verify=false", oci)
    stored = fresh.get_json(f"/v5.0.0/libpod/images/{oci}/json")["ManifestType"]
    assert stored == "application/vnd.oci.image.manifest.v1+json"
    back = f"{registry.host}/fmt/back:1"
    podman(
        fresh,
        tmp_path,
        "push",
        "--tls-verify=false",
        "--format=v2s2",
        "--remove-signatures",
        oci,
        back,
    )
    docker_again = inspect(back, raw=True)
    assert docker_again["mediaType"] == original["mediaType"]
    assert docker_again["config"] == original["config"]
    assert docker_again["layers"] == original["layers"]

    # A loaded image has only an uncompressed layer: gzip it, under an OCI manifest.
    fresh.request("POST", "/v1.44/images/load", body=busybox_archive.read_bytes())
    loaded = f"{registry.host}/fmt/loaded:1"
    podman(fresh, tmp_path, "push", "--tls-verify=false", "--format", "oci", "acc-busybox", loaded)
    made = inspect(loaded, raw=True)
    assert made["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert made["layers"][0]["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip"
    assert inspect(loaded)["Layers"] == inspect(name)["Layers"]


@needs_podman
def test_push_compression_and_format_options(
    fresh: ServerProcess, registry: Registry, busybox_archive: Path, tmp_path: Path
) -> None:
    """gzip is the only compression; zstd, unknown formats and schema 1 are a 400 before
    anything is sent; ``removeSignatures`` and ``all`` are accepted."""
    fresh.request("POST", "/v1.44/images/load", body=busybox_archive.read_bytes())
    target = f"{registry.host}/opts/busybox:1"
    refused = podman_remote(
        fresh,
        tmp_path,
        "push",
        "--tls-verify=false",
        "--compression-format",
        "zstd",
        "acc-busybox",
        target,
    )
    assert refused.returncode != 0
    assert "compression format 'zstd' is not supported" in refused.stderr
    base = f"/v5.0.0/libpod/images/acc-busybox/push?destination={target}&tlsVerify=false"
    for extra, words in (
        ("compressionFormat=zstd:chunked", "'zstd:chunked' is not supported"),
        ("format=v2s1", "'v2s1'"),
        ("format=v9", "unknown format 'v9'"),
        ("quiet=false&format=bogus", "unknown format 'bogus'"),
        ("removeSignatures=maybe", "invalid boolean"),
    ):
        reply = fresh.request("POST", f"{base}&{extra}")
        assert reply.status == 400, (extra, reply.body)
        assert words in reply.json()["message"], (extra, reply.json())
    assert (
        subprocess.run(
            ["skopeo", "inspect", "--tls-verify=false", f"docker://{target}"],
            capture_output=True,
            timeout=60,
            check=False,
        ).returncode
        != 0
    )  # nothing was pushed
    ok = fresh.request(
        "POST", f"{base}&compressionFormat=gzip&removeSignatures=true&all=true&format=docker"
    )
    assert ok.status == 200, ok.body
    assert inspect(target, raw=True)["mediaType"] == (
        "application/vnd.docker.distribution.manifest.v2+json"
    )
