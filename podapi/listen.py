"""Where the service listens: URI parsing, default socket, and UNIX socket rules.

Accepted forms (Podman's plus Twisted's):

* ``unix:///abs/path.sock`` and ``unix:/abs/path.sock``;
* ``tcp://host:port`` and ``tcp:host:port`` (plain HTTP: a warning is logged);
* ``systemd:domain=UNIX:index=0`` or ``systemd:domain=UNIX:name=podapi.socket``
  (socket activation, Twisted's syntax), and no URI at all under socket
  activation (Podman's form: the one socket systemd passed);
* any other Twisted server endpoint string: ``ssl:8443:privateKey=...``,
  ``tcp:8080:interface=127.0.0.1``.

Socket activation is read here, not by Twisted's ``systemd:`` parser: Twisted
reads ``LISTEN_FDS`` once, when ``twisted.internet.endpoints`` is first
imported (``_SystemdParser._sddaemon``), deletes it from the environment, and
drops every descriptor when ``LISTEN_FDNAMES`` is missing (as under
``systemd-socket-activate`` without ``--fdname``).  The engine imports
``twisted.web.client``, which imports the endpoints module: by the time an
endpoint string was parsed, the descriptors were gone (``IndexError``).
:func:`take_activation` runs while options are parsed, before the engine is
imported (``podapi.tap`` imports it lazily for that reason).

Socket rules differ from Podman on purpose where Podman loses data or
surprises users: missing parent directories are created for any path (Podman
only does so for its default paths); a stale socket is removed but a *live*
one is left alone and we refuse to start (Podman silently steals it); a path
that is not a socket is never deleted.
"""

import errno
import os
import socket
import stat
from collections.abc import MutableMapping
from typing import cast

from attrs import frozen
from twisted.internet import tcp, unix
from twisted.internet.interfaces import IListeningPort, IProtocolFactory, IReactorSocket

from podapi.config import InheritedSocket, ListenAddress

#: sd_listen_fds(3): passed descriptors start here.
SD_LISTEN_FDS_START = 3

#: Linux keeps a socket's backlog in 16 bits (Go caps ``somaxconn`` the same way).
MAX_BACKLOG = 65535

#: Twisted endpoint types we pass through unchanged.
TWISTED_SCHEMES = ("systemd", "ssl", "tcp6", "tls", "unix", "tcp")


class ListenError(Exception):
    """The listen address is unusable; the message says why and what to do."""


def listen_backlog(somaxconn: str = "/proc/sys/net/core/somaxconn") -> int:
    """How many connections may wait to be accepted: the kernel's ``somaxconn``, as Go's
    ``net.Listen`` (so Podman and dockerd) uses.  Twisted's default, 50, made clients fail
    with ``EAGAIN`` whenever more than 50 connected while the reactor was busy."""
    try:
        with open(somaxconn) as f:
            return min(int(f.read()), MAX_BACKLOG)
    except (OSError, ValueError):
        return socket.SOMAXCONN


def default_uri(euid: int | None = None, environ: dict[str, str] | None = None) -> str:
    """Podman's default: the system socket as root, ``$XDG_RUNTIME_DIR`` otherwise."""
    euid = os.geteuid() if euid is None else euid
    environ = dict(os.environ) if environ is None else environ
    if euid == 0:
        return "unix:///run/podman/podman.sock"
    runtime_dir = environ.get("XDG_RUNTIME_DIR") or f"/run/user/{euid}"
    return f"unix://{runtime_dir}/podman/podman.sock"


def _unix(uri: str, path: str) -> ListenAddress:
    if not path or not os.path.isabs(path):
        raise ListenError(f"socket path in {uri!r} must be absolute: use unix:///abs/path.sock")
    return ListenAddress(uri=uri, endpoint=None, socket_path=os.path.normpath(path))


def _tcp(uri: str, host: str, port: str) -> ListenAddress:
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ListenError(f"invalid TCP port in {uri!r}")
    host = host.strip("[]")
    kind = "tcp6" if ":" in host else "tcp"
    interface = f":interface={_quote(host)}" if host else ""
    endpoint = f"{kind}:{port}{interface}:backlog={listen_backlog()}"
    return ListenAddress(uri=uri, endpoint=endpoint, plain_tcp=True)


def _quote(value: str) -> str:
    """Escape a value for a Twisted endpoint description (as ``quoteStringArgument``)."""
    return value.replace("\\", "\\\\").replace(":", "\\:")


