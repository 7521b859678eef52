"""Where the service listens: URI parsing, default socket, and UNIX socket rules.

Accepted forms (Podman's plus Twisted's):

* ``unix:///abs/path.sock`` and ``unix:/abs/path.sock``;
* ``tcp://host:port`` and ``tcp:host:port`` (plain HTTP: a warning is logged);
* any Twisted server endpoint string: ``systemd:domain=UNIX:index=0`` (socket
  activation), ``ssl:8443:privateKey=...``, ``tcp:8080:interface=127.0.0.1``.

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

from podapi.config import ListenAddress

#: Twisted endpoint types we pass through unchanged.
TWISTED_SCHEMES = ("systemd", "ssl", "tcp6", "tls", "unix", "tcp")


class ListenError(Exception):
    """The listen address is unusable; the message says why and what to do."""


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
    return ListenAddress(uri=uri, endpoint=f"{kind}:{port}{interface}", plain_tcp=True)


def _quote(value: str) -> str:
    """Escape a value for a Twisted endpoint description (as ``quoteStringArgument``)."""
    return value.replace("\\", "\\\\").replace(":", "\\:")


def parse_uri(uri: str) -> ListenAddress:
    """Turn a command-line URI into a :class:`ListenAddress`.

    :raises ListenError: for relative socket paths, unknown schemes and bad ports.
    """
    scheme, sep, rest = uri.partition(":")
    if not sep or not scheme:
        raise ListenError(
            f"unsupported listen URI {uri!r}: use unix:///abs/path.sock, tcp://host:port "
            "or a Twisted endpoint string"
        )
    if scheme == "unix":
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
