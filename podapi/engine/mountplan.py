"""Planning a new container's mounts (pure, but for bind sources: checked, and made for
Docker's ``Binds``).

At container create, :func:`plan_mounts` turns the request into the mounts a
container gets: the request's, then ``volumes_from``, then the image's
``VOLUME``s; the volume service then names and creates the volumes.
"""

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from attrs import evolve

from podapi.engine.containerspec import ContainerSpec, MountSpec
from podapi.errors import InvalidArgument
from podapi.oci import mountopts

IMAGE_VOLUME_MODES = ("anonymous", "bind", "tmpfs", "ignore")
#: Podman's options for an image's ``VOLUME`` (``getImageVolumes``).
IMAGE_VOLUME_OPTIONS = ("rprivate", "nodev", "exec")


def parse_volumes_from(entry: str) -> tuple[str, str]:
    """``container[:ro|rw|z]`` -> (container, ``ro``/``rw``/"" for "as the source has it")."""
    container, _, mode = entry.partition(":")
    if not container:
        raise InvalidArgument(f"invalid volumes-from {entry!r}: no container given")
    words = [w for w in mode.split(",") if w]
    if any(w not in ("ro", "rw", "z") for w in words) or len(words) != len(set(words)):
        raise InvalidArgument(
            f"invalid option in volumes-from {entry!r}: volumes from another container can "
            "only use z, ro and rw"
        )
    access = [w for w in words if w in ("ro", "rw")]
    if len(access) > 1:
        raise InvalidArgument("cannot set ro or rw options more than once")
    return container, access[0] if access else ""


def _checked(mount: MountSpec) -> MountSpec:
    """A requested mount with its destination cleaned and its options processed."""
    destination = mountopts.check_destination(mount.destination)
    user = [o for o in mount.options if o not in ("ro", "rw")]
    readonly = mount.readonly or "ro" in mount.options
    if mount.type == "bind":
        if not os.path.isabs(mount.source):
            raise InvalidArgument(
                f"invalid mount config for type \"bind\": invalid mount path: '{mount.source}' "
                "mount path must be absolute"
            )
        if mount.origin == "Binds" and not os.path.exists(mount.source):
            # Docker's ``-v``/``Binds`` rule (Podman's compat create too, ``MkdirAll``):
            # a missing host path is made, as a directory; ``Mounts`` must exist.
            os.makedirs(mount.source, 0o755, exist_ok=True)
        if not os.path.exists(mount.source):
            raise InvalidArgument(
                f'invalid mount config for type "bind": bind source path does not exist: '
                f"{mount.source}",
                cause="bind source path does not exist",
            )
        options = mountopts.process_options(user, tmpfs=False, source=mount.source)
    elif mount.type == "volume":
        if mount.source:
            mountopts.check_volume_name(mount.source)
        options = mountopts.process_options(user, tmpfs=False)
    elif mount.type == "tmpfs":
        options = mountopts.process_options(user, tmpfs=True)
    elif mount.type == "image":
        if not mount.source:
            raise InvalidArgument(f"an image mount at {destination} needs an image")
        options = mountopts.process_options([], tmpfs=False)
    else:
        raise InvalidArgument(
            f"invalid mount type {mount.type!r}: use bind, volume, tmpfs or image",
            cause="invalid mount type",
        )
    options = tuple(o for o in options if o not in ("ro", "rw"))
    return evolve(mount, destination=destination, readonly=readonly, options=options)


def plan_mounts(
    spec: ContainerSpec,
    image_volumes: Sequence[str],
    inherited: Sequence[tuple[Sequence[MountSpec], str]],
) -> tuple[MountSpec, ...]:
    """Every mount of a new container, one per destination.

    The request's own mounts win; then what ``volumes_from`` containers mount
    (``inherited``: their mounts and the ``ro``/``rw`` override); then
    anonymous volumes for ``Config.Volumes`` and the image's ``VOLUME``s (or
    tmpfs mounts, or nothing, as ``image_volume_mode`` says).  Podman's
    ``finalizeMounts`` order; Docker's too.

    :raises InvalidArgument: two requested mounts on one destination, a bad
        option, a bind source that does not exist.
    """
    mode = spec.image_volume_mode or "anonymous"
    if mode not in IMAGE_VOLUME_MODES:
        raise InvalidArgument(
            f"invalid image volume mode {mode!r}: use {', '.join(IMAGE_VOLUME_MODES)}"
        )
    planned: dict[str, MountSpec] = {}
    for mount in spec.mounts:
        checked = _checked(mount)
        if checked.destination in planned:
            raise InvalidArgument(
                f"duplicate mount destination {checked.destination}",
                cause="duplicate mount destination",
            )
        planned[checked.destination] = checked
    for mounts, access in inherited:
        for mount in mounts:
            if mount.type in ("volume", "bind") and mount.destination not in planned:
                readonly = mount.readonly if not access else access == "ro"
                planned[mount.destination] = evolve(mount, readonly=readonly, origin="")
    anonymous = [*spec.volumes, *(image_volumes if mode != "ignore" else ())]
    for path in anonymous:
        destination = mountopts.check_destination(path)
        if destination in planned:
            continue
        from_image = path not in spec.volumes
        kind = "tmpfs" if from_image and mode == "tmpfs" else "volume"
        options = mountopts.process_options(IMAGE_VOLUME_OPTIONS, tmpfs=kind == "tmpfs")
        planned[destination] = MountSpec(
            type=kind,
            destination=destination,
            options=tuple(o for o in options if o != "rw"),
        )
    return tuple(planned.values())


def image_volume_paths(image_config: Mapping[str, Any]) -> tuple[str, ...]:
    """The image's ``VOLUME`` paths (``config.Volumes``)."""
    section = image_config.get("config") or {}
    return tuple(section.get("Volumes") or {})


def volume_names(mounts: Iterable[MountSpec]) -> list[str]:
    """The volumes among ``mounts``."""
    return [m.name for m in mounts if m.type == "volume"]
