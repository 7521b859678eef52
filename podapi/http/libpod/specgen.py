"""Podman's ``SpecGenerator`` (``POST /libpod/containers/create``) as a ContainerSpec.

Field names follow ``pkg/specgen/specgen.go`` (JSON tags): ``command``,
``env`` as a map, ``terminal``, ``remove``, ``netns.nsmode``,
``resource_limits`` as OCI ``LinuxResources``, ``r_limits``, ``healthconfig``...
"""

from collections.abc import Mapping
from typing import Any

from attrs import evolve

from podapi.engine.containerspec import (
    INT64_MAX,
    INT64_MIN,
    ContainerSpec,
    MountSpec,
    NetworkEndpoint,
    PortSpec,
    RestartPolicy,
    SecretMount,
    Ulimit,
    exposed_ports,
    healthcheck_from_docker,
)
from podapi.engine.ocimodel import Resources
from podapi.http.bodyfields import GoStruct
from podapi.http.call import BadRequest

#: ``netns.nsmode`` -> our network mode (rootful: ``private`` and the rootless
#: modes mean the default bridge network, as Podman does for root).
NETWORK_MODES = {
    "": "bridge",
    "default": "bridge",
    "bridge": "bridge",
    "private": "bridge",
    "slirp4netns": "bridge",
    "pasta": "bridge",
    "none": "none",
    "host": "host",
}


def _typed(
    body: Mapping[str, Any], key: str, kind: type | tuple[type, ...], default: Any = None
) -> Any:
    value = body.get(key)
    if value is None:
        return default
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        raise BadRequest(f"invalid SpecGenerator.{key}: {value!r}")
    if isinstance(value, int) and not INT64_MIN <= value <= INT64_MAX:
        raise BadRequest(f"invalid SpecGenerator.{key}: {value} does not fit in 64 bits")
    return value


def _string_map(body: Mapping[str, Any], key: str) -> dict[str, str]:
    """A ``map[string]string`` field (env, labels, annotations, sysctl)."""
    value = _typed(body, key, dict, {}) or {}
    if not all(isinstance(v, str) for v in value.values()):
        raise BadRequest(f"invalid SpecGenerator.{key}: the values must be strings")
    return dict(value)


def _strings(body: Mapping[str, Any], key: str) -> tuple[str, ...] | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadRequest(f"invalid SpecGenerator.{key}: a list of strings is required")
    return tuple(value)


def _mode(body: Mapping[str, Any], key: str) -> str:
    namespace = _typed(body, key, dict, {}) or {}
    return _typed(namespace, "nsmode", str, "") or ""


def linux_resources(limits: Any, where: str = "resource_limits") -> Resources:
    """OCI ``LinuxResources`` (what Podman's clients send) as our limits; 400 for bad types.

    Limits we do not apply (blkio, hugepages, devices...) are ignored, as the
    runtime default stays in place for them.
    """
    if not isinstance(limits, dict):
        raise BadRequest(f"invalid {where}: a JSON object (OCI LinuxResources) is required")
    sections = {}
    for section in ("memory", "cpu", "pids"):
        value = limits.get(section) or {}
        if not isinstance(value, dict):
            raise BadRequest(f"invalid {where}.{section}: {value!r}")
        sections[section] = value

    def number(section: str, key: str) -> int | None:
        value = sections[section].get(key)
        if value is not None and (
            not isinstance(value, int)
            or isinstance(value, bool)
            or not INT64_MIN <= value <= INT64_MAX
        ):
            raise BadRequest(f"invalid {where}.{section}.{key}: {value!r}")
        return value

    def cpuset(key: str) -> str | None:
        value = sections["cpu"].get(key)
        if value is not None and not isinstance(value, str):
            raise BadRequest(f"invalid {where}.cpu.{key}: {value!r}")
        return value or None

    return Resources(
        memory=number("memory", "limit"),
        memory_swap=number("memory", "swap"),
        memory_reservation=number("memory", "reservation"),
        cpu_shares=number("cpu", "shares"),
        cpu_quota=number("cpu", "quota"),
        cpu_period=number("cpu", "period"),
        cpuset_cpus=cpuset("cpus"),
        cpuset_mems=cpuset("mems"),
        pids_limit=number("pids", "limit"),
    )


def _resources(body: Mapping[str, Any]) -> Resources:
    resources = linux_resources(_typed(body, "resource_limits", dict, {}) or {})
    quota = _typed(body, "cpu_quota", int) or resources.cpu_quota
    period = _typed(body, "cpu_period", int) or resources.cpu_period
    return evolve(resources, cpu_quota=quota, cpu_period=period)


