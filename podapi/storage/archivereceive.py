"""An image archive (docker-archive or OCI layout tarball) read in one pass.

``docker save`` writes ``manifest.json`` last, after the layers, and an OCI
layout may put ``index.json`` anywhere; yet a 500 MB upload should be read once,
not stored and then read again.  So every member is looked at as it streams by:

* one that starts like a tar (a valid first header) or like gzip is a layer: it
  is hashed, kept as a blob and extracted into a staging directory while it is
  read (:meth:`podapi.storage.layers.LayerStore.stage`), under its member name;
* a small one (configs, manifests, index) is kept in memory, up to
  :data:`SMALL_TOTAL` bytes in all;
* a link member is remembered as another name for its target (``docker save``
  of Docker 25 links ``<id>/layer.tar`` to ``blobs/sha256/<hex>``);
* anything else is skipped, its first bytes kept to say why if it is named later.

When the stream ends the metadata says which staged layers are which; the
caller commits those it uses and :meth:`ReceivedArchive.discard` drops the rest.
Member names are only ever dictionary keys: nothing is written under them.

Blocking: call from a thread.
"""

import posixpath
import tarfile

from attrs import define, field

from podapi.storage.imageformats import InvalidImageArchive
from podapi.storage.layers import LayerStore, StagedLayer, media_type_for
from podapi.storage.tarextract import GZIP_MAGIC, MAGIC_SIZE
from podapi.storage.tarstream import HEADER_SIZE, Chunks, TarReader, bytes_chunks, looks_like_tar
from podapi.storage.tarstream import peek as peek_chunks

#: A member kept in memory is at most this big (a config, a manifest, an index)...
SMALL_MEMBER = 64 * 1024 * 1024
#: ...and all of them together at most this: a hostile archive cannot fill memory.
SMALL_TOTAL = 64 * 1024 * 1024
#: Links followed from one name at most (a loop of links is an error, not a hang).
MAX_LINKS = 16


def _key(name: str) -> str:
    return posixpath.normpath("/" + name).lstrip("/")


@define
class ReceivedArchive:
    """What one pass over an archive found: small members, staged layers, links."""

    files: dict[str, bytes] = field(factory=dict)
    layers: dict[str, StagedLayer] = field(factory=dict)
    links: dict[str, str] = field(factory=dict)
    #: The first bytes of members neither kept nor staged.
    skipped: dict[str, bytes] = field(factory=dict)
    _kept: int = 0

    def _resolve(self, name: str) -> str:
        key = _key(name)
        for _ in range(MAX_LINKS):
            if key not in self.links:
                return key
            key = self.links[key]
        raise InvalidImageArchive(f"archive member {name!r}: too many levels of links")

    def names(self) -> set[str]:
        """Every member name (normalised)."""
        return {*self.files, *self.layers, *self.links, *self.skipped}

    def small(self, name: str) -> bytes:
        """The content of the small member ``name``."""
        key = self._resolve(name)
        if key in self.files:
            return self.files[key]
        if key in self.layers or key in self.skipped:
            raise InvalidImageArchive(f"archive member {name!r} is not a small regular file")
        raise InvalidImageArchive(f"archive has no {name!r}")

    def take_layer(self, name: str, layers: LayerStore) -> StagedLayer:
        """The staged layer of member ``name`` (staged now if it was kept in memory).

        :raises InvalidImageArchive: no such member, or not a layer.
        :raises UnsupportedCompression: a layer compressed with something other than gzip.
        """
        key = self._resolve(name)
        if key in self.layers:
            return self.layers[key]
        if key in self.files:
            # Small layers (an empty one, a few files) stayed in memory.
            staged = layers.stage(bytes_chunks(self.files[key]))
            self.layers[key] = staged
            return staged
        if key in self.skipped:
            media_type_for(self.skipped[key])  # names the compression we cannot read
            raise InvalidImageArchive(f"archive member {name!r} is not a tar layer")
        raise InvalidImageArchive(f"archive has no layer {name!r}")

    def discard(self) -> None:
        """Drop every staged layer not committed (a committed one is gone from staging)."""
        for staged in self.layers.values():
            staged.discard()
        self.layers.clear()

    def _member(self, tar: TarReader, member: tarfile.TarInfo, layers: LayerStore) -> None:
        key = _key(member.name)
        if member.issym():
            self.links[key] = _key(posixpath.join(posixpath.dirname(key), member.linkname))
            return
        if member.islnk():
            self.links[key] = _key(member.linkname)
            return
        if not member.isreg():
            return
        data = tar.data(member)

        def source() -> bytes | memoryview:
            return next(data, b"")

        head, source = peek_chunks(source, HEADER_SIZE)
        replaced = self.layers.pop(key, None)
        if replaced is not None:  # a later member of the same name wins, as in tar
            replaced.discard()
        self.files.pop(key, None)
        self.skipped.pop(key, None)
        if member.size <= HEADER_SIZE or not (looks_like_tar(head) or head.startswith(GZIP_MAGIC)):
            if member.size <= SMALL_MEMBER and self._kept + member.size <= SMALL_TOTAL:
                self.files[key] = b"".join(iter(source, b""))
                self._kept += member.size
            else:
                self.skipped[key] = head[:MAGIC_SIZE]
            return
        self.layers[key] = layers.stage(source)


def receive(source: Chunks, layers: LayerStore) -> ReceivedArchive:
    """Read an archive (plain tar) once, staging its layers as they pass.

    :raises InvalidImageArchive: not a readable tar.
    :raises InvalidArgument: a layer that is not a readable or safe tar.
    """
    received = ReceivedArchive()
    tar = TarReader(source)
    try:
        while (member := tar.next()) is not None:
            received._member(tar, member, layers)
    except tarfile.TarError as e:
        received.discard()
        raise InvalidImageArchive(f"unreadable image archive (truncated?): {e}") from None
    except BaseException:
        received.discard()
        raise
    return received
