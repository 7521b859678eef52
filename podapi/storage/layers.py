"""Layer directories: each layer extracted once into ``layers/<diff hex>``, an overlay lower dir.

Ingesting a layer is one pass over its bytes: they are hashed as the stored
blob (compressed or not, as it came), decompressed if needed, hashed again
for the diff ID, and extracted (whiteouts converted to overlay form) into a
staging directory that is renamed into place only when complete.  A crash
leaves only staging leftovers, removed at the next start.  Blocking: call from
a thread.
"""

import errno
import gzip
import hashlib
import os
import shutil
import tarfile
import tempfile
import zlib
from collections.abc import Callable
from typing import IO, Any, BinaryIO, cast

from attrs import define, frozen

from podapi.storage.blobs import Blob, BlobStore, BlobWriter, DigestMismatch
from podapi.storage.tarextract import MAGIC_SIZE, compression_of, extract_layer_chunks
from podapi.storage.tarstream import Chunks, file_chunks, peek, tapped

TAR_MEDIA = "application/vnd.oci.image.layer.v1.tar"
GZIP_MEDIA = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_GZIP_MEDIA = "application/vnd.docker.image.rootfs.diff.tar.gzip"


class UnsupportedCompression(DigestMismatch):
    """A layer compressed with something we cannot read."""

    cause = "unsupported layer compression"


#: errnos of a full disk or an exhausted quota.
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def media_type_for(head: bytes) -> str:
    """The OCI layer media type for content starting with ``head``."""
    compression = compression_of(head)
    if compression == "gzip":
        return GZIP_MEDIA
    if compression is not None:
        raise UnsupportedCompression(f"{compression}-compressed layers are not supported")
    return TAR_MEDIA


@frozen
class Ingested:
    """A layer read from a stream: its blob, diff ID, size and staging directory."""

    blob: Blob
    media_type: str
    diff_id: str
    size: int
    staging_dir: str


def _hex(digest: Any) -> str:
    return "sha256:" + digest.hexdigest()


class _ChunkFile:
    """A chunk source as the read-only file ``gzip.GzipFile`` wants."""

    def __init__(self, source: Chunks) -> None:
        self._source = source
        self._rest = memoryview(b"")

    def read(self, size: int = -1) -> bytes:
        if not self._rest:
            self._rest = memoryview(self._source()).cast("B")
        if size < 0:
            size = len(self._rest)
        data = bytes(self._rest[:size])
        self._rest = self._rest[size:]
        return data


@define
class StagedLayer:
    """A layer read and extracted but not yet in the store: :meth:`commit` or :meth:`discard`."""

    store: "LayerStore"
    writer: BlobWriter | None
    blob: Blob
    media_type: str
    diff_id: str
    size: int
    staging_dir: str
    committed: bool = False

    def commit(self) -> Ingested:
        """Put the blob under its digest; the extraction is ready for ``install``."""
        blob = self.writer.commit() if self.writer is not None else self.blob
        self.committed = True
        return Ingested(
            blob=blob,
            media_type=self.media_type,
            diff_id=self.diff_id,
            size=self.size,
            staging_dir=self.staging_dir,
        )

    def discard(self) -> None:
        """Throw the staged blob and extraction away (unless committed: then they are
        the store's)."""
        if self.committed:
            return
        if self.writer is not None:
            self.writer.abort()
        shutil.rmtree(self.staging_dir, ignore_errors=True)