def _mounts(body: Mapping[str, Any]) -> tuple[MountSpec, ...]:
    """``mounts`` (OCI mounts: bind, tmpfs), ``volumes`` (named, or anonymous without a
    ``Name``) and ``image_volumes``, as asked (checked at create by the engine)."""
    mounts = []
    for item in _typed(body, "mounts", list, []) or []:
        if not isinstance(item, dict) or not _typed(item, "destination", str):
            raise BadRequest("every SpecGenerator.mounts entry needs a destination")
        kind = _typed(item, "type", str) or "bind"
        options = list(_strings(item, "options") or ())
        if kind not in ("bind", "tmpfs"):
            raise BadRequest(f"unsupported mount type {kind!r}: bind and tmpfs")
        mounts.append(
            MountSpec(
                type=kind,
                destination=item["destination"],
                source=(_typed(item, "source", str) or "") if kind == "bind" else "",
                readonly="ro" in options,
                options=tuple(o for o in options if o not in ("ro", "rw")),
            )
        )
    for item in _typed(body, "volumes", list, []) or []:
        if not isinstance(item, dict) or not isinstance(item.get("Dest"), str):
            raise BadRequest("every SpecGenerator.volumes entry needs a Dest")
        options = list(_strings(item, "Options") or ())
        mounts.append(
            MountSpec(
                type="volume",
                destination=item["Dest"],
                source=_typed(item, "Name", str) or "",
                readonly="ro" in options,
                options=tuple(o for o in options if o not in ("ro", "rw")),
            )
        )
    for item in _typed(body, "image_volumes", list, []) or []:
        if (
            not isinstance(item, dict)
            or not _typed(item, "Destination", str)
            or not _typed(item, "Source", str)
        ):
            raise BadRequest("every SpecGenerator.image_volumes entry needs Source and Destination")
        mounts.append(
            MountSpec(
                type="image",
                destination=item["Destination"],
                source=item["Source"],
                readonly=not _typed(item, "ReadWrite", bool, False),
            )
        )
    return tuple(mounts)


def decode_specgen(body: Any) -> ContainerSpec:
    """The spec a libpod create request describes."""
    if not isinstance(body, dict):
        raise BadRequest("the create body must be a JSON object (SpecGenerator)")
    body = GoStruct(body)  # Go matches struct fields in any case: ``Image`` is ``image``
    image = _typed(body, "image", str)
    if not image:
        raise BadRequest("SpecGenerator.image is required", cause="no image")
    env = _string_map(body, "env")
    stop_signal = _typed(body, "stop_signal", (int, str))
    healthconfig = _typed(body, "healthconfig", dict)
    policy = _typed(body, "restart_policy", str, "") or "no"
    log_config = _typed(body, "log_configuration", dict, {}) or {}
    network = _network_mode(body)
    security = []
    if body.get("seccomp_profile_path") == "unconfined":
        security.append("seccomp=unconfined")
    if body.get("no_new_privileges"):
        security.append("no-new-privileges")
    return ContainerSpec(
        image=image,
        name=_typed(body, "name", str) or None,
        entrypoint=_strings(body, "entrypoint"),
        command=_strings(body, "command"),
        env=tuple(f"{k}={v}" for k, v in env.items()),
        working_dir=_typed(body, "work_dir", str) or None,
        user=_typed(body, "user", str) or None,
        tty=bool(_typed(body, "terminal", bool, False)),
        open_stdin=bool(_typed(body, "stdin", bool, False)),
        hostname=_typed(body, "hostname", str) or None,
        labels=_string_map(body, "labels"),
        annotations=_string_map(body, "annotations"),
        stop_signal=str(stop_signal) if stop_signal else None,
        stop_timeout=_typed(body, "stop_timeout", int),
        healthcheck=healthcheck_from_docker(healthconfig) if healthconfig else None,
        network_mode=network,
        networks=_networks(body),
        ports=_port_mappings(body),
        publish_all=bool(_typed(body, "publish_image_ports", bool, False)),
        exposed_ports=_expose(body),
        mounts=_mounts(body),
        volumes_from=_strings(body, "volumes_from") or (),
        image_volume_mode=_typed(body, "image_volume_mode", str, "") or "anonymous",
        privileged=bool(_typed(body, "privileged", bool, False)),
        readonly_rootfs=bool(_typed(body, "read_only_filesystem", bool, False)),
        cap_add=_strings(body, "cap_add") or (),
        cap_drop=_strings(body, "cap_drop") or (),
        security_opt=tuple(security),
        init=bool(_typed(body, "init", bool, False)),
        resources=_resources(body),
        ulimits=_rlimits(body),
        shm_size=_typed(body, "shm_size", int),
        restart_policy=RestartPolicy(policy, _typed(body, "restart_tries", int, 0)),
        auto_remove=bool(_typed(body, "remove", bool, False)),
        log_max_size=_typed(log_config, "size", int) or None,
        extra_hosts=_strings(body, "hostadd") or (),
        dns=_strings(body, "dns_server") or (),
        dns_search=_strings(body, "dns_search") or (),
        dns_options=_strings(body, "dns_option") or (),
        group_add=_strings(body, "groups") or (),
        sysctls=_string_map(body, "sysctl"),
        oom_score_adj=_typed(body, "oom_score_adj", int),
        pid_mode="host" if _mode(body, "pidns") == "host" else "",
        ipc_mode="host" if _mode(body, "ipcns") == "host" else "",
        uts_mode="host" if _mode(body, "utsns") == "host" else "",
        secrets=_secrets(body),
        env_secrets=_env_secrets(body),
        pod=_typed(body, "pod", str, "") or "",
        cgroup_parent=_typed(body, "cgroup_parent", str, "") or "",
    )


