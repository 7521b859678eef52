"""The registry client the image engine uses: pull, push, list, log in.

:class:`RegistryClient` is the public face of the package.  Each operation
picks its endpoints (mirrors first for pulls, see
:mod:`~podapi.storage.registry.endpoints`), runs the registry API calls of
:mod:`~podapi.storage.registry.operations` there, and falls back to the next
source when a mirror fails.
"""

import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import BinaryIO, TypeVar
from urllib.parse import urlencode

from hyperlink import URL
from twisted.internet.defer import (
    Deferred,
    DeferredList,
    DeferredSemaphore,
    FirstError,
    gatherResults,
)

from podapi.logs import get_logger
from podapi.storage.blobs import Blob, BlobStore, DigestMismatch, check_digest
from podapi.storage.reference import DEFAULT_TAG, Reference
from podapi.storage.registries import RegistriesConfig
from podapi.storage.registry.auth import Credentials
from podapi.storage.registry.endpoints import (
    _Endpoint,
    _login_host,
    host_endpoint,
    pull_sources,
    push_endpoint,
)
from podapi.storage.registry.errors import (
    ManifestUnknown,
    RegistryError,
    RegistryUnauthorized,
    _Transient,
    error_for_status,
)
from podapi.storage.registry.manifests import (
    Descriptor,
    Inspected,
    Platform,
    Resolved,
    sha256_digest,
)
from podapi.storage.registry.operations import (
    blob_exists_at,
    download,
    inspect_at,
    paged,
    resolve_at,
    upload,
)
from podapi.storage.registry.session import IWebReactor, Session, _error_detail
from podapi.storage.registry.transfer import MAX_ERROR_BODY, ProgressCallback, _read
from podapi.threads import Blocking

T = TypeVar("T")
log = get_logger(__name__)


