"""Image routes on a real engine without sockets: archives out, names, history, tree,
and the events of a removal, on both trees."""

import hashlib
import io
import json
import tarfile
from typing import Any

import pytest
import pytest_twisted
from treq.testing import StubTreq
from twisted.internet.defer import Deferred

from podapi.engine.engine import Engine
from tests.fixtures.images import BuiltImage, layer_tar

COMPAT = "http://d/v1.41"
LIBPOD = "http://d/v4.0.0/libpod"
BASE = BuiltImage(layers=[layer_tar({"etc/base": b"base\n"})])
CHILD = BuiltImage(layers=[*BASE.layers, layer_tar({"etc/child": b"child\n"})])
OTHER = BuiltImage(layers=[*BASE.layers, layer_tar({"etc/other": b"other\n"})])
GRAND = BuiltImage(layers=[*CHILD.layers, layer_tar({"etc/grand": b"grand\n"})])


@pytest.fixture(autouse=True)
def image_store(engine: Engine) -> None:
    """The image store (the fixture's engine starts without it, as ``podapi.cleanup``)."""
    pytest_twisted.blockon(Deferred.fromCoroutine(engine.images.start()))


async def call(api: StubTreq, method: str, url: str, body: bytes = b"") -> tuple[int, bytes]:
    response = await api.request(method, url, data=body or None)
    return response.code, await response.content()


async def load(api: StubTreq, image: BuiltImage, *tags: str) -> None:
    code, body = await call(api, "POST", f"{COMPAT}/images/load", image.docker_archive(tags))
    assert code == 200, body


async def get_json(api: StubTreq, url: str) -> Any:
    code, body = await call(api, "GET", url)
    assert code == 200, body
    return json.loads(body)


def members(archive: bytes) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        return tar.getnames()


@pytest_twisted.ensureDeferred
async def test_saves_are_tars_typed_as_podman_types_them(api: StubTreq) -> None:
    """Both trees send ``application/octet; charset=us-ascii`` (Podman's type for a
    streamed file); libpod's default format is ``oci-archive``, compat's docker-archive."""
    await load(api, BASE, "base:1")
    for url, marker in [
        (f"{LIBPOD}/images/base:1/get", "index.json"),
        (f"{LIBPOD}/images/base:1/get?compress=true", "index.json"),
        (f"{LIBPOD}/images/base:1/get?compress=false&format=docker-archive", "manifest.json"),
        (f"{COMPAT}/images/base:1/get", "manifest.json"),
    ]:
        response = await api.get(url)
        assert response.code == 200, url
        assert response.headers.getRawHeaders(b"content-type") == [
            b"application/octet; charset=us-ascii"
        ]
        assert marker in members(await response.content()), url


@pytest_twisted.ensureDeferred
async def test_bad_compress_format_and_multi_image_oci_are_400(api: StubTreq) -> None:
    """``compress`` must be a boolean; several images go only in a docker-archive."""
    await load(api, BASE, "base:1")
    await load(api, CHILD, "child:1")
    bad = [
        f"{LIBPOD}/images/base:1/get?compress=bar",
        f"{LIBPOD}/images/export?references=base:1&compress=bar",
        f"{LIBPOD}/images/base:1/get?format=foo",
        f"{LIBPOD}/images/export?references=base:1&references=child:1",
        f"{LIBPOD}/images/export",
    ]
    for url in bad:
        code, body = await call(api, "GET", url)
        assert code == 400, (url, body)
        assert set(json.loads(body)) == {"cause", "message", "response"}
    code, _ = await call(api, "GET", f"{LIBPOD}/images/nonesuch/get")
    assert code == 404


@pytest_twisted.ensureDeferred
async def test_exists_answers_podmans_cause(api: StubTreq) -> None:
    """``exists`` of an unknown image: 404 with cause ``failed to find image NAME``."""
    await load(api, BASE, "base:1")
    code, _ = await call(api, "GET", f"{LIBPOD}/images/base:1/exists")
    assert code == 204
    code, body = await call(api, "GET", f"{LIBPOD}/images/{BASE.id[7:]}abcdef/exists")
    assert code == 404
    assert json.loads(body)["cause"] == f"failed to find image {BASE.id[7:]}abcdef"


