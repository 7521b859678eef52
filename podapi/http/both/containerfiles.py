"""``docker cp`` and ``docker export`` routes, one handler for both trees (as Podman).

* ``HEAD|GET /containers/{name}/archive?path=``: the path's stat in the
  ``X-Docker-Container-Path-Stat`` header; GET adds a tar of it.
* ``PUT /containers/{name}/archive?path=&noOverwriteDirNonDir=&copyUIDGID=``:
  unpack the tar body into that directory; 200, empty body (Podman 4.3.1
  ``compat/containers_archive.go``).  ``copyUIDGID`` defaults to true on the
  libpod tree, as in Podman.  Podman's ``rename`` (used only by ``podman cp``
  between two containers) is refused with 400 rather than ignored.
* ``GET /containers/{name}/export``: the whole filesystem as a tar.

Tars are streamed with back-pressure (:func:`stream_chunks`); an upload is
read from the spooled request body.
"""

import base64
import contextlib
import json
import socket
from typing import cast

from klein import Response
from twisted.web.server import Request

from podapi.engine.engine import Engine
from podapi.engine.state.containers import ContainerRecord
from podapi.engine.times import rfc3339_nano
from podapi.http.call import ApiCall, BadRequest
from podapi.http.producers import stream_chunks
from podapi.http.routing import Router
from podapi.storage.pathstat import PathStat

STAT_HEADER = "X-Docker-Container-Path-Stat"
TAR = b"application/x-tar"
#: The kernel send buffer of a connection a tar streams out on.  With the default
#: (about 200 KiB) the reactor wakes up for every few hundred KiB the client
#: takes; 4 MiB (Linux caps it at ``net.core.wmem_max``) copied a 500 MB
#: directory out a quarter faster to a Python client (bench/archive.py).
SEND_BUFFER = 4 * 1024 * 1024
# Characters whose JSON escape keeps the stat's base64 free of "+" and "/".
_BASE64_NEUTRAL = str.maketrans({"~": "\\u007e", "?": "\\u003f", "\x7f": "\\u007f"})


def encode_path_stat(found: PathStat) -> str:
    """The stat header value: base64 of Podman's ``FileInfo`` JSON.

    Docker's clients decode it with the standard base64 alphabet, Podman's with
    the URL-safe one.  Both read the same text when it holds neither ``+``/``/``
    nor ``-``/``_``, and for ASCII input base64 only yields ``+`` or ``/`` from
    the bytes ``>``, ``?``, ``~`` and DEL.  So the JSON is pure ASCII
    (``ensure_ascii``) and those characters, only ever inside strings, are
    written as ``\\u`` escapes, which every JSON reader accepts.
    """
    body = {
        "name": found.name,
        "size": found.size,
        "mode": found.mode,
        "mtime": rfc3339_nano(found.mtime_ns),
        "isDir": found.is_dir,
        "linkTarget": found.link_target,
    }
    text = json.dumps(body, separators=(",", ":"), ensure_ascii=True).replace(">", "\\u003e")
    return base64.b64encode(text.translate(_BASE64_NEUTRAL).encode("ascii")).decode("ascii")


def _send_tar(request: Request) -> None:
    """Headers for a tar stream, and room in the kernel to queue it."""
    request.setHeader(b"Content-Type", TAR)
    handle = getattr(request.channel.transport, "getHandle", None)
    sock = handle() if handle is not None else None
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)


class ArchiveRoutes:
    """``archive`` and ``export`` on both trees."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def register(self, router: Router) -> None:
        """Add the routes."""
        for add in (router.compat, router.libpod):
            for method in ("HEAD", "GET", "PUT"):
                add(method, "/containers/<name>/archive", self.archive)
            add("GET", "/containers/<name>/export", self.export)

    async def archive(self, call: ApiCall, name: str) -> Response | None:
        """``HEAD|GET|PUT /containers/{name}/archive?path=`` (Podman's ``compat.Archive``)."""
        path = call.text("path")
        if not path:
            raise BadRequest("missing `path` parameter")
        record = await self._engine.containers.resolve(name)
        method = call.request.method
        if method == b"PUT":
            return await self._put(call, record, path)
        if method == b"HEAD":
            found = await self._engine.files.stat(record, path)
            return Response(code=200, headers={STAT_HEADER: encode_path_stat(found)}, body=b"")
        request = cast(Request, call.request)
        async with self._engine.files.archive(record, path) as (found, stream):
            request.setHeader(STAT_HEADER.encode(), encode_path_stat(found).encode())
            _send_tar(request)
            await stream_chunks(request, stream)
        return None

    async def _put(self, call: ApiCall, record: ContainerRecord, path: str) -> Response:
        if call.text("rename"):
            raise BadRequest("the rename parameter is not supported")
        content = call.request.content
        content.seek(0)
        await self._engine.files.extract(
            record,
            path,
            content,
            no_overwrite_dir_non_dir=call.flag("noOverwriteDirNonDir", default=False),
            copy_uid_gid=call.flag("copyUIDGID", default=call.libpod),
        )
        return Response(code=200, headers={}, body=b"")

    async def export(self, call: ApiCall, name: str) -> None:
        """``GET /containers/{name}/export``: the flattened filesystem (running or not)."""
        record = await self._engine.containers.resolve(name)
        request = cast(Request, call.request)
        async with self._engine.files.export(record) as stream:
            _send_tar(request)
            await stream_chunks(request, stream)
