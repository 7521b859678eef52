"""Who may talk to the API: the UNIX socket's group and TLS with client certificates.

* ``--group NAME``: the socket becomes ``0660`` and owned by that group, Docker's
  ``docker`` group habit (``dockerd -G``); without it the socket stays ``0600``.
* ``--tls-cert``/``--tls-key`` serve a TCP listener over TLS and ``--tls-client-ca``
  makes it accept only clients whose certificate one of those CAs signed, as
  ``podman system service --tls-client-ca`` and ``dockerd --tlsverify --tlscacert``:
  without one the handshake fails before any HTTP is read.
"""

import grp
import os

from OpenSSL import SSL, crypto
from twisted.internet import ssl
from twisted.internet.interfaces import IProtocolFactory
from twisted.protocols.tls import TLSMemoryBIOFactory

from podapi.config import TLSFiles

#: A socket shared with a group: owner and group read and write, nobody else.
GROUP_SOCKET_MODE = 0o660


class AccessError(Exception):
    """The access options are unusable; the message says why."""


def group_id(name: str) -> int:
    """The ID of group ``name`` (a number is taken as an ID)."""
    if name.isdigit():
        return int(name)
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        raise AccessError(f"--group {name}: no such group") from None


def share_with_group(path: str, gid: int) -> None:
    """Give the socket at ``path`` to group ``gid`` first, then open it to the group."""
    os.chown(path, -1, gid)
    os.chmod(path, GROUP_SOCKET_MODE)


def _certificates(path: str) -> list[ssl.Certificate]:
    with open(path, "rb") as pem:
        text = pem.read()
    marker = b"-----END CERTIFICATE-----"
    return [ssl.Certificate.loadPEM(part + marker) for part in text.split(marker) if part.strip()]


def context_factory(files: TLSFiles) -> ssl.CertificateOptions:
    """The server's TLS options; client certificates are required when a CA is given."""
    try:
        with open(files.key, "rb") as key:
            private_key = ssl.KeyPair.load(key.read(), crypto.FILETYPE_PEM)
        chain = _certificates(files.cert)
        if not chain:
            raise AccessError(f"--tls-cert {files.cert}: no certificate in it")
        authorities = _certificates(files.client_ca) if files.client_ca else []
    except (OSError, ValueError, SSL.Error, crypto.Error) as e:
        raise AccessError(f"cannot load the TLS files: {e}") from None
    if files.client_ca and not authorities:
        raise AccessError(f"--tls-client-ca {files.client_ca}: no certificate in it")
    return ssl.CertificateOptions(
        privateKey=private_key.original,
        certificate=chain[0].original,
        extraCertChain=[c.original for c in chain[1:]],
        # A trust root makes Twisted verify the peer and require its certificate.
        trustRoot=ssl.trustRootFromCertificates(authorities) if authorities else None,
    )


def over_tls(files: TLSFiles, factory: IProtocolFactory) -> IProtocolFactory:
    """``factory`` behind a TLS server handshake."""
    return TLSMemoryBIOFactory(context_factory(files), False, factory)
