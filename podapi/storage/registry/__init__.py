"""A client for OCI distribution registries (the Docker Registry HTTP API v2), on treq.

Used by the image engine to pull, push, search and log in.  What it does, and
where the behaviour comes from:

* Endpoints come from ``registries.conf``: a ``blocked`` registry is refused,
  ``location`` rewrites the repository, and pulls try the ``mirrors`` first
  (containers-image ``sysregistriesv2``).  ``docker.io`` is served by
  ``registry-1.docker.io``, as in Docker.
* Insecure endpoints (``tls_verify=False``, ``insecure = true``, or a loopback
  host, which Docker always treats as insecure) get https without certificate
  checks and, when TLS or the connection fails, plain http; the scheme that
  worked is remembered per host.  Secure endpoints get verified https only.
* Authentication follows the distribution token spec: ``GET /v2/`` (the
  "ping") tells us the challenge; ``Basic`` gets the user's credentials,
  ``Bearer`` a token from the realm, cached per scope and credentials until
  it expires.  A 401 on a real request is answered once with fresh auth.
* Blob bodies stream into :class:`~podapi.storage.blobs.BlobStore` through the
  thread pool, one write at a time, with the HTTP transport paused while the
  disk is behind; digest and size are checked before the blob is committed.
  Uploads read the file in the thread pool the same way.
* Connection resets, timeouts, 429 and 5xx are retried with exponential
  backoff on the reactor's clock.

Nothing here blocks the reactor; cancelling any operation aborts its
connection and throws away partial blobs.

The modules: :mod:`.client` (:class:`RegistryClient`), :mod:`.manifests`
(what manifests and indexes hold), :mod:`.endpoints` (where requests go, and
TLS), :mod:`.session` (authenticated, retried HTTP), :mod:`.operations` (the
API calls at one endpoint), :mod:`.transfer` (streaming bodies), :mod:`.auth`
(credentials, challenges, tokens) and :mod:`.errors`; :mod:`.download` fetches
plain files from http(s) URLs with the same streaming machinery (``import`` from a URL).
"""

from podapi.storage.registry.auth import (
    Challenge,
    Credentials,
    parse_challenges,
    registry_config,
)
from podapi.storage.registry.client import RegistryClient
from podapi.storage.registry.download import DownloadFailed, UrlDownloader
from podapi.storage.registry.endpoints import is_loopback
from podapi.storage.registry.errors import (
    BlockedRegistry,
    ManifestUnknown,
    RegistryError,
    RegistryUnauthorized,
    RegistryUnreachable,
)
from podapi.storage.registry.manifests import (
    DOCKER_MANIFEST,
    OCI_INDEX,
    OCI_MANIFEST,
    Descriptor,
    Inspected,
    Manifest,
    Platform,
    Resolved,
    choose_platform,
)
from podapi.storage.registry.transfer import ProgressCallback

__all__ = [
    "DOCKER_MANIFEST",
    "OCI_INDEX",
    "OCI_MANIFEST",
    "BlockedRegistry",
    "Challenge",
    "Credentials",
    "Descriptor",
    "DownloadFailed",
    "Inspected",
    "Manifest",
    "ManifestUnknown",
    "Platform",
    "ProgressCallback",
    "RegistryClient",
    "RegistryError",
    "RegistryUnauthorized",
    "RegistryUnreachable",
    "Resolved",
    "UrlDownloader",
    "choose_platform",
    "is_loopback",
    "parse_challenges",
    "registry_config",
]
