"""Docker's registry-facing image routes: ``/images/create`` (pull or import), push,
search, ``/auth`` and ``/distribution/{name}/json``.

Pull and push progress is Docker's ``JSONMessage`` stream (``status``, ``id``,
``progressDetail``, ``progress``).  As in Docker, a pull that fails before any
progress was written answers with a plain error status (404 for an unknown
image); once the stream has started, failures arrive as an ``errorDetail``
line (plus the deprecated ``error`` string for API < 1.52).
"""

from typing import Any

from klein import Response

from podapi.engine import searchfilters
from podapi.engine.distribution import PullNotFound, SearchResult
from podapi.engine.engine import Engine
from podapi.engine.imagearchives import ImportRequest
from podapi.engine.progress import Progress
from podapi.engine.searchfilters import SearchFilter
from podapi.errors import NotFound, PodapiError, Unauthorized
from podapi.http.call import ApiCall, BadRequest
from podapi.http.responses import json_response
from podapi.http.routing import Router
from podapi.http.streams import JsonLines
from podapi.storage import reference
from podapi.storage.registry import Credentials, Inspected, Platform, RegistryUnauthorized

BAR = 50


def human_size(size: float) -> str:
    """Docker's ``units.HumanSize``: decimal units, three significant digits."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.3g}{unit}"
        size /= 1000
    return f"{size:.3g}TB"


def progress_bar(current: int, total: int) -> str:
    """Docker's progress bar: ``[=====>      ]  1.2MB/3.4MB``."""
    if total <= 0:
        return human_size(current)
    filled = min(BAR, BAR * current // total)
    arrow = ">" if filled < BAR else ""
    bar = "=" * filled + arrow + " " * (BAR - filled - len(arrow))
    return f"[{bar}] {human_size(current):>8}/{human_size(total)}"


def credentials(call: ApiCall) -> Credentials | None:
    """``X-Registry-Auth`` (base64url JSON) if the client sent one."""
    return Credentials.from_header(call.header("X-Registry-Auth"))


def tls_verify(call: ApiCall) -> bool | None:
    """``tlsVerify=false`` switches verification off; absent means the default."""
    return call.flag("tlsVerify", default=True) if call.has("tlsVerify") else None


def platform(call: ApiCall) -> Platform | None:
    """``platform=os/arch[/variant]``."""
    value = call.text("platform")
    if not value:
        return None
    parts = value.split("/")
    if len(parts) < 2:
        raise BadRequest(f"invalid platform {value!r}: use os/arch[/variant]")
    return Platform(os=parts[0], architecture=parts[1], variant=parts[2] if len(parts) > 2 else "")


def search_options(call: ApiCall) -> tuple[SearchFilter, bool]:
    """``filters`` and ``listTags`` of an image search (both trees).

    ``filters`` is parsed by :func:`podapi.engine.searchfilters.parse` (an
    unknown key or a bad ``stars`` is a 400); a bad ``listTags`` boolean is a
    400 on the libpod tree, as the tree's decoder makes it.
    """
    return searchfilters.parse(call.filters()), call.flag("listTags")


def search_report(result: SearchResult) -> dict[str, Any]:
    """Podman's ``entities.ImageSearchReport`` (``Official``/``Automated`` are ``[OK]`` or "")."""
    return {
        "Index": result.registry,
        "Name": f"{result.registry}/{result.name}",
        "Description": result.description,
        "Stars": result.stars,
        "Official": "[OK]" if result.official else "",
        "Automated": "[OK]" if result.automated else "",
        "Tag": result.tag,
    }


def docker_pull_not_found(error: PullNotFound) -> NotFound:
    """Docker's words for a pull the registry has nothing for (moby ``notFoundError``).

    docker-py's ``ImageNotFound`` is raised from a 404 saying "repository does
    not exist" (``containers.run`` of a missing image pulls and expects it);
    an unknown tag or digest is ``manifest for X:tag not found``.
    """
    ref = error.reference
    if error.repository_missing:
        name = reference.docker_name(ref.repository)
        message = (
            f"pull access denied for {name}, repository does not exist or may require "
            f"'docker login': {error.detail}"
        )
    else:
        message = f"manifest for {reference.docker_name(ref.name)} not found: {error.detail}"
    return NotFound(message, cause=error.cause)


class DockerProgress:
    """Renders :class:`Progress` as Docker ``JSONMessage`` lines."""

    def __init__(self, out: JsonLines, legacy: bool) -> None:
        self._out = out
        self._legacy = legacy

    def write(self, body: dict[str, Any]) -> None:
        self._out.write(body)

    def error(self, message: str) -> None:
        body: dict[str, Any] = {"errorDetail": {"message": message}}
        if self._legacy:
            body["error"] = message
        self._out.write(body)

    def layer(self, event: Progress, pushing: bool = False) -> None:
        short = event.digest.split(":", 1)[-1][:12]
        statuses = {
            "waiting": "Pulling fs layer",
            "exists": "Already exists",
            "downloading": "Downloading",
            "downloaded": "Download complete",
            "extracting": "Extracting",
            "complete": "Pull complete",
        }
        if pushing:
            statuses = {
                "preparing": "Preparing",
                "pushing": "Pushing",
                "pushed": "Pushed",
                "exists": "Layer already exists",
            }
        status = statuses.get(event.status)
        if status is None:
            return
        body: dict[str, Any] = {"status": status, "progressDetail": {}, "id": short}
        if event.status in ("downloading", "pushing", "extracting") and event.total:
            body["progressDetail"] = {"current": event.current, "total": event.total}
            if self._legacy:
                body["progress"] = progress_bar(event.current, event.total)
        self._out.write(body)


def distribution_inspect(inspected: Inspected) -> dict[str, Any]:
    """Docker's ``registry.DistributionInspect`` (``Platforms`` is null when none is known)."""
    return {
        "Descriptor": {
            "mediaType": inspected.media_type,
            "digest": inspected.digest,
            "size": inspected.size,
        },
        "Platforms": [dict(p) for p in inspected.platforms] or None,
    }


class CompatDistributionRoutes:
    """``/images/create``, ``/images/{name}/push``, ``/images/search``, ``/auth``,
    ``/distribution/{name}/json``."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def register(self, router: Router) -> None:
        """Add the routes."""
        router.compat("POST", "/images/create", self.create)
        router.compat("GET", "/images/search", self.search)
        router.compat("POST", "/images/<path:name>/push", self.push)
        router.compat("POST", "/auth", self.auth)
        router.compat("GET", "/distribution/<path:name>/json", self.distribution)

    async def create(self, call: ApiCall) -> Response | None:
        """``POST /images/create``: ``fromImage`` pulls, ``fromSrc`` imports (body or URL)."""
        source = call.text("fromSrc")
        if source is not None:
            return await self._import(call, source)
        name = call.text("fromImage")
        if not name:
            raise BadRequest("fromImage or fromSrc is required")
        await self._pull(call, reference.join(name, call.text("tag")).name)
        return None

    async def _import(self, call: ApiCall, source: str) -> Response:
        """``fromSrc=-``: the body is the tarball; otherwise an http(s) URL to fetch it from
        (Docker reads a URL without a scheme as ``http://``)."""
        repo = call.text("repo")
        name = None
        if repo:
            name = reference.join(repo, call.text("tag")).name
        target = platform(call)
        request = ImportRequest(
            name=name,
            changes=call.texts("changes"),
            message=call.text("message") or "",
            os_name=target.os if target else "",
            architecture=target.architecture if target else "",
            variant=target.variant if target else "",
        )
        archives = self._engine.image_archives
        if source == "-":
            image = await archives.import_rootfs(call.request.content, request)
        else:
            url = source if "://" in source else "http://" + source
            image = await archives.import_url(url, request)
        return json_response({"status": "sha256:" + image.id})

    async def _pull(self, call: ApiCall, name: str) -> None:
        out = JsonLines(call.request)
        render = DockerProgress(out, legacy=not call.version_at_least(1, 52))
        started = False

        def progress(event: Progress) -> None:
            nonlocal started
            if event.kind == "resolving":
                return
            if not started:
                started = True
                ref = reference.parse(name)
                render.write(
                    {
                        "status": f"Pulling from {ref.path}",
                        "id": ref.tag or ref.digest or "latest",
                    }
                )
            if event.kind == "layer":
                render.layer(event)
            elif event.kind == "done":
                render.write({"status": f"Digest: {event.digest}"})

        try:
            result = await self._engine.distribution.pull(
                name,
                short_names=call.short_names,
                creds=credentials(call),
                tls_verify=tls_verify(call),
                platform=platform(call),
                progress=progress,
            )
        except PullNotFound as e:
            error = docker_pull_not_found(e)
            if not started:
                raise error from e  # nothing sent yet: a normal error response, as Docker does
            render.error(error.message)
            return
        except PodapiError as e:
            if not started:
                raise
            render.error(e.message)
            return
        shown = reference.docker_name(result.reference.name)
        status = "Downloaded newer image for" if result.fresh else "Image is up to date for"
        render.write({"status": f"Status: {status} {shown}"})

    async def push(self, call: ApiCall, name: str) -> None:
        """``POST /images/{name}/push?tag=``: pushes ``name:tag`` (all tags? no: one)."""
        tag = call.text("tag")
        source = f"{name}:{tag}" if tag else name
        image = await self._engine.images.resolve(source, short_names=call.short_names)
        dest = reference.parse(source)
        out = JsonLines(call.request)
        render = DockerProgress(out, legacy=not call.version_at_least(1, 52))
        render.write(
            {"status": f"The push refers to repository [{reference.docker_name(dest.repository)}]"}
        )

        def progress(event: Progress) -> None:
            if event.kind == "layer":
                render.layer(event, pushing=True)

        try:
            result = await self._engine.image_push.push(
                image,
                dest,
                creds=credentials(call),
                tls_verify=tls_verify(call),
                progress=progress,
            )
        except PodapiError as e:
            render.error(e.message)
            return
        shown_tag = dest.tag or "latest"
        render.write({"status": f"{shown_tag}: digest: {result.digest} size: {result.size}"})
        render.write(
            {
                "progressDetail": {},
                "aux": {"Tag": shown_tag, "Digest": result.digest, "Size": result.size},
            }
        )

    async def search(self, call: ApiCall) -> Response:
        """``GET /images/search?term=&limit=&filters=&listTags=``: from registries' ``_catalog``.

        Docker's ``registry.SearchResult`` list.  ``filters`` (``stars``,
        ``is-official``, ``is-automated``) are decoded as Podman does (see
        :func:`search_options`).  ``listTags=true`` (Podman's extension; Docker
        has no such parameter) answers Podman's ``ImageSearchReport`` list with
        one entry per tag, as Podman's handler, which serves both trees, does.
        """
        filters, list_tags = search_options(call)
        results = await self._engine.distribution.search(
            call.text("term") or "",
            short_names=call.short_names,
            limit=call.integer("limit", 25) or 25,
            creds=credentials(call),
            tls_verify=tls_verify(call),
            filters=filters,
            list_tags=list_tags,
        )
        if list_tags:
            return json_response([search_report(r) for r in results])
        return json_response(
            [
                {
                    "name": f"{r.registry}/{r.name}" if r.registry != "docker.io" else r.name,
                    "description": r.description,
                    "star_count": r.stars,
                    "is_official": r.official,
                    "is_automated": r.automated,
                }
                for r in results
            ]
        )

    async def auth(self, call: ApiCall) -> Response:
        """``POST /auth``: check credentials with the registry."""
        body = call.json_body(empty_ok=False)
        if not isinstance(body, dict):
            raise BadRequest("the body must be a JSON AuthConfig object")
        creds = Credentials.from_json(body)
        server = creds.server_address or "docker.io"
        try:
            status = await self._engine.distribution.login(server, creds)
        except RegistryUnauthorized as e:
            raise Unauthorized(e.message) from e
        return json_response({"Status": status, "IdentityToken": ""})

    async def distribution(self, call: ApiCall, name: str) -> Response:
        """``GET /distribution/{name}/json``: the registry's manifest descriptor and the
        platforms it serves, without pulling (credentials from ``X-Registry-Auth``).

        Podman answers 404 "not supported" here; we answer as Docker does.  Unlike
        Docker, an OCI image manifest's platform is read from its config too (Docker
        reads it only for Docker schema 2 manifests and leaves OCI ones without).
        """
        try:
            inspected = await self._engine.distribution.inspect(
                name,
                short_names=call.short_names,
                creds=credentials(call),
                tls_verify=tls_verify(call),
            )
        except RegistryUnauthorized as e:
            raise Unauthorized(e.message) from e
        return json_response(distribution_inspect(inspected))
