"""Containers as :class:`~podapi.engine.kube.generate.KubeContainer`: the engine's records
against their image's config (what differs from the image is what the YAML says)."""

import os
import re
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

from podapi.engine.images import ImageService
from podapi.engine.kube.generate import (
    KubeContainer,
    KubeMount,
    KubePort,
    KubeSecurity,
    cpu_millis,
    env_difference,
    kube_name,
    split_command,
)
from podapi.engine.ocimodel import effective_capabilities
from podapi.engine.state.containers import ContainerRecord
from podapi.oci import rootfs
from podapi.threads import Blocking

NUMERIC_USER = re.compile(r"^(\d+)(?::(\d+))?$")


def host_path_type(path: str) -> str:
    """Kubernetes' ``hostPath.type`` for what is at ``path`` now (blocking)."""
    try:
        is_dir = os.path.isdir(path) if os.path.exists(path) else None
    except OSError:
        is_dir = None
    if is_dir is None:
        return "DirectoryOrCreate"
    return "Directory" if is_dir else "File"


def image_reference(asked: str, names: Sequence[str]) -> str:
    """The image's full name the container was made from (Kubernetes would read a short
    name as a Docker Hub one): the stored name ``asked`` stands for, else its first."""
    for name in names:
        if asked in (name, name.removesuffix(":latest")):
            return name
    for name in names:
        tail = name.rsplit("/", 1)[-1]
        if asked in (tail, tail.removesuffix(":latest")):
            return name
    return asked if not names or "/" in asked else names[0]


class ContainerDescriber:
    """Builds the Kubernetes view of a container."""

    def __init__(
        self,
        images: ImageService,
        io: Blocking,
        rootfs_access: Callable[[ContainerRecord], AbstractAsyncContextManager[str]],
    ) -> None:
        self._images = images
        self._io = io
        self._rootfs_access = rootfs_access

    async def describe(self, record: ContainerRecord) -> KubeContainer:
        """``record`` as a container of a Pod document."""
        spec, run = record.spec, record.run
        image = await self._images.get(record.image_id)
        config: dict[str, Any] = (await self._images.config(image)).get("config") or {}
        command, args = split_command(
            run.entrypoint, run.command, config.get("Entrypoint") or (), config.get("Cmd") or ()
        )
        working_dir = run.working_dir
        if working_dir in ("", "/") or working_dir == (config.get("WorkingDir") or ""):
            working_dir = ""
        resources = spec.resources
        return KubeContainer(
            name=kube_name(record.name),
            image=image_reference(record.image_name, image.names) or image.id,
            command=command,
            args=args,
            env=env_difference(run.env, config.get("Env") or ()),
            working_dir=working_dir,
            ports=tuple(
                KubePort(
                    container_port=port.container_port + offset,
                    host_port=port.host_port + offset if port.host_port else 0,
                    protocol=protocol,
                    host_ip=port.host_ip,
                )
                for port in spec.ports
                for protocol in port.protocol.split(",")
                for offset in range(max(port.range, 1))
            ),
            mounts=await self._mounts(record),
            memory_limit=resources.memory or None,
            cpu_millis=cpu_millis(resources.cpu_quota, resources.cpu_period),
            security=await self._security(record, config.get("User") or ""),
            tty=spec.tty,
            stdin=spec.open_stdin,
            annotations=dict(spec.annotations),
            labels=dict(spec.labels),
            restart_policy=spec.restart_policy.name,
            hostname=spec.hostname or "",
        )

    async def _mounts(self, record: ContainerRecord) -> tuple[KubeMount, ...]:
        """Named volumes (claims) and binds (host paths) the user asked for; anonymous
        volumes, tmpfs and image mounts have no Kubernetes equivalent here (as Podman)."""
        mounts = []
        for mount in record.spec.mounts:
            readonly = mount.readonly or "ro" in mount.options
            if mount.type == "volume" and mount.source:
                mounts.append(
                    KubeMount(destination=mount.destination, claim=mount.source, readonly=readonly)
                )
            elif mount.type == "bind" and mount.source:
                kind = await self._io(host_path_type, mount.source)
                mounts.append(
                    KubeMount(
                        destination=mount.destination,
                        host_path=mount.source,
                        host_path_type=kind,
                        readonly=readonly,
                    )
                )
        return tuple(mounts)

    async def _security(self, record: ContainerRecord, image_user: str) -> KubeSecurity:
        spec = record.spec
        default = set(effective_capabilities((), (), False))
        caps = set(effective_capabilities(spec.cap_add, spec.cap_drop, spec.privileged))
        uid = gid = None
        if spec.user and spec.user != image_user:
            uid, gid = await self._user_ids(record, spec.user)
        return KubeSecurity(
            privileged=spec.privileged,
            readonly_rootfs=spec.readonly_rootfs,
            cap_add=() if spec.privileged else tuple(sorted(caps - default)),
            cap_drop=() if spec.privileged else tuple(sorted(default - caps)),
            run_as_user=uid,
            run_as_group=gid,
        )

    async def _user_ids(self, record: ContainerRecord, user: str) -> tuple[int, int]:
        """``uid[:gid]`` as given, or a name looked up in the container's ``/etc/passwd``."""
        numeric = NUMERIC_USER.match(user)
        if numeric is not None and numeric.group(2) is not None:
            return int(numeric.group(1)), int(numeric.group(2))
        async with self._rootfs_access(record) as root:
            try:
                found = await self._io(rootfs.resolve_user, root, user)
            except Exception:
                if numeric is None:
                    raise
                return int(numeric.group(1)), 0
        return found.uid, found.gid