@frozen
class Activation:
    """The sockets systemd passed this process: descriptors from 3, with their names.

    Names are ``"unknown"`` where ``LISTEN_FDNAMES`` does not give them, as
    ``sd_listen_fds_with_names`` reports them.
    """

    fds: tuple[int, ...] = ()
    names: tuple[str, ...] = ()


def take_activation(
    environ: MutableMapping[str, str] | None = None, pid: int | None = None
) -> Activation:
    """Read socket activation (``LISTEN_PID``, ``LISTEN_FDS``, ``LISTEN_FDNAMES``).

    The variables are removed, as Podman does, so that neither containers nor
    helpers inherit them; they count only when ``LISTEN_PID`` is this process.
    """
    environ = os.environ if environ is None else environ
    listen_pid = environ.pop("LISTEN_PID", None)
    listen_fds = environ.pop("LISTEN_FDS", None)
    listen_names = environ.pop("LISTEN_FDNAMES", None)
    pid = os.getpid() if pid is None else pid
    if listen_pid != str(pid) or not listen_fds or not listen_fds.isdigit():
        return Activation()
    fds = tuple(range(SD_LISTEN_FDS_START, SD_LISTEN_FDS_START + int(listen_fds)))
    names = listen_names.split(":") if listen_names else []
    names += ["unknown"] * (len(fds) - len(names))
    return Activation(fds, tuple(names[: len(fds)]))


def _inherited(uri: str | None, fd: int) -> ListenAddress:
    """Adopt ``fd``; a UNIX socket's path stays systemd's (never prepared nor removed).

    Without a URI of the user's, the socket's own address is the one reported
    (Podman's ``SetRemoteURI(network://address)`` under activation).
    """
    try:
        with socket.socket(fileno=os.dup(fd)) as probe:
            family, kind, name = probe.family, probe.type, probe.getsockname()
    except OSError as e:
        raise ListenError(f"inherited descriptor {fd} is not a socket: {e.strerror}") from e
    if kind != socket.SOCK_STREAM:
        raise ListenError(f"inherited descriptor {fd} is not a stream socket")
    if uri is None:
        where = name if isinstance(name, str) else f"{name[0]}:{name[1]}"
        uri = f"unix://{where}" if family == socket.AF_UNIX else f"tcp://{where}"
    return ListenAddress(uri=uri, endpoint=None, inherited=InheritedSocket(fd, family))


def _systemd(uri: str, rest: str, activation: Activation) -> ListenAddress:
    """Twisted's ``systemd:domain=UNIX:index=N`` / ``name=NAME``, resolved here."""
    options = dict(part.partition("=")[::2] for part in rest.split(":") if part)
    if ("index" in options) == ("name" in options):
        raise ListenError(f"{uri!r}: give exactly one of index= and name=")
    if not activation.fds:
        raise ListenError(
            f"{uri!r} but no socket was passed (LISTEN_FDS/LISTEN_PID unset or for another "
            "process): start podapi from a systemd socket unit or systemd-socket-activate"
        )
    if "name" in options:
        if options["name"] not in activation.names:
            raise ListenError(f"{uri!r}: no passed socket is named {options['name']!r}")
        fd = activation.fds[activation.names.index(options["name"])]
    else:
        index = options["index"]
        if not index.isdigit() or int(index) >= len(activation.fds):
            raise ListenError(f"{uri!r}: {len(activation.fds)} socket(s) were passed")
        fd = activation.fds[int(index)]
    address = _inherited(None, fd)
    domain = options.get("domain", "")
    if getattr(socket, f"AF_{domain}", None) != address.inherited.family:  # type: ignore[union-attr]
        raise ListenError(f"{uri!r}: the passed socket is not of domain {domain or '?'}")
    return address


def activated_address(activation: Activation) -> ListenAddress | None:
    """Podman's form: no URI under socket activation serves the one passed socket.

    :raises ListenError: more than one socket was passed (Podman: "wrong number
        of file descriptors for socket activation protocol").
    """
    if not activation.fds:
        return None
    if len(activation.fds) != 1:
        raise ListenError(
            f"wrong number of file descriptors for socket activation ({len(activation.fds)} "
            "!= 1): name the one to serve with systemd:domain=UNIX:name=NAME"
        )
    return _inherited(None, activation.fds[0])


