"""Content-addressed blobs: configs, manifests and layer tarballs, kept verbatim.

A blob is written to a staging file while it is hashed, then renamed into
``blobs/sha256/<hex>`` in one step, so a crash never leaves a half blob under
its digest; staging leftovers are removed at the next start.  All methods
block: call them from a thread.
"""

import contextlib
import hashlib
import os
import re
import tempfile
from typing import IO, BinaryIO

from attrs import frozen

from podapi.errors import InvalidArgument

DIGEST = re.compile(r"^sha256:[a-f0-9]{64}$")
CHUNK = 1024 * 1024


class DigestMismatch(InvalidArgument):
    """Content did not hash to the digest it claimed."""

    cause = "digest mismatch"


def check_digest(digest: str) -> str:
    """Validate ``sha256:<64 hex>``; return it."""
    if not DIGEST.match(digest):
        raise InvalidArgument(f"invalid digest {digest!r}")
    return digest


@frozen
class Blob:
    """A stored blob."""

    digest: str
    size: int


class BlobWriter:
    """A blob being written: hash as we go, commit under the digest at the end."""

    def __init__(self, store: "BlobStore") -> None:
        self._store = store
        fd, self.temp_path = tempfile.mkstemp(dir=store.staging, prefix="blob-")
        self._file: IO[bytes] = os.fdopen(fd, "wb")
        self._hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes | memoryview) -> int:
        """Append ``data``."""
        self._file.write(data)
        self._hash.update(data)
        self.size += len(data)
        return len(data)

    @property
    def digest(self) -> str:
        """The digest of what was written so far."""
        return "sha256:" + self._hash.hexdigest()

    def commit(self, expected: str | None = None) -> Blob:
        """Move the blob into place; raise :class:`DigestMismatch` if ``expected`` differs."""
        self._file.close()
        digest = self.digest
        if expected is not None and expected != digest:
            self.abort()
            raise DigestMismatch(f"content digest {digest} does not match {expected}")
        os.replace(self.temp_path, self._store.path(digest))
        return Blob(digest, self.size)

    def abort(self) -> None:
        """Throw the partial blob away."""
        if not self._file.closed:
            self._file.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.temp_path)


class BlobStore:
    """Blobs under ``<root>/blobs/sha256``."""

    def __init__(self, root: str) -> None:
        self.root = os.path.join(root, "blobs", "sha256")
        self.staging = os.path.join(root, "blobs", "staging")

    def create(self) -> None:
        """Create the directories and drop staging leftovers from a crash."""
        os.makedirs(self.root, mode=0o700, exist_ok=True)
        os.makedirs(self.staging, mode=0o700, exist_ok=True)
        for name in os.listdir(self.staging):
            os.unlink(os.path.join(self.staging, name))

    def path(self, digest: str) -> str:
        """Where the blob ``digest`` lives."""
        return os.path.join(self.root, check_digest(digest).split(":", 1)[1])

    def has(self, digest: str) -> bool:
        return os.path.exists(self.path(digest))

    def size(self, digest: str) -> int:
        return os.path.getsize(self.path(digest))

    def writer(self) -> BlobWriter:
        """Start writing a new blob."""
        return BlobWriter(self)

    def put(self, data: bytes, expected: str | None = None) -> Blob:
        """Store small content (configs, manifests)."""
        writer = self.writer()
        writer.write(data)
        return writer.commit(expected)

    def read(self, digest: str) -> bytes:
        """Read a small blob whole."""
        with open(self.path(digest), "rb") as f:
            return f.read()

    def open(self, digest: str) -> BinaryIO:
        return open(self.path(digest), "rb")

    def delete(self, digest: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path(digest))
