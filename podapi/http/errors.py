"""Engine errors and routing failures as Podman's ``{"cause","message","response"}``.

Registered once on the Klein app.  Unknown exceptions are logged with their
traceback and answered with a 500 of the same shape; a failure after a stream
has started can only be logged, and the connection is closed.
"""

import errno
from typing import Any, cast

from klein import Klein
from twisted.internet.defer import CancelledError
from twisted.python.failure import Failure
from twisted.web.iweb import IRequest
from twisted.web.server import Request
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound

from podapi import errors
from podapi.http.call import BodyTooLarge
from podapi.http.responses import encode_json
from podapi.logs import get_logger

log = get_logger(__name__)

#: Status per domain error; the first matching class (in MRO order) wins.
STATUS: dict[type[errors.PodapiError], int] = {
    BodyTooLarge: 413,
    errors.NotFound: 404,
    errors.InvalidArgument: 400,
    errors.Conflict: 409,
    errors.Unauthorized: 401,
    errors.NotModified: 304,
    errors.Unsupported: 404,
    errors.NotImplementedHere: 501,
    errors.ServiceUnavailable: 503,
    errors.UpstreamError: 500,
}


def status_for(error: errors.PodapiError) -> int:
    """The HTTP status for a domain error."""
    for cls in type(error).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def error_body(code: int, message: str, cause: str) -> bytes:
    """Podman's error JSON."""
    return encode_json({"cause": cause, "message": message, "response": code})


def write_error(request: IRequest, code: int, message: str, cause: str) -> bytes:
    """Set status and content type for an error; return the body (empty for 304)."""
    request = cast(Request, request)
    if request.startedWriting:
        # Too late for a status line: the stream already began.
        log.warn("error after the response started: {message}", message=message)
        transport = request.channel.transport
        if transport is not None:
            transport.loseConnection()
        return b""
    request.setResponseCode(code)
    if code == 304:
        return b""
    request.setHeader(b"Content-Type", b"application/json")
    return error_body(code, message, cause)


def install_error_handlers(app: Klein) -> None:
    """Register the error handlers on ``app`` (most specific first)."""

    @app.handle_errors(errors.PodapiError)
    def domain_error(request: IRequest, failure: Failure) -> bytes:
        error: Any = failure.value
        return write_error(request, status_for(error), error.message, error.cause)

    @app.handle_errors(NotFound)
    def unknown_path(request: IRequest, failure: Failure) -> bytes:
        # Podman answers router 404/405 in plain text; a JSON body in its usual
        # error shape is what every client already parses, so we use that.
        path = request.path.decode("utf-8", "replace")
        return write_error(request, 404, f"page not found: {path}", "page not found")

    @app.handle_errors(MethodNotAllowed)
    def wrong_method(request: IRequest, failure: Failure) -> bytes:
        method = request.method.decode("ascii", "replace")
        exc: Any = failure.value
        allowed = sorted(exc.valid_methods or [])
        request.setHeader(b"Allow", ", ".join(allowed).encode())
        return write_error(
            request,
            405,
            f"method {method} not allowed on {request.path.decode()}",
            "method not allowed",
        )

    @app.handle_errors(HTTPException)
    def other_http(request: IRequest, failure: Failure) -> bytes:
        exc: Any = failure.value
        return write_error(request, exc.code or 500, exc.description or str(exc), exc.name)

    @app.handle_errors(Exception)
    def unexpected(request: IRequest, failure: Failure) -> bytes | None:
        if failure.check(CancelledError):
            return None  # the client went away; nothing to answer
        error = failure.value
        if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
            # Podman answers a full disk with a 500 naming it; no traceback: not a bug.
            log.warn(
                "{path}: {error}", path=request.uri.decode("utf-8", "replace"), error=failure.value
            )
            return write_error(
                request, 500, f"no space left on device: {failure.value}", "no space left on device"
            )
        log.failure(
            "unhandled error in {path}", failure, path=request.uri.decode("utf-8", "replace")
        )
        return write_error(
            request, 500, str(failure.value) or repr(failure.value), "internal error"
        )
