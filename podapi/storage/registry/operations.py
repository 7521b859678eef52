"""The registry API operations at one chosen endpoint.

Reading a manifest (and resolving an index to the platform's manifest),
downloading a blob into the store, checking for and uploading a blob, and
following the ``Link`` pages of ``tags/list`` and ``_catalog``.  The client
picks the endpoint (a mirror, the registry itself) and calls these; the
:class:`~podapi.storage.registry.session.Session` does the HTTP.
"""

import json
import re
from collections.abc import Callable
from typing import BinaryIO

from hyperlink import URL
from twisted.internet import error as neterror
from twisted.internet.defer import CancelledError
from twisted.web.iweb import IResponse

from podapi.storage.blobs import Blob, BlobStore, DigestMismatch, check_digest
from podapi.storage.reference import DEFAULT_TAG, Reference
from podapi.storage.registry.auth import Credentials
from podapi.storage.registry.endpoints import _Endpoint
from podapi.storage.registry.errors import (
    ManifestUnknown,
    RegistryError,
    RegistryUnreachable,
    _describe_network,
    _IdleTimeout,
    _Transient,
    error_for_status,
)
from podapi.storage.registry.manifests import (
    ACCEPT,
    MAX_MANIFEST,
    Descriptor,
    Inspected,
    Manifest,
    Platform,
    Resolved,
    _Index,
    choose_platform,
    oci_platform,
    parse_manifest,
    sha256_digest,
)
from podapi.storage.registry.session import Session, _error_detail
from podapi.storage.registry.transfer import (
    MAX_ERROR_BODY,
    MAX_JSON,
    ProgressCallback,
    _BlobSink,
    _detached,
    _FileProducer,
    _read,
)
from podapi.threads import Blocking

#: Pages of ``_catalog`` / ``tags/list`` followed at most (a loop guard).
MAX_PAGES = 1000


def _next_link(response: IResponse, current: str) -> str | None:
    """The ``rel="next"`` URL of a ``Link`` header (pagination of tags and catalog)."""
    for value in response.headers.getRawHeaders(b"link", []):
        for part in value.decode("latin-1").split(","):
            match = re.match(r'\s*<([^>]*)>\s*;.*rel="?next"?', part)
            if match:
                return URL.from_text(current).click(match.group(1)).to_text()
    return None


async def resolve_at(
    session: Session,
    endpoint: _Endpoint,
    ref: Reference,
    creds: Credentials | None,
    platform: Platform,
) -> Resolved:
    """The image manifest ``ref`` names at ``endpoint``, choosing from an index by ``platform``."""
    reference = ref.digest or ref.tag or DEFAULT_TAG
    parsed, digest = await _manifest(session, endpoint, reference, ref.digest, creds)
    index_digest = None
    for _ in range(2):  # an index may (rarely) point at another index
        if not isinstance(parsed, _Index):
            return Resolved(parsed, index_digest)
        if index_digest is None:
            index_digest = digest
        entry = choose_platform(parsed.manifests, platform)
        if entry is None:
            raise ManifestUnknown(
                f"reading manifest {reference} in {endpoint.name}: no matching manifest "
                f"for {platform} in the manifest list entries"
            )
        parsed, digest = await _manifest(session, endpoint, entry.digest, entry.digest, creds)
    raise RegistryError(f"reading manifest {reference} in {endpoint.name}: nested index too deep")


async def inspect_at(
    session: Session, endpoint: _Endpoint, ref: Reference, creds: Credentials | None
) -> Inspected:
    """The manifest or index ``ref`` names at ``endpoint`` and the platforms it is for.

    An index lists its entries' platforms; an image manifest's platform is read from
    its config blob (in memory, never stored).
    """
    reference = ref.digest or ref.tag or DEFAULT_TAG
    parsed, digest, size = await _manifest_sized(session, endpoint, reference, ref.digest, creds)
    if isinstance(parsed, _Index):
        platforms = [oci_platform(e.platform) for e in parsed.manifests if e.platform]
        return Inspected(parsed.media_type, digest, size, tuple(platforms), parsed.manifests)
    config = await _small_blob(session, endpoint, parsed.config, creds)
    platforms = []
    if isinstance(config, dict) and (config.get("os") or config.get("architecture")):
        platforms.append(oci_platform(config))
    return Inspected(parsed.media_type, digest, size, tuple(platforms))


