"""The server's configuration, built once from the command line."""

import socket

from attrs import frozen


@frozen
class InheritedSocket:
    """A listening socket passed by systemd (``sd_listen_fds``).

    :ivar fd: the descriptor (3 and up).
    :ivar family: its address family (``socket.AF_UNIX``, ``AF_INET``...).
    """

    fd: int
    family: socket.AddressFamily


@frozen
class ListenAddress:
    """A resolved listen address.

    :ivar uri: what the user gave (or the default), for messages and ``/info``.
    :ivar endpoint: a Twisted server endpoint description to listen on, or None
        for a plain UNIX socket at ``socket_path`` (mode 0600), which the service
        opens with ``listenUNIX`` (sparing the endpoints machinery at start-up).
    :ivar socket_path: the UNIX socket file we manage, if any.
    :ivar plain_tcp: serving HTTP over TCP without TLS (worth a warning).
    :ivar inherited: a listening socket systemd passed (socket activation): the
        service adopts this descriptor instead of binding anything.
    """

    uri: str
    endpoint: str | None
    socket_path: str | None = None
    plain_tcp: bool = False
    inherited: InheritedSocket | None = None


#: Linux interface names have at most 15 characters.
BRIDGE_NAME_MAX = 15


@frozen
class NetworkConfig:
    """The default network and where new networks come from (``twistd podapi`` options)."""

    default_name: str = "podman"
    default_bridge: str = "podman0"
    default_subnet: str = "10.88.0.0/16"
    subnet_pool: str = "10.89.0.0/16"
    bridge_prefix: str = "podman"


@frozen
class TLSFiles:
    """PEM files for a TLS listener.

    :ivar cert: the server's certificate (chain).
    :ivar key: its private key.
    :ivar client_ca: CA certificates that sign accepted client certificates, or
        None to accept any client (server authentication only).
    """

    cert: str
    key: str
    client_ca: str | None = None


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
    :ivar network: the default network and the pool new networks come from.
    :ivar socket_gid: the group given the UNIX socket (``--group``), or None for 0600.
    :ivar tls: the TLS files of a TCP listener (``--tls-cert``...), or None.
    :ivar header_timeout: seconds a request's headers may take (``--header-timeout``).
    :ivar max_connections: connections open at once (``--max-connections``); None:
        half the descriptor limit.
    """

    root: str
    runroot: str
    listen: ListenAddress
    timeout: float = 5.0
    cors: str | None = None
    log_level: str = "warn"
    runtime: str | None = None
    network: NetworkConfig = NetworkConfig()
    socket_gid: int | None = None
    tls: TLSFiles | None = None
    header_timeout: float = 60.0
    max_connections: int | None = None
