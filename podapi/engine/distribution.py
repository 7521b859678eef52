"""Pull, search, inspect and login: images from registries (pushing: :mod:`podapi.engine.push`).

Progress is reported as :class:`podapi.engine.progress.Progress` events.
Layers already stored are not downloaded again; layer blobs are fetched in
parallel (bounded by the registry client) and extracted in the I/O pool.
"""

import json
from collections.abc import Callable, Sequence

from attrs import frozen
from twisted.internet.defer import DeferredList

from podapi.engine.events import EventBus
from podapi.engine.images import ImageService
from podapi.engine.progress import Progress, ProgressSink, ignore_progress
from podapi.engine.searchfilters import SearchFilter
from podapi.engine.shortnames import DOCKER_HUB, ShortNames
from podapi.engine.state.images import ImageRecord
from podapi.errors import InvalidArgument, NotFound
from podapi.storage import reference
from podapi.storage.reference import Reference
from podapi.storage.registries import RegistriesConfig
from podapi.storage.registry import (
    Credentials,
    Descriptor,
    Inspected,
    ManifestUnknown,
    Platform,
    RegistryClient,
    RegistryError,
    RegistryUnauthorized,
)
from podapi.threads import Blocking

NO_FILTER = SearchFilter()
POLICIES = ("always", "missing", "newer", "never")


class PullNotFound(ManifestUnknown):
    """The registry has no manifest for a pull: no such tag or digest, or no such repository.

    The message stays the registry client's (``reading manifest ... in ...:
    manifest unknown: manifest unknown``, as Podman words it); ``reference``,
    ``detail`` and ``repository_missing`` let the Docker tree word it as
    Docker does (``pull access denied for X, repository does not exist...``
    or ``manifest for X:tag not found: ...``).

    :ivar reference: what was asked of the registry.
    :ivar repository_missing: the repository itself is unknown (or access to it denied).
    """

    def __init__(self, error: RegistryError, ref: Reference, repository_missing: bool) -> None:
        super().__init__(error.message, detail=error.detail)
        self.reference = ref
        self.repository_missing = repository_missing


@frozen
class PullResult:
    """The image a pull produced and the digest the registry knows it by."""

    image: ImageRecord
    reference: Reference
    digest: str
    fresh: bool


@frozen
class SearchResult:
    """One repository (or, listing tags, one tag of it) found by a search.

    :ivar registry: the registry searched (Podman's ``Index``).
    :ivar name: the repository path at that registry.
    :ivar tag: the tag, when tags were listed.
    """

    registry: str
    name: str
    description: str = ""
    stars: int = 0
    official: bool = False
    automated: bool = False
    tag: str = ""


