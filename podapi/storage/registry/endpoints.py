"""Where requests for a repository go, and how we talk TLS to them.

Endpoint choice follows ``registries.conf`` (containers-image
``sysregistriesv2``): a ``blocked`` registry is refused, ``location``
rewrites the repository and pulls try the ``mirrors`` first.  An endpoint is
insecure when the caller says ``tls_verify=False``, the configuration says
``insecure = true``, or the host is loopback (Docker always treats those as
insecure); insecure endpoints get TLS without certificate checks
(:class:`_NoVerifyPolicy`).  Docker's server address forms map to registry
names here too.
"""

import ipaddress

from attrs import frozen
from OpenSSL import SSL
from twisted.internet.interfaces import IOpenSSLClientConnectionCreator
from twisted.internet.ssl import CertificateOptions
from twisted.web.iweb import IPolicyForHTTPS
from zope.interface import implementer

from podapi.storage.reference import DEFAULT_DOMAIN, LEGACY_DOMAIN, Reference
from podapi.storage.registries import RegistriesConfig
from podapi.storage.registries import Registry as RegistryEntry
from podapi.storage.registry.errors import BlockedRegistry

#: The host that serves ``docker.io`` repositories (Docker's ``IndexHostname`` mapping).
DOCKER_HUB_HOST = "registry-1.docker.io"


@frozen
class _Endpoint:
    """Where requests for one repository go.

    :ivar domain: the registry as users name it (``docker.io``), for messages.
    :ivar host: the ``host[:port]`` we connect to.
    :ivar path: the repository path at that host (``library/busybox``).
    """

    domain: str
    host: str
    path: str
    insecure: bool

    @property
    def name(self) -> str:
        return f"{self.domain}/{self.path}" if self.path else self.domain


def _http_host(domain: str) -> str:
    return DOCKER_HUB_HOST if domain in (DEFAULT_DOMAIN, LEGACY_DOMAIN) else domain


def is_loopback(host: str) -> bool:
    """``localhost``, 127.0.0.0/8 or ``::1``, with or without a port."""
    name = host
    if name.startswith("["):
        name = name[1 : name.find("]")]
    elif name.count(":") == 1:
        name = name.split(":", 1)[0]
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _login_host(server: str) -> str:
    """Docker's ``serveraddress`` forms (``https://index.docker.io/v1/``) to a registry name."""
    host = server.strip()
    if "://" in host:
        host = host.split("://", 1)[1]
    host = host.split("/", 1)[0]
    if host in ("", LEGACY_DOMAIN, DOCKER_HUB_HOST):
        return DEFAULT_DOMAIN
    return host


@implementer(IOpenSSLClientConnectionCreator)
class _UnverifiedTLS:
    """TLS with SNI but without certificate checks, for insecure registries."""

    def __init__(self, context: SSL.Context, hostname: str) -> None:
        self._context = context
        self._hostname = hostname

    def clientConnectionForTLS(self, tlsProtocol: object) -> SSL.Connection:
        connection = SSL.Connection(self._context, None)
        connection.set_app_data(tlsProtocol)
        if not _is_ip(self._hostname):
            connection.set_tlsext_host_name(self._hostname.encode("idna"))
        return connection


@implementer(IPolicyForHTTPS)
class _NoVerifyPolicy:
    """Docker's ``InsecureSkipVerify`` for every host this agent talks to."""

    def __init__(self) -> None:
        self._context = CertificateOptions(verify=False).getContext()

    def creatorForNetloc(self, hostname: bytes, port: int) -> IOpenSSLClientConnectionCreator:
        return _UnverifiedTLS(self._context, hostname.decode("ascii"))


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def _check_blocked(entry: RegistryEntry | None, config: RegistriesConfig) -> None:
    if entry is not None and entry.blocked:
        where = " or ".join(config.sources) or "registries.conf"
        raise BlockedRegistry(f"registry {entry.prefix} is blocked in {where}")


def _insecure(host: str, configured: bool, tls_verify: bool | None) -> bool:
    if tls_verify is not None:
        return not tls_verify
    return configured or is_loopback(host)


def _endpoint(repository: str, insecure: bool | None, tls_verify: bool | None) -> _Endpoint:
    domain, _, path = repository.partition("/")
    host = _http_host(domain)
    return _Endpoint(domain, host, path, _insecure(host, bool(insecure), tls_verify))


def pull_sources(
    config: RegistriesConfig, ref: Reference, tls_verify: bool | None
) -> list[_Endpoint]:
    """Mirrors in order, then the (possibly relocated) registry itself."""
    entry = config.find(ref.name)
    _check_blocked(entry, config)
    if entry is None:
        return [_endpoint(ref.repository, False, tls_verify)]
    suffix = ref.name[len(ref.repository) :]  # ":tag" or "@digest"
    sources = []
    if not entry.prefix.startswith("*."):
        rest = ref.name[len(entry.prefix) :]
        for mirror in entry.mirrors:
            wanted = mirror.pull_from_mirror
            if (wanted == "digest-only" and not ref.digest) or (
                wanted == "tag-only" and ref.digest
            ):
                continue
            sources.append(
                _endpoint(
                    (mirror.location + rest).removesuffix(suffix), mirror.insecure, tls_verify
                )
            )
    rewritten = entry.rewrite(ref.name).removesuffix(suffix)
    sources.append(_endpoint(rewritten, entry.insecure, tls_verify))
    return sources


def push_endpoint(config: RegistriesConfig, ref: Reference, tls_verify: bool | None) -> _Endpoint:
    """Where a push of ``ref`` goes."""
    # containers-image pushes to the reference as written: no mirrors, no
    # location rewrite; only ``blocked`` and ``insecure`` apply.
    entry = config.find(ref.name)
    _check_blocked(entry, config)
    return _endpoint(ref.repository, entry is not None and entry.insecure, tls_verify)


def host_endpoint(config: RegistriesConfig, host: str, tls_verify: bool | None) -> _Endpoint:
    """The endpoint for registry-wide requests to ``host`` (login, catalog)."""
    entry = config.find(host)
    _check_blocked(entry, config)
    return _endpoint(host, entry is not None and entry.insecure, tls_verify)