@pytest_twisted.ensureDeferred
async def test_multi_image_saves_on_both_trees(api: StubTreq) -> None:
    """``/images/get?names=a&names=b`` and libpod ``export`` with ``docker-archive``
    hold every image, each with its tag, and the shared layer once."""
    await load(api, BASE, "base:1")
    await load(api, CHILD, "child:1")
    for url, tags in [
        (f"{COMPAT}/images/get?names=base:1&names=child:1", ["base:1", "child:1"]),
        (
            f"{LIBPOD}/images/export?references=base:1&references=child:1&format=docker-archive",
            ["docker.io/library/base:1", "docker.io/library/child:1"],
        ),
    ]:
        code, body = await call(api, "GET", url)
        assert code == 200, body
        with tarfile.open(fileobj=io.BytesIO(body)) as tar:
            manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
            layers = [n for n in tar.getnames() if n.endswith(".tar")]
        assert [entry["RepoTags"] for entry in manifest] == [[t] for t in tags]
        assert len(layers) == 2


@pytest_twisted.ensureDeferred
async def test_short_names_tagged_through_the_api_are_removed_by_them(api: StubTreq) -> None:
    """libpod ``tag`` of ``test:test`` stores ``localhost/test:test``, compat ``tag`` of
    ``test1`` stores ``docker.io/library/test1:latest``; both delete by the short name."""
    await load(api, BASE, "base:1")
    code, _ = await call(api, "POST", f"{LIBPOD}/images/base:1/tag?repo=test&tag=test")
    assert code == 201
    code, _ = await call(api, "POST", f"{COMPAT}/images/base:1/tag?repo=test1&tag=latest")
    assert code == 201
    inspect = await get_json(api, f"{LIBPOD}/images/base:1/json")
    assert sorted(inspect["RepoTags"]) == [
        "docker.io/library/base:1",
        "docker.io/library/test1:latest",
        "localhost/test:test",
    ]
    code, body = await call(api, "DELETE", f"{LIBPOD}/images/test:test")
    assert (code, json.loads(body)["Untagged"]) == (200, ["localhost/test:test"])
    code, body = await call(api, "DELETE", f"{COMPAT}/images/base:1")
    assert (code, json.loads(body)) == (200, [{"Untagged": "base:1"}])
    code, body = await call(api, "DELETE", f"{COMPAT}/images/test1:latest")
    assert code == 200
    assert json.loads(body) == [{"Untagged": "test1:latest"}, {"Deleted": BASE.id}]


@pytest_twisted.ensureDeferred
async def test_legacy_filter_lists_podman_names_on_compat(api: StubTreq) -> None:
    """``images/json?filter=NAME`` (Docker 1.24's parameter) selects by reference, and
    compat entries carry Podman's ``Names``/``Digest`` extensions (full names)."""
    await load(api, BASE, "base:1")
    await load(api, CHILD, "child:1")
    found = await get_json(api, f"{COMPAT}/images/json?filter=base")
    assert len(found) == 1
    assert found[0]["Names"] == ["docker.io/library/base:1"]
    assert found[0]["RepoTags"] == ["base:1"]
    assert found[0]["Digest"].startswith("sha256:")
    assert await get_json(api, f"{COMPAT}/images/json?filter=nonesuch") == []


@pytest_twisted.ensureDeferred
async def test_history_tags_null_on_libpod_and_dockers_on_compat(api: StubTreq) -> None:
    """libpod: every ``Tags`` is null (Podman reports layer names); compat: the image's
    own entry lists its tags as Docker does."""
    await load(api, CHILD, "child:1")
    libpod = await get_json(api, f"{LIBPOD}/images/child:1/history")
    assert [entry["Tags"] for entry in libpod] == [None, None]
    assert libpod[0]["Id"] == CHILD.id.split(":")[1]
    compat = await get_json(api, f"{COMPAT}/images/child:1/history")
    assert [entry["Tags"] for entry in compat] == [["child:1"], None]


