"""Image manifests and indexes, as the OCI image spec and Docker's schema 2 define them.

The media types we ask for and accept, the values a manifest is made of
(:class:`Descriptor`, :class:`Manifest`, an index, :class:`Resolved`), the
:class:`Platform` to choose from an index, and the parsing and checking of
manifest bytes.  Nothing here touches the network.
"""

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from attrs import field, frozen

from podapi.errors import InvalidArgument
from podapi.oci.host import go_arch
from podapi.storage.blobs import check_digest
from podapi.storage.registry.errors import InvalidManifest

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
ACCEPT = ", ".join([OCI_INDEX, OCI_MANIFEST, DOCKER_MANIFEST_LIST, DOCKER_MANIFEST])

#: containers-image refuses manifests over 4 MiB; so do we, before buffering more.
MAX_MANIFEST = 4 * 1024 * 1024


@frozen
class Descriptor:
    """An OCI content descriptor: what a manifest says about a blob or another manifest."""

    media_type: str
    digest: str
    size: int
    platform: Mapping[str, Any] | None = field(default=None, hash=False)
    annotations: Mapping[str, str] = field(factory=dict, hash=False)
    urls: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, data: object) -> "Descriptor":
        """Validate and convert one descriptor object.

        :raises InvalidManifest: when it is malformed.
        """
        if not isinstance(data, dict):
            raise InvalidManifest("descriptor is not an object")
        media_type, digest, size = data.get("mediaType"), data.get("digest"), data.get("size")
        if not isinstance(media_type, str) or not isinstance(digest, str):
            raise InvalidManifest("descriptor without mediaType or digest")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise InvalidManifest(f"descriptor {digest} has an invalid size")
        try:
            check_digest(digest)
        except InvalidArgument as e:
            raise InvalidManifest(e.message) from e
        platform, annotations = data.get("platform"), data.get("annotations") or {}
        urls = data.get("urls") or []
        if platform is not None and not isinstance(platform, dict):
            raise InvalidManifest(f"descriptor {digest} has an invalid platform")
        if not isinstance(annotations, dict) or not isinstance(urls, list):
            raise InvalidManifest(f"descriptor {digest} has invalid annotations or urls")
        return cls(media_type, digest, size, platform, annotations, tuple(map(str, urls)))


@frozen
class Manifest:
    """An image manifest (never an index) exactly as the registry sent it."""

    raw: bytes = field(repr=False)
    media_type: str
    digest: str
    config: Descriptor
    layers: tuple[Descriptor, ...]


@frozen
class Resolved:
    """What a reference resolved to.

    :ivar index_digest: the index (manifest list) digest when the reference
        named one; Docker reports it as the repo digest of a multi-arch pull.
    """

    manifest: Manifest
    index_digest: str | None


@frozen
class Inspected:
    """What a reference names at the registry, without pulling (Docker's
    ``DistributionInspect``).

    :ivar media_type: the manifest's or index's media type.
    :ivar digest: its digest.
    :ivar size: its size in bytes.
    :ivar platforms: OCI platform objects: an index's entries, or a manifest's config.
    :ivar entries: an index's entries (empty for an image manifest).
    """

    media_type: str
    digest: str
    size: int
    platforms: tuple[Mapping[str, Any], ...] = field(hash=False)
    entries: tuple[Descriptor, ...] = field(default=(), hash=False)


def oci_platform(data: Mapping[str, Any]) -> dict[str, Any]:
    """An OCI ``Platform`` object from an index entry's ``platform`` or an image config:
    ``architecture`` and ``os`` always, ``os.version``, ``os.features`` and ``variant``
    when set (their ``omitempty``)."""
    platform: dict[str, Any] = {
        "architecture": str(data.get("architecture") or ""),
        "os": str(data.get("os") or ""),
    }
    for key in ("os.version", "os.features", "variant"):
        if data.get(key):
            platform[key] = data[key]
    return platform


@frozen
class Platform:
    """The platform to pick from an index; defaults to this host."""

    os: str = "linux"
    architecture: str = field(factory=go_arch)
    variant: str = ""

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)


@frozen
class _Index:
    media_type: str
    manifests: tuple[Descriptor, ...]


def sha256_digest(data: bytes) -> str:
    """``sha256:<hex>`` of ``data``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _variant(architecture: str, variant: str) -> str:
    """Normalise variants the way containerd's platform matcher does."""
    if architecture == "arm64" and variant in ("", "8", "v8"):
        return "v8"
    if architecture == "arm" and variant in ("", "7", "v7"):
        return "v7"
    if architecture == "arm" and variant.isdigit():
        return "v" + variant
    return variant


def choose_platform(entries: Sequence[Descriptor], platform: Platform) -> Descriptor | None:
    """The index entry for ``platform``, or None.

    With no variant asked for, an entry with the architecture's default
    variant (arm64 ``v8``, arm ``v7``) wins over others, then the first.
    """
    candidates = [
        e
        for e in entries
        if e.platform
        and e.media_type in MANIFEST_TYPES | INDEX_TYPES
        and e.platform.get("os") == platform.os
        and e.platform.get("architecture") == platform.architecture
    ]
    want = _variant(platform.architecture, platform.variant)

    def variant_of(e: Descriptor) -> str:
        assert e.platform is not None
        return _variant(platform.architecture, str(e.platform.get("variant", "")))

    exact = [e for e in candidates if variant_of(e) == want]
    if exact:
        return exact[0]
    return candidates[0] if candidates and not platform.variant else None


def parse_manifest(raw: bytes, media_type: str, digest: str) -> Manifest | _Index:
    """Parse manifest bytes; the media type in the body wins over ``Content-Type``.

    :raises InvalidManifest: malformed, schema 1 or an unknown media type.
    """
    data = json.loads(raw)
    if not isinstance(data, dict):
        raise InvalidManifest("manifest is not a JSON object")
    if data.get("schemaVersion") == 1 or media_type in (DOCKER_SCHEMA1, DOCKER_SCHEMA1_SIGNED):
        raise InvalidManifest("unsupported manifest schema 1")
    declared = data.get("mediaType")
    if isinstance(declared, str) and declared:
        media_type = declared
    elif media_type not in MANIFEST_TYPES | INDEX_TYPES:
        # OCI lets mediaType be omitted; registries may say application/json.
        media_type = OCI_INDEX if "manifests" in data else OCI_MANIFEST
    if media_type in INDEX_TYPES:
        entries = data.get("manifests")
        if not isinstance(entries, list):
            raise InvalidManifest("index without manifests")
        return _Index(media_type, tuple(Descriptor.from_json(e) for e in entries))
    if media_type not in MANIFEST_TYPES:
        raise InvalidManifest(f"unsupported manifest media type {media_type!r}")
    layers = data.get("layers")
    if not isinstance(layers, list):
        raise InvalidManifest("manifest without layers")
    return Manifest(
        raw=raw,
        media_type=media_type,
        digest=digest,
        config=Descriptor.from_json(data.get("config")),
        layers=tuple(Descriptor.from_json(layer) for layer in layers),
    )
