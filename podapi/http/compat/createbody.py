"""Docker's ``POST /containers/create`` body (``Config`` + ``HostConfig``) as a ContainerSpec.

Types are checked as Go's decoder would (a string where a number belongs is a
400, never a 500).  Networking arrives with the networks issue: until then
``default``/``bridge`` mean no network (``none``), as the README says.
"""

from collections.abc import Mapping
from typing import Any

from podapi.engine.containerspec import (
    ContainerSpec,
    MountSpec,
    Resources,
    RestartPolicy,
    Ulimit,
    healthcheck_from_docker,
    parse_size,
)
from podapi.http.call import BadRequest

CPU_PERIOD = 100_000
#: Until the networks issue lands, Docker's default network means none.
DEFAULT_NETWORK_MODES = {"": "none", "default": "none", "bridge": "none"}


def _get(
    body: Mapping[str, Any],
    key: str,
    kind: type | tuple[type, ...],
    default: Any = None,
    where: str = "",
) -> Any:
    value = body.get(key)
    if value is None:
        return default
    if isinstance(value, bool) and kind in (int, (int, float)):
        raise BadRequest(f"json: cannot unmarshal bool into {where}{key} of type int")
    if not isinstance(value, kind):
        expected = kind.__name__ if isinstance(kind, type) else "number"
        raise BadRequest(
            f"json: cannot unmarshal {type(value).__name__} into field "
            f"{where}{key} of type {expected}"
        )
    return value


def _strings(body: Mapping[str, Any], key: str, where: str = "") -> tuple[str, ...] | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, str):  # Docker accepts a string for Cmd/Entrypoint too
        return (value,)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadRequest(f"json: {where}{key} must be a list of strings")
    return tuple(value)


def _non_negative(host: Mapping[str, Any], key: str) -> int | None:
    value = _get(host, key, int, where="HostConfig.")
    if value is not None and value < 0 and not (key in ("MemorySwap", "PidsLimit") and value == -1):
        raise BadRequest(f"invalid HostConfig.{key}: {value} (must not be negative)")
    return value or None


def _mounts(host: Mapping[str, Any]) -> tuple[MountSpec, ...]:
    mounts: list[MountSpec] = []
    for bind in _strings(host, "Binds", "HostConfig.") or ():
        parts = bind.split(":")
        if len(parts) < 2 or not parts[0] or not parts[1]:
            raise BadRequest(f"invalid bind mount {bind!r}: use SOURCE:DEST[:OPTIONS]")
        if not parts[0].startswith("/"):
            raise BadRequest(f"named volumes are not supported yet: {bind!r}")
        flags = parts[2].split(",") if len(parts) > 2 else []
        mounts.append(
            MountSpec(
                type="bind",
                source=parts[0],
                destination=parts[1],
                readonly="ro" in flags,
                options=tuple(o for o in flags if o not in ("ro", "rw")),
            )
        )
    for path, tmpfs_options in (_get(host, "Tmpfs", dict, {}, "HostConfig.") or {}).items():
        mounts.append(
            MountSpec(
                type="tmpfs",
                destination=path,
                source="tmpfs",
                options=tuple(o for o in str(tmpfs_options).split(",") if o),
            )
        )
    for item in _get(host, "Mounts", list, [], "HostConfig.") or []:
        if not isinstance(item, dict):
            raise BadRequest("HostConfig.Mounts entries must be objects")
        kind = item.get("Type", "volume")
        target = item.get("Target") or ""
        if kind not in ("bind", "tmpfs") or not target:
            raise BadRequest(f"unsupported mount {item!r}: bind and tmpfs mounts with a Target")
        options: list[str] = []
        tmpfs = item.get("TmpfsOptions") or {}
        if tmpfs.get("SizeBytes"):
            options.append(f"size={int(tmpfs['SizeBytes'])}")
        if tmpfs.get("Mode"):
            options.append(f"mode={int(tmpfs['Mode']):o}")
        mounts.append(
            MountSpec(
                type=kind,
                source=item.get("Source") or kind,
                destination=target,
                readonly=bool(item.get("ReadOnly")),
                options=tuple(options),
            )
        )
    return tuple(mounts)


def _resources(host: Mapping[str, Any]) -> Resources:
    quota = _get(host, "CpuQuota", int, where="HostConfig.") or None
    period = _non_negative(host, "CpuPeriod")
    nano = _non_negative(host, "NanoCpus")
    if nano:
        if quota:
            raise BadRequest("conflicting options: NanoCpus and CpuQuota cannot both be set")
        period = period or CPU_PERIOD
        quota = nano * period // 1_000_000_000
    return Resources(
        memory=_non_negative(host, "Memory"),
        memory_swap=_non_negative(host, "MemorySwap"),
        memory_reservation=_non_negative(host, "MemoryReservation"),
        cpu_shares=_non_negative(host, "CpuShares"),
        cpu_quota=quota,
        cpu_period=period,
        cpuset_cpus=_get(host, "CpusetCpus", str, where="HostConfig.") or None,
        cpuset_mems=_get(host, "CpusetMems", str, where="HostConfig.") or None,
        pids_limit=_non_negative(host, "PidsLimit"),
    )


