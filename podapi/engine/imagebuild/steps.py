"""Working containers of a build: RUN runs in one, COPY/ADD write into one's root.

A RUN step is a real container of the step's parent image, created, started
and waited for through the engine's own machinery (:class:`ContainerService`,
:class:`Lifecycle`), with the build's network mode and resources; its output
is followed in its log as it is written.  Its overlay upper directory then
becomes the step's layer, as ``docker commit`` makes one.
"""

import contextlib
import os
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from functools import partial
from typing import Any

from attrs import field, frozen
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorFDSet

from podapi.engine.containers import RUNTIME_MOUNTS, ContainerService
from podapi.engine.containerspec import ContainerSpec
from podapi.engine.images import ImageService
from podapi.engine.lifecycle import Lifecycle
from podapi.engine.shield import shielded
from podapi.engine.shortnames import ShortNames
from podapi.engine.state.containers import ContainerRecord
from podapi.engine.state.images import ImageRecord
from podapi.errors import NotFound
from podapi.oci.spec import Resources
from podapi.storage.difflayer import ingest_tree
from podapi.storage.k8slog import LogFollower, LogLine
from podapi.threads import Blocking


@frozen
class RunOptions:
    """How a build's working containers run (the build request's host options)."""

    network_mode: str = "bridge"
    resources: Resources = field(factory=Resources)
    shm_size: int | None = None
    extra_hosts: tuple[str, ...] = ()


def drop_mount_points(upper: str) -> None:
    """Remove the empty files and directories made in ``upper`` only to mount over
    (``/etc/hosts`` & co.): Docker's layers never hold them (blocking)."""
    for path in sorted(RUNTIME_MOUNTS, key=len, reverse=True):
        target = os.path.join(upper, path.lstrip("/"))
        with contextlib.suppress(OSError):
            if os.path.islink(target):
                continue
            if os.path.isdir(target):
                os.rmdir(target)  # only when empty
            elif os.path.getsize(target) == 0:
                os.unlink(target)


class WorkingContainers:
    """Creates, runs, commits and removes a build's containers.

    :param reactor: watches a RUN's log as it grows (inotify).
    """

    def __init__(
        self,
        containers: ContainerService,
        lifecycle: Lifecycle,
        images: ImageService,
        io: Blocking,
        reactor: IReactorFDSet,
    ) -> None:
        self._containers = containers
        self._lifecycle = lifecycle
        self._images = images
        self._io = io
        self._reactor = reactor

    async def create(
        self,
        image: ImageRecord,
        section: Mapping[str, Any],
        argv: Sequence[str],
        env: Sequence[str],
        options: RunOptions,
    ) -> ContainerRecord:
        """A container of ``image`` that would run ``argv`` as the step's config says.

        The image's VOLUMEs are not mounted: what a step writes there stays in its
        layer, as buildah does.
        """
        spec = ContainerSpec(
            image=image.id,
            entrypoint=(),
            command=tuple(argv),
            env=tuple(env),
            working_dir=section.get("WorkingDir") or None,
            user=section.get("User") or None,
            network_mode=options.network_mode,
            resources=options.resources,
            shm_size=options.shm_size,
            extra_hosts=options.extra_hosts,
            image_volume_mode="ignore",
            log_driver="k8s-file",
        )
        return await self._containers.create(spec, short_names=ShortNames.DOCKER)

    async def run(self, record: ContainerRecord, output: Callable[[bytes], None]) -> int:
        """Start the container, pass its output on line by line, and return its exit code."""
        paths = self._containers.paths(record.id)

        def send(line: LogLine) -> None:
            output(line.data)

        follower = LogFollower(self._reactor, paths.log, 0, self._io, send)
        # Waiting is armed before the start, so a short command's exit is not missed.
        exited = Deferred.fromCoroutine(self._lifecycle.next_exit(record))
        follower.start()
        try:
            try:
                await self._lifecycle.start(record)
            except BaseException:
                exited.cancel()
                raise
            final = await exited
            await follower.finish()
        finally:
            await follower.stop()
        return final.exit_code

    @contextlib.asynccontextmanager
    async def root(self, record: ContainerRecord) -> AsyncIterator[str]:
        """The container's root filesystem, mounted for COPY/ADD to write into."""
        async with self._lifecycle.rootfs_access(record, with_mounts=False) as root:
            yield root

    async def commit(
        self,
        record: ContainerRecord,
        image: ImageRecord,
        config: Callable[[str], dict[str, Any]],
    ) -> ImageRecord:
        """The container's changes as a new layer over ``image``; ``config`` makes the
        image config for its diff ID.  With no layers below (``FROM scratch``) the
        root itself is the layer."""
        paths = self._containers.paths(record.id)
        tree = paths.upper if image.layers else paths.merged
        await self._io(drop_mount_points, tree)
        return await self._images.commit_layer(
            partial(ingest_tree, self._images.layers, tree),
            config,
            base=image.layers,
            parent=image.id,
        )

    async def remove(self, record: ContainerRecord) -> None:
        """Remove the container, whatever happens to the request meanwhile."""
        with contextlib.suppress(NotFound):
            current = await self._containers.get(record.id)
            await shielded(self._lifecycle.remove(current, force=True, volumes=True))
