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
from typing import IO, BinaryIO, Protocol, cast

from attrs import frozen

from podapi.storage.blobs import Blob, BlobStore, BlobWriter, DigestMismatch
from podapi.storage.tarextract import MAGIC_SIZE, compression_of, extract_layer

TAR_MEDIA = "application/vnd.oci.image.layer.v1.tar"
GZIP_MEDIA = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_GZIP_MEDIA = "application/vnd.docker.image.rootfs.diff.tar.gzip"
CHUNK = 1024 * 1024


class UnsupportedCompression(DigestMismatch):
    """A layer compressed with something we cannot read."""

    cause = "unsupported layer compression"


class _Readable(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...


class _Tee:
    """A read-only file that copies what is read into a blob writer or a hash."""

    def __init__(self, source: _Readable, sink: BlobWriter | None = None) -> None:
        self._source = source
        self._sink = sink
        # A blob writer hashes what it is given: hashing again would only cost time.
        self._hash = hashlib.sha256() if sink is None else None
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        data = self._source.read(n)
        if data:
            self.size += len(data)
            if self._sink is not None:
                self._sink.write(data)
            else:
                assert self._hash is not None
                self._hash.update(data)
        return data

    def readinto(self, buffer: bytearray | memoryview) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def readable(self) -> bool:
        return True

    @property
    def digest(self) -> str:
        if self._sink is not None:
            return self._sink.digest
        assert self._hash is not None
        return "sha256:" + self._hash.hexdigest()

    def drain(self) -> None:
        """Read to the end so the hashes cover every byte."""
        while self.read(CHUNK):
            pass


#: errnos of a full disk or an exhausted quota.
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def _peek(source: BinaryIO) -> bytes:
    """The first bytes of a seekable stream, without consuming them."""
    position = source.tell()
    head = source.read(MAGIC_SIZE)
    source.seek(position)
    return head


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

        :param source: a seekable stream positioned at the layer's first byte
            and ending with it (e.g. a tar member or a blob file).
        :param store_blob: keep the bytes as a blob (False when they already are one).
        """
        media_type = media_type_for(_peek(source))
        writer = self._blobs.writer() if store_blob else None
        staging = tempfile.mkdtemp(dir=self.staging, prefix="layer-")
        try:
            outer = _Tee(source, writer)
            if media_type == GZIP_MEDIA:
                inner = _Tee(gzip.GzipFile(fileobj=cast(IO[bytes], outer), mode="rb"))
            else:
                inner = outer
            try:
                extract_layer(inner, staging)  # type: ignore[arg-type]
                inner.drain()
                outer.drain()
            except (OSError, EOFError, zlib.error, tarfile.TarError) as e:
                if isinstance(e, OSError) and e.errno in DISK_FULL:
                    raise  # our disk, not the client's tar: report it as it is
                raise DigestMismatch(f"layer is not a readable tar stream: {e}") from e
            blob = writer.commit() if writer is not None else Blob(outer.digest, outer.size)
        except BaseException:
            if writer is not None:
                writer.abort()
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return Ingested(
            blob=blob,
            media_type=media_type,
            diff_id=inner.digest,
            size=inner.size,
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
