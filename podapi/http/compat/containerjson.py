"""Docker's container JSON: the list entry (``container.Summary``) and inspect.

Docker's vocabulary throughout: states ``created/running/paused/restarting/
removing/exited/dead`` (never Podman's ``initialized``/``stopping``), names
with a leading ``/``, ``sha256:`` image IDs, ``json-file`` as the log type.
"""

import shlex
from typing import Any

from podapi.engine.cgroupplace import shown
from podapi.engine.containerfilters import docker_state
from podapi.engine.containerspec import ContainerSpec, MountSpec
from podapi.engine.inspection import ContainerDetails
from podapi.engine.ocimodel import mount_propagation
from podapi.engine.state.containers import ContainerRecord
from podapi.engine.times import NS, human_duration, rfc3339_nano
from podapi.http.both import netsettings


def status_text(record: ContainerRecord, now_ns: int) -> str:
    """Docker's ``Status`` column: ``Up 2 minutes (healthy)``, ``Exited (0) 5 seconds ago``."""
    state = docker_state(record.state)
    if state == "created":
        return "Created"
    if state == "exited":
        ago = human_duration((now_ns - record.finished_at) / NS)
        return f"Exited ({record.exit_code}) {ago} ago"
    if state == "removing":
        return "Removal In Progress"
    text = f"Up {human_duration((now_ns - record.started_at) / NS)}"
    if record.health_status:
        health = record.health_status
        text += f" ({health})" if health != "starting" else " (health: starting)"
    if state == "paused":
        text += " (Paused)"
    return text


def _command(record: ContainerRecord) -> str:
    return " ".join(shlex.quote(a) if " " in a else a for a in (record.run.path, *record.run.args))


def _mounts(record: ContainerRecord) -> list[dict[str, Any]]:
    """Docker's ``MountPoint`` list: every mount but ``HostConfig.Tmpfs`` ones (as Docker)."""
    points = []
    for m in record.run.mounts:
        if m.origin == "Tmpfs":
            continue
        point: dict[str, Any] = {"Type": m.type}
        if m.name:
            point["Name"] = m.name
        point.update(Source=m.source, Destination=m.destination)
        if m.type == "volume":
            point["Driver"] = "local"
        point.update(
            Mode=next((o for o in m.options if o in ("z", "Z")), ""),
            RW=not m.readonly,
            Propagation=mount_propagation(m.options) if m.type == "bind" else "",
        )
        points.append(point)
    return points


def _with_access(m: MountSpec) -> list[str]:
    return [*(["ro"] if m.readonly else []), *m.options]


def _bind_text(m: MountSpec) -> str:
    """A ``Binds`` entry as given: ``src:dst[:mode]`` (``dst`` for an anonymous volume)."""
    mode = ",".join(_with_access(m))
    return ":".join([*filter(None, (m.source, m.destination)), *([mode] if mode else [])])


def _in_binds(m: MountSpec) -> bool:
    """Whether ``HostConfig.Binds`` lists ``m``.

    Docker's echo the request's ``Binds``; a libpod-made container's bind mounts
    and named volumes are all there, as Podman's inspect lists them
    (``generateInspectContainerHostConfig``).
    """
    return m.origin == "Binds" or (m.origin == "" and m.type in ("bind", "volume"))


def _nano_cpus(spec: ContainerSpec) -> int:
    """``NanoCpus``: as asked, or Podman's reading of a libpod quota over a 100ms period."""
    if spec.nano_cpus:
        return spec.nano_cpus
    resources = spec.resources
    if resources.cpu_period == 100_000 and resources.cpu_quota:
        return 10_000 * resources.cpu_quota
    return 0


def _mount_request(m: MountSpec) -> dict[str, Any]:
    """A ``HostConfig.Mounts`` entry as given (Docker's ``mount.Mount``)."""
    body: dict[str, Any] = {"Type": m.type, "Source": m.source, "Target": m.destination}
    if m.readonly:
        body["ReadOnly"] = True
    if mount_propagation(m.options):
        body["BindOptions"] = {"Propagation": mount_propagation(m.options)}
    if m.type == "volume" and ("nocopy" in m.options or m.volume_labels or m.volume_driver):
        body["VolumeOptions"] = {
            "NoCopy": "nocopy" in m.options,
            "Labels": dict(m.volume_labels),
            "DriverConfig": {"Name": m.volume_driver, "Options": dict(m.volume_options)},
        }
    values = dict(o.partition("=")[::2] for o in m.options)
    if m.type == "tmpfs" and ("size" in values or "mode" in values):
        body["TmpfsOptions"] = {
            **({"SizeBytes": int(values["size"])} if "size" in values else {}),
            **({"Mode": int(values["mode"], 8)} if "mode" in values else {}),
        }
    return body