class LayerStore:
    """Extracted layers under ``<root>/layers``."""

    def __init__(self, root: str, blobs: BlobStore) -> None:
        self.root = os.path.join(root, "layers")
        self.staging = os.path.join(root, "layers-staging")
        self._blobs = blobs

    def create(self) -> None:
        """Create the directories; drop staging leftovers of a crash."""
        os.makedirs(self.root, mode=0o700, exist_ok=True)
        shutil.rmtree(self.staging, ignore_errors=True)
        os.makedirs(self.staging, mode=0o700, exist_ok=True)

    def path(self, diff_id: str) -> str:
        """The lower dir of a layer."""
        return os.path.join(self.root, diff_id.split(":", 1)[1])

    def exists(self, diff_id: str) -> bool:
        return os.path.isdir(self.path(diff_id))

    def on_disk(self) -> set[str]:
        """Diff IDs of the layer directories present."""
        return {"sha256:" + name for name in os.listdir(self.root)}

    def ingest(self, source: BinaryIO, store_blob: bool = True) -> Ingested:
        """Read a layer (tar or tar.gz) from ``source``: store its blob and extract it.

        :param source: a stream positioned at the layer's first byte and ending
            with it (e.g. a tar member or a blob file).
        :param store_blob: keep the bytes as a blob (False when they already are one).
        """
        return self.stage(file_chunks(source), store_blob).commit()

    def stage(self, source: Chunks, store_blob: bool = True) -> "StagedLayer":
        """Read a layer (tar or tar.gz) in one pass: hash it, keep its blob and extract it.

        The blob stays a staging file until :meth:`StagedLayer.commit`, so a load
        that fails later leaves nothing under a digest.

        :param source: the layer's chunks, to its end.
        :param store_blob: keep the bytes as a blob (False when they already are one).
        """
        head, source = peek(source, MAGIC_SIZE)
        media_type = media_type_for(head)
        writer = self._blobs.writer() if store_blob else None
        outer_hash = None if writer is not None else hashlib.sha256()
        sizes = [0, 0]

        def count(index: int) -> Callable[[bytes | memoryview], None]:
            def add(chunk: bytes | memoryview) -> None:
                sizes[index] += len(chunk)

            return add

        staging = tempfile.mkdtemp(dir=self.staging, prefix="layer-")
        try:
            # A blob writer hashes what it is given: hashing again would only cost time.
            if writer is not None:
                outer = tapped(source, writer.write)
            else:
                assert outer_hash is not None
                outer = tapped(source, outer_hash.update)
            outer = tapped(outer, count(0))
            inner_hash = None
            inner = outer
            if media_type == GZIP_MEDIA:
                inner_hash = hashlib.sha256()
                gunzip = gzip.GzipFile(fileobj=cast(IO[bytes], _ChunkFile(outer)), mode="rb")
                inner = tapped(tapped(file_chunks(gunzip), inner_hash.update), count(1))
            try:
                extract_layer_chunks(inner, staging)
                while outer():
                    pass  # anything after the compressed stream ends: the blob is all of it
            except (OSError, EOFError, zlib.error, tarfile.TarError) as e:
                if isinstance(e, OSError) and e.errno in DISK_FULL:
                    raise  # our disk, not the client's tar: report it as it is
                raise DigestMismatch(f"layer is not a readable tar stream: {e}") from e
        except BaseException:
            if writer is not None:
                writer.abort()
            shutil.rmtree(staging, ignore_errors=True)
            raise
        blob_digest = writer.digest if writer is not None else _hex(outer_hash)
        return StagedLayer(
            store=self,
            writer=writer,
            blob=Blob(blob_digest, sizes[0]),
            media_type=media_type,
            diff_id=_hex(inner_hash) if inner_hash is not None else blob_digest,
            size=sizes[1] if inner_hash is not None else sizes[0],
            staging_dir=staging,
        )

    def ingest_blob(self, digest: str) -> Ingested:
        """Extract a layer from a stored blob (a pulled layer)."""
        with self._blobs.open(digest) as f:
            ingested = self.ingest(f, store_blob=False)
        if ingested.blob.digest != digest:
            self.discard(ingested)
            raise DigestMismatch(f"blob {digest} changed on disk")
        return ingested

    def install(self, ingested: Ingested) -> None:
        """Move an ingested layer into place (or drop it if another ingest won the race)."""
        target = self.path(ingested.diff_id)
        try:
            os.rename(ingested.staging_dir, target)
        except OSError:
            if not os.path.isdir(target):
                raise
            self.discard(ingested)

    def discard(self, ingested: Ingested) -> None:
        """Throw a staged extraction away."""
        shutil.rmtree(ingested.staging_dir, ignore_errors=True)

    def remove(self, diff_id: str) -> None:
        """Delete a layer directory (rename first so a crash never leaves half of it)."""
        path = self.path(diff_id)
        if not os.path.isdir(path):
            return
        doomed = tempfile.mkdtemp(dir=self.staging, prefix="removing-")
        os.rename(path, os.path.join(doomed, "layer"))
        shutil.rmtree(doomed, ignore_errors=True)
