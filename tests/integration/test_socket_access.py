"""Who may connect: ``--group`` shares the UNIX socket with a group; TCP over TLS with
client certificates (``--tls-cert``, ``--tls-key``, ``--tls-client-ca``), driven by the
docker CLI with ``DOCKER_TLS_VERIFY=1`` (issue 18)."""

import datetime
import grp
import ipaddress
import os
import socket
import ssl
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from podapi.listen import listen_backlog
from tests.support import ServerProcess

pytestmark = pytest.mark.integration

Start = Callable[..., ServerProcess]


class Issued:
    """A key and the certificate an authority (or itself) signed for it."""

    def __init__(self, name: str, issuer: "Issued | None" = None, *, server: bool = False) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = datetime.datetime.now(datetime.UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer.cert.subject if issuer else subject)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), True)
        )
        if server:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                False,
            ).add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        elif issuer is not None:
            builder = builder.add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False
            )
        signer = issuer.key if issuer else self.key
        self.cert = builder.sign(signer, hashes.SHA256())

    def write(self, directory: Path, cert_name: str, key_name: str | None = None) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / cert_name).write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        if key_name:
            key = self.key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            (directory / key_name).write_bytes(key)


class TcpServer(ServerProcess):
    """A server on a TCP port of loopback."""

    def __init__(self, base: Path, port: int, *args: str) -> None:
        super().__init__(base, *args)
        self.port = port

    @property
    def uri(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _docker(server: TcpServer, cert_path: Path) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(cert_path.parent),
        "DOCKER_HOST": f"tcp://127.0.0.1:{server.port}",
        "DOCKER_TLS_VERIFY": "1",
        "DOCKER_CERT_PATH": str(cert_path),
    }
    return subprocess.run(
        ["docker", "version", "--format", "{{.Server.APIVersion}}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_group_option_shares_the_socket_with_that_group(start_server: Start) -> None:
    """``--group``: mode 0660 and the group's ownership; without it, 0600 (checked
    by ``test_socket_parents_created_and_mode_0600``)."""
    group = next(g for g in grp.getgrall() if g.gr_gid != os.getgid())
    server = start_server("--group", group.gr_name)
    info = os.stat(server.sock)
    assert stat.S_IMODE(info.st_mode) == 0o660
    assert info.st_gid == group.gr_gid
    assert server.request("GET", "/_ping").body == b"OK"


def test_tls_listener_requires_a_client_certificate_from_the_ca(tmp_path: Path) -> None:
    """The docker CLI with a CA-signed client certificate connects; without a
    certificate, or with one another CA signed, the TLS handshake fails."""
    authority = Issued("podapi test CA")
    server_cert = Issued("localhost", authority, server=True)
    client = Issued("client", authority)
    stranger = Issued("stranger", Issued("other CA"))
    certs = tmp_path / "server-certs"
    authority.write(certs, "ca.pem")
    server_cert.write(certs, "cert.pem", "key.pem")
    good = tmp_path / "client"
    authority.write(good, "ca.pem")
    client.write(good, "cert.pem", "key.pem")
    foreign = tmp_path / "foreign"
    authority.write(foreign, "ca.pem")
    stranger.write(foreign, "cert.pem", "key.pem")

    server = TcpServer(
        tmp_path / "server",
        _free_port(),
        "--tls-cert",
        str(certs / "cert.pem"),
        "--tls-key",
        str(certs / "key.pem"),
        "--tls-client-ca",
        str(certs / "ca.pem"),
    )
    server.start()
    try:
        accepted = _docker(server, good)
        assert accepted.returncode == 0, accepted.stderr
        assert accepted.stdout.strip()
        refused = _docker(server, foreign)
        assert refused.returncode != 0
        # No certificate at all: the server ends the handshake.
        context = ssl.create_default_context(cafile=str(certs / "ca.pem"))
        with (
            socket.create_connection(("127.0.0.1", server.port), timeout=30) as raw,
            pytest.raises((ssl.SSLError, ConnectionResetError)),
            context.wrap_socket(raw, server_hostname="localhost") as tls,
        ):
            tls.sendall(b"GET /_ping HTTP/1.1\r\nHost: d\r\n\r\n")
            assert tls.recv(1024) == b""  # TLS 1.3: refused after the handshake
            raise ConnectionResetError("closed without an answer")
    finally:
        server.stop()


def _listen_backlog_of(port: int) -> int:
    """The backlog of the TCP listener on ``port``: ``ss`` shows it as Send-Q."""
    listing = subprocess.run(
        ["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True, check=True
    ).stdout.split()
    return int(listing[2])


def test_a_tcp_listener_has_the_kernels_backlog(tmp_path: Path) -> None:
    """``tcp://`` listens with ``somaxconn`` waiting connections, as the UNIX socket
    (test_limits' burst test) and Go's listeners: not Twisted's 50."""
    server = TcpServer(tmp_path / "server", _free_port())
    server.start()
    try:
        assert _listen_backlog_of(server.port) == listen_backlog() > 50
    finally:
        server.stop()
