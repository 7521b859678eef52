"""Building a container's OCI bundle: the rootfs mount, /etc files, ``config.json``
and the configuration conmon is launched with.

What conmon and runc are handed when a container is created: the overlay
root filesystem, the ``/etc/hosts``, ``/etc/hostname`` and
``/etc/resolv.conf`` every container gets, its volumes and image mounts, and
the OCI runtime configuration (``podapi.oci.spec``) with Podman's defaults.
"""

import json
import os
import sys
from collections.abc import Mapping
from typing import Any

from attrs import evolve

from podapi.engine.containermounts import ContainerMounts
from podapi.engine.containerspec import signal_number
from podapi.engine.images import ImageService
from podapi.engine.layout import ContainerPaths, Layout
from podapi.engine.state.containers import ContainerRecord
from podapi.engine.times import rfc3339_nano
from podapi.errors import InvalidArgument
from podapi.oci import capabilities, conmon, rlimits, rootfs
from podapi.oci.process import DEFAULT_PATH
from podapi.oci.seccomp import Converter
from podapi.oci.spec import SpecInputs, generate
from podapi.threads import Blocking

#: The cgroup every container's own cgroup is made under (``podapi/<id>``).
CGROUP_PARENT = "podapi"


def exit_command(layout: Layout, container_id: str) -> tuple[str, ...]:
    """What conmon runs when the container exits: ``python -m podapi.cleanup``."""
    return (
        sys.executable,
        "-m",
        "podapi.cleanup",
        "--root",
        layout.root,
        "--runroot",
        layout.runroot,
        container_id,
    )


def conmon_config(
    layout: Layout, record: ContainerRecord, paths: ContainerPaths, runtime: str, conmon_path: str
) -> conmon.ConmonConfig:
    """How conmon is launched for a container's run (paths, log, terminal, exit command)."""
    return conmon.ConmonConfig(
        container_id=record.id,
        name=record.name,
        bundle=paths.bundle,
        runtime=runtime,
        runtime_root=layout.runtime_state,
        conmon=conmon_path,
        exit_dir=layout.exits_dir,
        pid_file=paths.pidfile,
        conmon_pid_file=paths.conmon_pidfile,
        log_path=paths.log,
        conmon_log=paths.conmon_log,
        env={"PATH": os.environ.get("PATH", DEFAULT_PATH)},
        log_size_max=record.spec.log_max_size,
        terminal=record.spec.tty,
        stdin=record.spec.open_stdin,
        exit_command=exit_command(layout, record.id),
    )


def mount_rootfs(lowers: list[str], paths: ContainerPaths) -> bool:
    """Mount the rootfs unless it is mounted (blocking); whether this call mounted it."""
    if rootfs.is_mounted(paths.merged) or not lowers:
        return False
    rootfs.mount_overlay(lowers, paths.upper, paths.work, paths.merged)
    return True


async def image_lowers(images: ImageService, record: ContainerRecord) -> list[str]:
    """The layer directories of the container's image, lowest last (overlay's order)."""
    image = await images.get(record.image_id)
    return [images.layers.path(d) for d in reversed(image.layers)]