async def _small_blob(
    session: Session, endpoint: _Endpoint, desc: Descriptor, creds: Credentials | None
) -> object:
    """A JSON blob (an image config) read into memory and checked against ``desc``."""
    what = f"fetching blob {desc.digest} from {endpoint.name}"

    async def attempt() -> bytes:
        response = await session.send(
            endpoint,
            "GET",
            f"/v2/{endpoint.path}/blobs/{desc.digest}",
            what=what,
            scope="pull",
            creds=creds,
            redirects=True,
        )
        if response.code != 200:
            raise error_for_status(what, await _error_detail(response), response.code)
        return await _body(response, MAX_JSON, what)

    raw = await session.retrying(attempt)
    if sha256_digest(raw) != desc.digest:
        raise RegistryError(f"{what}: content does not match its digest")
    try:
        return json.loads(raw)
    except ValueError as e:
        raise RegistryError(f"{what}: invalid JSON: {e}") from e


async def _manifest(
    session: Session,
    endpoint: _Endpoint,
    reference: str,
    expected: str | None,
    creds: Credentials | None,
) -> tuple[Manifest | _Index, str]:
    """GET one manifest or index; check it against ``expected`` when fetched by digest."""
    parsed, digest, _ = await _manifest_sized(session, endpoint, reference, expected, creds)
    return parsed, digest


async def _manifest_sized(
    session: Session,
    endpoint: _Endpoint,
    reference: str,
    expected: str | None,
    creds: Credentials | None,
) -> tuple[Manifest | _Index, str, int]:
    """:func:`_manifest`, and the manifest's size in bytes."""
    what = f"reading manifest {reference} in {endpoint.name}"

    async def attempt() -> tuple[bytes, str]:
        response = await session.send(
            endpoint,
            "GET",
            f"/v2/{endpoint.path}/manifests/{reference}",
            what=what,
            scope="pull",
            creds=creds,
            headers={"Accept": ACCEPT},
            redirects=True,
        )
        if response.code != 200:
            raise error_for_status(what, await _error_detail(response), response.code)
        raw = await _body(response, MAX_MANIFEST, what)
        content_type = response.headers.getRawHeaders(b"content-type", [b""])[0]
        return raw, content_type.decode("latin-1").split(";")[0].strip()

    raw, media_type = await session.retrying(attempt)
    digest = sha256_digest(raw)
    if expected is not None and expected != digest:
        raise RegistryError(f"{what}: manifest digest {digest} does not match {expected}")
    try:
        return parse_manifest(raw, media_type, digest), digest, len(raw)
    except ValueError as e:
        raise RegistryError(f"{what}: {e}") from e


async def _body(response: IResponse, limit: int, what: str) -> bytes:
    """A small response body in memory; a cut connection is retryable."""
    try:
        return await _read(response, limit)
    except ValueError as e:
        raise RegistryError(f"{what}: {e}") from e
    except CancelledError:
        raise
    except Exception as e:
        error = RegistryUnreachable(f"{what}: {_describe_network(e).reason}")
        raise _Transient(error) from e


async def download(
    session: Session,
    blocking: Blocking,
    *,
    blobs: BlobStore,
    endpoint: _Endpoint,
    desc: Descriptor,
    creds: Credentials | None,
    progress: ProgressCallback | None,
) -> Blob:
    """Stream ``desc`` from ``endpoint`` into ``blobs``; partial blobs are thrown away."""
    from twisted.web.client import ResponseFailed  # noqa: PLC0415 (on first use: the HTTP client is not needed to start)

    what = f"fetching blob {desc.digest} from {endpoint.name}"
    # A thread cannot be interrupted: if we are cancelled while it creates
    # the staging file, the writer it returns is aborted when it arrives.
    writer = await _detached(blocking(blobs.writer), lambda late: blocking(late.abort))
    sink: _BlobSink | None = None
    committing = False
    try:
        response = await session.send(
            endpoint,
            "GET",
            f"/v2/{endpoint.path}/blobs/{desc.digest}",
            what=what,
            scope="pull",
            creds=creds,
            redirects=True,  # registries send blob GETs on to their storage
        )
        if response.code != 200:
            raise error_for_status(what, await _error_detail(response), response.code)

        def report(done: int) -> None:
            if progress is not None:
                progress(desc.digest, done, desc.size)

        sink = _BlobSink(
            clock=session.clock,
            blocking=blocking,
            writer=writer,
            expected_size=desc.size,
            timeout=session.timeout,
            progress=report,
        )
        response.deliverBody(sink)
        try:
            await sink.done
        except DigestMismatch as e:
            raise DigestMismatch(f"{what}: {e.message}") from e
        except (ResponseFailed, _IdleTimeout, neterror.ConnectionLost) as e:
            failure = _describe_network(e)
            error = RegistryUnreachable(f"{what}: {failure.reason}")
            if failure.retryable:
                raise _Transient(error) from e
            raise error from e
        if writer.size != desc.size:
            raise DigestMismatch(f"{what}: got {writer.size} bytes, the manifest says {desc.size}")
        # From here the writer is the commit's: it moves the file into
        # place or (on a mismatch) aborts itself, even if we are cancelled.
        committing = True
        try:
            return await blocking(writer.commit, desc.digest)
        except DigestMismatch as e:
            raise DigestMismatch(f"{what}: {e.message}") from e
    finally:
        if sink is not None:
            await sink.settle()
        if not committing:
            await blocking(writer.abort)