class Distribution:
    """Registry operations over the image store.

    :param images: the image service (store, leases, commit).
    :param client: the registry client.
    :param events: where ``pull`` events go.
    :param io: the blocking-work executor.
    :param registries: registries.conf (short names, search).
    """

    def __init__(
        self,
        images: ImageService,
        client: RegistryClient,
        events: EventBus,
        io: Blocking,
        registries: Callable[[], RegistriesConfig],
    ) -> None:
        self._images = images
        self._client = client
        self._events = events
        self._io = io
        self._registries = registries

    async def close(self) -> None:
        """Close kept-alive registry connections."""
        await self._client.close()

    # --- names ----------------------------------------------------------------------

    def candidates(self, text: str, *, short_names: ShortNames) -> list[Reference]:
        """References to try for a pull of ``text``.

        Docker's policy resolves short names to Docker Hub.  Podman's uses
        registries.conf: an alias, else the unqualified-search registries
        (several only when ``short-name-mode`` is not enforcing, since nobody
        can be asked to choose).
        """
        ref = reference.parse(text)
        if short_names.docker_hub_only or ref.explicit_domain:
            return [ref]
        config = self._registries()
        short = ref.path.removeprefix(reference.OFFICIAL_PREFIX)
        alias = config.aliases.get(short)
        if alias:
            target = reference.parse(alias)
            return [Reference(target.domain, target.path, ref.tag, ref.digest, True)]
        search = config.unqualified_search
        if not search:
            raise InvalidArgument(
                f"short-name {text!r} did not resolve to an alias and no "
                "unqualified-search registries are defined in registries.conf",
                cause="short-name resolution failed",
            )
        if len(search) > 1 and config.short_name_mode == "enforcing":
            raise InvalidArgument(
                f"short-name resolution enforced but cannot prompt without a TTY: {text!r} "
                f"could be any of {', '.join(search)}; use a fully qualified name",
                cause="short-name resolution enforced",
            )
        return [ref.with_domain(domain) for domain in search]

    # --- pull -----------------------------------------------------------------------

    async def pull(
        self,
        text: str,
        *,
        short_names: ShortNames,
        creds: Credentials | None = None,
        tls_verify: bool | None = None,
        platform: Platform | None = None,
        policy: str = "always",
        progress: ProgressSink = ignore_progress,
    ) -> PullResult:
        """Pull ``text``; ``policy`` is Podman's (``missing`` uses a local image if any)."""
        if policy not in POLICIES:
            raise InvalidArgument(f"unknown pull policy {policy!r}: use {', '.join(POLICIES)}")
        if policy in ("missing", "never"):
            try:
                local = await self._images.resolve(text, short_names=short_names)
            except NotFound:
                if policy == "never":
                    raise
            else:
                name = local.names[0] if local.names else text
                return PullResult(local, reference.parse(name), local.manifest_digest, False)
        last_error: Exception | None = None
        for ref in self.candidates(text, short_names=short_names):
            progress(Progress("resolving", text=ref.name))
            try:
                return await self._pull_one(ref, creds, tls_verify, platform, progress)
            except RegistryError as e:
                last_error = e
        assert last_error is not None
        raise last_error

    async def _pull_one(
        self,
        ref: Reference,
        creds: Credentials | None,
        tls_verify: bool | None,
        platform: Platform | None,
        progress: ProgressSink,
    ) -> PullResult:
        try:
            resolved = await self._client.resolve(
                ref, creds=creds, tls_verify=tls_verify, platform=platform
            )
        except ManifestUnknown as e:
            if not e.detail:
                raise  # not the registry's 404 (no entry for the platform)
            missing = await self._repository_missing(ref, creds, tls_verify)
            raise PullNotFound(e, ref, missing) from e
        except RegistryUnauthorized as e:
            if not e.detail.startswith("denied"):
                raise
            # distribution's DENIED: Docker Hub's answer for a repository that does not exist.
            raise PullNotFound(e, ref, True) from e
        manifest = resolved.manifest
        repo_digest = resolved.index_digest or manifest.digest
        config_desc = manifest.config
        keys = [config_desc.digest, *(layer.digest for layer in manifest.layers)]
        with self._images.lease(keys):
            await self._client.fetch_blob(ref, config_desc, creds=creds, tls_verify=tls_verify)
            progress(Progress("config", digest=config_desc.digest))
            config_raw = await self._io(self._images.blobs.read, config_desc.digest)
            diff_ids = list(json.loads(config_raw)["rootfs"]["diff_ids"])
            if len(diff_ids) != len(manifest.layers):
                raise RegistryError(
                    f"{ref.name}: config lists {len(diff_ids)} layers, manifest "
                    f"{len(manifest.layers)}",
                    cause="invalid image",
                )
            with self._images.lease(diff_ids):
                fresh = await self._fetch_layers(
                    ref,
                    manifest.layers,
                    diff_ids=diff_ids,
                    creds=creds,
                    tls_verify=tls_verify,
                    progress=progress,
                )
                progress(Progress("manifest", digest=manifest.digest))
                existed = await self._exists(config_desc.digest)
                image = await self._images.commit(
                    config_raw,
                    diff_ids,
                    names=[ref.name] if ref.tag else [],
                    manifest=(manifest.raw, manifest.media_type),
                    digests=[(ref.repository, repo_digest)],
                )
        self._events.emit("image", "pull", image.id, name=ref.name)
        progress(
            Progress(
                "done",
                digest=repo_digest,
                status="up to date" if existed and not fresh else "downloaded",
            )
        )
        return PullResult(image, ref, repo_digest, fresh)

    async def _repository_missing(
        self, ref: Reference, creds: Credentials | None, tls_verify: bool | None
    ) -> bool:
        """Whether ``ref``'s repository is unknown to the registry (its tag list is a 404).

        Registries answer a manifest of an unknown repository with
        ``MANIFEST_UNKNOWN`` as for an unknown tag; the tag list tells them apart.
        """
        try:
            await self._client.tags(ref, creds=creds, tls_verify=tls_verify)
        except (ManifestUnknown, RegistryUnauthorized):
            return True
        except RegistryError:
            return False
        return False

    # --- inspect ----------------------------------------------------------------------

    async def inspect(
        self,
        text: str,
        *,
        short_names: ShortNames,
        creds: Credentials | None = None,
        tls_verify: bool | None = None,
    ) -> Inspected:
        """The manifest (or index) ``text`` names at its registry, and its platforms,
        without pulling anything (Docker's ``GET /distribution/{name}/json``).

        A bare image ID names nothing at a registry: 400 with Docker's message.
        """
        if reference.is_image_id(text):
            raise InvalidArgument("no manifest found for full image ID")
        last_error: Exception | None = None
        for ref in self.candidates(text, short_names=short_names):
            try:
                return await self._client.inspect(ref, creds=creds, tls_verify=tls_verify)
            except RegistryError as e:
                last_error = e
        assert last_error is not None
        raise last_error

    async def _exists(self, config_digest: str) -> bool:
        try:
            await self._images.get(config_digest.split(":", 1)[1])
        except NotFound:
            return False
        return True

    async def _fetch_layers(
        self,
        ref: Reference,
        layers: Sequence[Descriptor],
        *,
        diff_ids: Sequence[str],
        creds: Credentials | None,
        tls_verify: bool | None,
        progress: ProgressSink,
    ) -> bool:
        """Download and extract the layers not stored yet; return whether any was."""
        known = await self._images.known_installed(diff_ids)
        missing = [(d, diff) for d, diff in zip(layers, diff_ids, strict=True) if diff not in known]
        for desc, diff_id in zip(layers, diff_ids, strict=True):
            status = "waiting" if diff_id not in known else "exists"
            progress(Progress("layer", status, desc.digest, 0, desc.size))
        if not missing:
            return False

        def downloading(digest: str, done: int, total: int) -> None:
            progress(Progress("layer", "downloading", digest, done, total))

        await self._client.fetch_blobs(
            ref, [d for d, _ in missing], creds=creds, tls_verify=tls_verify, progress=downloading
        )
        for desc, _ in missing:
            progress(Progress("layer", "downloaded", desc.digest, desc.size, desc.size))
            progress(Progress("layer", "extracting", desc.digest, 0, desc.size))
        results = await DeferredList(
            [self._io(self._images.layers.ingest_blob, desc.digest) for desc, _ in missing],
            fireOnOneErrback=True,
            consumeErrors=True,
        )
        for (desc, diff_id), (_, ingested) in zip(missing, results, strict=True):
            if ingested.diff_id != diff_id:
                raise RegistryError(
                    f"{ref.name}: layer {desc.digest} has diff ID "
                    f"{ingested.diff_id}, the config says {diff_id}",
                    cause="digest mismatch",
                )
            await self._images.add_layer(ingested, source=ref.repository)
            progress(Progress("layer", "complete", desc.digest, desc.size, desc.size))
        return True

    # --- search and login -----------------------------------------------------------

    async def search(
        self,
        term: str,
        *,
        short_names: ShortNames,
        limit: int = 25,
        creds: Credentials | None = None,
        tls_verify: bool | None = None,
        filters: SearchFilter = NO_FILTER,
        list_tags: bool = False,
    ) -> list[SearchResult]:
        """Repositories whose name contains the term, from registries' ``_catalog``.

        ``host/term`` searches that registry; a bare term searches Docker Hub
        with Docker's short-name policy, the unqualified-search registries with
        Podman's.
        ``filters`` then select by stars, official and automated (a catalog
        knows none of these: every result has 0 stars and is neither), before
        ``limit`` applies.

        With ``list_tags`` the term names a repository and the answer is its
        tags (up to ``limit`` per registry; ``filters`` do not apply), as
        libimage's ``searchRepositoryTags``: registries that fail are skipped
        when another one answers.
        """
        if not term:
            raise InvalidArgument("a search term is required")
        first, sep, rest = term.partition("/")
        if sep and ("." in first or ":" in first or first == "localhost"):
            hosts, needle = [first], rest
        else:
            if short_names.docker_hub_only:
                hosts = [DOCKER_HUB]
            else:
                hosts = list(self._registries().unqualified_search)
            needle = term
        if not hosts:
            raise InvalidArgument(
                "no registries to search: name one (host/term) or set unqualified-search-registries"
            )
        if list_tags:
            return await self._search_tags(hosts, needle, limit, creds, tls_verify)
        results: list[SearchResult] = []
        for host in hosts:
            repositories = await self._client.catalog(
                host, creds=creds, tls_verify=tls_verify, limit=max(limit, 100)
            )
            results += [SearchResult(host, repo) for repo in repositories if needle in repo]
        results = [r for r in results if filters.matches(r.stars, r.official, r.automated)]
        return results[:limit]

    async def _search_tags(
        self,
        hosts: Sequence[str],
        term: str,
        limit: int,
        creds: Credentials | None,
        tls_verify: bool | None,
    ) -> list[SearchResult]:
        """The tags of repository ``term`` at each of ``hosts``."""
        results: list[SearchResult] = []
        failures: list[RegistryError] = []
        for host in hosts:
            try:
                ref = reference.parse(f"{host}/{term}")
            except InvalidArgument as e:
                raise InvalidArgument(
                    f"reference {term!r} must be a docker reference: {e.message}"
                ) from e
            try:
                tags = await self._client.tags(ref, creds=creds, tls_verify=tls_verify)
            except RegistryError as e:
                failures.append(e)
                continue
            results += [SearchResult(host, ref.path, tag=tag) for tag in tags[:limit]]
        if not results and failures:
            raise failures[0]
        return results

    async def tags(
        self, ref: Reference, *, creds: Credentials | None = None, tls_verify: bool | None = None
    ) -> list[str]:
        """The repository's tags (``allTags`` pulls)."""
        return await self._client.tags(ref, creds=creds, tls_verify=tls_verify)

    async def login(self, server: str, creds: Credentials, tls_verify: bool | None = None) -> str:
        """Check credentials against a registry (``POST /auth``)."""
        return await self._client.login(server, creds, tls_verify=tls_verify)
