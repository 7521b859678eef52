"""Removing containers: one with its dependents (libpod's ``depend``), and prune."""

import contextlib
from collections.abc import Callable, Mapping, Sequence

from attrs import field, frozen

from podapi.engine import containerfilters
from podapi.engine.containers import ContainerService
from podapi.engine.lifecycle import Lifecycle
from podapi.engine.state.containers import ContainerRecord
from podapi.errors import InvalidArgument, NoSuchContainer, NotFound

#: The filters a container prune takes (moby's and libpod's prune filters).
PRUNE_FILTERS = frozenset({"until", "label", "label!"})


@frozen
class Pruned:
    """What a prune removed: container IDs and the bytes their writable layers held.

    ``sizes`` pairs each removed ID with its writable layer's bytes.
    """

    removed: list[str]
    space: int
    sizes: list[tuple[str, int]] = field(factory=list)


class ContainerRemoval:
    """``docker rm`` / ``podman rm`` and container prune.

    :param now_ns: wall clock in ns (``until`` filters).
    """

    def __init__(
        self, containers: ContainerService, lifecycle: Lifecycle, now_ns: Callable[[], int]
    ) -> None:
        self._containers = containers
        self._lifecycle = lifecycle
        self._now_ns = now_ns

    async def remove(
        self,
        record: ContainerRecord,
        *,
        force: bool = False,
        volumes: bool = False,
        stop_timeout: int | None = None,
        depend: bool = False,
    ) -> list[ContainerRecord]:
        """Remove ``record`` (see :meth:`Lifecycle.remove`); with ``depend`` first the
        containers that join its network namespace, and theirs.

        :returns: the containers removed, dependents first (one removed
            meanwhile is listed too).
        """
        ordered = await self._containers.with_dependents(record) if depend else [record]
        for target in ordered:
            with contextlib.suppress(NoSuchContainer):  # removed meanwhile
                await self._lifecycle.remove(
                    target, force=force, volumes=volumes, stop_timeout=stop_timeout
                )
        return ordered

    async def prune(self, filters: Mapping[str, Sequence[str]]) -> Pruned:
        """Remove the stopped containers ``filters`` (``until``, ``label``, ``label!``)
        select; another filter is a 400 (Podman 4.3.1 and Docker refuse it too)."""
        unknown = set(filters) - PRUNE_FILTERS
        if unknown:
            raise InvalidArgument(f"{sorted(unknown)[0]} is an invalid filter")
        keep = containerfilters.build(filters, anchors={}, image_ids={}, now_ns=self._now_ns())
        sizes: list[tuple[str, int]] = []
        for record in await self._containers.prunable(lambda c: not keep(c)):
            size, _ = await self._containers.sizes(record)
            try:
                await self._lifecycle.remove(record)
            except NotFound:
                continue
            sizes.append((record.id, size))
        return Pruned([i for i, _ in sizes], sum(s for _, s in sizes), sizes)
