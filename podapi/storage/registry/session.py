"""Authenticated, retried HTTP exchanges with registries.

A :class:`Session` owns what outlives one operation: the connection pools
(verified and unverified kept apart), the scheme (https/http) that worked per
host, the challenge each registry announced at its ping and the bearer tokens
it handed out.  Authentication follows the distribution token spec: ``GET
/v2/`` (the "ping") tells us the challenge; ``Basic`` gets the user's
credentials, ``Bearer`` a token from the realm, cached per scope and
credentials until it expires.  A 401 on a real request is answered once with
fresh auth.  Connection resets, timeouts, 429 and 5xx are retried with
exponential backoff on the reactor's clock.
"""

import contextlib
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import urlencode

from OpenSSL import SSL
from twisted.internet.defer import CancelledError
from twisted.internet.interfaces import (
    IDelayedCall,
    IReactorPluggableNameResolver,
    IReactorTCP,
    IReactorTime,
)
from twisted.internet.task import deferLater
from twisted.web.http_headers import Headers
from twisted.web.iweb import IResponse

import podapi
from podapi.logs import get_logger
from podapi.storage.registry.auth import (
    Challenge,
    Credentials,
    TokenCache,
    parse_challenges,
    token_from_response,
)
from podapi.storage.registry.endpoints import _Endpoint, _NoVerifyPolicy
from podapi.storage.registry.errors import (
    RegistryError,
    RegistryUnauthorized,
    RegistryUnreachable,
    _describe_network,
    _Transient,
    error_for_status,
)
from podapi.storage.registry.transfer import MAX_ERROR_BODY, MAX_JSON, _FileProducer, _read

if TYPE_CHECKING:
    from treq.client import HTTPClient
    from twisted.web.client import HTTPConnectionPool

T = TypeVar("T")
log = get_logger(__name__)

USER_AGENT = f"podapi/{podapi.__version__}"


async def _error_detail(response: IResponse) -> str:
    """The registry's explanation: ``code: message`` items from its JSON errors body.

    Formatted like distribution's ``errcode`` (``MANIFEST_UNKNOWN`` ->
    ``manifest unknown``), so messages read as Podman's do.
    """
    try:
        body = await _read(response, MAX_ERROR_BODY)
    except Exception:
        body = b""
    fallback = f"{response.code} {response.phrase.decode('latin-1')}".strip()
    try:
        errors = json.loads(body).get("errors")
    except (ValueError, AttributeError):
        errors = None
    if not isinstance(errors, list) or not errors:
        text = body.decode("utf-8", "replace").strip()
        if text and len(text) < 200 and "<" not in text:
            return f"{fallback}: {text}"
        return fallback
    items = []
    for item in errors:
        if isinstance(item, dict):
            code = str(item.get("code", "")).lower().replace("_", " ")
            message = str(item.get("message", ""))
            items.append(f"{code}: {message}" if code and message else code or message)
    return "; ".join(i for i in items if i) or fallback


def _retry_after(response: IResponse) -> float:
    for value in response.headers.getRawHeaders(b"retry-after", []):
        with contextlib.suppress(ValueError):
            return max(0.0, float(value))
    return 0.0


class IWebReactor(IReactorTime, IReactorTCP, IReactorPluggableNameResolver):
    """What an HTTP(S) client agent needs: connections, name resolution and timers."""


