"""Route registration for both API trees, on one Klein app.

Podman's rules (``pkg/api/server/handler_api.go``, ``register_*.go``):

* compat (Docker) routes answer both ``/path`` and ``/v{version}/path``;
* libpod routes answer only ``/v{version}/libpod/path`` (``/libpod/_ping`` is the
  one unversioned exception);
* the version matches ``[0-9][0-9A-Za-z.-]*``; on the libpod tree it is never
  rejected (handlers only read it to switch behaviour).  On the compat tree we
  reject what Docker's version middleware rejects (400 "client version X is too
  new/old"), where Podman accepts any version: Docker clients rely on that answer.

Every route is recorded in :attr:`Router.routes` so the OpenAPI document can be
checked against what is really served.
"""

import enum
from collections.abc import Awaitable, Callable
from typing import Any

from attrs import frozen
from klein import Klein
from twisted.web.iweb import IRequest
from werkzeug.routing import BaseConverter

from podapi import COMPAT_API_VERSION, COMPAT_MIN_API_VERSION
from podapi.http.call import ApiCall, BadRequest, parse_version
from podapi.http.errors import install_error_handlers

Handler = Callable[..., Awaitable[Any]]


class Dialect(enum.Enum):
    """Which API tree a request came in on."""

    COMPAT = "compat"
    LIBPOD = "libpod"


class ApiVersionConverter(BaseConverter):
    """``/v{version}``: Podman's version segment pattern."""

    regex = r"[0-9][0-9A-Za-z.\-]*"


@frozen
class Route:
    """One method + path served by a handler."""

    dialect: Dialect
    method: str
    path: str
    handler: Handler
    versioned_only: bool
    #: The lowest ``/v{version}`` served (older: 400, as Podman's ``SupportedVersion``).
    since: tuple[int, ...] = ()

    @property
    def full_path(self) -> str:
        """The path under its tree, without the version (``/libpod/images/json``)."""
        return ("/libpod" if self.dialect is Dialect.LIBPOD else "") + self.path

    def patterns(self) -> list[str]:
        """The werkzeug rules registered for this route."""
        versioned = "/v<apiversion:version>" + self.full_path
        return [versioned] if self.versioned_only else [versioned, self.full_path]


class Router:
    """Collects routes and serves them through one Klein app."""

    def __init__(self) -> None:
        self.app = Klein()
        self.app.url_map.converters["apiversion"] = ApiVersionConverter
        self.app.url_map.merge_slashes = False
        self.routes: list[Route] = []
        install_error_handlers(self.app)

    def compat(self, method: str, path: str, handler: Handler) -> None:
        """Serve ``handler`` at ``path`` and ``/v{version}path``."""
        self._add(Route(Dialect.COMPAT, method, path, handler, versioned_only=False))

    def libpod(
        self,
        method: str,
        path: str,
        handler: Handler,
        *,
        unversioned: bool = False,
        since: tuple[int, ...] = (),
    ) -> None:
        """Serve ``handler`` at ``/v{version}/libpod{path}`` (and unversioned if asked).

        :param since: the lowest API version the route serves; an older
            ``/v{version}`` is 400 (Podman checks this in some handlers).
        """
        self._add(
            Route(
                Dialect.LIBPOD, method, path, handler, versioned_only=not unversioned, since=since
            )
        )

    def _add(self, route: Route) -> None:
        self.routes.append(route)
        for index, pattern in enumerate(route.patterns()):
            endpoint = f"{route.method} {pattern} {index}"
            defaults = None if "<apiversion:version>" in pattern else {"version": None}
            self.app.route(pattern, methods=[route.method], endpoint=endpoint, defaults=defaults)(
                _endpoint(route)
            )


def _padded(numbers: tuple[int, ...]) -> tuple[int, ...]:
    """Compare as Docker's ``versions.compare`` does: missing parts count as 0."""
    return numbers + (0,) * (4 - len(numbers))


_COMPAT_MIN = _padded(parse_version(COMPAT_MIN_API_VERSION))
_COMPAT_MAX = _padded(parse_version(COMPAT_API_VERSION))


def check_compat_version(version: str) -> None:
    """Docker's version middleware: a ``/v{version}`` outside what we speak is a 400.

    Same messages as Docker's (``api/server/middleware/version.go``).
    """
    asked = _padded(parse_version(version))
    if asked < _COMPAT_MIN:
        raise BadRequest(
            f"client version {version} is too old. Minimum supported API version is "
            f"{COMPAT_MIN_API_VERSION}, please upgrade your client to a newer version"
        )
    if asked > _COMPAT_MAX:
        raise BadRequest(
            f"client version {version} is too new. Maximum supported API version is "
            f"{COMPAT_API_VERSION}"
        )


def _endpoint(route: Route) -> Callable[..., Awaitable[Any]]:
    # Not a coroutine itself: it hands Klein the handler's coroutine (Klein runs it
    # with ensureDeferred), one coroutine per request rather than two nested.
    def serve(request: IRequest, version: str | None, **params: str) -> Awaitable[Any]:
        if version is not None and route.dialect is Dialect.COMPAT:
            check_compat_version(version)
        if version is not None and parse_version(version) < route.since:
            # Podman's utils.SupportedVersion + utils.BadRequest, word for word.
            raise BadRequest(
                f"failed to parse query parameter 'version': \"{version}\": "
                "given version is not supported",
                cause="given version is not supported",
            )
        call = ApiCall(request=request, libpod=route.dialect is Dialect.LIBPOD, version=version)
        return route.handler(call, **params)

    return serve
