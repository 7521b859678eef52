"""A container's changes as an image layer, streamed into the layer store.

The layer is the tar of the container's overlay upper dir
(:func:`podapi.storage.tarwrite.tree_stream` with ``layer=True``: whiteouts and
opaque directories become a layer's markers); :class:`ChunkReader` lets
:meth:`~podapi.storage.layers.LayerStore.ingest` read those chunks as a file.
Blocking: run in a thread.
"""

import errno
import os
from collections.abc import Iterable
from typing import BinaryIO, cast

from podapi.storage.layers import Ingested, LayerStore
from podapi.storage.tarwrite import tree_stream


class ChunkReader:
    """A read-only binary stream over an iterable of byte chunks.

    :meth:`podapi.storage.layers.LayerStore.ingest` peeks at a stream's first
    bytes (``tell``, ``read``, ``seek`` back) to recognise compression; so a
    seek back over the bytes of the last read is allowed, and nothing else.
    """

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        # Chunks not read yet: kept as they came, joined once per read.
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._last = b""
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        """Go back at most over the bytes the last :meth:`read` returned."""
        back = self._position - offset
        if whence != os.SEEK_SET or not 0 <= back <= len(self._last):
            raise OSError(errno.ESPIPE, "a chunk stream only seeks back over its last read")
        if back:
            self._pending.insert(0, self._last[-back:])
            self._pending_size += back
            self._last = self._last[:-back]
            self._position = offset
        return self._position

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes (all the rest if negative); ``b""`` at the end."""
        while size < 0 or self._pending_size < size:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._pending.append(chunk)
            self._pending_size += len(chunk)
        data = b"".join(self._pending)
        self._pending.clear()
        if 0 <= size < len(data):
            data, rest = data[:size], data[size:]
            self._pending.append(rest)
        self._pending_size -= len(data)
        self._last = data
        self._position += len(data)
        return data


def ingest_tree(layers: LayerStore, tree: str, *, layer: bool = True) -> Ingested:
    """Stream ``tree`` as a layer into the layer store (blob stored, layer staged).

    :param layer: ``tree`` is an overlay upper dir (whiteouts become ``.wh.``
        entries); false for a whole root filesystem taken as it is (a squashed commit).
    """
    chunks = tree_stream(tree, layer=layer)
    try:
        # ingest wants a binary file; a ChunkReader offers the part of one it uses.
        return layers.ingest(cast(BinaryIO, ChunkReader(chunks)))
    finally:
        chunks.close()