def _network_mode(record: ContainerRecord, default_network: str) -> str:
    """Docker's ``NetworkMode``: ``bridge`` for the default network, else the first one's name."""
    spec = record.spec
    if spec.network_mode != "bridge" or not spec.networks:
        return spec.network_mode
    first = spec.networks[0].name
    return "bridge" if first == default_network else first


def encode_summary(
    record: ContainerRecord, now_ns: int, health: bool, default_network: str
) -> dict[str, Any]:
    """One entry of ``GET /containers/json``."""
    body: dict[str, Any] = {
        "Id": record.id,
        "Names": ["/" + record.name],
        "Image": record.spec.image,
        "ImageID": "sha256:" + record.image_id,
        "Command": _command(record),
        "Created": record.created // NS,
        "Ports": netsettings.summary_ports(record),
        "Labels": dict(record.run.labels),
        "State": docker_state(record.state),
        "Status": status_text(record, now_ns),
        "HostConfig": {"NetworkMode": _network_mode(record, default_network)},
        "NetworkSettings": {"Networks": netsettings.networks(record, default_network, compat=True)},
        "Mounts": _mounts(record),
    }
    if health:
        body["Health"] = {
            "Status": record.health_status or "none",
            "FailingStreak": record.health_failing,
        }
    return body


def _health(record: ContainerRecord) -> dict[str, Any]:
    return {
        "Status": record.health_status or "starting",
        "FailingStreak": record.health_failing,
        "Log": list(record.health_log),
    }


def _restart_policy(record: ContainerRecord) -> dict[str, Any]:
    policy = record.spec.restart_policy
    return {
        "Name": "" if policy.name == "no" else policy.name,
        "MaximumRetryCount": policy.max_retries,
    }


def _log_options(spec: ContainerSpec) -> dict[str, str]:
    """``LogConfig.Config`` as given (older records kept only ``max-size``, in bytes)."""
    if spec.log_options:
        return dict(spec.log_options)
    return {"max-size": str(spec.log_max_size)} if spec.log_max_size else {}


def encode_host_config(
    record: ContainerRecord, default_network: str, runtime: str = ""
) -> dict[str, Any]:
    """Docker's ``HostConfig`` as stored.

    ``LogConfig.Type`` is the driver asked for, ``json-file`` (the ``LoggingDriver``
    /info reports) when none was; ``Runtime`` is the OCI runtime's name (``runtime``).
    """
    spec = record.spec
    resources = spec.resources
    return {
        "Binds": [_bind_text(m) for m in spec.mounts if _in_binds(m)],
        "ContainerIDFile": "",
        "LogConfig": {"Type": spec.log_driver or "json-file", "Config": _log_options(spec)},
        "NetworkMode": _network_mode(record, default_network),
        "PortBindings": netsettings.port_bindings(record),
        "RestartPolicy": _restart_policy(record),
        "AutoRemove": spec.auto_remove,
        "ConsoleSize": list(spec.console_size or (0, 0)),
        "VolumeDriver": spec.volume_driver,
        "VolumesFrom": list(spec.volumes_from) or None,
        "CapAdd": list(spec.cap_add),
        "CapDrop": list(spec.cap_drop),
        "CgroupnsMode": spec.cgroupns_mode or "host",
        "Dns": list(spec.dns),
        "DnsOptions": list(spec.dns_options),
        "DnsSearch": list(spec.dns_search),
        "ExtraHosts": list(spec.extra_hosts),
        "GroupAdd": list(spec.group_add),
        "IpcMode": spec.ipc_mode or "private",
        "Cgroup": "",
        "Links": [
            f"/{target}:/{record.name}/{alias}"
            for target, _, alias in (link.partition(":") for link in spec.links)
        ]
        or None,
        "OomScoreAdj": spec.oom_score_adj or 0,
        "PidMode": spec.pid_mode or "private",
        "Privileged": spec.privileged,
        "PublishAllPorts": spec.publish_all,
        "ReadonlyRootfs": spec.readonly_rootfs,
        "SecurityOpt": list(spec.security_opt),
        "Tmpfs": {
            m.destination: ",".join(_with_access(m))
            for m in spec.mounts
            if m.type == "tmpfs" and m.origin != "Mounts"
        },
        "Mounts": [_mount_request(m) for m in spec.mounts if m.origin == "Mounts"] or None,
        "UTSMode": spec.uts_mode or "private",
        "UsernsMode": "",
        "ShmSize": spec.shm_size or 64 * 1024 * 1024,
        "Runtime": runtime or "oci",
        "Isolation": spec.isolation,
        "CpuShares": resources.cpu_shares or 0,
        "Memory": resources.memory or 0,
        "NanoCpus": _nano_cpus(spec),
        "CgroupParent": shown(spec.cgroup_parent),
        "BlkioWeight": 0,
        # With NanoCpus, Docker shows the quota and period as asked: none.
        "CpuPeriod": 0 if spec.nano_cpus else resources.cpu_period or 0,
        "CpuQuota": 0 if spec.nano_cpus else resources.cpu_quota or 0,
        "CpusetCpus": resources.cpuset_cpus or "",
        "CpusetMems": resources.cpuset_mems or "",
        "Devices": [],
        "DeviceCgroupRules": list(spec.device_cgroup_rules) or None,
        "MemoryReservation": resources.memory_reservation or 0,
        "MemorySwap": resources.memory_swap or 0,
        "MemorySwappiness": 0,
        "OomKillDisable": False,
        "PidsLimit": resources.pids_limit if resources.pids_limit is not None else 2048,
        "Ulimits": [{"Name": u.name, "Soft": u.soft, "Hard": u.hard} for u in spec.ulimits],
        "Init": spec.init,
        "Sysctls": dict(spec.sysctls),
        "MaskedPaths": [],
        "ReadonlyPaths": [],
    }


