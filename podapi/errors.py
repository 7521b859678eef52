"""Domain exceptions raised by the engine and mapped to HTTP once in ``http/errors``.

Each error carries Podman's two strings: ``cause`` (the innermost reason, e.g.
``no such container``) and ``message`` (the full sentence a user reads).
"""


class PodapiError(Exception):
    """Base class of every error the engine reports to API clients."""

    cause = "internal error"

    def __init__(self, message: str, cause: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if cause is not None:
            self.cause = cause


class NotFound(PodapiError):
    """The named object does not exist (404)."""

    cause = "no such object"


class NoSuchContainer(NotFound):
    cause = "no such container"


class NoSuchImage(NotFound):
    cause = "no such image"


class NoSuchExecSession(NotFound):
    cause = "no such exec session"


class NoSuchNetwork(NotFound):
    cause = "network not found"


class NoSuchVolume(NotFound):
    cause = "no such volume"


class InvalidArgument(PodapiError):
    """The request is well-formed HTTP but asks for something invalid (400)."""

    cause = "invalid argument"


class Conflict(PodapiError):
    """The request conflicts with the current state (409)."""

    cause = "conflict"


class Unauthorized(PodapiError):
    """Credentials were refused (401)."""

    cause = "unauthorized"


class NotModified(PodapiError):
    """Nothing to do: already in the requested state (304, no body)."""

    cause = "not modified"


class Unsupported(PodapiError):
    """A Docker feature Podman (and so podapi) does not offer."""

    cause = "not supported"


class NotImplementedHere(PodapiError):
    """Asked of something that cannot do it (501), e.g. logs of a ``none`` log driver."""

    cause = "not implemented"


class ServiceUnavailable(PodapiError):
    """Swarm and other services we do not run (503)."""

    cause = "service unavailable"


class UpstreamError(PodapiError):
    """A registry or another remote party failed (502/500 depending on route)."""

    cause = "upstream error"