class BundleWriter:
    """Mounts a container's rootfs and writes its bundle for conmon and runc.

    :param images: the image a container runs (its layer directories).
    :param io: the blocking-work executor.
    :param seccomp: converts the default seccomp profile per capability set.
    :param init_binary: catatonit/tini for ``--init``.
    :param mounts: volumes and image mounts, held while a container runs.
    """

    def __init__(
        self,
        images: ImageService,
        *,
        io: Blocking,
        seccomp: Converter | None,
        init_binary: str | None,
        mounts: ContainerMounts,
    ) -> None:
        self._images = images
        self._io = io
        self._seccomp = seccomp
        self._init = init_binary
        self._container_mounts = mounts

    async def prepare(
        self, record: ContainerRecord, paths: ContainerPaths, netns: str | None
    ) -> None:
        """Mount the rootfs, write /etc files and the OCI config (``config.json``).

        On failure everything this did is undone.

        :param netns: the network namespace to join (None: a new one, or the
            host's with ``--network host``).
        """
        if record.spec.init and self._init is None:
            raise InvalidArgument("--init needs catatonit or tini installed on the host")
        await self._io(mount_rootfs, await image_lowers(self._images, record), paths)
        try:
            spec = record.spec
            user = await self._io(
                rootfs.resolve_user, paths.merged, record.run.user, spec.group_add
            )
            host_network = spec.network_mode == "host"
            hostname = (
                os.uname().nodename if host_network and not spec.hostname else (record.run.hostname)
            )
            await self._io(_write_etc, paths, hostname, record, host_network)
            user_mounts = await self._container_mounts.attach(record.id, record.run.mounts, paths)
            env = list(record.run.env)
            if not any(e.startswith("HOME=") for e in env):
                env.append(f"HOME={user.home}")
            caps = capabilities.effective(spec.cap_add, spec.cap_drop, spec.privileged)
            unconfined = spec.privileged or "seccomp=unconfined" in spec.security_opt
            seccomp = (
                None
                if unconfined or self._seccomp is None
                else (self._seccomp.for_capabilities(caps))
            )
            namespaces: list[tuple[str, str | None]] = [
                ("pid", None),
                ("ipc", None),
                ("uts", None),
                ("mount", None),
            ]
            if not host_network:
                namespaces.append(("network", netns))
            for kind, mode in (
                ("pid", spec.pid_mode),
                ("ipc", spec.ipc_mode),
                ("uts", spec.uts_mode),
            ):
                if mode == "host":
                    namespaces.remove((kind, None))
            resources = spec.resources
            inputs = SpecInputs(
                rootfs=paths.merged,
                args=[record.run.path, *record.run.args],
                readonly_rootfs=spec.readonly_rootfs,
                hostname=hostname,
                env=env,
                cwd=record.run.working_dir,
                uid=user.uid,
                gid=user.gid,
                additional_gids=user.additional_gids,
                terminal=spec.tty,
                console_size=spec.console_size,
                capabilities=caps,
                no_new_privileges=any(
                    o.startswith("no-new-privileges") and not o.endswith(":false")
                    for o in spec.security_opt
                ),
                rlimits=rlimits.clamp([(u.name, u.soft, u.hard) for u in spec.ulimits]),
                oom_score_adj=spec.oom_score_adj,
                privileged=spec.privileged,
                shm_size=spec.shm_size or 64 * 1024 * 1024,
                mounts=[*_mounts(paths), *user_mounts],
                namespaces=namespaces,
                cgroups_path=f"{CGROUP_PARENT}/{record.id}",
                resources=evolve(
                    resources,
                    pids_limit=resources.pids_limit if resources.pids_limit is not None else 2048,
                ),
                seccomp=seccomp,
                sysctl=_sysctls(spec.sysctls, host_network),
                annotations=_podman_annotations(record, rfc3339_nano(record.created)),
                init_path=self._init if spec.init else None,
            )
            await self._io(_write_json, paths.config_json, generate(inputs))
        except BaseException:
            await self._container_mounts.detach(record.id, record.run.mounts, paths)
            await self._io(rootfs.unmount, paths.merged)
            raise


def _write_json(path: str, value: Any) -> None:
    temp = path + ".tmp"
    with open(temp, "w", encoding="utf-8") as f:
        json.dump(value, f)
    os.replace(temp, path)


def _podman_annotations(record: ContainerRecord, now: str) -> dict[str, str]:
    flag = {True: "TRUE", False: "FALSE"}
    return {
        "io.container.manager": "libpod",
        "io.kubernetes.cri-o.Created": now,
        "io.kubernetes.cri-o.TTY": str(record.spec.tty).lower(),
        "io.podman.annotations.autoremove": flag[record.spec.auto_remove],
        "io.podman.annotations.init": flag[record.spec.init],
        "io.podman.annotations.privileged": flag[record.spec.privileged],
        "org.opencontainers.image.stopSignal": str(signal_number(record.run.stop_signal)),
        **record.spec.annotations,
    }


def _write_etc(
    paths: ContainerPaths, hostname: str, record: ContainerRecord, host_network: bool
) -> None:
    spec = record.spec
    joined = record.network_status.joined.values()
    addresses = [a.ip for j in joined for a in j.attached.addresses]
    rootfs.write_file(
        paths.hosts,
        rootfs.hosts_file(hostname, record.name, spec.extra_hosts, host_network, addresses),
    )
    rootfs.write_file(paths.hostname, hostname + "\n")
    dns = [j.attached for j in joined if j.network.dns_enabled]
    rootfs.write_file(
        paths.resolv_conf,
        rootfs.resolv_conf(
            spec.dns,
            spec.dns_search,
            spec.dns_options,
            network_servers=[s for a in dns for s in a.dns_servers],
            network_search=[d for a in dns for d in a.dns_search],
            own_network=not host_network,
        ),
    )
    rootfs.write_file(paths.containerenv, "")


def _sysctls(requested: Mapping[str, str], host_network: bool) -> dict[str, str]:
    """Podman's default sysctls (containers.conf): unprivileged ICMP sockets, so that
    ``ping`` works without CAP_NET_RAW, in a network namespace of the container's own."""
    defaults = {} if host_network else {"net.ipv4.ping_group_range": "0 0"}
    return defaults | dict(requested)


def _mounts(paths: ContainerPaths) -> list[dict[str, Any]]:
    """The /etc files every container gets (the client's mounts come from ContainerMounts)."""
    return [
        {"destination": dest, "type": "bind", "source": source, "options": ["bind", "rprivate"]}
        for dest, source in (
            ("/etc/hosts", paths.hosts),
            ("/etc/hostname", paths.hostname),
            ("/etc/resolv.conf", paths.resolv_conf),
            ("/run/.containerenv", paths.containerenv),
        )
    ]
