"""``docker commit``: a container's changes and run configuration as a new image.

The new image is the container's image plus one layer (the tar of the
container's overlay upper dir, :mod:`podapi.storage.difflayer`), with a config
made the way Docker's daemon makes it (``daemon/commit.go``): the request's
config overrides with the ``changes`` (Dockerfile instructions) applied, then
merged with the container's own config, which fills whatever they leave
unset.  Podman applies the instructions after its own copy of the container
config instead; Docker's order is kept here because only it gives the request
body (a Docker feature) a meaning, e.g. ``ENTRYPOINT`` given alone drops the
container's ``Cmd``, as in Docker.
"""

from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

from attrs import field, frozen

from podapi import crashpoints
from podapi.engine.changes import apply_changes
from podapi.engine.containers import ContainerService
from podapi.engine.images import ImageService
from podapi.engine.lifecycle import Lifecycle
from podapi.engine.state.containers import COMMIT_PAUSE, RUNNING, ContainerRecord
from podapi.engine.state.images import ImageRecord
from podapi.engine.times import rfc3339_nano
from podapi.errors import Conflict, PodapiError
from podapi.logs import get_logger
from podapi.oci.host import go_arch
from podapi.oci.runtime import RuntimeFailure
from podapi.storage.difflayer import ingest_tree

log = get_logger(__name__)

#: Variables the engine adds to every container's environment (``run_config``):
#: baked into an image, a stale ``HOSTNAME`` would override the next container's.
INJECTED_ENV = frozenset({"HOSTNAME", "container", "TERM"})
#: ``config`` keys that come from the container's run configuration.
RUN_KEYS = (
    "User",
    "ExposedPorts",
    "Env",
    "Entrypoint",
    "Cmd",
    "WorkingDir",
    "Labels",
    "StopSignal",
    "Healthcheck",
)


@frozen
class CommitOptions:
    """What a commit request asks for.

    :ivar name: the full name to give the image (None: untagged).
    :ivar author: the image's ``author`` (also in its history entry).
    :ivar comment: the image's ``comment`` (also in its history entry).
    :ivar changes: Dockerfile instructions applied to the config.
    :ivar overrides: Docker ``Config`` keys from the request body.
    :ivar pause: pause a running container while its layer is written.
    :ivar squash: one layer with the whole filesystem instead of the image's
        layers plus the container's (libpod ``squash``).
    """

    name: str | None = None
    author: str = ""
    comment: str = ""
    changes: Sequence[str] = ()
    overrides: Mapping[str, Any] = field(factory=dict)
    pause: bool = True
    squash: bool = False


def container_config(record: ContainerRecord, image_section: Mapping[str, Any]) -> dict[str, Any]:
    """The container's configuration as an image ``config`` section (Docker's keys).

    What the image had besides (``Volumes``, ``OnBuild``, ``Shell``...) is kept.
    """
    run, spec = record.run, record.spec
    given = {e.partition("=")[0] for e in [*(image_section.get("Env") or ()), *spec.env]}
    env = [e for e in run.env if e.partition("=")[0] not in INJECTED_ENV - given]
    healthcheck = None
    if run.healthcheck is not None:
        healthcheck = run.healthcheck.to_docker()
    elif spec.no_healthcheck or image_section.get("Healthcheck"):
        healthcheck = {"Test": ["NONE"]}  # the container ran with its check turned off
    # run_config defaults the stop signal; only a chosen one belongs in the image.
    chosen_signal = spec.stop_signal or image_section.get("StopSignal")
    values: dict[str, Any] = {
        "User": run.user,
        "ExposedPorts": {port: {} for port in run.exposed_ports},
        "Env": env,
        "Entrypoint": list(run.entrypoint),
        "Cmd": list(run.command),
        "WorkingDir": run.working_dir,
        "Labels": dict(run.labels),
        "StopSignal": run.stop_signal if chosen_signal else "",
        "Healthcheck": healthcheck,
    }
    section = {k: v for k, v in image_section.items() if k not in RUN_KEYS}
    section.update({k: v for k, v in values.items() if v})
    return section


def merge_config(user: Mapping[str, Any], container: Mapping[str, Any]) -> dict[str, Any]:
    """Docker's ``merge(userConf, containerConf)``: the request wins where it says something.

    Lists and maps are joined (the request's entries first); ``Cmd`` comes from
    the container only when the request gives neither ``Entrypoint`` nor
    ``Cmd``, and ``Entrypoint`` only when the request does not mention it.
    """
    merged = {**container, **{k: v for k, v in user.items() if v is not None}}
    for key in ("User", "WorkingDir", "StopSignal"):
        merged[key] = user.get(key) or container.get(key)
    for key in ("ExposedPorts", "Volumes", "Labels"):
        merged[key] = {**(container.get(key) or {}), **(user.get(key) or {})}
    user_env = list(user.get("Env") or [])
    named = {e.partition("=")[0] for e in user_env}
    merged["Env"] = user_env + [
        e for e in container.get("Env") or [] if e.partition("=")[0] not in named
    ]
    if user.get("Entrypoint"):
        merged["Cmd"] = user.get("Cmd")
    else:
        if not user.get("Cmd"):
            merged["Cmd"] = container.get("Cmd")
        if user.get("Entrypoint") is None:
            merged["Entrypoint"] = container.get("Entrypoint")
    check, base_check = user.get("Healthcheck"), container.get("Healthcheck")
    if check is not None and base_check is not None:
        merged["Healthcheck"] = {
            **base_check,
            **{k: v for k, v in check.items() if v},
        }
    return {k: v for k, v in merged.items() if v not in (None, "", [], {})}