def chain_id(parent: str, diff_id: str) -> str:
    """containers/image's storage ID of a layer above ``parent``."""
    return hashlib.sha256(f"{parent}+{diff_id.split(':')[1]}".encode()).hexdigest()


@pytest_twisted.ensureDeferred
async def test_tree_of_layers_and_of_what_requires_them(api: StubTreq) -> None:
    """``{"Tree": text}`` as ``podman image tree`` prints it: the image's layers bottom
    first; with ``whatrequires``, the layers built on it drawn as libimage does (a
    layer with siblings opens a branch that its own children hang from)."""
    await load(api, BASE, "base:1")
    await load(api, CHILD, "child:1")
    await load(api, OTHER, "other:1")
    await load(api, GRAND, "grand:1")
    base_id = BASE.diff_ids[0].split(":")[1]
    child_id = chain_id(base_id, CHILD.diff_ids[1])
    other_id = chain_id(base_id, OTHER.diff_ids[1])
    grand_id = chain_id(child_id, GRAND.diff_ids[2])
    assert {len(layer) for layer in GRAND.layers + OTHER.layers} == {10240}  # tar records
    tree = (await get_json(api, f"{LIBPOD}/images/child:1/tree"))["Tree"]
    assert tree == (
        f"Image ID: {CHILD.id[7:19]}\n"
        "Tags:     [docker.io/library/child:1]\n"
        "Size:     20.48kB\n"
        "Image Layers\n"
        f"├── ID: {base_id[:12]} Size: 10.24kB Top Layer of: [docker.io/library/base:1]\n"
        f"└── ID: {child_id[:12]} Size: 10.24kB Top Layer of: [docker.io/library/child:1]\n"
    )
    requires = (await get_json(api, f"{LIBPOD}/images/base:1/tree?whatrequires=true"))["Tree"]
    assert requires.splitlines()[4:] == [
        f"├── ID: {base_id[:12]} Size: 10.24kB Top Layer of: [docker.io/library/base:1]",
        f"├── ID: {child_id[:12]} Size: 10.24kB Top Layer of: [docker.io/library/child:1]",
        f"│   └── ID: {grand_id[:12]} Size: 10.24kB Top Layer of: [docker.io/library/grand:1]",
        f"└── ID: {other_id[:12]} Size: 10.24kB Top Layer of: [docker.io/library/other:1]",
    ]
    code, _ = await call(api, "GET", f"{LIBPOD}/images/nonesuch/tree")
    assert code == 404
    code, _ = await call(api, "GET", f"{LIBPOD}/images/base:1/tree?whatrequires=maybe")
    assert code == 400


@pytest_twisted.ensureDeferred
async def test_removal_events_on_both_streams(api: StubTreq, engine: Engine) -> None:
    """A removal ends with ``remove`` named as asked (libpod) -- also when only a name
    goes, as libimage writes it -- which compat shows as ``delete``, after ``untag``."""
    await load(api, BASE, "base:1")
    await call(api, "POST", f"{COMPAT}/images/base:1/tag?repo=second&tag=1")
    await call(api, "DELETE", f"{LIBPOD}/images/second:1")
    await call(api, "DELETE", f"{COMPAT}/images/base:1")
    query = 'since=0&stream=false&filters={"type":["image"]}'
    code, body = await call(api, "GET", f"{LIBPOD}/events?{query}")
    assert code == 200
    libpod = [json.loads(line) for line in body.splitlines()]
    assert [(e["Action"], e["Actor"]["Attributes"]["name"]) for e in libpod] == [
        ("loadfromarchive", "docker.io/library/base:1"),
        ("tag", "docker.io/library/second:1"),
        ("untag", "docker.io/library/second:1"),
        ("remove", "second:1"),
        ("untag", "docker.io/library/base:1"),
        ("remove", "base:1"),
    ]
    code, body = await call(api, "GET", f"{COMPAT}/events?{query}")
    assert code == 200
    compat = [json.loads(line)["Action"] for line in body.splitlines()]
    assert compat == ["load", "tag", "untag", "delete", "untag", "delete"]
