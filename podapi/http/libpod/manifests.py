"""Libpod manifest list routes (``podman manifest``), as Podman 4.3.1 registers them
(``pkg/api/server/register_manifest.go``, ``pkg/api/handlers/libpod/manifests.go``).

The v4 tree: ``POST /manifests/{name}`` (create), ``GET {name}/exists``,
``GET {name}/json``, ``PUT {name}`` (``operation`` update/remove/annotate),
``DELETE {name}``, ``POST {name}/registry/{destination}`` (push).  The v3 tree's
``POST /manifests/create?name=``, ``POST {name}/add``, ``DELETE {name}?digest=``
and ``POST {name}/push?destination=`` answer when the path's version is below 4.

Differences from Podman 4.3.1 (whose handlers answer 500 for most failures):
a name that is taken is a 409; an unknown list, image or instance digest a 404;
a body that is not JSON, a bad boolean and a bad digest 400s with the usual
error body (Podman's ``ManifestModifyReport`` carries its errors as empty
objects, so its client prints nothing useful).
"""

from functools import partial
from typing import Any

from klein import Response

from podapi.engine.engine import Engine
from podapi.engine.manifests import Annotation, parse_annotations
from podapi.engine.progress import Progress
from podapi.errors import PodapiError
from podapi.http.bodyfields import boolean, field, json_object, string_map, strings, text
from podapi.http.call import ApiCall, BadRequest
from podapi.http.compat.distribution import credentials, tls_verify
from podapi.http.libpod.images import encode_report
from podapi.http.responses import json_response, no_content
from podapi.http.routing import Router
from podapi.http.streams import JsonLines
from podapi.storage import reference
from podapi.storage.registry import RegistryError

OPERATIONS = ("update", "remove", "annotate")


def _annotation(body: dict[str, Any]) -> Annotation:
    """``ManifestAnnotateOptions``: ``annotation`` as ``KEY=VALUE`` strings (the
    server's field) or a map (what podman-py sends), and ``annotations`` as a map
    (what Podman 4.3.1's client sends)."""
    if isinstance(field(body, "annotation"), dict):
        annotations = string_map(body, "annotation", "manifest")
    else:
        annotations = parse_annotations(strings(body, "annotation", "manifest"))
    annotations.update(string_map(body, "annotations", "manifest"))
    return Annotation(
        architecture=text(body, "arch", "manifest"),
        os=text(body, "os", "manifest"),
        variant=text(body, "variant", "manifest"),
        os_version=text(body, "os_version", "manifest"),
        features=strings(body, "features", "manifest"),
        os_features=strings(body, "os_features", "manifest"),
        annotations=annotations,
    )


def _stream_text(event: Progress) -> str | None:
    """containers/image's lines for a list copy."""
    if event.kind == "layer" and event.status in ("pushing", "exists") and not event.current:
        suffix = " skipped: already exists" if event.status == "exists" else ""
        return f"Copying blob {event.digest.split(':', 1)[-1][:12]}{suffix}\n"
    if event.kind == "manifest":
        return "Writing manifest list to image destination\n"
    return None


