"""Docker's ``POST /containers/create`` body (``Config`` + ``HostConfig``) as a ContainerSpec.

Types are checked as Go's decoder would (a string where a number belongs is a
400, never a 500).  ``NetworkMode`` ``default``/``bridge`` (or none given) is
the default network; a network's name joins that network.
"""

from collections.abc import Mapping
from typing import Any

from podapi.engine.containerspec import (
    CPU_QUOTA_MIN,
    INT64_MAX,
    INT64_MIN,
    ContainerSpec,
    MountSpec,
    NetworkEndpoint,
    PortSpec,
    RestartPolicy,
    Ulimit,
    healthcheck_from_docker,
    parse_port,
    parse_size,
)
from podapi.engine.ocimodel import Resources, parse_bind
from podapi.http.bodyfields import field
from podapi.http.call import BadRequest

CPU_PERIOD = 100_000
#: Docker's names of the default network.
DEFAULT_NETWORK_MODES = {"": "bridge", "default": "bridge", "bridge": "bridge"}


def _get(
    body: Mapping[str, Any],
    key: str,
    kind: type | tuple[type, ...],
    default: Any = None,
    where: str = "",
) -> Any:
    value = field(body, key)  # Go's struct fields: any case (``TmpFs`` is ``Tmpfs``)
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
    if isinstance(value, int) and not INT64_MIN <= value <= INT64_MAX:
        raise BadRequest(
            f"json: cannot unmarshal number {value} into field {where}{key} of type int64"
        )
    return value


def _string_map(body: Mapping[str, Any], key: str, where: str = "") -> dict[str, str]:
    """A ``map[string]string`` field (labels, options, sysctls)."""
    value = _get(body, key, dict, {}, where) or {}
    if not all(isinstance(v, str) for v in value.values()):
        raise BadRequest(
            f"json: cannot unmarshal a non-string into field {where}{key} of type string"
        )
    return dict(value)


def _strings(body: Mapping[str, Any], key: str, where: str = "") -> tuple[str, ...] | None:
    value = field(body, key)
    if value is None:
        return None
    if isinstance(value, str):  # Docker accepts a string for Cmd/Entrypoint too
        return (value,)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadRequest(f"json: {where}{key} must be a list of strings")
    return tuple(value)


def _console_size(host: Mapping[str, Any]) -> tuple[int, int] | None:
    """``HostConfig.ConsoleSize`` ``[height, width]``; ``[0, 0]`` (unset) is None."""
    value = _get(host, "ConsoleSize", list, where="HostConfig.")
    if value is None:
        return None
    if len(value) != 2 or not all(type(v) is int and 0 <= v < 65536 for v in value):
        raise BadRequest("invalid HostConfig.ConsoleSize: want [height, width]")
    height, width = value
    return (height, width) if height or width else None


def _non_negative(host: Mapping[str, Any], key: str) -> int | None:
    value = _get(host, key, int, where="HostConfig.")
    if value is not None and value < 0 and not (key in ("MemorySwap", "PidsLimit") and value == -1):
        raise BadRequest(f"invalid HostConfig.{key}: {value} (must not be negative)")
    return value or None


def _mounts(host: Mapping[str, Any]) -> tuple[MountSpec, ...]:
    """``Binds``, ``Tmpfs`` and ``Mounts`` as asked (checked at create by the engine)."""
    mounts: list[MountSpec] = []
    for text in _strings(host, "Binds", "HostConfig.") or ():
        bind = parse_bind(text)
        mounts.append(
            MountSpec(
                type="bind" if bind.is_bind else "volume",
                source=bind.source,
                destination=bind.destination,
                readonly=bind.readonly,
                options=bind.options,
                origin="Binds",
            )
        )
    for path, tmpfs_options in _string_map(host, "Tmpfs", "HostConfig.").items():
        words = [o for o in tmpfs_options.split(",") if o]
        mounts.append(
            MountSpec(
                type="tmpfs",
                destination=path,
                readonly="ro" in words,
                options=tuple(o for o in words if o not in ("ro", "rw")),
                origin="Tmpfs",
            )
        )
    for item in _get(host, "Mounts", list, [], "HostConfig.") or []:
        mounts.append(_mount(item))
    return tuple(mounts)


