"""What a build is asked for, where its progress goes, and how it fails."""

from collections.abc import Mapping
from typing import Protocol

from attrs import field, frozen

from podapi.engine.imagebuild.steps import RunOptions
from podapi.engine.shortnames import ShortNames
from podapi.errors import PodapiError
from podapi.storage.registry import Credentials


class BuildFailed(PodapiError):
    """A step failed; ``code`` is a failing RUN's exit status (1 otherwise)."""

    cause = "build failed"

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


class BuildOutput(Protocol):
    """Where a build's progress goes (the HTTP layer's JSON lines)."""

    def stream(self, text: str) -> None:
        """Progress text (``Step 1/3 : ...\\n``, a RUN's output)."""

    def built(self, image_id: str, tags: tuple[str, ...]) -> None:
        """The image is built (and tagged): its ID and names."""


@frozen
class BuildOptions:
    """What a build request asks for.

    :ivar dockerfile: its path in the context ("": Containerfile, then Dockerfile).
    :ivar tags: full names for the image built.
    :ivar build_args: ``--build-arg`` values.
    :ivar labels: labels added to the image built.
    :ivar quiet: only the image ID is reported.
    :ivar nocache: no step is taken from the cache.
    :ivar pull: pull base images even when present.
    :ivar remove: remove the working containers (``rm``; ``forcerm`` too).
    :ivar target: the last stage to build ("": the last one).
    :ivar platform: ``os/arch`` asked for: only the host's is built.
    :ivar registry_auth: credentials by registry for pulls (``X-Registry-Config``).
    :ivar short_names: how short base image names are read.
    """

    dockerfile: str = ""
    tags: tuple[str, ...] = ()
    build_args: Mapping[str, str] = field(factory=dict)
    labels: Mapping[str, str] = field(factory=dict)
    quiet: bool = False
    nocache: bool = False
    pull: bool = False
    remove: bool = True
    target: str = ""
    platform: str = ""
    run: RunOptions = field(factory=RunOptions)
    registry_auth: Mapping[str, Credentials] = field(factory=dict)
    short_names: ShortNames = ShortNames.DOCKER
