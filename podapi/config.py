"""The server's configuration, built once from the command line."""

from attrs import frozen

from podapi.listen import ListenAddress


@frozen
class Config:
    """Everything ``twistd podapi`` was told.

    :ivar root: persistent state (``--root``).
    :ivar runroot: volatile state (``--runroot``).
    :ivar listen: where the API is served.
    :ivar timeout: idle timeout in seconds (0 = never).
    :ivar cors: ``Access-Control-Allow-Origin`` value, or None for no CORS.
    :ivar log_level: Podman log level name.
    :ivar runtime: the OCI runtime asked for with ``--runtime`` (None: detect).
    """

    root: str
    runroot: str
    listen: ListenAddress
    timeout: float = 5.0
    cors: str | None = None
    log_level: str = "warn"
    runtime: str | None = None
