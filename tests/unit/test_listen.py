"""Listen URI parsing and the socket-path rules."""

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from podapi.listen import (
    Activation,
    ListenError,
    activated_address,
    default_uri,
    listen_backlog,
    parse_uri,
    prepare_socket_path,
    take_activation,
)


@pytest.mark.parametrize(
    ("uri", "path"),
    [
        ("unix:///run/x/api.sock", "/run/x/api.sock"),
        ("unix:/run/x/api.sock", "/run/x/api.sock"),
        ("unix:///run//x/../x/api.sock", "/run/x/api.sock"),
    ],
)
def test_unix_forms_give_the_absolute_socket_path(uri: str, path: str) -> None:
    """Podman's two unix URI forms."""
    address = parse_uri(uri)
    assert address.socket_path == path
    assert address.endpoint is None  # a plain socket the service opens itself, mode 0600


@pytest.mark.parametrize("uri", ["unix:rel.sock", "unix://rel.sock", "unix://"])
def test_relative_socket_paths_are_usage_errors(uri: str) -> None:
    """Podman binds the current directory for these; we refuse with a clear message."""
    with pytest.raises(ListenError, match="absolute"):
        parse_uri(uri)


@pytest.mark.parametrize("uri", ["/abs/api.sock", "x.sock", "http://localhost:80", "ftp:x"])
def test_unknown_schemes_are_usage_errors(uri: str) -> None:
    with pytest.raises(ListenError, match=r"not supported|unsupported"):
        parse_uri(uri)


@pytest.mark.parametrize(
    ("uri", "endpoint"),
    [
        ("tcp://127.0.0.1:8080", "tcp:8080:interface=127.0.0.1:backlog={}"),
        ("tcp:localhost:8080", "tcp:8080:interface=localhost:backlog={}"),
        ("tcp://[::1]:8080", "tcp6:8080:interface=\\:\\:1:backlog={}"),
        # A Twisted endpoint string is the user's own: passed unchanged.
        ("tcp:8080:interface=127.0.0.1", "tcp:8080:interface=127.0.0.1"),
    ],
)
def test_tcp_forms_warn_about_tls(uri: str, endpoint: str) -> None:
    """Our own TCP endpoints listen with the kernel's backlog, as UNIX sockets do."""
    address = parse_uri(uri)
    assert address.endpoint == endpoint.format(listen_backlog())
    assert address.plain_tcp


def test_bad_tcp_port() -> None:
    with pytest.raises(ListenError, match="port"):
        parse_uri("tcp://127.0.0.1:99999")


def test_twisted_endpoint_strings_pass_through() -> None:
    """TLS and UNIX sockets with options are Twisted endpoint strings."""
    address = parse_uri("unix:/run/x.sock:mode=660")
    assert address.endpoint == "unix:/run/x.sock:mode=660"
    assert address.socket_path == "/run/x.sock"


def test_default_uri_root_and_user() -> None:
    assert default_uri(0, {}) == "unix:///run/podman/podman.sock"
    assert default_uri(1000, {"XDG_RUNTIME_DIR": "/run/user/1000"}) == (
        "unix:///run/user/1000/podman/podman.sock"
    )


def test_missing_parents_are_created(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "api.sock"
    prepare_socket_path(str(path))
    assert path.parent.is_dir()
    assert (path.parent.stat().st_mode & 0o777) == 0o700


def test_stale_socket_is_removed(tmp_path: Path) -> None:
    """A socket file nobody listens on (server killed) is replaced."""
    path = tmp_path / "api.sock"
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(path))
    s.close()
    prepare_socket_path(str(path))
    assert not path.exists()


def test_live_socket_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "api.sock"
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(path))
    s.listen(1)
    try:
        with pytest.raises(ListenError, match="in use"):
            prepare_socket_path(str(path))
        assert path.exists()
    finally:
        s.close()


def test_regular_file_is_never_deleted(tmp_path: Path) -> None:
    path = tmp_path / "api.sock"
    path.write_text("precious")
    with pytest.raises(ListenError, match="not a socket"):
        prepare_socket_path(str(path))
    assert path.read_text() == "precious"
    assert os.path.isfile(path)


