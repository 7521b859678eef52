"""Building a container's OCI bundle: the rootfs mount, /etc files, ``config.json``
and the configuration conmon is launched with.

What conmon and runc are handed when a container is created: the overlay
root filesystem, the ``/etc/hosts``, ``/etc/hostname`` and
``/etc/resolv.conf`` every container gets, its volumes and image mounts, and
the OCI runtime configuration (``podapi.oci.spec``) with Podman's defaults.
"""

import functools
import json
import os
import shutil
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from attrs import evolve

from podapi import crashpoints
from podapi.engine.cgroupplace import container_cgroup
from podapi.engine.containermounts import ContainerMounts
from podapi.engine.containers import ContainerService
from podapi.engine.containerspec import merge_env, process_env, signal_number
from podapi.engine.images import ImageService
from podapi.engine.layout import ContainerPaths, Layout
from podapi.engine.ports import parse_exposed
from podapi.engine.state.containers import ContainerRecord
from podapi.engine.times import rfc3339_nano
from podapi.errors import Conflict, InvalidArgument
from podapi.oci import capabilities, conmon, rlimits, rootfs
from podapi.oci.process import DEFAULT_PATH
from podapi.oci.seccomp import Converter
from podapi.oci.spec import SpecInputs, device_cgroup_rule, generate
from podapi.threads import Blocking


@functools.cache
def _flock() -> str | None:
    """flock(1)'s absolute path (conmon runs its exit command without a PATH lookup)."""
    return shutil.which("flock")


