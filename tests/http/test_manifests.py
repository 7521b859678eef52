"""/libpod/manifests without sockets: create, exists, inspect, update/annotate/remove,
delete, and the errors (a real engine on a temporary root; no registry)."""

import json
from typing import Any

import pytest_twisted
from treq.testing import StubTreq

from podapi.engine.engine import Engine
from tests.fixtures.images import busybox_image

BASE = "http://d/v4.3.1/libpod/manifests"


async def call(
    api: StubTreq, method: str, url: str, body: Any = None, raw: bytes | None = None
) -> tuple[int, Any]:
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    response = await api.request(method, url, data=data)
    content = await response.content()
    return response.code, json.loads(content) if content else None


async def load_busybox(api: StubTreq, engine: Engine) -> dict[str, Any]:
    await engine.images.start()  # the fixture's engine does not serve: create the store
    archive = busybox_image().docker_archive(["acc-busybox:latest"])
    response = await api.post("http://d/v1.44/images/load", data=archive)
    assert response.code == 200, await response.content()
    code, image = await call(api, "GET", "http://d/v4.3.1/libpod/images/acc-busybox/json")
    assert code == 200
    return image  # type: ignore[no-any-return]


@pytest_twisted.ensureDeferred
async def test_create_exists_amend_and_v3_create(api: StubTreq) -> None:
    code, created = await call(api, "POST", f"{BASE}/mylist")
    assert code == 201 and len(created["Id"]) == 64
    assert (await api.get(f"{BASE}/mylist/exists")).code == 204
    assert (await api.get(f"{BASE}/localhost/mylist:latest/exists")).code == 204
    assert (await api.get(f"{BASE}/{created['Id'][:12]}/exists")).code == 204
    code, error = await call(api, "POST", f"{BASE}/mylist")
    assert code == 409 and "already in use" in error["message"]
    code, amended = await call(api, "POST", f"{BASE}/mylist?amend=true")
    assert code == 201 and amended == created
    code, listed = await call(api, "GET", f"{BASE}/mylist/json")
    assert code == 200
    assert listed == {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
        "manifests": [],
    }
    code, v3 = await call(api, "POST", "http://d/v3.4.0/libpod/manifests/create?name=old")
    assert code == 200 and len(v3["Id"]) == 64
    assert (await api.get(f"{BASE}/old/exists")).code == 204
    code, _ = await call(api, "POST", f"{BASE}/Bad%20Name")
    assert code == 400


@pytest_twisted.ensureDeferred
async def test_update_annotate_remove_and_delete(api: StubTreq, engine: Engine) -> None:
    image = await load_busybox(api, engine)
    code, created = await call(api, "POST", f"{BASE}/mylist?images=containers-storage:acc-busybox")
    assert code == 201
    code, listed = await call(api, "GET", f"{BASE}/mylist/json")
    [entry] = listed["manifests"]
    assert entry["platform"] == {"architecture": "amd64", "os": "linux"}
    assert entry["digest"] == image["Digest"]
    # Adding the same image again replaces its entry.
    body = {"operation": "Update", "images": ["acc-busybox"], "variant": "v1"}
    code, report = await call(api, "PUT", f"{BASE}/mylist", body)
    assert (code, report) == (200, {"Id": created["Id"], "images": ["acc-busybox"]})
    code, listed = await call(api, "GET", f"{BASE}/mylist/json")
    assert [m["platform"].get("variant") for m in listed["manifests"]] == ["v1"]

    body = {
        "operation": "annotate",
        "images": [entry["digest"]],
        "arch": "arm64",
        "features": ["sse4"],
        "annotation": ["a=b"],
    }
    code, _ = await call(api, "PUT", f"{BASE}/mylist", body)
    assert code == 200
    code, listed = await call(api, "GET", f"{BASE}/mylist/json")
    assert listed["manifests"][0]["platform"] == {
        "architecture": "arm64",
        "os": "linux",
        "variant": "v1",
        "features": ["sse4"],
    }
    assert listed["manifests"][0]["annotations"] == {"a": "b"}

    code, _ = await call(
        api, "PUT", f"{BASE}/mylist", {"operation": "remove", "images": [entry["digest"]]}
    )
    assert code == 200
    code, listed = await call(api, "GET", f"{BASE}/mylist/json")
    assert listed["manifests"] == []

    code, report = await call(api, "DELETE", f"{BASE}/mylist")
    assert code == 200
    assert report == {
        "Untagged": ["localhost/mylist:latest"],
        "Deleted": [created["Id"]],
        "Errors": [],
        "ExitCode": 0,
    }
    assert (await api.get(f"{BASE}/mylist/exists")).code == 404
    # The image the list named stays.
    assert (await api.get("http://d/v4.3.1/libpod/images/acc-busybox/exists")).code == 204


