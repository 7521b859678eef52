"""Libpod registry routes: ``images/pull``, ``images/{name}/push``, ``images/search``.

As in Podman 4.x (``pkg/api/handlers/libpod/images_pull.go``): pull answers
200 at once and streams ``{"stream": "..."}`` lines, then one final
``{"images": [...], "id": ...}`` (with ``error`` on failure); ``quiet=true``
sends only the final report.  Push is quiet by default (an empty 200), and
streams ``{"stream"}`` lines with ``quiet=false``.
"""

from functools import partial

from klein import Response

from podapi.engine.engine import Engine
from podapi.engine.progress import Progress
from podapi.engine.push import check_push_compression, push_manifest_type
from podapi.errors import PodapiError
from podapi.http.call import ApiCall, BadRequest
from podapi.http.compat.distribution import (
    credentials,
    search_options,
    search_report,
    tls_verify,
)
from podapi.http.responses import json_response, text_response
from podapi.http.routing import Router
from podapi.http.streams import JsonLines
from podapi.storage import reference
from podapi.storage.registry import Platform


def _platform(call: ApiCall) -> Platform | None:
    arch, os_name, variant = call.text("Arch"), call.text("OS"), call.text("Variant")
    if not (arch or os_name or variant):
        return None
    default = Platform()
    return Platform(
        os=os_name or default.os, architecture=arch or default.architecture, variant=variant or ""
    )


def _stream_text(event: Progress) -> str | None:
    """containers/image's progress lines, as ``podman pull`` prints them."""
    if event.kind == "resolving":
        return f"Trying to pull {event.text}...\n"
    if event.kind == "layer" and event.status in ("waiting", "exists", "pushing"):
        if event.status == "pushing" and event.current:
            return None
        suffix = " skipped: already exists" if event.status == "exists" else ""
        return f"Copying blob {event.digest.split(':', 1)[-1][:12]}{suffix}\n"
    if event.kind == "config":
        return f"Copying config {event.digest.split(':', 1)[-1][:12]}\n"
    if event.kind == "manifest":
        return "Writing manifest to image destination\n"
    return None


class LibpodDistributionRoutes:
    """Pull, push and search on the libpod tree."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def register(self, router: Router) -> None:
        """Add the routes."""
        router.libpod("POST", "/images/pull", self.pull)
        router.libpod("GET", "/images/search", self.search)
        router.libpod("POST", "/images/<path:name>/push", self.push)

    async def pull(self, call: ApiCall) -> None:
        """``POST /libpod/images/pull?reference=&policy=&tlsVerify=&allTags=&quiet=``."""
        name = call.text("reference")
        if not name:
            raise BadRequest("reference parameter cannot be empty")
        name = name.removeprefix("docker://")
        policy = call.text("policy") or "always"
        quiet = call.flag("quiet")
        out = JsonLines(call.request)
        out.start()

        def progress(event: Progress) -> None:
            text = _stream_text(event)
            if text and not quiet:
                out.write({"stream": text})

        names = [name]
        if call.flag("allTags"):
            ref = self._engine.distribution.candidates(name, short_names=call.short_names)[0]
            tags = await self._engine.distribution.tags(
                ref, creds=credentials(call), tls_verify=tls_verify(call)
            )
            names = [ref.with_tag(tag).name for tag in tags]
        ids: list[str] = []
        try:
            for target in names:
                result = await self._engine.distribution.pull(
                    target,
                    short_names=call.short_names,
                    creds=credentials(call),
                    tls_verify=tls_verify(call),
                    platform=_platform(call),
                    policy=policy,
                    progress=progress,
                )
                ids.append(result.image.id)
        except PodapiError as e:
            out.write({"error": e.message, **({"images": ids, "id": ids[-1]} if ids else {})})
            return
        out.write({"images": ids, "id": ids[-1]})

    async def push(self, call: ApiCall, name: str) -> Response | None:
        """``POST /libpod/images/{name}/push?destination=&tlsVerify=&quiet=&format=&...``.

        ``format`` picks the manifest type pushed (``oci``, ``v2s2``/``docker``;
        default: the stored one, or Docker schema 2 when a manifest must be
        made); ``compressionFormat`` may only be ``gzip`` (``zstd`` and
        ``zstd:chunked`` are a 400).  ``removeSignatures`` and ``all`` are
        accepted and change nothing: images here carry no signatures, and
        ``all`` concerns manifest lists, which we do not store.

        Unlike Podman, which checks ``format`` and ``compressionFormat`` in the
        push itself (so with ``quiet=false`` the error arrives in the stream
        after a 200), we check them first: a bad value is always a 400.
        """
        manifest_type = push_manifest_type(call.text("format") or "")
        check_push_compression(call.text("compressionFormat") or "")
        call.flag("removeSignatures")  # decoded for the 400 on a bad boolean; nothing to remove
        call.flag("all")  # only meaningful for manifest lists
        image = await self._engine.images.resolve(name, short_names=call.short_names)
        dest = reference.parse(call.text("destination") or name)
        push = partial(
            self._engine.image_push.push,
            image,
            dest,
            creds=credentials(call),
            tls_verify=tls_verify(call),
            manifest_type=manifest_type,
        )
        if call.flag("quiet", default=True):
            await push()
            return text_response("", newline=False)
        out = JsonLines(call.request)
        out.start()

        def progress(event: Progress) -> None:
            text = _stream_text(event)
            if text:
                out.write({"stream": text})

        try:
            await push(progress=progress)
        except PodapiError as e:
            out.write({"error": e.message})
            return None
        out.write({"stream": "Writing manifest to image destination\n"})
        return None

    async def search(self, call: ApiCall) -> Response:
        """``GET /libpod/images/search?term=&limit=&filters=&listTags=&tlsVerify=``.

        Podman's ``entities.ImageSearchReport`` list; ``filters`` (``stars``,
        ``is-official``, ``is-automated``) and ``listTags`` as
        :func:`search_options` decodes them.
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
        return json_response([search_report(r) for r in results])
