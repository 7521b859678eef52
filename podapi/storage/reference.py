"""Image references: Docker's grammar (``distribution/reference``) and normalisation.

``busybox`` -> ``docker.io/library/busybox:latest``; ``quay.io/x/y@sha256:...``
keeps its digest.  The compat dialect shows names the way Docker does
(``busybox:latest``); the libpod dialect shows the fully qualified form.
"""

import re

from attrs import frozen

from podapi.errors import InvalidArgument

DEFAULT_DOMAIN = "docker.io"
LEGACY_DOMAIN = "index.docker.io"
OFFICIAL_PREFIX = "library/"
DEFAULT_TAG = "latest"

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
_PATH = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_DOMAIN = re.compile(
    r"^(?:\[[0-9a-fA-F:]+\]|[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
    r"(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*)(?::[0-9]+)?$"
)
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-fA-F0-9]{32,}$")
_HEX64 = re.compile(r"^[a-f0-9]{64}$")


class InvalidReference(InvalidArgument):
    """A malformed image name."""

    cause = "invalid reference format"


@frozen
class Reference:
    """A parsed, normalised image reference.

    :ivar domain: registry host (``docker.io``, ``localhost``, ``127.0.0.1:5000``).
    :ivar path: repository path (``library/busybox``).
    :ivar tag: the tag, or None when only a digest was given.
    :ivar digest: ``sha256:...`` or None.
    :ivar explicit_domain: whether the user wrote the domain (short names do not).
    """

    domain: str
    path: str
    tag: str | None
    digest: str | None
    explicit_domain: bool = True

    @property
    def repository(self) -> str:
        """``domain/path``."""
        return f"{self.domain}/{self.path}"

    @property
    def name(self) -> str:
        """The full name: ``domain/path:tag`` or ``domain/path@digest``."""
        if self.digest and not self.tag:
            return f"{self.repository}@{self.digest}"
        return f"{self.repository}:{self.tag or DEFAULT_TAG}"

    def with_tag(self, tag: str) -> "Reference":
        """The same repository with another tag (and no digest)."""
        return Reference(self.domain, self.path, tag, None, self.explicit_domain)

    def with_domain(self, domain: str) -> "Reference":
        """The same path under another registry (for short-name search)."""
        path = self.path
        if self.domain == DEFAULT_DOMAIN and domain != DEFAULT_DOMAIN:
            path = path.removeprefix(OFFICIAL_PREFIX)
        elif domain == DEFAULT_DOMAIN and "/" not in path:
            path = OFFICIAL_PREFIX + path
        return Reference(domain, path, self.tag, self.digest, True)

    def __str__(self) -> str:
        return self.name


def parse(text: str, *, default_domain: str = DEFAULT_DOMAIN) -> Reference:
    """Parse and normalise ``text``; raise :class:`InvalidReference` when malformed."""
    if not text or len(text) > 4096 or text != text.strip():
        raise InvalidReference(f"invalid reference format: {text!r}")
    remainder, digest = text, None
    if "@" in remainder:
        remainder, digest = remainder.split("@", 1)
        if not _DIGEST.match(digest):
            raise InvalidReference(f"invalid reference format: bad digest in {text!r}")
    tag = None
    slash = remainder.rfind("/")
    colon = remainder.rfind(":")
    if colon > slash:
        remainder, tag = remainder[:colon], remainder[colon + 1 :]
        if not _TAG.match(tag):
            raise InvalidReference(f"invalid reference format: bad tag in {text!r}")
    domain, path, explicit = _split_domain(remainder, default_domain)
    if not _PATH.match(path) or len(f"{domain}/{path}") > 255:
        if remainder != remainder.lower():
            raise InvalidReference(
                f"invalid reference format: repository name ({remainder}) must be lowercase"
            )
        raise InvalidReference(f"invalid reference format: {text!r}")
    if not _DOMAIN.match(domain):
        raise InvalidReference(f"invalid reference format: bad registry in {text!r}")
    if tag is None and digest is None:
        tag = DEFAULT_TAG
    return Reference(domain, path, tag, digest, explicit)


def _split_domain(name: str, default_domain: str) -> tuple[str, str, bool]:
    first, sep, rest = name.partition("/")
    is_domain = sep and (
        "." in first or ":" in first or first == "localhost" or first != first.lower()
    )
    if not is_domain:
        domain, path, explicit = default_domain, name, False
    else:
        domain, path, explicit = first, rest, True
    if domain == LEGACY_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in path:
        path = OFFICIAL_PREFIX + path
    return domain, path, explicit


def join(repo: str, tag: str | None, *, default_domain: str = DEFAULT_DOMAIN) -> Reference:
    """``repo`` plus a separate ``tag`` parameter, as the tag/import/commit APIs take them.

    Docker clients also send the tag inside ``repo`` (``repo=name:1``, no ``tag``).
    """
    text = (
        f"{repo}@{tag}" if tag and tag.startswith("sha256:") else (f"{repo}:{tag}" if tag else repo)
    )
    return parse(text, default_domain=default_domain)


def is_image_id(text: str) -> bool:
    """``sha256:<64 hex>`` or 64 hex characters."""
    return bool(_HEX64.match(text.removeprefix("sha256:")))


def docker_name(full: str) -> str:
    """Docker's form of a stored name: ``docker.io/library/busybox`` -> ``busybox``."""
    for prefix in (f"{DEFAULT_DOMAIN}/{OFFICIAL_PREFIX}", f"{DEFAULT_DOMAIN}/"):
        if full.startswith(prefix):
            return full[len(prefix) :]
    return full