def parse_uri(uri: str, activation: Activation | None = None) -> ListenAddress:
    """Turn a command-line URI into a :class:`ListenAddress`.

    :param activation: the sockets systemd passed (see :func:`take_activation`);
        ``systemd:`` URIs pick from them.
    :raises ListenError: for relative socket paths, unknown schemes and bad ports.
    """
    activation = Activation() if activation is None else activation
    scheme, sep, rest = uri.partition(":")
    if not sep or not scheme:
        raise ListenError(
            f"unsupported listen URI {uri!r}: use unix:///abs/path.sock, tcp://host:port "
            "or a Twisted endpoint string"
        )
    if scheme == "unix":
        if activation.fds:
            # Podman: "If it is activated by systemd, use the first LISTEN_FD (3)
            # instead of opening the socket file" (service_abi.go).
            return _inherited(uri, activation.fds[0])
        if rest.startswith("//"):
            return _unix(uri, rest[2:])
        if "=" not in rest and ":" not in rest:
            return _unix(uri, rest)
        # A Twisted description with options: unix:/path:mode=660 or unix:address=/path.
        first = rest.split(":", 1)[0]
        path = first.split("=", 1)[1] if first.startswith("address=") else first
        checked = _unix(uri, path)
        return ListenAddress(uri=uri, endpoint=uri, socket_path=checked.socket_path)
    if scheme == "tcp":
        if rest.startswith("//"):
            host, _, port = rest[2:].rstrip("/").rpartition(":")
            return _tcp(uri, host, port)
        parts = rest.split(":")
        if len(parts) == 2 and "=" not in rest and parts[1].isdigit() and not parts[0].isdigit():
            return _tcp(uri, parts[0], parts[1])  # Podman's tcp:host:port
        return ListenAddress(uri=uri, endpoint=uri, plain_tcp=True)
    if scheme == "systemd":
        return _systemd(uri, rest, activation)
    if scheme in TWISTED_SCHEMES:
        return ListenAddress(uri=uri, endpoint=uri)
    raise ListenError(
        f'API service endpoint scheme "{scheme}" is not supported: use unix:///abs/path.sock, '
        "tcp://host:port or a Twisted endpoint string (systemd:, ssl:, tcp6:)"
    )


def _is_live(path: str, timeout: float = 1.0) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(timeout)
    try:
        probe.connect(path)
    except OSError as e:
        if e.errno in (errno.ECONNREFUSED, errno.ENOENT):
            return False
        raise ListenError(f"cannot check whether {path} is in use: {e.strerror}") from e
    finally:
        probe.close()
    return True


def prepare_socket_path(path: str) -> None:
    """Make ``path`` ready to bind (blocking; call before the reactor serves).

    Creates missing parent directories (mode 0700), removes a stale socket left
    by a dead server, and refuses a path a live server answers on.

    :raises ListenError: the path is served by a live server or is not a socket.
    """
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise ListenError(f"{path} exists and is not a socket: refusing to replace it")
    if _is_live(path):
        raise ListenError(
            f"{path} is in use by a running server: stop it first or choose another socket"
        )
    os.unlink(path)


class _InheritedUNIXPort(unix.Port):
    """A passed UNIX socket: on close, its file stays where systemd made it.

    Twisted's ``adoptStreamPort`` gives a ``unix.Port`` that unlinks the
    socket's path when it stops listening; systemd keeps listening on that
    socket to start the next server, which would then be unreachable.
    """

    def connectionLost(self, reason: object) -> None:
        # unix.Port.connectionLost = unlink the path + this (no lock file here).
        tcp.Port.connectionLost(self, reason)


def adopt_listening_socket(
    reactor: IReactorSocket, inherited: InheritedSocket, factory: IProtocolFactory
) -> IListeningPort:
    """Serve ``factory`` on a passed listening socket, then close our copy of it.

    The port works on a duplicate (as ``AdoptedStreamServerEndpoint`` does), so
    the original descriptor is closed: nothing we spawn can inherit it.
    """
    os.set_blocking(inherited.fd, False)
    try:
        if inherited.family == socket.AF_UNIX:
            # The private constructor adoptStreamPort uses; twisted is pinned < 27.
            port = _InheritedUNIXPort._fromListeningDescriptor(reactor, inherited.fd, factory)
            port.startListening()
            return cast(IListeningPort, port)
        # adoptStreamPort's ``factory`` is a bare (invariant) ServerFactory in Twisted's hints.
        return reactor.adoptStreamPort(inherited.fd, inherited.family, factory)  # type: ignore[arg-type]
    finally:
        os.close(inherited.fd)