class LibpodManifestRoutes:
    """The ``/libpod/manifests`` routes."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def register(self, router: Router) -> None:
        """Add the routes."""
        router.libpod("POST", "/manifests/<path:name>", self.create)
        router.libpod("GET", "/manifests/<path:name>/exists", self.exists)
        router.libpod("GET", "/manifests/<path:name>/json", self.inspect)
        router.libpod("PUT", "/manifests/<path:name>", self.modify)
        router.libpod("DELETE", "/manifests/<path:name>", self.delete)
        router.libpod("POST", "/manifests/<path:name>/registry/<path:destination>", self.push)
        router.libpod("POST", "/manifests/<path:name>/add", self.add_v3)
        router.libpod("POST", "/manifests/<path:name>/push", self.push_v3)

    async def create(self, call: ApiCall, name: str) -> Response:
        """``POST /libpod/manifests/{name}?images=&all=&amend=`` (v3: ``/create?name=``).

        An optional JSON body (``ManifestModifyOptions``) adds its ``images`` (or the
        query's) with its platform and annotation fields.  201 ``{"Id"}`` (200 below v4).
        """
        v4 = call.version_at_least(4)
        if name == "create" and not v4:
            name = call.text("name") or ""
        images = call.texts("images") or call.texts("image")
        all_images = call.flag("all")
        body: dict[str, Any] = {}
        if len(call.body_bytes()) >= 3:  # Podman: "Treat \r\n as empty body"
            body = json_object(call.json_body(), "manifest")
            images = list(strings(body, "images", "manifest")) or images
            all_images = all_images or boolean(body, "all", "manifest")
        try:
            reference.parse(name)
        except PodapiError as e:
            raise BadRequest(f"invalid image name {name}: {e.message}") from None
        record = await self._engine.manifests.create(
            name,
            images,
            all=all_images,
            amend=call.flag("amend"),
            annotation=_annotation(body) if body else None,
            short_names=call.short_names,
            creds=credentials(call),
            tls_verify=tls_verify(call),
        )
        return json_response({"Id": record.id}, 201 if v4 else 200)

    async def exists(self, call: ApiCall, name: str) -> Response:
        """``GET /libpod/manifests/{name}/exists``: 204, or 404 "manifest not found"."""
        await self._engine.manifests.get(name)
        return no_content()

    async def inspect(self, call: ApiCall, name: str) -> Response:
        """``GET /libpod/manifests/{name}/json``: the list as a Docker schema 2 list;
        a name that is no local list is looked up at its registry (``manifest inspect``
        of a remote image)."""
        document = await self._engine.manifests.inspect(
            name, creds=credentials(call), tls_verify=tls_verify(call)
        )
        return json_response(document)

    async def modify(self, call: ApiCall, name: str) -> Response:
        """``PUT /libpod/manifests/{name}``: ``{"operation": "update"|"remove"|"annotate",
        "images": [...], ...}``; answers ``{"Id", "images"}``."""
        body = json_object(call.json_body(empty_ok=False), "manifest")
        operation = text(body, "operation", "manifest").lower()
        images = list(strings(body, "images", "manifest"))
        await self._engine.manifests.get(name)
        if operation not in OPERATIONS:
            raise BadRequest(
                f"illegal operation {text(body, 'operation', 'manifest')!r} for {call.path}"
            )
        if operation == "update":
            record = await self._engine.manifests.add(
                name,
                images,
                all=boolean(body, "all", "manifest"),
                annotation=_annotation(body),
                short_names=call.short_names,
                creds=credentials(call),
                tls_verify=tls_verify(call),
            )
        elif operation == "remove":
            record = await self._engine.manifests.remove_instances(name, images)
        else:
            record = await self._engine.manifests.annotate(name, images, _annotation(body))
        report: dict[str, Any] = {"Id": record.id}
        if images:
            report["images"] = images
        return json_response(report)

    async def delete(self, call: ApiCall, name: str) -> Response:
        """``DELETE /libpod/manifests/{name}``: the list goes (``ImageRemoveReport``).

        Below v4 this is ``ManifestRemoveDigestV3``: ``?digest=`` leaves the list.
        """
        if not call.version_at_least(4):
            digest = call.text("digest") or ""
            record = await self._engine.manifests.remove_instances(name, [digest])
            return json_response({"Id": record.id})
        report = await self._engine.manifests.delete(name)
        return json_response(encode_report(report, [], 0))

    async def push(self, call: ApiCall, name: str, destination: str) -> Response | None:
        """``POST /libpod/manifests/{name}/registry/{destination}?all=&format=&tlsVerify=
        &quiet=``: ``{"Id": digest}``; with ``quiet=false`` ``{"stream"}`` lines first and
        ``{"error"}`` on failure (the list and destination are checked before the 200)."""
        return await self._push(call, name, destination, quiet=call.flag("quiet", default=True))

    async def _push(
        self, call: ApiCall, name: str, destination: str, *, quiet: bool
    ) -> Response | None:
        transport, sep, rest = destination.partition("://")
        if sep:
            if transport != "docker":
                raise BadRequest(f"unsupported transport {transport!r} in {destination!r}")
            destination = rest
        dest = reference.parse(destination)
        fmt = call.text("format") or ""
        call.flag("removeSignatures")
        compression = call.text("compressionFormat") or ""
        if compression not in ("", "gzip"):
            raise BadRequest(f"compression format {compression!r} is not supported: use gzip")
        await self._engine.manifests.get(name)
        push = partial(
            self._engine.manifests.push,
            name,
            dest,
            all=call.flag("all"),
            fmt=fmt,
            creds=credentials(call),
            tls_verify=tls_verify(call),
        )
        if quiet:
            try:
                digest = await push()
            except RegistryError as e:
                # Podman's ManifestPush: every failed push is a 400 "pushing image ...".
                raise BadRequest(f"pushing image {destination!r}: {e.message}") from None
            return json_response({"Id": digest})
        out = JsonLines(call.request)
        out.start()

        def progress(event: Progress) -> None:
            line = _stream_text(event)
            if line:
                out.write({"stream": line})

        try:
            digest = await push(progress=progress)
        except PodapiError as e:
            out.write({"error": e.message})
            return None
        out.write({"Id": digest})
        return None

    async def add_v3(self, call: ApiCall, name: str) -> Response:
        """v3 ``POST /libpod/manifests/{name}/add`` (``ManifestAddV3``): JSON
        ``ManifestAddOptions``; ``{"Id"}``.  From v4 the path is a create of ``{name}/add``."""
        if call.version_at_least(4):
            return await self.create(call, name + "/add")
        body = json_object(call.json_body(empty_ok=False), "manifest")
        record = await self._engine.manifests.add(
            name,
            list(strings(body, "images", "manifest")),
            all=boolean(body, "all", "manifest"),
            annotation=_annotation(body),
            short_names=call.short_names,
            creds=credentials(call),
            tls_verify=tls_verify(call),
        )
        return json_response({"Id": record.id})

    async def push_v3(self, call: ApiCall, name: str) -> Response | None:
        """v3 ``POST /libpod/manifests/{name}/push?destination=&all=`` (``ManifestPushV3``).
        From v4 the path is a create of ``{name}/push``."""
        if call.version_at_least(4):
            return await self.create(call, name + "/push")
        return await self._push(call, name, call.text("destination") or name, quiet=True)