async def blob_exists_at(
    session: Session, endpoint: _Endpoint, digest: str, creds: Credentials | None, scope: str
) -> bool:
    """Whether ``endpoint``'s repository has blob ``digest`` (``HEAD``)."""
    check_digest(digest)
    what = f"checking blob {digest} in {endpoint.name}"

    async def attempt() -> bool:
        response = await session.send(
            endpoint,
            "HEAD",
            f"/v2/{endpoint.path}/blobs/{digest}",
            what=what,
            scope=scope,
            creds=creds,
            redirects=True,
        )
        await _read(response, MAX_ERROR_BODY)
        if response.code == 200:
            return True
        if response.code == 404:
            return False
        raise error_for_status(
            what, f"{response.code} {response.phrase.decode('latin-1')}", response.code
        )

    return await session.retrying(attempt)


async def upload(
    session: Session,
    blocking: Blocking,
    *,
    endpoint: _Endpoint,
    digest: str,
    size: int,
    open_blob: Callable[[], BinaryIO],
    creds: Credentials | None,
    progress: ProgressCallback | None,
) -> None:
    """One upload of a blob: ``POST`` for a location, then one streamed ``PUT``."""
    what = f"writing blob {digest} to {endpoint.name}"
    response = await session.send(
        endpoint,
        "POST",
        f"/v2/{endpoint.path}/blobs/uploads/",
        what=what,
        scope="pull,push",
        creds=creds,
    )
    if response.code != 202:
        raise error_for_status(what, await _error_detail(response), response.code)
    await _read(response, MAX_ERROR_BODY)
    location = response.headers.getRawHeaders(b"location", [b""])[0].decode("latin-1")
    if not location:
        raise RegistryError(f"{what}: the registry sent no upload location")
    base = await session.base(endpoint)
    url = URL.from_text(base + "/v2/").click(location).add("digest", digest).to_text()

    def report(done: int) -> None:
        if progress is not None:
            progress(digest, done, size)

    def body() -> _FileProducer:
        return _FileProducer(
            clock=session.clock,
            blocking=blocking,
            open_blob=open_blob,
            length=size,
            timeout=session.timeout,
            progress=report,
        )

    response = await session.send(
        endpoint,
        "PUT",
        url,
        what=what,
        scope="pull,push",
        creds=creds,
        headers={"Content-Type": "application/octet-stream"},
        body=body,
    )
    if response.code not in (201, 204):
        raise error_for_status(what, await _error_detail(response), response.code)
    await _read(response, MAX_ERROR_BODY)


async def paged(
    session: Session,
    blocking: Blocking,
    *,
    endpoint: _Endpoint,
    path: str,
    key: str,
    what: str,
    scope: str,
    creds: Credentials | None,
    limit: int | None,
) -> list[str]:
    """Follow ``Link: <...>; rel="next"`` pages of ``{key: [...]}`` answers."""
    items: list[str] = []
    url: str | None = path + (f"?n={limit}" if limit else "")
    for _ in range(MAX_PAGES):
        if url is None or (limit is not None and len(items) >= limit):
            break
        current = url

        async def attempt(current: str = current) -> tuple[bytes, str | None]:
            response = await session.send(
                endpoint, "GET", current, what=what, scope=scope, creds=creds
            )
            if response.code != 200:
                raise error_for_status(what, await _error_detail(response), response.code)
            base = await session.base(endpoint)
            full = current if "://" in current else base + current
            body = await _body(response, MAX_JSON, what)
            following = _next_link(response, full)
            return body, following

        body, url = await session.retrying(attempt)
        try:
            data = await blocking(json.loads, body)
        except ValueError as e:
            raise RegistryError(f"{what}: invalid JSON: {e}") from e
        values = data.get(key) if isinstance(data, dict) else None
        if not isinstance(values, list | None):
            raise RegistryError(f"{what}: invalid response: {key} is not a list")
        items.extend(str(v) for v in values or ())
    return items