def exit_command(layout: Layout, container_id: str) -> tuple[str, ...]:
    """What conmon runs when the container exits: ``python -m podapi.cleanup``.

    Behind ``flock --shared --nonblock`` on the runroot's cleanup lock: while a
    server runs it holds that lock exclusively and settles the exit itself
    (:mod:`podapi.engine.serverlock`), so flock(1) answers 0 at once instead of a
    Python interpreter starting only to find the same (some 45 ms of CPU per exit,
    taken from the runtime calls of the server's own clean-up).  Otherwise
    ``podapi.cleanup`` runs and takes the lock itself, as without flock(1).
    """
    flock = _flock()
    guard = (
        ()
        if flock is None
        else (
            flock,
            "--shared",
            "--nonblock",
            "--conflict-exit-code",
            "0",
            "--close",
            layout.cleanup_lock,
        )
    )
    return (
        *guard,
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
        # The crash-test variable goes on to the exit command (podapi.cleanup).
        env={"PATH": os.environ.get("PATH", DEFAULT_PATH), **crashpoints.inherited()},
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
    :param seccomp: gives (loading it the first time) what converts the default
        seccomp profile per capability set; None when there is no profile.
    :param init_binary: catatonit/tini for ``--init``.
    :param mounts: volumes and image mounts, held while a container runs.
    :param containers: the containers a legacy link names (None: links are not resolved).
    """

    def __init__(
        self,
        images: ImageService,
        *,
        io: Blocking,
        seccomp: Callable[[], Awaitable[Converter | None]],
        init_binary: str | None,
        mounts: ContainerMounts,
        containers: ContainerService | None = None,
    ) -> None:
        self._containers = containers
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
        links = await self._links(record)
        lowers = await image_lowers(self._images, record)
        spec = record.spec
        host_network = spec.network_mode == "host"
        hostname = (
            os.uname().nodename if host_network and not spec.hostname else (record.run.hostname)
        )
        link_hosts = [f"{' '.join(names)}:{ip}" for names, ip, _ in links if ip]
        try:
            user = await self._io(
                _mount_and_write_etc,
                lowers,
                paths,
                record,
                hostname=hostname,
                host_network=host_network,
                link_hosts=link_hosts,
            )
            user_mounts = await self._container_mounts.attach(record.id, record.run.mounts, paths)
            secret_mounts, secret_env = await self._container_mounts.secrets(spec, paths)
            link_env = [item for _, _, variables in links for item in variables]
            env = list(merge_env(link_env, process_env(record.run.env)))
            env = list(merge_env(env, secret_env))
            if not any(e.startswith("HOME=") for e in env):
                env.append(f"HOME={user.home}")
            caps = capabilities.effective(spec.cap_add, spec.cap_drop, spec.privileged)
            unconfined = spec.privileged or "seccomp=unconfined" in spec.security_opt
            converter = None if unconfined else await self._seccomp()
            seccomp = None if converter is None else converter.for_capabilities(caps)
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
                elif mode.startswith("container:"):
                    # A pod's shared namespace: the infra container's.
                    path = await self._namespace_of(mode.partition(":")[2], kind)
                    namespaces[namespaces.index((kind, None))] = (kind, path)
            if spec.cgroupns_mode == "private":
                namespaces.append(("cgroup", None))
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
                oom_score_adj=rlimits.clamp_oom_score_adj(spec.oom_score_adj),
                privileged=spec.privileged,
                shm_size=spec.shm_size or 64 * 1024 * 1024,
                mounts=[*_mounts(paths), *user_mounts, *secret_mounts],
                namespaces=namespaces,
                cgroups_path=container_cgroup(record),
                resources=evolve(
                    resources,
                    pids_limit=resources.pids_limit if resources.pids_limit is not None else 2048,
                ),
                seccomp=seccomp,
                device_rules=[device_cgroup_rule(r) for r in spec.device_cgroup_rules],
                sysctl=_sysctls(spec.sysctls, host_network),
                annotations=_podman_annotations(record, rfc3339_nano(record.created)),
                init_path=self._init if spec.init else None,
            )
            await self._io(_write_json, paths.config_json, generate(inputs))
        except BaseException:
            await self._container_mounts.detach(record.id, record.run.mounts, paths)
            await self._io(rootfs.unmount, paths.merged)
            raise

    async def _namespace_of(self, container_id: str, kind: str) -> str:
        """The ``/proc`` path of a running container's namespace; 409 if it is not running."""
        if self._containers is None:
            raise InvalidArgument(f"cannot join the {kind} namespace of container {container_id}")
        target = await self._containers.get(container_id)
        if not target.alive:
            raise Conflict(
                f"cannot join the {kind} namespace of container {target.id}: it is not running",
                cause="container state improper",
            )
        return f"/proc/{target.pid}/ns/{kind}"

    async def _links(self, record: ContainerRecord) -> list[tuple[list[str], str, list[str]]]:
        """Each legacy link's /etc/hosts names, the linked container's IP and its env vars."""
        if not record.spec.links or self._containers is None:
            return []
        found = []
        for alias, linked in await self._containers.linked(record):
            ip = linked_ip(record, linked)
            names = [alias, linked.run.hostname, *([linked.name] if alias != linked.name else [])]
            variables = link_env(
                alias, f"/{record.name}/{alias}", ip, linked.run.exposed_ports, linked.run.env
            )
            found.append((list(dict.fromkeys(names)), ip, variables))
        return found


def linked_ip(record: ContainerRecord, linked: ContainerRecord) -> str:
    """The IPv4 address of ``linked`` on a network both containers join (else its first)."""
    shared = [n for n in record.network_status.joined if n in linked.network_status.joined]
    networks = [*shared, *linked.network_status.joined]
    for name in networks:
        for address in linked.network_status.joined[name].attached.addresses:
            if ":" not in address.ip:
                return address.ip
    return ""


def link_env(
    alias: str, name: str, ip: str, exposed: Sequence[str], child_env: Sequence[str]
) -> list[str]:
    """The variables Docker's legacy link gives (moby ``links.Link.ToEnv``):
    ``ALIAS_PORT``, ``ALIAS_PORT_<port>_<PROTO>[_ADDR|_PORT|_PROTO]`` (and ``_START``/
    ``_END`` ones for runs of consecutive ports), ``ALIAS_NAME`` and ``ALIAS_ENV_<name>``
    for the linked container's variables but HOME and PATH."""
    prefix = alias.upper().replace("-", "_")
    # tcp first among equal numbers, lowest first (Docker's ``withTCPPriority``)
    ports = sorted({parse_exposed(p) for p in exposed}, key=lambda p: (p[0], p[1] != "tcp", p[1]))
    env = []
    if ports:
        number, proto = ports[0]
        env.append(f"{prefix}_PORT={proto}://{ip}:{number}")
    runs: list[list[tuple[int, str]]] = []
    for port in ports:
        last = runs[-1][-1] if runs else None
        if last is not None and port[1] == last[1] and port[0] == last[0] + 1:
            runs[-1].append(port)
        else:
            runs.append([port])
    for run in runs:
        if len(run) > 1:
            (start, proto), (end, _) = run[0], run[-1]
            key = f"{prefix}_PORT_{start}_{proto.upper()}"
            env += [
                f"{key}_START={proto}://{ip}:{start}",
                f"{key}_ADDR={ip}",
                f"{key}_PORT_START={start}",
                f"{key}_PORT_END={end}",
            ]
    for number, proto in ports:
        key = f"{prefix}_PORT_{number}_{proto.upper()}"
        env += [
            f"{key}={proto}://{ip}:{number}",
            f"{key}_ADDR={ip}",
            f"{key}_PORT={number}",
            f"{key}_PROTO={proto}",
        ]
    env.append(f"{prefix}_NAME={name}")
    for item in child_env:
        key, sep, value = item.partition("=")
        if sep and key not in ("HOME", "PATH"):
            env.append(f"{prefix}_ENV_{key}={value}")
    return env


def _write_json(path: str, value: Any) -> None:
    temp = path + ".tmp"
    # dumps, not dump: dump streams through the pure-Python encoder, ten times
    # slower for a config.json that holds the seccomp profile.
    text = json.dumps(value)
    with open(temp, "w", encoding="utf-8") as f:
        f.write(text)
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


def _mount_and_write_etc(
    lowers: list[str],
    paths: ContainerPaths,
    record: ContainerRecord,
    *,
    hostname: str,
    host_network: bool,
    link_hosts: list[str],
) -> rootfs.User:
    """Mount the rootfs, find the container's user in it and write the /etc files
    (blocking; one trip to the thread pool where three were a start's waits)."""
    mount_rootfs(lowers, paths)
    user = rootfs.resolve_user(paths.merged, record.run.user, record.spec.group_add)
    _write_etc(paths, hostname, record, host_network, link_hosts)
    return user


def _write_etc(
    paths: ContainerPaths,
    hostname: str,
    record: ContainerRecord,
    host_network: bool,
    link_hosts: list[str],
) -> None:
    spec = record.spec
    joined = record.network_status.joined.values()
    addresses = [a.ip for j in joined for a in j.attached.addresses]
    extra = [*link_hosts, *spec.extra_hosts]
    rootfs.write_file(
        paths.hosts, rootfs.hosts_file(hostname, record.name, extra, host_network, addresses)
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
