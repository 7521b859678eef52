"""Versioned paths, the two trees, router errors, query decoding."""

from typing import Any

import pytest
import pytest_twisted
from treq.testing import StubTreq

from podapi.http.call import ApiCall, BadRequest, parse_version


async def get(api: StubTreq, path: str, method: str = "GET") -> tuple[int, Any]:
    response = await api.request(method, "http://d" + path)
    body = await response.content()
    return response.code, body


@pytest.mark.parametrize(
    "path",
    [
        "/_ping",
        "/v1.41/_ping",
        "/v1.24/_ping",
        "/v1.44.0/_ping",
        "/libpod/_ping",
        "/v4.3.1/libpod/_ping",
        "/v5.0.0-dev/libpod/_ping",
        "/v99.99/libpod/_ping",
    ],
)
@pytest_twisted.ensureDeferred
async def test_ping_everywhere(api: StubTreq, path: str) -> None:
    """_ping answers on both trees, with and without a version (libpod: never checked)."""
    code, body = await get(api, path)
    assert (code, body) == (200, b"OK")


@pytest.mark.parametrize(
    "path", ["/vfoo/_ping", "/libpod/info", "/v1.41/libpod/nope", "/info/", "/v/_ping"]
)
@pytest_twisted.ensureDeferred
async def test_unknown_paths_are_json_404(api: StubTreq, path: str) -> None:
    """Libpod routes exist only versioned; bad versions and trailing slashes are 404."""
    code, body = await get(api, path)
    assert code == 404
    assert b'"response":404' in body


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/v9.99/version", "client version 9.99 is too new. Maximum supported API version is 1.44"),
        ("/v1.45/_ping", "client version 1.45 is too new. Maximum supported API version is 1.44"),
        (
            "/v1.11/containers/json",
            "client version 1.11 is too old. Minimum supported API version is 1.24, "
            "please upgrade your client to a newer version",
        ),
        (
            "/v1/info",
            "client version 1 is too old. Minimum supported API version is 1.24, "
            "please upgrade your client to a newer version",
        ),
    ],
)
@pytest_twisted.ensureDeferred
async def test_compat_versions_out_of_range_are_400(api: StubTreq, path: str, message: str) -> None:
    """Docker's version middleware, on the compat tree only (Podman accepts any version)."""
    response = await api.get("http://d" + path)
    assert response.code == 400
    body = await response.json()
    assert body["message"] == message
    assert body["response"] == 400


@pytest_twisted.ensureDeferred
async def test_wrong_method_is_json_405(api: StubTreq) -> None:
    response = await api.post("http://d/v1.44/info")
    assert response.code == 405
    assert response.headers.getRawHeaders(b"allow") == [b"GET, HEAD"]
    body = await response.json()
    assert body["response"] == 405
    assert body["cause"] == "method not allowed"


@pytest_twisted.ensureDeferred
async def test_compat_routes_with_and_without_version(api: StubTreq) -> None:
    for path in ("/info", "/v1.44/info", "/v1.24/version", "/version"):
        code, _ = await get(api, path)
        assert code == 200, path


@pytest_twisted.ensureDeferred
async def test_head_ping_has_no_body(api: StubTreq) -> None:
    response = await api.head("http://d/_ping")
    assert response.code == 200
    assert await response.content() == b""


@pytest_twisted.ensureDeferred
async def test_ping_headers(api: StubTreq) -> None:
    response = await api.get("http://d/_ping")
    headers = response.headers
    assert headers.getRawHeaders(b"builder-version") == [b"1"]
    assert headers.getRawHeaders(b"docker-experimental") == [b"true"]
    assert headers.getRawHeaders(b"ostype") == [b"linux"]
    assert response.length == 2  # the Agent turns Content-Length into .length


def test_parse_version() -> None:
    assert parse_version("1.41") == (1, 41)
    assert parse_version("5.0.0-dev") == (5, 0, 0)
    assert parse_version("4.x") == (4, 0)


class FakeRequest:
    def __init__(self, **args: str) -> None:
        self.args = {k.encode(): [v.encode()] for k, v in args.items()}
        self.uri = b"/x"


@pytest.mark.parametrize(
    ("value", "compat", "libpod"),
    [
        ("1", True, True),
        ("true", True, True),
        ("0", False, False),
        ("false", False, False),
        ("no", False, None),
        ("none", False, None),
        ("", False, None),
        ("yes", True, None),
        ("T", True, True),
    ],
)
def test_bool_decoding_per_tree(value: str, compat: bool, libpod: bool | None) -> None:
    """Compat: true unless ""/0/no/false/none. Libpod: Go's ParseBool, else 400."""
    assert ApiCall(FakeRequest(x=value), libpod=False, version=None).flag("x") is compat
    libpod_call = ApiCall(FakeRequest(x=value), libpod=True, version=None)
    if libpod is None:
        with pytest.raises(BadRequest):
            libpod_call.flag("x")
    else:
        assert libpod_call.flag("x") is libpod


def test_filters_both_forms_and_errors() -> None:
    call = ApiCall(FakeRequest(filters='{"label":["a=b"],"dangling":{"true":true}}'), False, None)
    assert call.filters() == {"label": ["a=b"], "dangling": ["true"]}
    with pytest.raises(BadRequest):
        ApiCall(FakeRequest(filters="{not json"), False, None).filters()
    with pytest.raises(BadRequest):
        ApiCall(FakeRequest(filters="[1]"), False, None).filters()


def test_integer_errors() -> None:
    assert ApiCall(FakeRequest(n="5"), False, None).integer("n") == 5
    with pytest.raises(BadRequest):
        ApiCall(FakeRequest(n="five"), True, None).integer("n")