def decode_create(body: Any, name: str | None) -> ContainerSpec:
    """The spec a Docker create request describes."""
    if not isinstance(body, dict):
        raise BadRequest("the create body must be a JSON object")
    image = _get(body, "Image", str)
    if not image:
        raise BadRequest("Config.Image is required", cause="no image")
    host = _get(body, "HostConfig", dict, {}) or {}
    restart = _get(host, "RestartPolicy", dict, {}, "HostConfig.") or {}
    log_config = _get(host, "LogConfig", dict, {}, "HostConfig.") or {}
    log_options = log_config.get("Config") or {}
    network = _get(host, "NetworkMode", str, "", "HostConfig.")
    ulimits = []
    for item in _get(host, "Ulimits", list, [], "HostConfig.") or []:
        if not isinstance(item, dict) or not isinstance(item.get("Name"), str):
            raise BadRequest("HostConfig.Ulimits entries need a Name")
        soft, hard = item.get("Soft", 0), item.get("Hard", 0)
        if not isinstance(soft, int) or not isinstance(hard, int):
            raise BadRequest(f"HostConfig.Ulimits {item['Name']}: Soft and Hard must be numbers")
        ulimits.append(Ulimit(item["Name"], soft, hard))
    healthcheck = _get(body, "Healthcheck", dict)
    return ContainerSpec(
        image=image,
        name=name or None,
        entrypoint=_strings(body, "Entrypoint"),
        command=_strings(body, "Cmd"),
        env=_strings(body, "Env") or (),
        working_dir=_get(body, "WorkingDir", str) or None,
        user=_get(body, "User", str) or None,
        tty=bool(_get(body, "Tty", bool, False)),
        open_stdin=bool(_get(body, "OpenStdin", bool, False)),
        stdin_once=bool(_get(body, "StdinOnce", bool, False)),
        hostname=_get(body, "Hostname", str) or None,
        domainname=_get(body, "Domainname", str, ""),
        labels=_get(body, "Labels", dict, {}) or {},
        stop_signal=_get(body, "StopSignal", str) or None,
        stop_timeout=_get(body, "StopTimeout", int),
        exposed_ports=tuple(_get(body, "ExposedPorts", dict, {}) or {}),
        healthcheck=healthcheck_from_docker(healthcheck) if healthcheck else None,
        network_mode=DEFAULT_NETWORK_MODES.get(network, network),
        mounts=_mounts(host),
        privileged=bool(_get(host, "Privileged", bool, False, "HostConfig.")),
        readonly_rootfs=bool(_get(host, "ReadonlyRootfs", bool, False, "HostConfig.")),
        cap_add=_strings(host, "CapAdd", "HostConfig.") or (),
        cap_drop=_strings(host, "CapDrop", "HostConfig.") or (),
        security_opt=_strings(host, "SecurityOpt", "HostConfig.") or (),
        init=bool(_get(host, "Init", bool, False, "HostConfig.")),
        resources=_resources(host),
        ulimits=tuple(ulimits),
        shm_size=_non_negative(host, "ShmSize"),
        restart_policy=RestartPolicy(
            str(restart.get("Name") or "no"),
            _get(restart, "MaximumRetryCount", int, 0, "HostConfig.RestartPolicy."),
        ),
        auto_remove=bool(_get(host, "AutoRemove", bool, False, "HostConfig.")),
        log_max_size=parse_size(log_options["max-size"]) if log_options.get("max-size") else None,
        extra_hosts=_strings(host, "ExtraHosts", "HostConfig.") or (),
        dns=_strings(host, "Dns", "HostConfig.") or (),
        dns_search=_strings(host, "DnsSearch", "HostConfig.") or (),
        dns_options=_strings(host, "DnsOptions", "HostConfig.") or (),
        group_add=_strings(host, "GroupAdd", "HostConfig.") or (),
        sysctls=_get(host, "Sysctls", dict, {}, "HostConfig.") or {},
        oom_score_adj=_get(host, "OomScoreAdj", int, where="HostConfig.") or None,
        pid_mode=_get(host, "PidMode", str, "", "HostConfig."),
        ipc_mode=_get(host, "IpcMode", str, "", "HostConfig."),
        uts_mode=_get(host, "UTSMode", str, "", "HostConfig."),
    )
