"""``_ping`` on both trees: the one route served from the server's first instant.

It lives apart from the other system routes so that a starting server can
answer it before it imports the engine and the rest of the API
(:meth:`podapi.http.routing.Router.resource`): clients, and systemd socket
activation, ping first.
"""

from klein import Response

from podapi.http.call import ApiCall
from podapi.http.responses import body_response
from podapi.http.routing import Router

PING_HEADERS = {
    "BuildKit-Version": "",
    # "1" = the classic builder: the docker CLI then sends plain /build requests.
    "Builder-Version": "1",
    "Docker-Experimental": "true",
    "Cache-Control": "no-cache",
    "Pragma": "no-cache",
    "OSType": "linux",
}
#: The ``_ping`` answer never changes: built once (a response is immutable).
_PING = body_response(b"OK", "text/plain; charset=utf-8", headers=PING_HEADERS)


async def ping(call: ApiCall) -> Response:
    """``GET|HEAD /_ping`` (both trees): ``OK`` and the headers clients negotiate on.

    Podman serves it with one handler (``compat.Ping``) on both trees.
    """
    return _PING


def ping_router() -> Router:
    """A router serving ``_ping`` on both trees, to which the rest of the API is added."""
    router = Router()
    for method in ("GET", "HEAD"):
        router.compat(method, "/_ping", ping, early=True)
        router.libpod(method, "/_ping", ping, unversioned=True, early=True)
    return router