def _mount(item: Any) -> MountSpec:
    """One ``HostConfig.Mounts`` entry (Docker's ``mount.Mount``)."""
    where = "HostConfig.Mounts."
    if not isinstance(item, dict):
        raise BadRequest("HostConfig.Mounts entries must be objects")
    kind = _get(item, "Type", str, "", where)
    source = _get(item, "Source", str, "", where)
    target = _get(item, "Target", str, "", where)
    if kind not in ("bind", "volume", "tmpfs"):
        raise BadRequest(f"mount type unknown: {kind!r}: use bind, volume or tmpfs")
    if not target:
        raise BadRequest("invalid mount config: Target must not be empty")
    sections = {
        "BindOptions": "bind",
        "VolumeOptions": "volume",
        "TmpfsOptions": "tmpfs",
    }
    given = {key: _get(item, key, dict, {}, where) or {} for key in sections}
    for key, owner in sections.items():
        if given[key] and kind != owner:
            raise BadRequest(f'invalid mount config: {key} must not be specified on type "{kind}"')
    if kind == "tmpfs" and source:
        raise BadRequest('invalid mount config for type "tmpfs": source must not be specified')
    options: list[str] = []
    propagation = _get(given["BindOptions"], "Propagation", str, "", where + "BindOptions.")
    if propagation:
        options.append(propagation)
    volume = given["VolumeOptions"]
    if _get(volume, "NoCopy", bool, False, where + "VolumeOptions."):
        options.append("nocopy")
    tmpfs = given["TmpfsOptions"]
    if tmpfs.get("SizeBytes"):
        options.append(f"size={_get(tmpfs, 'SizeBytes', int, 0, where + 'TmpfsOptions.')}")
    if tmpfs.get("Mode"):
        options.append(f"mode={_get(tmpfs, 'Mode', int, 0, where + 'TmpfsOptions.'):o}")
    driver = _get(volume, "DriverConfig", dict, {}, where + "VolumeOptions.") or {}
    return MountSpec(
        type=kind,
        source=source,
        destination=target,
        readonly=bool(_get(item, "ReadOnly", bool, False, where)),
        options=tuple(options),
        origin="Mounts",
        volume_driver=_get(driver, "Name", str, "", where + "VolumeOptions.DriverConfig."),
        volume_options=_string_map(driver, "Options", where + "VolumeOptions.DriverConfig."),
        volume_labels=_string_map(volume, "Labels", where + "VolumeOptions."),
    )


def _resources(host: Mapping[str, Any]) -> Resources:
    quota = _get(host, "CpuQuota", int, where="HostConfig.") or None
    period = _non_negative(host, "CpuPeriod")
    nano = _non_negative(host, "NanoCpus")
    if nano:
        if quota:
            raise BadRequest("Conflicting options: Nano CPUs and CPU Quota cannot both be set")
        if period:
            raise BadRequest("Conflicting options: Nano CPUs and CPU Period cannot both be set")
        # Docker's derivation: the default period, and the quota the CPUs make of it;
        # under a hundredth of a CPU, the kernel's smallest quota (1 ms), so that the
        # container Docker and Podman accept also starts (the kernel refuses less).
        period = CPU_PERIOD
        quota = max(nano * period // 1_000_000_000, CPU_QUOTA_MIN)
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
    log_options = _string_map(log_config, "Config", "HostConfig.LogConfig.")
    network = _get(host, "NetworkMode", str, "", "HostConfig.")
    ulimits = []
    for item in _get(host, "Ulimits", list, [], "HostConfig.") or []:
        if not isinstance(item, dict) or not isinstance(item.get("Name"), str):
            raise BadRequest("HostConfig.Ulimits entries need a Name")
        where = "HostConfig.Ulimits."
        ulimits.append(
            Ulimit(
                item["Name"], _get(item, "Soft", int, 0, where), _get(item, "Hard", int, 0, where)
            )
        )
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
        console_size=_console_size(host),
        open_stdin=bool(_get(body, "OpenStdin", bool, False)),
        stdin_once=bool(_get(body, "StdinOnce", bool, False)),
        hostname=_get(body, "Hostname", str) or None,
        domainname=_get(body, "Domainname", str, ""),
        labels=_string_map(body, "Labels"),
        stop_signal=_get(body, "StopSignal", str) or None,
        stop_timeout=_get(body, "StopTimeout", int),
        exposed_ports=tuple(_get(body, "ExposedPorts", dict, {}) or {}),
        healthcheck=healthcheck_from_docker(healthcheck) if healthcheck else None,
        network_mode=DEFAULT_NETWORK_MODES.get(network, network),
        networks=_endpoints(body),
        ports=_port_bindings(host),
        publish_all=bool(_get(host, "PublishAllPorts", bool, False, "HostConfig.")),
        mounts=_mounts(host),
        volumes=tuple(_get(body, "Volumes", dict, {}) or {}),
        volumes_from=_strings(host, "VolumesFrom", "HostConfig.") or (),
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
            _get(restart, "Name", str, "", "HostConfig.RestartPolicy.") or "no",
            _get(restart, "MaximumRetryCount", int, 0, "HostConfig.RestartPolicy."),
        ),
        auto_remove=bool(_get(host, "AutoRemove", bool, False, "HostConfig.")),
        log_max_size=parse_size(log_options["max-size"]) if log_options.get("max-size") else None,
        log_driver=_get(log_config, "Type", str, "", "HostConfig.LogConfig."),
        log_options=log_options,
        nano_cpus=_non_negative(host, "NanoCpus") or 0,
        device_cgroup_rules=_strings(host, "DeviceCgroupRules", "HostConfig.") or (),
        cgroupns_mode=_get(host, "CgroupnsMode", str, "", "HostConfig."),
        cgroup_parent=_get(host, "CgroupParent", str, "", "HostConfig."),
        isolation=_get(host, "Isolation", str, "", "HostConfig."),
        volume_driver=_get(host, "VolumeDriver", str, "", "HostConfig."),
        mac_address=_get(body, "MacAddress", str, ""),
        links=_strings(host, "Links", "HostConfig.") or (),
        extra_hosts=_strings(host, "ExtraHosts", "HostConfig.") or (),
        dns=_strings(host, "Dns", "HostConfig.") or (),
        dns_search=_strings(host, "DnsSearch", "HostConfig.") or (),
        dns_options=_strings(host, "DnsOptions", "HostConfig.") or (),
        group_add=_strings(host, "GroupAdd", "HostConfig.") or (),
        sysctls=_string_map(host, "Sysctls", "HostConfig."),
        oom_score_adj=_get(host, "OomScoreAdj", int, where="HostConfig.") or None,
        pid_mode=_get(host, "PidMode", str, "", "HostConfig."),
        ipc_mode=_get(host, "IpcMode", str, "", "HostConfig."),
        uts_mode=_get(host, "UTSMode", str, "", "HostConfig."),
    )


