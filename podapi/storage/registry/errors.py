"""What can go wrong talking to a registry.

The domain errors the engine sees (:class:`RegistryError` and its
subclasses), :class:`InvalidManifest` for content that breaks the image spec,
and the internal signals the client uses to decide what to retry: a
:class:`_Transient` failure, an :class:`_IdleTimeout` and the description of
a failure below HTTP (:func:`_describe_network`).
"""

from OpenSSL import SSL
from twisted.internet import error as neterror

from podapi.errors import NotFound, UpstreamError


class RegistryError(UpstreamError):
    """A registry refused or failed a request; the message names host and repository.

    :ivar detail: the registry's own explanation of a refusal (``code: message``
        items of its errors body, e.g. ``manifest unknown: manifest unknown``),
        empty when the failure was not an answer of the registry.
    """

    cause = "registry error"

    def __init__(self, message: str, cause: str | None = None, *, detail: str = "") -> None:
        super().__init__(message, cause)
        self.detail = detail


class RegistryUnauthorized(RegistryError):
    """The registry still said 401/403 after we tried the credentials we had."""

    cause = "unauthorized"


class ManifestUnknown(NotFound, RegistryError):
    """The tag, digest or repository does not exist (404 ``MANIFEST_UNKNOWN``/``NAME_UNKNOWN``).

    ``NotFound`` comes first so the HTTP layer, which maps the first class of
    the MRO it knows, answers 404 rather than the 500 of ``UpstreamError``.
    """

    cause = "manifest unknown"


class RegistryUnreachable(RegistryError):
    """Connection refused, unknown host, timeout or TLS failure."""

    cause = "registry unreachable"


class BlockedRegistry(RegistryError):
    """``registries.conf`` says ``blocked = true`` for this registry."""

    cause = "blocked registry"


class _Transient(Exception):
    """An attempt failed in a way worth retrying; ``error`` is raised if retries run out."""

    def __init__(self, error: RegistryError, retry_after: float = 0) -> None:
        super().__init__(error.message)
        self.error = error
        self.retry_after = retry_after


class _NetworkError(Exception):
    """A request failed below HTTP."""

    def __init__(self, reason: str, retryable: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable


class InvalidManifest(ValueError):
    """A manifest or descriptor that does not follow the image spec."""


class _IdleTimeout(Exception):
    """No bytes moved for ``timeout`` seconds."""


def _describe_network(exc: BaseException) -> _NetworkError:
    """A user-facing reason for a failure below HTTP, and whether to retry it."""
    from twisted.web.client import ResponseDone  # noqa: PLC0415 (on first use: the HTTP client is not needed to start)

    reasons = getattr(exc, "reasons", None)
    if reasons:
        # ResponseFailed & co. wrap what really happened.
        for reason in reasons:
            if not isinstance(reason.value, neterror.ConnectionDone | ResponseDone):
                return _describe_network(reason.value)
        return _NetworkError("connection closed by the registry", True)
    if isinstance(exc, _IdleTimeout):
        return _NetworkError("i/o timeout", True)
    if isinstance(exc, SSL.Error):
        details = [str(part[-1]) for part in (exc.args[0] if exc.args else []) if part]
        return _NetworkError("tls: " + ("; ".join(details) or "handshake failed"), False)
    if isinstance(exc, neterror.ConnectionRefusedError):
        return _NetworkError("connect: connection refused", False)
    if isinstance(exc, neterror.DNSLookupError):
        return _NetworkError("no such host", False)
    if isinstance(exc, neterror.TimeoutError | neterror.TCPTimedOutError):
        return _NetworkError("i/o timeout", True)
    if isinstance(exc, neterror.ConnectionLost | neterror.ConnectionDone):
        return _NetworkError("connection reset by peer", True)
    if isinstance(exc, neterror.ConnectError):
        return _NetworkError(f"connect: {exc.osError or exc}", False)
    return _NetworkError(str(exc) or type(exc).__name__, False)


def error_for_status(what: str, detail: str, status: int) -> RegistryError:
    """The domain error for a final (non-retryable) response."""
    if status in (401, 403):
        return RegistryUnauthorized(f"{what}: {detail}", detail=detail)
    if status == 404:
        return ManifestUnknown(f"{what}: {detail}", detail=detail)
    return RegistryError(f"{what}: {detail}", detail=detail)