@pytest.fixture
def passed(tmp_path: Path) -> Iterator[socket.socket]:
    """A listening UNIX socket standing for the one systemd passes."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.bind(str(tmp_path / "api.sock"))
        sock.listen()
        yield sock


def test_activation_is_read_once_and_removed_from_the_environment() -> None:
    """Podman unsets LISTEN_* so containers never see them; names default as systemd's."""
    environ = {"LISTEN_PID": "42", "LISTEN_FDS": "2", "LISTEN_FDNAMES": "api", "PATH": "/bin"}
    assert take_activation(environ, pid=42) == Activation((3, 4), ("api", "unknown"))
    assert environ == {"PATH": "/bin"}
    assert take_activation(environ, pid=42) == Activation()


def test_activation_for_another_process_is_ignored() -> None:
    """LISTEN_PID names the process the sockets are for (a parent's leak is not ours)."""
    environ = {"LISTEN_PID": "41", "LISTEN_FDS": "1"}
    assert take_activation(environ, pid=42) == Activation()
    assert environ == {}


def test_systemd_endpoint_picks_the_passed_socket(passed: socket.socket, tmp_path: Path) -> None:
    """Twisted's systemd: syntax, resolved by index or by name; the real path is reported."""
    activation = Activation((passed.fileno(),), ("podapi.socket",))
    for uri in ("systemd:domain=UNIX:index=0", "systemd:domain=UNIX:name=podapi.socket"):
        address = parse_uri(uri, activation)
        assert address.inherited is not None
        assert address.inherited.fd == passed.fileno()
        assert address.inherited.family == socket.AF_UNIX
        assert address.uri == f"unix://{tmp_path / 'api.sock'}"
        assert address.socket_path is None  # systemd's file: never prepared nor removed


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("systemd:domain=UNIX:index=1", "1 socket"),
        ("systemd:domain=UNIX:name=other", "no passed socket is named 'other'"),
        ("systemd:domain=INET:index=0", "not of domain INET"),
        ("systemd:domain=UNIX", "exactly one of index= and name="),
    ],
)
def test_systemd_endpoint_errors_say_what_is_wrong(
    passed: socket.socket, uri: str, message: str
) -> None:
    with pytest.raises(ListenError, match=message):
        parse_uri(uri, Activation((passed.fileno(),), ("podapi.socket",)))


def test_systemd_endpoint_without_activation_is_a_usage_error() -> None:
    """This used to be Twisted's IndexError at start-up."""
    with pytest.raises(ListenError, match="no socket was passed"):
        parse_uri("systemd:domain=UNIX:index=0", Activation())


def test_no_uri_under_activation_serves_the_passed_socket(passed: socket.socket) -> None:
    """Podman's podman.service runs a bare `podman system service`."""
    address = activated_address(Activation((passed.fileno(),), ("unknown",)))
    assert address is not None and address.inherited is not None
    assert address.inherited.fd == passed.fileno()
    assert activated_address(Activation()) is None
    with pytest.raises(ListenError, match="wrong number of file descriptors"):
        activated_address(Activation((passed.fileno(), passed.fileno()), ("a", "b")))


def test_unix_uri_under_activation_uses_the_passed_socket(passed: socket.socket) -> None:
    """Podman: with LISTEN_FDS, a unix:// URI serves fd 3 instead of binding the path."""
    address = parse_uri("unix:///run/x/api.sock", Activation((passed.fileno(),), ("x",)))
    assert address.inherited is not None
    assert address.uri == "unix:///run/x/api.sock"


def test_loading_the_options_leaves_activation_for_podapi_to_read() -> None:
    """twistd imports podapi.tap to parse options; the endpoints module must not come
    with it, since importing it consumes LISTEN_FDS (Twisted's _SystemdParser)."""
    code = "import sys, podapi.tap; print('twisted.internet.endpoints' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_listen_backlog_is_somaxconn_within_sixteen_bits(tmp_path: Path) -> None:
    """The kernel's ``somaxconn`` (as Go's listeners), capped at 65535; SOMAXCONN without it."""
    limit = tmp_path / "somaxconn"
    limit.write_text("4096\n")
    assert listen_backlog(str(limit)) == 4096
    limit.write_text("1000000\n")
    assert listen_backlog(str(limit)) == 65535
    assert listen_backlog(str(tmp_path / "missing")) == socket.SOMAXCONN
