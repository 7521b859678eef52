"""Listen URI parsing and the socket-path rules."""

import os
import socket
from pathlib import Path

import pytest

from podapi.listen import ListenError, default_uri, parse_uri, prepare_socket_path


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
        ("tcp://127.0.0.1:8080", "tcp:8080:interface=127.0.0.1"),
        ("tcp:localhost:8080", "tcp:8080:interface=localhost"),
        ("tcp://[::1]:8080", "tcp6:8080:interface=\\:\\:1"),
        ("tcp:8080:interface=127.0.0.1", "tcp:8080:interface=127.0.0.1"),
    ],
)
def test_tcp_forms_warn_about_tls(uri: str, endpoint: str) -> None:
    address = parse_uri(uri)
    assert address.endpoint == endpoint
    assert address.plain_tcp


def test_bad_tcp_port() -> None:
    with pytest.raises(ListenError, match="port"):
        parse_uri("tcp://127.0.0.1:99999")


def test_twisted_endpoint_strings_pass_through() -> None:
    """Socket activation and TLS are Twisted endpoint strings."""
    assert parse_uri("systemd:domain=UNIX:index=0").endpoint == "systemd:domain=UNIX:index=0"
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