def _expose(body: Mapping[str, Any]) -> tuple[str, ...]:
    """``expose``: ``{"80": "tcp"}`` (Go's ``map[uint16]string``; the protocol may be
    ``tcp,udp``) as ``PORT/PROTOCOL`` keys, each checked."""
    found = []
    for port, protocols in (_typed(body, "expose", dict, {}) or {}).items():
        if not isinstance(protocols, str):
            raise BadRequest(f"invalid SpecGenerator.expose.{port}: {protocols!r}")
        if not port.isdigit() or not 0 < int(port) <= 65535:
            raise BadRequest(f"invalid SpecGenerator.expose port {port!r}")
        found += [f"{int(port)}/{protocol}" for protocol in (protocols or "tcp").split(",")]
    return exposed_ports(found)


def _rlimits(body: Mapping[str, Any]) -> tuple[Ulimit, ...]:
    """``r_limits``: OCI ``POSIXRlimit`` objects (``{"type", "hard", "soft"}``)."""
    found = []
    for item in _typed(body, "r_limits", list, []) or []:
        if not isinstance(item, dict):
            raise BadRequest(f"invalid SpecGenerator.r_limits entry: {item!r}")
        name = _typed(item, "type", str, "").lower().removeprefix("rlimit_")
        found.append(Ulimit(name, _typed(item, "soft", int, 0), _typed(item, "hard", int, 0)))
    return tuple(found)


def _secrets(body: Mapping[str, Any]) -> tuple[SecretMount, ...]:
    """``secrets``: ``[{"Source", "Target", "UID", "GID", "Mode"}]`` (``podman run
    --secret name,target=,uid=,gid=,mode=``)."""
    found = []
    for item in _typed(body, "secrets", list, []) or []:
        if not isinstance(item, dict) or not isinstance(item.get("Source"), str):
            raise BadRequest("every SpecGenerator.secrets entry needs a Source (a secret name)")
        numbers = {key: _typed(item, key, int, 0) for key in ("UID", "GID", "Mode")}
        if any(not 0 <= value < 2**32 for value in numbers.values()):
            raise BadRequest(f"invalid SpecGenerator.secrets entry: {item!r}")
        if numbers["Mode"] > 0o7777:
            raise BadRequest(f"invalid SpecGenerator.secrets mode {numbers['Mode']:o}")
        found.append(
            SecretMount(
                source=item["Source"],
                target=_typed(item, "Target", str, ""),
                uid=numbers["UID"],
                gid=numbers["GID"],
                mode=numbers["Mode"],
            )
        )
    return tuple(found)


def _env_secrets(body: Mapping[str, Any]) -> dict[str, str]:
    """``secret_env``: ``{"VARIABLE": "secret name"}`` (``--secret name,type=env,target=``)."""
    value = _typed(body, "secret_env", dict, {}) or {}
    if not all(isinstance(k, str) and k and "=" not in k for k in value) or not all(
        isinstance(v, str) and v for v in value.values()
    ):
        raise BadRequest("SpecGenerator.secret_env maps variable names to secret names")
    return dict(value)


def _network_mode(body: Mapping[str, Any]) -> str:
    """``netns`` ``{"nsmode", "value"}`` as our network mode."""
    namespace = _typed(body, "netns", dict, {}) or {}
    mode = _typed(namespace, "nsmode", str) or ""
    value = _typed(namespace, "value", str) or ""
    if mode == "container":
        return f"container:{value}"
    if mode == "path":
        return f"ns:{value}"
    if mode not in NETWORK_MODES:
        raise BadRequest(f"invalid SpecGenerator.netns.nsmode {mode!r}")
    return NETWORK_MODES[mode]


def _networks(body: Mapping[str, Any]) -> tuple[NetworkEndpoint, ...]:
    """``Networks``: ``{name: {"aliases", "static_ips", "static_mac"}}``."""
    networks = _typed(body, "Networks", dict, {}) or {}
    found = []
    for name, options in networks.items():
        if not isinstance(options, dict):
            raise BadRequest(f"invalid SpecGenerator.Networks.{name}: {options!r}")
        found.append(
            NetworkEndpoint(
                name=name,
                aliases=_strings(options, "aliases") or (),
                static_ips=_strings(options, "static_ips") or (),
                static_mac=_typed(options, "static_mac", str, ""),
            )
        )
    return tuple(found)


def _port_mappings(body: Mapping[str, Any]) -> tuple[PortSpec, ...]:
    """``portmappings``: netavark's port mapping objects (``range`` 0 means 1)."""
    found = []
    for item in _typed(body, "portmappings", list, []) or []:
        if not isinstance(item, dict):
            raise BadRequest(f"invalid SpecGenerator.portmappings entry: {item!r}")
        found.append(
            PortSpec(
                container_port=_typed(item, "container_port", int, 0),
                host_port=_typed(item, "host_port", int, 0),
                protocol=_typed(item, "protocol", str, "") or "tcp",
                host_ip=_typed(item, "host_ip", str, ""),
                range=_typed(item, "range", int, 0) or 1,
            )
        )
    return tuple(found)
