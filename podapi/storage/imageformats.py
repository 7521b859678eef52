"""Image archive formats: reading docker-archive / OCI layouts, and writing them as a stream.

Reading works on an archive received in one pass
(:class:`podapi.storage.archivereceive.ReceivedArchive`): its small members are
looked up by name and never extracted as such, so hostile member names cannot
touch the filesystem; its layers were staged as they streamed past.

Writing produces a list of :class:`Part` (literal bytes, or a region of a blob
file, possibly gunzipped on the fly); :func:`iter_parts` turns it into chunks
of at most 1 MiB, read lazily, so a multi-GB save never exists as a copy.
Blocking: call from a thread.
"""

import json
import tarfile
import zlib
from collections.abc import Iterator, Mapping, Sequence, Set
from typing import Any, BinaryIO, Protocol

from attrs import frozen

from podapi.errors import InvalidArgument
from podapi.oci.host import go_arch
from podapi.storage import reference

CHUNK = 1024 * 1024
BLOCK = 512
RECORD = 20 * BLOCK
MTIME = 0

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
REF_NAME = "org.opencontainers.image.ref.name"
CONTAINERD_NAME = "io.containerd.image.name"


class InvalidImageArchive(InvalidArgument):
    """The upload is not an image archive we can read."""

    cause = "invalid image archive"


@frozen
class ArchiveImage:
    """One image found in an archive.

    :ivar config: the config JSON bytes, verbatim.
    :ivar layers: the tar member of each layer, bottom first.
    :ivar names: normalised names from ``RepoTags`` or OCI ref annotations.
    """

    config: bytes
    layers: tuple[str, ...]
    names: tuple[str, ...]


class ArchiveFiles(Protocol):
    """The small members of an archive, by name."""

    def names(self) -> Set[str]:
        """Every member name."""

    def small(self, name: str) -> bytes:
        """The content of a small regular member.

        :raises InvalidImageArchive: there is none by that name.
        """


def _json(tar: ArchiveFiles, name: str) -> Any:
    try:
        return json.loads(tar.small(name))
    except ValueError as e:
        raise InvalidImageArchive(f"archive member {name!r} is not JSON: {e}") from None


def _names(tags: Sequence[str]) -> tuple[str, ...]:
    names = []
    for tag in tags:
        try:
            names.append(reference.parse(tag).name)
        except InvalidArgument as e:
            raise InvalidImageArchive(f"invalid RepoTag {tag!r} in archive: {e.message}") from None
    return tuple(names)


def _check_config(config: bytes, layer_count: int) -> None:
    try:
        parsed = json.loads(config)
        diff_ids = parsed["rootfs"]["diff_ids"]
    except (ValueError, KeyError, TypeError):
        raise InvalidImageArchive("image config is not valid JSON with rootfs.diff_ids") from None
    if len(diff_ids) != layer_count:
        raise InvalidImageArchive(
            f"image config lists {len(diff_ids)} layers but the manifest has {layer_count}"
        )


def _read_docker(tar: ArchiveFiles) -> list[ArchiveImage]:
    manifest = _json(tar, "manifest.json")
    if not isinstance(manifest, list) or not manifest:
        raise InvalidImageArchive("manifest.json lists no images")
    images = []
    for entry in manifest:
        try:
            config_name, layers = entry["Config"], tuple(entry["Layers"])
        except (KeyError, TypeError):
            raise InvalidImageArchive("manifest.json entry lacks Config or Layers") from None
        config = tar.small(config_name)
        _check_config(config, len(layers))
        images.append(ArchiveImage(config, layers, _names(entry.get("RepoTags") or ())))
    return images


def _blob_member(digest: str) -> str:
    algorithm, _, hexpart = str(digest).partition(":")
    if algorithm != "sha256" or len(hexpart) != 64:
        raise InvalidImageArchive(f"unsupported digest {digest!r} in OCI layout")
    return f"blobs/sha256/{hexpart}"


def _read_oci(tar: ArchiveFiles) -> list[ArchiveImage]:
    images = []

    def visit(descriptor: Mapping[str, Any], names: tuple[str, ...]) -> None:
        media_type = descriptor.get("mediaType", "")
        document = _json(tar, _blob_member(descriptor["digest"]))
        if media_type in (OCI_INDEX, DOCKER_LIST) or "manifests" in document:
            manifests = document.get("manifests", [])
            chosen = next(
                (
                    m
                    for m in manifests
                    if (m.get("platform") or {}).get("architecture") == go_arch()
                ),
                manifests[0] if len(manifests) == 1 else None,
            )
            if chosen is None:
                raise InvalidImageArchive("OCI index has no manifest for this platform")
            visit(chosen, names)
            return
        config = tar.small(_blob_member(document["config"]["digest"]))
        layers = tuple(_blob_member(layer["digest"]) for layer in document.get("layers", []))
        _check_config(config, len(layers))
        images.append(ArchiveImage(config, layers, names))

    index = _json(tar, "index.json")
    for descriptor in index.get("manifests", []):
        annotations = descriptor.get("annotations") or {}
        name = annotations.get(CONTAINERD_NAME) or annotations.get(REF_NAME) or ""
        # A bare tag ("latest") names nothing we can store; a full reference does.
        names = _names([name]) if ("/" in name or ":" in name) else ()
        visit(descriptor, names)
    if not images:
        raise InvalidImageArchive("index.json lists no images")
    return images