@pytest_twisted.ensureDeferred
async def test_rmi_with_lookup_manifest_removes_a_list(api: StubTreq) -> None:
    """``podman --remote manifest rm`` goes through ``/images/remove?lookupManifest``."""
    code, created = await call(api, "POST", f"{BASE}/rmlist")
    code, report = await call(
        api, "DELETE", "http://d/v4.3.1/libpod/images/remove?images=rmlist&lookupManifest=true"
    )
    assert code == 200 and report["Deleted"] == [created["Id"]]
    code, created = await call(api, "POST", f"{BASE}/rmilist")
    code, report = await call(api, "DELETE", "http://d/v4.3.1/libpod/images/remove?images=rmilist")
    assert code == 200 and report["Deleted"] == [created["Id"]]
    assert (await api.get(f"{BASE}/rmilist/exists")).code == 404


@pytest_twisted.ensureDeferred
async def test_errors(api: StubTreq, engine: Engine) -> None:
    await load_busybox(api, engine)
    await call(api, "POST", f"{BASE}/errs")
    for method, url, body, raw, status in [
        ("GET", f"{BASE}/nolist/exists", None, None, 404),
        ("DELETE", f"{BASE}/nolist", None, None, 404),
        ("PUT", f"{BASE}/nolist", {"operation": "update", "images": ["x"]}, None, 404),
        ("PUT", f"{BASE}/errs", {"operation": "bogus"}, None, 400),
        ("PUT", f"{BASE}/errs", None, b"{nope", 400),
        ("PUT", f"{BASE}/errs", {"operation": "update", "images": []}, None, 400),
        (
            "PUT",
            f"{BASE}/errs",
            {"operation": "update", "images": ["containers-storage:nope"]},
            None,
            404,
        ),
        ("PUT", f"{BASE}/errs", {"operation": "update", "images": ["oci:/tmp/x"]}, None, 400),
        ("PUT", f"{BASE}/errs", {"operation": "remove", "images": ["nodigest"]}, None, 400),
        (
            "PUT",
            f"{BASE}/errs",
            {"operation": "remove", "images": ["sha256:" + "a" * 64]},
            None,
            404,
        ),
        (
            "PUT",
            f"{BASE}/errs",
            {"operation": "update", "images": ["acc-busybox"], "annotation": ["k"]},
            None,
            400,
        ),
        (
            "PUT",
            f"{BASE}/errs",
            {"operation": "update", "images": ["acc-busybox"], "all": "yes"},
            None,
            400,
        ),
        ("POST", f"{BASE}/nolist/registry/localhost:5000/x", None, None, 404),
        ("POST", f"{BASE}/errs/registry/oci:/tmp/x", None, None, 400),
        ("POST", f"{BASE}/errs/registry/localhost:5000/x?format=v2s1", None, None, 400),
        ("POST", f"{BASE}/errs/registry/localhost:5000/x?compressionFormat=zstd", None, None, 400),
    ]:
        code, error = await call(api, method, url, body, raw)
        assert code == status, (method, url, body, error)
        assert set(error) == {"cause", "message", "response"}, error
        assert error["response"] == status