def image_config(
    diff_id: str,
    *,
    base: Mapping[str, Any],
    base_layers: Sequence[str],
    section: Mapping[str, Any],
    record: ContainerRecord,
    options: CommitOptions,
    created: str,
) -> dict[str, Any]:
    """The config JSON of ``base`` plus the layer ``diff_id``, with config ``section``.

    Squashed (no ``base_layers``), the base's history entries stay, marked
    ``empty_layer`` as they no longer have layers of their own.
    """
    notes = {
        **({"author": options.author} if options.author else {}),
        **({"comment": options.comment} if options.comment else {}),
    }
    history = {
        "created": created,
        # Docker's created_by for a commit: the container's Cmd.
        "created_by": " ".join(record.run.command),
        **notes,
    }
    return {
        "created": created,
        **notes,
        "architecture": base.get("architecture") or go_arch(),
        "os": base.get("os") or "linux",
        **({"variant": base["variant"]} if base.get("variant") else {}),
        "container": record.id,
        "config": dict(section),
        "rootfs": {"type": "layers", "diff_ids": [*base_layers, diff_id]},
        "history": [*_base_history(base, squashed=not base_layers), history],
    }


def _base_history(base: Mapping[str, Any], *, squashed: bool) -> list[dict[str, Any]]:
    entries = [dict(entry) for entry in base.get("history") or []]
    if squashed:
        for entry in entries:
            entry["empty_layer"] = True
    return entries


class Committer:
    """Commits containers to images.

    :param containers: records, paths and per-container locks.
    :param images: the image store.
    :param lifecycle: pause and unpause.
    """

    def __init__(
        self, containers: ContainerService, images: ImageService, lifecycle: Lifecycle
    ) -> None:
        self._containers = containers
        self._images = images
        self._lifecycle = lifecycle

    async def commit(self, container: str, options: CommitOptions) -> ImageRecord:
        """Store the container (by name or ID) as a new image; the container event
        ``commit`` follows.

        A running container is paused while its layer is written (with
        ``options.pause``) and unpaused afterwards, whatever happens; its lock
        is held meanwhile so it cannot be removed halfway (squashed, the root
        filesystem is read through ``rootfs_access``, as ``docker cp`` reads it).

        :raises NoSuchContainer: no such container.
        :raises InvalidArgument: bad ``changes`` (before anything is paused).
        """
        record = await self._containers.resolve(container)
        base = await self._images.get(record.image_id)
        base_config = await self._images.config(base)
        section = merge_config(
            apply_changes(dict(options.overrides), options.changes),
            container_config(record, base_config.get("config") or {}),
        )
        store = partial(
            self._store, base=base, base_config=base_config, section=section, options=options
        )
        paused = options.pause and await self._pause(record)
        try:
            if options.squash:
                async with self._lifecycle.rootfs_access(record, with_mounts=False) as root:
                    image = await store(record, root)
            else:
                async with self._containers.lock(record.id):
                    # Removed while we waited for the lock: a 404, like any other.
                    record = await self._containers.get(record.id)
                    upper = self._containers.paths(record.id).upper
                    image = await store(record, upper)
        finally:
            if paused:
                await self._unpause(record.id)
        self._containers.emit(record, "commit")
        return image

    async def _store(
        self,
        record: ContainerRecord,
        tree: str,
        *,
        base: ImageRecord,
        base_config: Mapping[str, Any],
        section: Mapping[str, Any],
        options: CommitOptions,
    ) -> ImageRecord:
        """The image of ``tree``: the upper dir as a layer over ``base``'s, or squashed,
        the whole root filesystem as the only layer."""
        base_layers = [] if options.squash else base.layers
        config = partial(
            image_config,
            base=base_config,
            base_layers=base_layers,
            section=section,
            record=record,
            options=options,
            created=rfc3339_nano(self._containers.now()),
        )
        return await self._images.commit_layer(
            partial(ingest_tree, self._images.layers, tree, layer=not options.squash),
            config,
            base=base_layers,
            names=[options.name] if options.name else [],
            parent=base.id,
        )

    async def _pause(self, record: ContainerRecord) -> bool:
        """Pause a running container; whether we did (a paused one stays as it is)."""
        if record.state != RUNNING:
            return False
        # Stored first: a crash before the unpause is resumed at restart (the
        # container was running before the commit, and is again after it).
        if not await self._containers.begin_step(record.id, COMMIT_PAUSE):
            return False  # it is exiting or starting: nothing runs steadily to pause
        try:
            await self._lifecycle.pause(record)
            crashpoints.reached("commit-paused")
        except Conflict:
            await self._containers.finish_step(record.id, COMMIT_PAUSE)
            return False  # it stopped meanwhile: nothing runs to change the files
        except RuntimeFailure:
            # The process ended and its exit is not recorded yet (``docker start``
            # of a short command, then ``commit``): nothing runs, nothing to pause.
            # Docker commits it all the same (moby ``daemon/commit.go`` does not
            # fail the commit on a failed pause).  A runtime error on a live
            # container is still an error.
            await self._containers.finish_step(record.id, COMMIT_PAUSE)
            state = await self._lifecycle.runtime.state(record.id)
            if state is None or state.status == "stopped":
                return False
            raise
        return True

    async def _unpause(self, container_id: str) -> None:
        # Podman logs a failed unpause and keeps the commit's result; so do we.
        try:
            await self._lifecycle.unpause(await self._containers.get(container_id))
        except PodapiError as e:
            log.warn(
                "unpausing {id} after commit failed: {error}", id=container_id, error=e.message
            )
        await self._containers.finish_step(container_id, COMMIT_PAUSE)