class Session:
    """HTTP to registries for one :class:`~podapi.storage.registry.RegistryClient`.

    The parameters are the client's of the same names; ``max_parallel`` sizes
    the connection pools.
    """

    def __init__(
        self,
        reactor: IWebReactor,
        *,
        max_parallel: int,
        retries: int,
        timeout: float,
        backoff: float,
    ) -> None:
        self.clock: IReactorTime = reactor
        self.timeout = timeout
        self._retries = retries
        self._backoff = backoff
        self._reactor = reactor
        self._max_parallel = max_parallel
        self._pools: list[HTTPConnectionPool] = []
        self._clients: dict[bool, HTTPClient] = {}
        self._bases: dict[tuple[str, bool], str] = {}
        self._challenges: dict[str, list[Challenge]] = {}
        self._tokens = TokenCache(reactor)

    def _client(self, insecure: bool) -> "HTTPClient":
        """The HTTP client with (or, ``insecure``, without) certificate checks.

        Made on first use: treq and twisted.web.client are not needed to start a server.
        """
        client = self._clients.get(insecure)
        if client is None:
            from treq.client import HTTPClient  # noqa: PLC0415
            from twisted.web.client import (  # noqa: PLC0415
                Agent,
                BrowserLikePolicyForHTTPS,
                HTTPConnectionPool,
            )

            # Separate pools: a connection opened without certificate checks must
            # never be reused for a request that wants them.
            pool = HTTPConnectionPool(self._reactor)
            pool.maxPersistentPerHost = self._max_parallel + 1
            self._pools.append(pool)
            policy = _NoVerifyPolicy() if insecure else BrowserLikePolicyForHTTPS()
            agent = Agent(self._reactor, policy, connectTimeout=self.timeout, pool=pool)
            client = self._clients[insecure] = HTTPClient(agent)
        return client

    async def close(self) -> None:
        """Close idle pooled connections (at service stop and in tests)."""
        for pool in self._pools:
            await pool.closeCachedConnections()

    def challenges(self, base: str) -> list[Challenge]:
        """What ``base``'s ping announced (empty for an open registry)."""
        return self._challenges.get(base, [])

    async def retrying(self, attempt: Callable[[], Awaitable[T]]) -> T:
        """Run ``attempt`` until it succeeds, fails for good, or retries run out."""
        tries = 0
        while True:
            try:
                return await attempt()
            except _Transient as transient:
                if tries >= self._retries:
                    raise transient.error from None
                delay = max(self._backoff * 2**tries, transient.retry_after)
                tries += 1
                log.info(
                    "{error}; retrying in {delay:.1f}s ({tries}/{retries})",
                    error=transient.error.message,
                    delay=delay,
                    tries=tries,
                    retries=self._retries,
                )
                await deferLater(self.clock, min(delay, self.timeout))

    async def base(self, endpoint: _Endpoint) -> str:
        """``scheme://host`` for ``endpoint`` after a successful ping (cached).

        The ping is ``GET /v2/``: 200 or 401 means a registry lives there, and
        a 401 carries the challenge every later request answers up front.
        """
        key = (endpoint.host, endpoint.insecure)
        cached = self._bases.get(key)
        if cached is not None:
            return cached
        https = f"https://{endpoint.host}"
        if endpoint.insecure:
            # Docker's order for insecure registries: https without checks, and
            # on any failure plain http (where retries then apply).
            try:
                await self._ping(endpoint, https)
            except (RegistryError, _Transient) as e:
                log.debug("{host}: https failed, trying http: {error}", host=endpoint.host, error=e)
            else:
                self._bases[key] = https
                return https
        base = f"http://{endpoint.host}" if endpoint.insecure else https
        await self.retrying(lambda: self._ping(endpoint, base))
        self._bases[key] = base
        return base

    async def _ping(self, endpoint: _Endpoint, base: str) -> None:
        what = f"pinging container registry {endpoint.host}"
        response = await self.request(endpoint.insecure, "GET", base + "/v2/", what=what)
        if response.code in (200, 401):
            self._challenges[base] = parse_challenges(
                response.headers.getRawHeaders(b"www-authenticate", [])
            )
            await _read(response, MAX_ERROR_BODY)
            return
        detail = await _error_detail(response)
        error = RegistryError(f"{what}: invalid status code from registry {detail}")
        if response.code == 429 or response.code >= 500:
            raise _Transient(error, _retry_after(response))
        raise error

    async def send(
        self,
        endpoint: _Endpoint,
        method: str,
        url: str,
        *,
        what: str,
        scope: str,
        creds: Credentials | None,
        headers: Mapping[str, str] | None = None,
        body: Callable[[], bytes | _FileProducer] | None = None,
        redirects: bool = False,
    ) -> IResponse:
        """One authenticated request to the registry.

        ``url`` is a path on the registry or an absolute URL (upload
        locations); credentials only go to the registry's own origin.
        ``scope`` is the repository action (``pull``, ``pull,push``) or a
        full token scope (``registry:catalog:*``).

        :raises RegistryUnauthorized: still 401 after answering the challenge.
        :raises _Transient: 429, 5xx or a retryable network failure.
        """
        base = await self.base(endpoint)
        full = base + url if url.startswith("/") else url
        own = full.startswith(base + "/")
        token_scope = scope if ":" in scope else f"repository:{endpoint.path}:{scope}"
        auth = None
        if own:
            challenges = self._challenges.get(base, [])
            auth = await self.authorize(endpoint, challenges, token_scope, creds, what, fresh=False)
        response = await self.request(
            endpoint.insecure,
            method,
            full,
            what=what,
            headers=headers,
            auth=auth,
            body=body,
            redirects=redirects,
        )
        if response.code == 401 and own:
            challenges = parse_challenges(response.headers.getRawHeaders(b"www-authenticate", []))
            detail = await _error_detail(response)
            retry = None
            if challenges:
                retry = await self.authorize(
                    endpoint, challenges, token_scope, creds, what, fresh=True
                )
            if retry is not None and retry != auth:
                # Remember the scheme and realm for the host, not this request's scope.
                self._challenges[base] = [
                    Challenge(c.scheme, {k: v for k, v in c.params.items() if k != "scope"})
                    for c in challenges
                ]
                response = await self.request(
                    endpoint.insecure,
                    method,
                    full,
                    what=what,
                    headers=headers,
                    auth=retry,
                    body=body,
                    redirects=redirects,
                )
                if response.code == 401:
                    detail = await _error_detail(response)
            if response.code == 401:
                if not detail.startswith("unauthorized"):
                    # Docker's words when a registry explains nothing (empty 401 body).
                    detail = f"unauthorized: authentication required ({detail})"
                raise RegistryUnauthorized(f"{what}: {detail}", detail=detail)
        if response.code == 429 or response.code >= 500:
            error = error_for_status(what, await _error_detail(response), response.code)
            raise _Transient(error, _retry_after(response))
        return response

    async def authorize(
        self,
        endpoint: _Endpoint,
        challenges: Sequence[Challenge],
        scope: str,
        creds: Credentials | None,
        what: str,
        *,
        fresh: bool,
    ) -> str | None:
        """The ``Authorization`` value answering ``challenges`` (None: go anonymous)."""
        if creds is not None and creds.registry_token:
            return "Bearer " + creds.registry_token
        for challenge in challenges:
            if challenge.scheme == "bearer" and challenge.params.get("realm"):
                scopes = scope.split()
                for extra in challenge.params.get("scope", "").split():
                    if extra not in scopes:
                        scopes.append(extra)
                token = await self._token(
                    endpoint=endpoint,
                    challenge=challenge,
                    scopes=tuple(scopes),
                    creds=creds,
                    what=what,
                    fresh=fresh,
                )
                return "Bearer " + token
        for challenge in challenges:
            if challenge.scheme == "basic" and creds is not None and creds.username:
                return creds.basic_authorization()
        return None

    async def _token(
        self,
        *,
        endpoint: _Endpoint,
        challenge: Challenge,
        scopes: tuple[str, ...],
        creds: Credentials | None,
        what: str,
        fresh: bool,
    ) -> str:
        """A bearer token from the challenge's realm (token spec; OAuth2 for identity tokens)."""
        realm = challenge.params["realm"]
        service = challenge.params.get("service", "")
        key = (realm, service, scopes, creds)
        if not fresh:
            cached = self._tokens.get(key)
            if cached is not None:
                return cached
        if not realm.startswith(("https://", "http://")):
            raise RegistryError(f"{what}: invalid token realm {realm!r}")
        headers: dict[str, str] = {}
        auth = None
        body: Callable[[], bytes] | None = None
        if creds is not None and creds.identity_token:
            # Docker's refresh-token flow (distribution's oauth.md): POST a form.
            form = [("grant_type", "refresh_token"), ("refresh_token", creds.identity_token)]
            form += [("service", service), ("client_id", "podapi")]
            form += [("scope", s) for s in scopes]
            data = urlencode(form).encode("ascii")
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            method, url = "POST", realm

            def body() -> bytes:
                return data

        else:
            query = [("service", service)] if service else []
            query += [("scope", s) for s in scopes]
            if creds is not None and creds.username:
                query.append(("account", creds.username))
                auth = creds.basic_authorization()
            method = "GET"
            url = realm + ("&" if "?" in realm else "?") + urlencode(query) if query else realm
        response = await self.request(
            endpoint.insecure, method, url, what=what, headers=headers, auth=auth, body=body
        )
        if response.code in (401, 403):
            detail = await _error_detail(response)
            raise RegistryUnauthorized(
                f"{what}: unable to retrieve auth token: invalid username/password: {detail}"
            )
        if response.code == 429 or response.code >= 500:
            detail = await _error_detail(response)
            raise _Transient(RegistryError(f"{what}: getting a token: {detail}"))
        if response.code != 200:
            detail = await _error_detail(response)
            raise RegistryError(f"{what}: getting a token: {detail}")
        try:
            token, expires_in = token_from_response(json.loads(await _read(response, MAX_JSON)))
        except ValueError as e:
            raise RegistryError(f"{what}: getting a token: {e}") from e
        self._tokens.put(key, token, expires_in)
        return token

    async def request(
        self,
        insecure: bool,
        method: str,
        url: str,
        *,
        what: str,
        headers: Mapping[str, str] | None = None,
        auth: str | None = None,
        body: Callable[[], bytes | _FileProducer] | None = None,
        redirects: bool = False,
    ) -> IResponse:
        """One HTTP exchange up to the response headers, with a timeout.

        Failures below HTTP become :class:`RegistryUnreachable` (wrapped in
        :class:`_Transient` when worth retrying).  The timeout starts after a
        streamed body has been sent, so big uploads are bounded by idleness,
        not by length.
        """
        all_headers = Headers({"User-Agent": [USER_AGENT]})
        for name, value in (headers or {}).items():
            all_headers.setRawHeaders(name, [value])
        if auth is not None:
            all_headers.setRawHeaders("Authorization", [auth])
        data = body() if body is not None else None
        client = self._client(insecure)
        d = client.request(
            method,
            url,
            headers=all_headers,
            data=data,
            allow_redirects=redirects,
            unbuffered=True,
        )
        timed_out = False
        timer: IDelayedCall | None = None

        def expire() -> None:
            nonlocal timed_out
            timed_out = True
            d.cancel()

        def start_timer(_: object = None) -> None:
            nonlocal timer
            if not d.called:
                timer = self.clock.callLater(self.timeout, expire)

        if isinstance(data, _FileProducer):
            data.sent.addCallback(start_timer)
        else:
            start_timer()
        try:
            response: IResponse = await d
        except Exception as e:
            if timed_out:
                raise _Transient(RegistryUnreachable(f"{what}: i/o timeout")) from e
            if isinstance(e, CancelledError):
                raise
            inner = _unwrap(e)
            if inner is not None:
                raise inner from e
            failure = _describe_network(e)
            error = RegistryUnreachable(f"{what}: {failure.reason}")
            if failure.retryable:
                raise _Transient(error) from e
            raise error from e
        finally:
            if timer is not None and timer.active():
                timer.cancel()
        return response


def _unwrap(exc: BaseException) -> BaseException | None:
    """A local error (reading the blob file) hidden in Twisted's request-failure wrappers."""
    for reason in getattr(exc, "reasons", None) or ():
        value = reason.value
        if isinstance(value, OSError | ValueError) and not isinstance(value, SSL.Error):
            return value
    return None