def encode_config(record: ContainerRecord) -> dict[str, Any]:
    """The container ``Config`` (the request merged with the image)."""
    spec, run = record.spec, record.run
    return {
        "Hostname": run.hostname,
        "Domainname": spec.domainname,
        "User": run.user,
        "AttachStdin": spec.open_stdin,
        "AttachStdout": True,
        "AttachStderr": True,
        "ExposedPorts": {p: {} for p in run.exposed_ports} or None,
        "Tty": spec.tty,
        "OpenStdin": spec.open_stdin,
        "StdinOnce": spec.stdin_once,
        "Env": list(run.env),
        # Podman's compat inspect copies libpod's Cmd, never nil: ``[]`` when an
        # Entrypoint reset the image's Cmd (Docker would show null).
        "Cmd": list(run.command),
        # Podman's: the defaults filled in (they are what runs).
        "Healthcheck": None if run.healthcheck is None else run.healthcheck.effective().to_docker(),
        "Image": record.spec.image,
        "Volumes": {path: {} for path in run.volumes} or None,
        "WorkingDir": run.working_dir,
        "Entrypoint": list(run.entrypoint) or None,
        "OnBuild": None,
        "Labels": dict(run.labels),
        "StopSignal": run.stop_signal,
        **({"MacAddress": spec.mac_address} if spec.mac_address else {}),
        "StopTimeout": run.stop_timeout,
    }


def encode_inspect(details: ContainerDetails) -> dict[str, Any]:
    """``GET /containers/{id}/json``."""
    record, paths = details.record, details.paths
    state = docker_state(record.state)
    state_body: dict[str, Any] = {
        "Status": state,
        "Running": state in ("running", "paused"),
        "Paused": state == "paused",
        "Restarting": False,
        "OOMKilled": record.oom_killed,
        "Dead": False,
        "Pid": record.pid,
        "ExitCode": record.exit_code,
        "Error": record.error,
        "StartedAt": rfc3339_nano(record.started_at),
        "FinishedAt": rfc3339_nano(record.finished_at),
    }
    if record.run.healthcheck is not None:
        state_body["Health"] = _health(record)
    return {
        "Id": record.id,
        "Created": rfc3339_nano(record.created),
        "Path": record.run.path,
        "Args": list(record.run.args),
        "State": state_body,
        "Image": "sha256:" + record.image_id,
        "ResolvConfPath": paths.resolv_conf,
        "HostnamePath": paths.hostname,
        "HostsPath": paths.hosts,
        "LogPath": paths.log,
        "Name": "/" + record.name,
        "RestartCount": record.restart_count,
        "Driver": "overlay",
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": [],
        "HostConfig": encode_host_config(record, details.default_network, details.runtime),
        "GraphDriver": {
            "Name": "overlay",
            "Data": {"MergedDir": paths.merged, "UpperDir": paths.upper, "WorkDir": paths.work},
        },
        "Mounts": _mounts(record),
        "Config": encode_config(record),
        "NetworkSettings": netsettings.settings(record, details.default_network, compat=True),
    }
