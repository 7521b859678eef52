"""Podman's ``SpecGenerator`` (``POST /libpod/containers/create``) as a ContainerSpec.

Field names follow ``pkg/specgen/specgen.go`` (JSON tags): ``command``,
``env`` as a map, ``terminal``, ``remove``, ``netns.nsmode``,
``resource_limits`` as OCI ``LinuxResources``, ``r_limits``, ``healthconfig``...
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
)
from podapi.http.call import BadRequest

NETWORK_MODES = {
    "": "none",
    "bridge": "none",
    "private": "none",
    "none": "none",
    "host": "host",
    "slirp4netns": "none",
    "pasta": "none",
}


def _typed(
    body: Mapping[str, Any], key: str, kind: type | tuple[type, ...], default: Any = None
) -> Any:
    value = body.get(key)
    if value is None:
        return default
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        raise BadRequest(f"invalid SpecGenerator.{key}: {value!r}")
    return value


def _strings(body: Mapping[str, Any], key: str) -> tuple[str, ...] | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadRequest(f"invalid SpecGenerator.{key}: a list of strings is required")
    return tuple(value)


def _mode(body: Mapping[str, Any], key: str) -> str:
    namespace = _typed(body, key, dict, {}) or {}
    return str(namespace.get("nsmode") or "")


def _resources(body: Mapping[str, Any]) -> Resources:
    limits = _typed(body, "resource_limits", dict, {}) or {}
    memory = limits.get("memory") or {}
    cpu = limits.get("cpu") or {}
    pids = limits.get("pids") or {}
    quota = body.get("cpu_quota") or cpu.get("quota")
    period = body.get("cpu_period") or cpu.get("period")
    for name, value in (
        ("memory.limit", memory.get("limit")),
        ("cpu.quota", quota),
        ("pids.limit", pids.get("limit")),
    ):
        if value is not None and not isinstance(value, int):
            raise BadRequest(f"invalid resource_limits.{name}: {value!r}")
    return Resources(
        memory=memory.get("limit"),
        memory_swap=memory.get("swap"),
        memory_reservation=memory.get("reservation"),
        cpu_shares=cpu.get("shares"),
        cpu_quota=quota,
        cpu_period=period,
        cpuset_cpus=cpu.get("cpus") or None,
        cpuset_mems=cpu.get("mems") or None,
        pids_limit=pids.get("limit"),
    )


def _mounts(body: Mapping[str, Any]) -> tuple[MountSpec, ...]:
    mounts = []
    for item in _typed(body, "mounts", list, []) or []:
        if not isinstance(item, dict) or not item.get("destination"):
            raise BadRequest("every SpecGenerator.mounts entry needs a destination")
        kind = item.get("type") or "bind"
        options = [str(o) for o in item.get("options") or []]
        if kind not in ("bind", "tmpfs"):
            raise BadRequest(f"unsupported mount type {kind!r}: bind and tmpfs")
        mounts.append(
            MountSpec(
                type=kind,
                destination=item["destination"],
                source=item.get("source") or kind,
                readonly="ro" in options,
                options=tuple(o for o in options if o not in ("ro", "rw", "bind", "rbind")),
            )
        )
    return tuple(mounts)


def decode_specgen(body: Any) -> ContainerSpec:
    """The spec a libpod create request describes."""
    if not isinstance(body, dict):
        raise BadRequest("the create body must be a JSON object (SpecGenerator)")
    image = _typed(body, "image", str)
    if not image:
        raise BadRequest("SpecGenerator.image is required", cause="no image")
    env = _typed(body, "env", dict, {}) or {}
    stop_signal = body.get("stop_signal")
    healthconfig = _typed(body, "healthconfig", dict)
    policy = _typed(body, "restart_policy", str, "") or "no"
    log_config = _typed(body, "log_configuration", dict, {}) or {}
    network = _mode(body, "netns")
    if network not in NETWORK_MODES:
        raise BadRequest(f"network mode {network!r} is not available: use none or host")
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
        labels=_typed(body, "labels", dict, {}) or {},
        annotations=_typed(body, "annotations", dict, {}) or {},
        stop_signal=str(stop_signal) if stop_signal else None,
        stop_timeout=_typed(body, "stop_timeout", int),
        healthcheck=healthcheck_from_docker(healthconfig) if healthconfig else None,
        network_mode=NETWORK_MODES[network],
        mounts=_mounts(body),
        privileged=bool(_typed(body, "privileged", bool, False)),
        readonly_rootfs=bool(_typed(body, "read_only_filesystem", bool, False)),
        cap_add=_strings(body, "cap_add") or (),
        cap_drop=_strings(body, "cap_drop") or (),
        security_opt=tuple(security),
        init=bool(_typed(body, "init", bool, False)),
        resources=_resources(body),
        ulimits=tuple(
            Ulimit(
                str(r.get("type", "")).lower().removeprefix("rlimit_"),
                int(r.get("soft", 0)),
                int(r.get("hard", 0)),
            )
            for r in _typed(body, "r_limits", list, []) or []
        ),
        shm_size=_typed(body, "shm_size", int),
        restart_policy=RestartPolicy(policy, _typed(body, "restart_tries", int, 0)),
        auto_remove=bool(_typed(body, "remove", bool, False)),
        log_max_size=log_config.get("size") or None,
        extra_hosts=_strings(body, "hostadd") or (),
        dns=_strings(body, "dns_server") or (),
        dns_search=_strings(body, "dns_search") or (),
        dns_options=_strings(body, "dns_option") or (),
        group_add=_strings(body, "groups") or (),
        sysctls=_typed(body, "sysctl", dict, {}) or {},
        oom_score_adj=_typed(body, "oom_score_adj", int),
        pid_mode="host" if _mode(body, "pidns") == "host" else "",
        ipc_mode="host" if _mode(body, "ipcns") == "host" else "",
        uts_mode="host" if _mode(body, "utsns") == "host" else "",
    )