def _endpoints(body: Mapping[str, Any]) -> tuple[NetworkEndpoint, ...]:
    """``NetworkingConfig.EndpointsConfig``: networks with aliases, static IPs and MAC."""
    config = _get(body, "NetworkingConfig", dict, {}) or {}
    endpoints = _get(config, "EndpointsConfig", dict, {}, "NetworkingConfig.") or {}
    found = []
    for name, given in endpoints.items():
        where = f"NetworkingConfig.EndpointsConfig.{name}."
        settings = {} if given is None else given
        if not isinstance(settings, dict):
            raise BadRequest(f"json: {where[:-1]} must be an object")
        found.append(
            decode_endpoint(settings, "bridge" if name in ("bridge", "default") else name, where)
        )
    return tuple(found)


def decode_endpoint(settings: Mapping[str, Any], name: str, where: str) -> NetworkEndpoint:
    """Docker's ``EndpointSettings`` as asked (create's ``EndpointsConfig``, connect's
    ``EndpointConfig``): aliases, static IPs and MAC, and links, driver options and
    link-local IPs, which are kept and shown as given."""
    ipam = _get(settings, "IPAMConfig", dict, {}, where) or {}
    addresses = [_get(settings, "IPAddress", str, "", where)] + [
        _get(ipam, key, str, "", where + "IPAMConfig.") for key in ("IPv4Address", "IPv6Address")
    ]
    driver_opts = _string_map(settings, "DriverOpts", where)
    return NetworkEndpoint(
        name=name,
        aliases=_strings(settings, "Aliases", where) or (),
        static_ips=tuple(dict.fromkeys(a for a in addresses if a)),
        static_mac=_get(settings, "MacAddress", str, "", where),
        links=_strings(settings, "Links", where) or (),
        driver_opts=driver_opts,
        link_local_ips=_strings(ipam, "LinkLocalIPs", where + "IPAMConfig.") or (),
    )


def _port_bindings(host: Mapping[str, Any]) -> tuple[PortSpec, ...]:
    """``HostConfig.PortBindings``: ``{"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}``."""
    bindings = _get(host, "PortBindings", dict, {}, "HostConfig.") or {}
    found = []
    for key, targets in bindings.items():
        port, count, protocol = parse_port(key)
        if targets is not None and not isinstance(targets, list):
            raise BadRequest(f"json: HostConfig.PortBindings[{key!r}] must be a list")
        for target in targets or [{}]:
            if not isinstance(target, dict):
                raise BadRequest(f"json: HostConfig.PortBindings[{key!r}] must hold objects")
            host_port = _get(target, "HostPort", str, "", "HostConfig.PortBindings.")
            host_first, host_count = 0, count
            if host_port:
                host_first, host_count, _ = parse_port(host_port)
            if host_count != count:
                raise BadRequest(
                    f"invalid port binding {key!r} -> {host_port!r}: the ranges differ in size"
                )
            found.append(
                PortSpec(
                    container_port=port,
                    host_port=host_first,
                    protocol=protocol,
                    host_ip=_get(target, "HostIp", str, "", "HostConfig.PortBindings."),
                    range=count,
                )
            )
    return tuple(found)
