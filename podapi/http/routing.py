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

A starting server listens with ``_ping`` alone registered and adds the rest of
the API once it has imported and opened the engine (most of a cold start):
:meth:`Router.resource` holds the requests for routes not yet registered until
:meth:`Router.complete`.
"""

import enum
import re
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, Protocol, cast

from attrs import frozen
from klein import Klein
from twisted.internet.defer import CancelledError, Deferred, fail, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure
from twisted.web.iweb import IRequest
from twisted.web.resource import IResource, Resource
from twisted.web.server import NOT_DONE_YET, Request
from werkzeug.routing import BaseConverter, Map, Rule

from podapi import COMPAT_API_VERSION, COMPAT_MIN_API_VERSION
from podapi.errors import ServiceUnavailable
from podapi.http.call import ApiCall, BadRequest, parse_version
from podapi.http.errors import install_error_handlers, write_error
from podapi.threads import ThreadPipe

Handler = Callable[..., Awaitable[Any]]
#: Starts consuming a request body as it arrives; returns what the handler will be
#: given (:func:`podapi.http.site.streamed_body`), or None to have the body spooled.
BodyReceiver = Callable[[ThreadPipe], object | None]
#: Seconds a request waits for its route while the server starts (then 503), as
#: long as the engine's reconcile may take (``podapi.engine.engine.RECONCILE_WAIT``).
START_WAIT = 60.0


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
    #: Served while the engine still reconciles at start-up (it reads nothing the
    #: reconcile changes); other routes wait for it.
    early: bool = False

    @property
    def full_path(self) -> str:
        """The path under its tree, without the version (``/libpod/images/json``)."""
        return ("/libpod" if self.dialect is Dialect.LIBPOD else "") + self.path

    def patterns(self) -> list[str]:
        """The werkzeug rules registered for this route."""
        versioned = "/v<apiversion:version>" + self.full_path
        return [versioned] if self.versioned_only else [versioned, self.full_path]


class _LazyBuilderRule(Rule):
    """A werkzeug rule whose URL builders are compiled the first time one is used.

    werkzeug compiles two functions per rule (``ast`` plus ``compile``) to build
    URLs (``url_for``), which this API never does: for our ~310 rules that was
    most of the time spent registering routes, about 150 ms of every cold start.
    Matching does not use them.  Should werkzeug stop calling
    ``_compile_builder`` this override is simply unused: behaviour is the same.
    """

    def _compile_builder(self, append_unknown: bool = True) -> Callable[..., tuple[str, str]]:
        attribute = "_build_unknown" if append_unknown else "_build"

        def build(rule: "_LazyBuilderRule", **values: Any) -> tuple[str, str]:
            compiled = Rule._compile_builder(rule, append_unknown).__get__(rule, None)
            setattr(rule, attribute, compiled)
            return compiled(**values)

        return build


def _add_lazily(url_map: Map, rule: Rule) -> None:
    """``Map.add`` of Klein's rules as :class:`_LazyBuilderRule` (Klein builds plain ones)."""
    Map.add(url_map, _LazyBuilderRule(rule.rule, **rule.get_empty_kwargs()))


class Gate(Protocol):
    """What routes not marked ``early`` wait for: the engine's start-up reconcile."""

    ready: bool

    async def reconciled(self) -> None:
        """Return once the reconcile is done (raise when it does not end in time)."""


