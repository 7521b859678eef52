"""The served OpenAPI document lists exactly the routes the router serves."""

import re

import pytest_twisted
import yaml
from treq.testing import StubTreq

from podapi.http.routing import Router


def openapi_path(werkzeug_path: str) -> str:
    """``/images/<path:name>/json`` -> ``/images/{name}/json``."""
    return re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", werkzeug_path)


@pytest_twisted.ensureDeferred
async def test_every_route_is_documented_and_nothing_else(api: StubTreq, router: Router) -> None:
    response = await api.get("http://d/v5.0.0/libpod/swagger")
    assert response.code == 200
    assert response.headers.getRawHeaders(b"content-type") == [b"text/yaml"]
    document = yaml.safe_load(await response.content())
    documented = {
        (path, method.upper())
        for path, operations in document["paths"].items()
        for method in operations
        if method in ("get", "head", "post", "put", "delete")
    }
    served = {(openapi_path(route.full_path), route.method) for route in router.routes}
    assert served - documented == set(), "routes missing from openapi.yaml"
    assert documented - served == set(), "openapi.yaml documents routes we do not serve"


@pytest_twisted.ensureDeferred
async def test_compat_swagger_path_serves_the_same_document(api: StubTreq) -> None:
    compat = await (await api.get("http://d/swagger")).content()
    libpod = await (await api.get("http://d/v5.0.0/libpod/swagger")).content()
    assert compat == libpod
    assert compat.startswith(b"openapi:")
