"""Short-name policies: whose rules read an image name without a registry.

``busybox`` names no registry.  Docker and Podman read such a *short name*
differently, and each API tree answers the way its clients expect:

* Docker: short names are Docker Hub's.  ``busybox`` is
  ``docker.io/library/busybox`` for a pull, a search and a local lookup
  (``reference.ParseNormalizedNamed`` in ``distribution/reference``); Podman's
  compat handlers do the same for Docker clients, and also find
  ``localhost/`` images (the names ``podman build`` gives) after Docker Hub's.
* Podman: a local lookup tries ``localhost/`` first, then Docker Hub, then the
  ``unqualified-search-registries`` of registries.conf (libimage's
  ``LookupImage``); a pull or search uses registries.conf: an alias, else the
  unqualified-search registries (containers/image ``pkg/shortnames``).

Both then fall back to a stored name that ends in ``/name:tag``.
"""

from enum import Enum

DOCKER_HUB = "docker.io"
LOCALHOST = "localhost"


class ShortNames(Enum):
    """How a short name is resolved: as Docker does or as Podman does."""

    #: Docker's rules: a short name is a Docker Hub name (then ``localhost/``, locally).
    DOCKER = "docker"
    #: Podman's rules: ``localhost/`` first locally; registries.conf for registries.
    PODMAN = "podman"

    @property
    def local_domains(self) -> tuple[str, ...]:
        """The registries a short name is tried with against local images, in order
        (before the unqualified-search registries)."""
        if self is ShortNames.DOCKER:
            return (DOCKER_HUB, LOCALHOST)
        return (LOCALHOST, DOCKER_HUB)

    @property
    def docker_hub_only(self) -> bool:
        """Whether a pull or search of a short name goes to Docker Hub alone
        (else to registries.conf's aliases and unqualified-search registries)."""
        return self is ShortNames.DOCKER