class Router:
    """Collects routes and serves them through one Klein app."""

    def __init__(self) -> None:
        self._gate: Gate | None = None
        #: Requests held until :meth:`complete` (None: complete).
        self._held: list[Deferred[None]] | None = []
        #: Why the routes will never be complete (:meth:`abandon`).
        self._refusal: str | None = None
        self.app = Klein()
        url_map = self.app.url_map
        url_map.converters["apiversion"] = ApiVersionConverter
        url_map.merge_slashes = False
        url_map.add = partial(_add_lazily, url_map)  # type: ignore[method-assign]
        self.routes: list[Route] = []
        self._receivers: list[tuple[bytes, re.Pattern[bytes], BodyReceiver]] = []
        install_error_handlers(self.app)

    def gate_with(self, gate: Gate) -> None:
        """Have the routes added from now on (not marked ``early``) wait for ``gate``."""
        self._gate = gate

    def complete(self) -> None:
        """Every route is added: serve the requests :meth:`resource` held."""
        held, self._held = self._held or [], None
        for waiting in held:
            waiting.callback(None)

    def abandon(self, reason: str) -> None:
        """The routes will never be complete (the server stops before): requests held
        and any that still come for them get a 503.  Once complete, nothing changes."""
        if self._held is None:
            return
        held, self._held = self._held, []
        self._refusal = reason
        for waiting in held:
            waiting.errback(ServiceUnavailable(reason))

    @property
    def is_complete(self) -> bool:
        """Every route is added (:meth:`complete`)."""
        return self._held is None

    def until_complete(self) -> Deferred[None]:
        """Fires once :meth:`complete` is called; fails if :meth:`abandon` was."""
        if self._held is None:
            return succeed(None)
        if self._refusal is not None:
            return fail(ServiceUnavailable(self._refusal))
        waiting: Deferred[None] = Deferred()
        self._held.append(waiting)
        return waiting

    def resource(self, clock: IReactorTime, timeout: float = START_WAIT) -> IResource:
        """The site's resource: the Klein app, except that until :meth:`complete` a
        request for a route not yet added waits for it (``timeout`` seconds, then 503)."""
        return _HoldingResource(self, clock, timeout)

    def compat(self, method: str, path: str, handler: Handler, *, early: bool = False) -> None:
        """Serve ``handler`` at ``path`` and ``/v{version}path``.

        :param early: served while the engine reconciles (see :attr:`Route.early`).
        """
        self._add(Route(Dialect.COMPAT, method, path, handler, versioned_only=False, early=early))

    def libpod(
        self,
        method: str,
        path: str,
        handler: Handler,
        *,
        unversioned: bool = False,
        since: tuple[int, ...] = (),
        early: bool = False,
    ) -> None:
        """Serve ``handler`` at ``/v{version}/libpod{path}`` (and unversioned if asked).

        :param since: the lowest API version the route serves; an older
            ``/v{version}`` is 400 (Podman checks this in some handlers).
        :param early: served while the engine reconciles (see :attr:`Route.early`).
        """
        self._add(
            Route(
                Dialect.LIBPOD,
                method,
                path,
                handler,
                versioned_only=not unversioned,
                since=since,
                early=early,
            )
        )

    def receive_body(
        self, dialect: Dialect, method: str, path: str, receiver: BodyReceiver
    ) -> None:
        """Have ``receiver`` consume the bodies of this route's requests as they
        arrive (before the handler runs), rather than spooling them first."""
        version = r"/v" + ApiVersionConverter.regex
        prefix = f"(?:{version})?" if dialect is Dialect.COMPAT else version + "/libpod"
        pattern = re.compile(f"^{prefix}{re.escape(path)}(?:\\?.*)?$".encode(), re.DOTALL)
        self._receivers.append((method.encode(), pattern, receiver))

    def body_receiver(self, method: bytes, uri: bytes) -> BodyReceiver | None:
        """The receiver for a request's body, if its route has one.

        None until the engine's start-up reconcile is done: a receiver writes into
        the store the reconcile is still tidying (its staging files are removed),
        so such a body is spooled and handled once the route's gate opens.
        """
        if self._gate is not None and not self._gate.ready:
            return None
        for wanted, pattern, receiver in self._receivers:
            if method == wanted and pattern.match(uri):
                return receiver
        return None

    def _add(self, route: Route) -> None:
        self.routes.append(route)
        for index, pattern in enumerate(route.patterns()):
            endpoint = f"{route.method} {pattern} {index}"
            defaults = None if "<apiversion:version>" in pattern else {"version": None}
            self.app.route(pattern, methods=[route.method], endpoint=endpoint, defaults=defaults)(
                _endpoint(route, None if route.early else self._gate)
            )


class _HoldingResource(Resource):
    """:meth:`Router.resource`."""

    isLeaf = True

    def __init__(self, router: Router, clock: IReactorTime, timeout: float) -> None:
        super().__init__()
        self._router = router
        self._app: IResource = router.app.resource()
        self._clock = clock
        self._timeout = timeout

    def render(self, request: IRequest) -> bytes | int:
        request = cast(Request, request)
        if self._router.is_complete or self._registered(request):
            return self._app.render(request)
        waiting = self._router.until_complete()
        waiting.addTimeout(self._timeout, self._clock)
        request.notifyFinish().addErrback(lambda _: waiting.cancel())
        waiting.addCallbacks(lambda _: request.render(self._app), partial(_unavailable, request))
        return NOT_DONE_YET

    def _registered(self, request: IRequest) -> bool:
        # werkzeug's own test (a redirect counts: Klein then answers it).
        adapter = self._router.app.url_map.bind("localhost")
        return adapter.test(request.path.decode("latin-1"), request.method.decode("latin-1"))


def _unavailable(request: IRequest, failure: Failure) -> None:
    if failure.check(CancelledError):  # the client left
        return
    error = failure.value
    if not isinstance(error, ServiceUnavailable):  # the wait timed out
        error = ServiceUnavailable("the server is still starting: retry later")
    request.write(write_error(request, 503, error.message, error.cause))
    request.finish()


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


def _endpoint(route: Route, gate: Gate | None) -> Callable[..., Awaitable[Any]]:
    # Not a coroutine itself: it hands Klein the handler's coroutine (Klein runs it
    # with ensureDeferred), one coroutine per request rather than two nested; only a
    # request that comes before the reconcile ends takes a second one, to wait in.
    def serve(request: IRequest, version: str | None, **params: str) -> Awaitable[Any]:
        if gate is not None and not gate.ready:
            return _after_reconcile(gate, partial(handle, request, version, **params))
        return handle(request, version, **params)

    def handle(request: IRequest, version: str | None, **params: str) -> Awaitable[Any]:
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


async def _after_reconcile(gate: Gate, handle: Callable[[], Awaitable[Any]]) -> Any:
    await gate.reconciled()
    return await handle()
