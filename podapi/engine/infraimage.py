"""The image of pods' infra containers, made locally from the host's ``catatonit``.

Podman builds its pause image at first use (``libpod/runtime_pod_linux.go``
``buildPauseImage``: ``FROM scratch``, ``COPY catatonit /catatonit``,
``ENTRYPOINT ["/catatonit", "-P"]``) and names it
``localhost/podman-pause:<version>-<build time>``.  We do the same with one
layer holding the static ``catatonit`` binary; nothing is pulled.
"""

import io
import os
import tarfile
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import DeferredLock

from podapi import LIBPOD_API_VERSION
from podapi.engine.images import ImageService
from podapi.engine.shortnames import ShortNames
from podapi.engine.times import rfc3339_nano
from podapi.errors import InvalidArgument, NotFound
from podapi.oci import host
from podapi.storage.layers import Ingested, LayerStore
from podapi.threads import Blocking

CATATONIT = "/usr/bin/catatonit"
ENTRYPOINT = ("/catatonit", "-P")


def pause_image_name(binary: str = CATATONIT) -> str:
    """``localhost/podman-pause:<version>-<binary's mtime>`` (blocking: stats the binary)."""
    return f"localhost/podman-pause:{LIBPOD_API_VERSION}-{int(os.stat(binary).st_mtime)}"


def pause_layer(binary: str) -> bytes:
    """A tar of ``/catatonit`` (0755, root, the binary's mtime): the same bytes every time."""
    out = io.BytesIO()
    mtime = int(os.stat(binary).st_mtime)
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        with open(binary, "rb") as f:
            data = f.read()
        info = tarfile.TarInfo("catatonit")
        info.size, info.mode, info.mtime = len(data), 0o755, mtime
        tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def ingest_pause_layer(layers: LayerStore, binary: str) -> Ingested:
    """Read the pause layer into the layer store (blocking)."""
    return layers.ingest(io.BytesIO(pause_layer(binary)))


def pause_config(diff_id: str, created_ns: int) -> dict[str, Any]:
    """The pause image's config."""
    return {
        "created": rfc3339_nano(created_ns),
        "architecture": host.go_arch(),
        "os": "linux",
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Entrypoint": list(ENTRYPOINT),
        },
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [
            {"created": rfc3339_nano(created_ns), "created_by": "COPY catatonit /catatonit"}
        ],
    }


class PauseImage:
    """Finds or makes the pause image (one maker at a time).

    :param images: the image store.
    :param io: the blocking-work executor.
    :param binary: the static ``catatonit`` to copy.
    """

    def __init__(self, images: ImageService, io: Blocking, binary: str = CATATONIT) -> None:
        self._images = images
        self._io = io
        self._binary = binary
        self._lock = DeferredLock()

    async def get(self) -> str:
        """The pause image's name; the image is made now if it is not there."""
        if not os.path.exists(self._binary):
            raise InvalidArgument(
                f"cannot make the pause image: {self._binary} is not installed "
                "(Debian package catatonit)",
                cause="no catatonit",
            )
        name = await self._io(pause_image_name, self._binary)
        async with self._lock:
            try:
                await self._images.resolve(name, short_names=ShortNames.PODMAN)
            except NotFound:
                pass
            else:
                return name
            mtime_ns: Callable[[], int] = lambda: os.stat(self._binary).st_mtime_ns  # noqa: E731
            created = await self._io(mtime_ns)
            binary = self._binary
            await self._images.commit_layer(
                lambda: ingest_pause_layer(self._images.layers, binary),
                lambda diff_id: pause_config(diff_id, created),
                names=[name],
            )
            return name