def read_archive(tar: ArchiveFiles) -> list[ArchiveImage]:
    """The images in a docker-archive (``docker save``) or an OCI image layout tarball."""
    members = tar.names()
    if "manifest.json" in members:
        return _read_docker(tar)
    if "index.json" in members:
        return _read_oci(tar)
    raise InvalidImageArchive(
        "not an image archive: neither manifest.json (docker-archive) nor index.json "
        "(OCI layout) found"
    )


# --- writing ---------------------------------------------------------------------------


@frozen
class Part:
    """A piece of an outgoing archive: literal bytes, or ``size`` bytes from a file.

    :ivar gunzip: the file is gzip; emit its decompressed content (``size`` is
        the decompressed size).
    """

    data: bytes = b""
    path: str = ""
    size: int = 0
    gunzip: bool = False


def _header(name: str, size: int, mode: int = 0o644) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = mode
    info.mtime = MTIME
    info.uname = info.gname = "root"
    return info.tobuf(format=tarfile.PAX_FORMAT)


class ArchiveWriter:
    """Collects the parts of a tar archive, with headers and padding."""

    def __init__(self) -> None:
        self.parts: list[Part] = []
        self._offset = 0
        self._seen: set[str] = set()

    def _emit(self, part: Part) -> None:
        self.parts.append(part)
        self._offset += len(part.data) if part.path == "" else part.size

    def _pad(self) -> None:
        remainder = self._offset % BLOCK
        if remainder:
            self._emit(Part(data=b"\0" * (BLOCK - remainder)))

    def add_bytes(self, name: str, data: bytes) -> None:
        """A member with this content (once per name)."""
        if name in self._seen:
            return
        self._seen.add(name)
        self._emit(Part(data=_header(name, len(data)) + data))
        self._pad()

    def add_file(self, name: str, path: str, size: int, gunzip: bool = False) -> None:
        """A member whose content is ``size`` bytes read from ``path`` (once per name)."""
        if name in self._seen:
            return
        self._seen.add(name)
        self._emit(Part(data=_header(name, size)))
        self._emit(Part(path=path, size=size, gunzip=gunzip))
        self._pad()

    def finish(self) -> list[Part]:
        """Close the archive (two zero blocks, padded to a full record) and return it."""
        self._emit(Part(data=b"\0" * (2 * BLOCK)))
        remainder = self._offset % RECORD
        if remainder:
            self._emit(Part(data=b"\0" * (RECORD - remainder)))
        return self.parts

    @property
    def size(self) -> int:
        """Bytes so far."""
        return self._offset


def total_size(parts: Sequence[Part]) -> int:
    """The archive's length in bytes."""
    return sum(part.size if part.path else len(part.data) for part in parts)


def _gunzip_chunks(source: BinaryIO) -> Iterator[bytes]:
    decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
    while True:
        compressed = source.read(CHUNK)
        if not compressed:
            tail = decompressor.flush()
            if tail:
                yield tail
            return
        data = decompressor.decompress(compressed)
        if data:
            yield data
        while decompressor.eof and decompressor.unused_data:
            # Concatenated gzip members (pigz, some registries).
            rest = decompressor.unused_data
            decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
            data = decompressor.decompress(rest)
            if data:
                yield data


def iter_parts(parts: Sequence[Part]) -> Iterator[bytes]:
    """The archive's bytes in chunks of at most 1 MiB, files read as needed (blocking)."""
    for part in parts:
        if not part.path:
            yield part.data
            continue
        sent = 0
        with open(part.path, "rb") as f:
            chunks = _gunzip_chunks(f) if part.gunzip else iter(lambda: f.read(CHUNK), b"")
            for chunk in chunks:
                sent += len(chunk)
                if sent > part.size:
                    raise OSError(f"{part.path} is larger than recorded ({part.size} bytes)")
                yield chunk
        if sent != part.size:
            raise OSError(f"{part.path} is {sent} bytes, expected {part.size}")