class RegistryClient:
    """Talks to registries on behalf of the image engine.

    One instance lives as long as the service: it keeps connection pools, the
    scheme (https/http) that worked per insecure host, the challenge each
    registry announced and the bearer tokens it handed out.

    :param reactor: provides TCP/TLS connections and ``callLater``.
    :param blocking: runs blob writes, file reads and big JSON off the reactor.
    :param blobs: where fetched blobs go.
    :param registries: the current ``registries.conf`` (cheap: called per operation).
    :param max_parallel: blobs fetched at once by :meth:`fetch_blobs`.
    :param retries: extra attempts for retryable failures.
    :param timeout: seconds for connecting, for response headers and of transfer idleness.
    :param backoff: the first retry delay in seconds; it doubles each attempt.
    """

    def __init__(
        self,
        reactor: IWebReactor,
        *,
        blocking: Blocking,
        blobs: BlobStore,
        registries: Callable[[], RegistriesConfig],
        max_parallel: int = 3,
        retries: int = 3,
        timeout: float = 60,
        backoff: float = 1.0,
    ) -> None:
        self._blocking = blocking
        self._blobs = blobs
        self._registries = registries
        self._max_parallel = max_parallel
        self._session = Session(
            reactor, max_parallel=max_parallel, retries=retries, timeout=timeout, backoff=backoff
        )

    async def close(self) -> None:
        """Close idle pooled connections (at service stop and in tests)."""
        await self._session.close()

    # --- public operations ---

    async def resolve(
        self,
        ref: Reference,
        *,
        creds: Credentials | None = None,
        tls_verify: bool | None = None,
        platform: Platform | None = None,
    ) -> Resolved:
        """Fetch the image manifest ``ref`` names, choosing from an index by ``platform``.

        :raises ManifestUnknown: no such tag/digest/repository, or no entry for the platform.
        :raises RegistryError: schema 1, a digest mismatch, or any registry failure.
        """
        want = platform or Platform()

        async def at(endpoint: _Endpoint) -> Resolved:
            return await resolve_at(self._session, endpoint, ref, creds, want)

        return await self._from_sources(ref, tls_verify, at)

    async def inspect(
        self, ref: Reference, *, creds: Credentials | None = None, tls_verify: bool | None = None
    ) -> Inspected:
        """The manifest or index ``ref`` names and its platforms, without pulling.

        :raises ManifestUnknown: no such tag, digest or repository.
        :raises RegistryError: any registry failure.
        """

        async def at(endpoint: _Endpoint) -> Inspected:
            return await inspect_at(self._session, endpoint, ref, creds)

        return await self._from_sources(ref, tls_verify, at)

    async def fetch_blob(
        self,
        ref: Reference,
        desc: Descriptor,
        *,
        creds: Credentials | None = None,
        tls_verify: bool | None = None,
        progress: ProgressCallback | None = None,
    ) -> Blob:
        """Download ``desc`` into the blob store (a no-op if it is already there).

        :raises DigestMismatch: the content did not match the descriptor.
        """
        check_digest(desc.digest)
        if await self._blocking(self._blobs.has, desc.digest):
            if progress is not None:
                progress(desc.digest, desc.size, desc.size)
            return Blob(desc.digest, await self._blocking(self._blobs.size, desc.digest))

        async def at(endpoint: _Endpoint) -> Blob:
            return await self._session.retrying(
                lambda: download(
                    self._session,
                    self._blocking,
                    blobs=self._blobs,
                    endpoint=endpoint,
                    desc=desc,
                    creds=creds,
                    progress=progress,
                )
            )

        return await self._from_sources(ref, tls_verify, at)

    async def fetch_blobs(
        self,
        ref: Reference,
        descs: Sequence[Descriptor],
        *,
        creds: Credentials | None = None,
        tls_verify: bool | None = None,
        progress: ProgressCallback | None = None,
    ) -> list[Blob]:
        """Fetch several blobs, ``max_parallel`` at a time; results in the order of ``descs``.

        The first failure cancels the remaining downloads and is raised.
        """
        semaphore = DeferredSemaphore(self._max_parallel)

        def one(desc: Descriptor) -> Deferred[Blob]:
            return Deferred.fromCoroutine(
                self.fetch_blob(ref, desc, creds=creds, tls_verify=tls_verify, progress=progress)
            )

        pending = [semaphore.run(one, desc) for desc in descs]
        try:
            return await gatherResults(pending, consumeErrors=True)
        except FirstError as e:
            e.subFailure.raiseException()
            raise  # unreachable; for the type checker
        finally:
            # cancel() is a no-op for finished downloads and reaches running
            # ones through the semaphore's chained Deferred; then wait until
            # they have thrown their partial blobs away.
            for d in pending:
                d.cancel()
            await DeferredList(pending, consumeErrors=True)

    async def blob_exists(
        self,
        ref: Reference,
        digest: str,
        *,
        creds: Credentials | None = None,
        tls_verify: bool | None = None,
    ) -> bool:
        """Whether the registry has blob ``digest`` in ``ref``'s repository (``HEAD``)."""
        endpoint = self._push_endpoint(ref, tls_verify)
        return await blob_exists_at(self._session, endpoint, digest, creds, "pull")

    async def push_blob(
        self,
        ref: Reference,
        digest: str,
        size: int,
        open_blob: Callable[[], BinaryIO],
        *,
        creds: Credentials | None = None,
        tls_verify: bool | None = None,
        progress: ProgressCallback | None = None,
    ) -> None:
        """Upload a blob unless the registry has it: ``POST`` an upload, then one ``PUT``.

        ``open_blob`` is called in the thread pool, once per attempt.
        """
        check_digest(digest)
        endpoint = self._push_endpoint(ref, tls_verify)
        if await blob_exists_at(self._session, endpoint, digest, creds, "pull,push"):
            if progress is not None:
                progress(digest, size, size)
            return
        await self._session.retrying(
            lambda: upload(
                self._session,
                self._blocking,
                endpoint=endpoint,
                digest=digest,
                size=size,
                open_blob=open_blob,
                creds=creds,
                progress=progress,
            )
        )

    async def mount_blob(
        self,
        ref: Reference,
        digest: str,
        source: Reference,
        *,
        creds: Credentials | None = None,
        tls_verify: bool | None = None,
    ) -> bool:
        """Link blob ``digest`` from ``source``'s repository into ``ref``'s, without uploading.

        The distribution spec's cross-repository mount (``POST
        /blobs/uploads/?mount=&from=``), as Docker uses when it knows where a
        layer came from.  Registries scope blobs per repository, so
        :meth:`blob_exists` in the target is false until this is done.

        :returns: True when mounted (201); False when ``source`` is on another
            registry or the registry would rather have an upload (202).
        """
        check_digest(digest)
        if source.domain != ref.domain:
            return False
        endpoint = self._push_endpoint(ref, tls_verify)
        what = f"mounting blob {digest} from {source.path} into {endpoint.name}"
        scope = f"repository:{endpoint.path}:pull,push repository:{source.path}:pull"
        query = urlencode([("mount", digest), ("from", source.path)])

        async def attempt() -> bool:
            response = await self._session.send(
                endpoint,
                "POST",
                f"/v2/{endpoint.path}/blobs/uploads/?{query}",
                what=what,
                scope=scope,
                creds=creds,
            )
            await _read(response, MAX_ERROR_BODY)
            if response.code == 201:
                return True
            if response.code != 202:
                detail = f"{response.code} {response.phrase.decode('latin-1')}"
                raise error_for_status(what, detail, response.code)
            # The registry opened an upload instead; close it rather than
            # leave it for the registry's garbage collector.
            location = response.headers.getRawHeaders(b"location", [b""])[0].decode("latin-1")
            if location:
                base = await self._session.base(endpoint)
                url = URL.from_text(base + "/v2/").click(location).to_text()
                with contextlib.suppress(RegistryError, _Transient):
                    done = await self._session.send(
                        endpoint, "DELETE", url, what=what, scope=scope, creds=creds
                    )
                    await _read(done, MAX_ERROR_BODY)
            return False

        return await self._session.retrying(attempt)

    async def push_manifest(
        self,
        ref: Reference,
        raw: bytes,
        media_type: str,
        *,
        creds: Credentials | None = None,
        tls_verify: bool | None = None,
    ) -> str:
        """``PUT`` a manifest under ``ref``'s tag (or digest); return its digest."""
        endpoint = self._push_endpoint(ref, tls_verify)
        reference = ref.tag or ref.digest or DEFAULT_TAG
        what = f"writing manifest {reference} to {endpoint.name}"

        async def attempt() -> str:
            response = await self._session.send(
                endpoint,
                "PUT",
                f"/v2/{endpoint.path}/manifests/{reference}",
                what=what,
                scope="pull,push",
                creds=creds,
                headers={"Content-Type": media_type},
                body=lambda: raw,
            )
            if response.code not in (200, 201, 202):
                raise error_for_status(what, await _error_detail(response), response.code)
            await _read(response, MAX_ERROR_BODY)
            reported = response.headers.getRawHeaders(b"docker-content-digest", [b""])[0]
            return reported.decode("ascii", "replace") or sha256_digest(raw)

        return await self._session.retrying(attempt)

    async def tags(
        self,
        ref: Reference,
        *,
        creds: Credentials | None = None,
        tls_verify: bool | None = None,
    ) -> list[str]:
        """All tags of ``ref``'s repository (following ``Link`` pagination)."""

        async def at(endpoint: _Endpoint) -> list[str]:
            what = f"listing tags of {endpoint.name}"
            return await paged(
                self._session,
                self._blocking,
                endpoint=endpoint,
                path=f"/v2/{endpoint.path}/tags/list",
                key="tags",
                what=what,
                scope="pull",
                creds=creds,
                limit=None,
            )

        return await self._from_sources(ref, tls_verify, at)

    async def catalog(
        self,
        host: str,
        *,
        creds: Credentials | None = None,
        tls_verify: bool | None = None,
        limit: int = 100,
    ) -> list[str]:
        """Up to ``limit`` repository names from ``GET /v2/_catalog``.

        :raises RegistryError: when the registry does not offer the catalog (Docker Hub).
        """
        host = _login_host(host)
        endpoint = self._host_endpoint(host, tls_verify)
        what = f"listing repositories in {host}"
        try:
            names = await paged(
                self._session,
                self._blocking,
                endpoint=endpoint,
                path="/v2/_catalog",
                key="repositories",
                what=what,
                scope="registry:catalog:*",
                creds=creds,
                limit=limit,
            )
        except ManifestUnknown as e:
            raise RegistryError(
                f"{what}: the registry does not support the catalog API: {e}"
            ) from e
        return names[:limit]

    async def login(self, host: str, creds: Credentials, *, tls_verify: bool | None = None) -> str:
        """Check ``creds`` against ``host``'s ``/v2/``; return ``"Login Succeeded"``.

        ``host`` may be any of Docker's server address forms
        (``https://index.docker.io/v1/``).

        :raises RegistryUnauthorized: the registry refused the credentials.
        """
        name = _login_host(host)
        endpoint = self._host_endpoint(name, tls_verify)
        what = f"logging in to {name}"
        base = await self._session.base(endpoint)
        challenges = self._session.challenges(base)
        if not challenges:
            return "Login Succeeded"  # an open registry accepts anyone (Docker does the same)

        async def attempt() -> str:
            auth = await self._session.authorize(endpoint, challenges, "", creds, what, fresh=True)
            if auth is None:
                raise RegistryUnauthorized(f"{what}: unauthorized: no credentials given")
            response = await self._session.request(
                endpoint.insecure, "GET", base + "/v2/", what=what, auth=auth
            )
            if response.code in (401, 403):
                detail = await _error_detail(response)
                raise RegistryUnauthorized(f"{what}: invalid username/password: {detail}")
            if response.code == 429 or response.code >= 500:
                raise _Transient(
                    error_for_status(what, await _error_detail(response), response.code)
                )
            if response.code != 200:
                raise error_for_status(what, await _error_detail(response), response.code)
            await _read(response, MAX_ERROR_BODY)
            return "Login Succeeded"

        return await self._session.retrying(attempt)

    # --- endpoints ---

    def _pull_sources(self, ref: Reference, tls_verify: bool | None) -> list[_Endpoint]:
        """Mirrors in order, then the (possibly relocated) registry itself."""
        return pull_sources(self._registries(), ref, tls_verify)

    def _push_endpoint(self, ref: Reference, tls_verify: bool | None) -> _Endpoint:
        return push_endpoint(self._registries(), ref, tls_verify)

    def _host_endpoint(self, host: str, tls_verify: bool | None) -> _Endpoint:
        return host_endpoint(self._registries(), host, tls_verify)

    async def _from_sources(
        self,
        ref: Reference,
        tls_verify: bool | None,
        op: Callable[[_Endpoint], Awaitable[T]],
    ) -> T:
        sources = self._pull_sources(ref, tls_verify)
        for mirror in sources[:-1]:
            try:
                return await op(mirror)
            except (RegistryError, DigestMismatch) as e:
                log.info(
                    "mirror {mirror} failed, trying the next source: {error}",
                    mirror=mirror.name,
                    error=str(e),
                )
        return await op(sources[-1])
