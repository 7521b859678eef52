"""What a container is asked to be: one model for both API dialects.

The compat tree decodes Docker's ``Config`` + ``HostConfig`` into a
:class:`ContainerSpec`; the libpod tree decodes Podman's ``SpecGenerator``
into the same class.  At create time the engine merges it with the image
config into a :class:`RunConfig` (what actually runs), and both are stored.
"""

import re
import signal as signals
from collections.abc import Mapping, Sequence
from typing import Any

import cattrs
from attrs import evolve, field, frozen

from podapi.errors import InvalidArgument
from podapi.oci.spec import Resources

NAME = re.compile(r"^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$")
RESTART_POLICIES = ("no", "always", "on-failure", "unless-stopped")
#: The log drivers we serve: conmon writes a k8s-file log for all of them.  Docker
#: clients ask ``json-file`` (their default) and read it back through ``logs`` like a
#: ``k8s-file`` one; ``none`` keeps no log to read (``logs`` refuses, as Docker's).
#: Any other name is refused at create with Docker's message.
LOG_DRIVERS = ("json-file", "k8s-file", "none")


@frozen
class Ulimit:
    """One rlimit in Docker's naming (``nofile``, soft, hard)."""

    name: str
    soft: int
    hard: int


@frozen
class RestartPolicy:
    """Docker's restart policy."""

    name: str = "no"
    max_retries: int = 0


@frozen
class Healthcheck:
    """A health check (Docker's ``HealthConfig``); durations in nanoseconds."""

    test: tuple[str, ...] = ()
    interval: int = 0
    timeout: int = 0
    start_period: int = 0
    retries: int = 0

    def effective(self) -> "Healthcheck":
        """The check as it runs: 30s interval and timeout and 3 retries for unset ones.

        Docker's and Podman's defaults (``define.DefaultHealthCheck*``); Podman
        writes them into the container at create, so its inspect shows them.
        """
        return evolve(
            self,
            interval=self.interval or 30 * 1_000_000_000,
            timeout=self.timeout or 30 * 1_000_000_000,
            retries=self.retries or 3,
        )

    def to_docker(self) -> dict[str, Any]:
        """Docker's ``HealthConfig`` JSON (:func:`healthcheck_from_docker` reads it back)."""
        return {
            "Test": list(self.test),
            "Interval": self.interval,
            "Timeout": self.timeout,
            "StartPeriod": self.start_period,
            "Retries": self.retries,
        }


@frozen
class MountSpec:
    """A mount as the client asked for it or, in :attr:`RunConfig.mounts`, as it is made.

    ``type`` is ``bind``, ``tmpfs``, ``volume`` or ``image``; ``source`` is a
    bind's host path, a volume's name ("": a new anonymous volume) or an image.
    In a run config, ``options`` are the checked mount options with their
    defaults (:func:`podapi.oci.mountopts.process_options`), ``ro``/``rw``
    aside, and a volume's ``source`` is its mount point, ``name`` its name.
    """

    type: str
    destination: str
    source: str = ""
    readonly: bool = False
    options: tuple[str, ...] = ()
    name: str = ""
    #: The request field it came from (``Binds``, ``Mounts``, ``Tmpfs``; "" for libpod),
    #: so inspect echoes the request.
    origin: str = ""
    #: How to create the volume when it does not exist yet (Docker's ``VolumeOptions``).
    volume_driver: str = ""
    volume_options: Mapping[str, str] = field(factory=dict)
    volume_labels: Mapping[str, str] = field(factory=dict)


@frozen
class NetworkEndpoint:
    """A network a container joins, as asked (Docker's EndpointSettings, libpod's options)."""

    name: str
    aliases: tuple[str, ...] = ()
    static_ips: tuple[str, ...] = ()
    static_mac: str = ""
    #: Docker's endpoint ``Links`` (``name:alias``), kept and shown as given.
    links: tuple[str, ...] = ()
    #: Docker's endpoint ``DriverOpts``, kept and shown as given (netavark has no use for them).
    driver_opts: Mapping[str, str] = field(factory=dict)
    #: Docker's ``IPAMConfig.LinkLocalIPs``, kept and shown as given.
    link_local_ips: tuple[str, ...] = ()


@frozen
class PortSpec:
    """A port to publish: ``range`` ports from ``container_port``; host port 0 = any free one."""

    container_port: int
    host_port: int = 0
    protocol: str = "tcp"
    host_ip: str = ""
    range: int = 1


@frozen
class SecretMount:
    """A secret a container reads as a file (libpod ``SpecGenerator.secrets``).

    ``source`` is the secret's name (a name, ID or ID prefix as asked; the
    name once stored); ``target`` "" means ``/run/secrets/<name>``, a relative
    one is under ``/run/secrets``; ``mode`` 0 means Podman's default 0444.
    """

    source: str
    target: str = ""
    uid: int = 0
    gid: int = 0
    mode: int = 0


@frozen
class ContainerSpec:
    """A container as the client described it (either dialect)."""

    image: str
    name: str | None = None
    entrypoint: tuple[str, ...] | None = None
    command: tuple[str, ...] | None = None
    env: tuple[str, ...] = ()
    working_dir: str | None = None
    user: str | None = None
    tty: bool = False
    #: ``(rows, columns)`` of the terminal at start (Docker's ``HostConfig.ConsoleSize``);
    #: clients resize after the start, and a shell could look before that.
    console_size: tuple[int, int] | None = None
    open_stdin: bool = False
    stdin_once: bool = False
    hostname: str | None = None
    domainname: str = ""
    labels: Mapping[str, str] = field(factory=dict)
    annotations: Mapping[str, str] = field(factory=dict)
    stop_signal: str | None = None
    stop_timeout: int | None = None
    exposed_ports: tuple[str, ...] = ()
    healthcheck: Healthcheck | None = None
    no_healthcheck: bool = False
    # host configuration
    #: ``bridge`` (our networks), ``none``, ``host``, ``container:<id>`` or ``ns:<path>``.
    network_mode: str = "bridge"
    #: For ``bridge``: the networks to join; none listed means the default network.
    networks: tuple[NetworkEndpoint, ...] = ()
    #: Docker's ``Config.MacAddress``: the MAC on the first network (unless its endpoint has one).
    mac_address: str = ""
    #: Docker's legacy ``HostConfig.Links``: ``name:alias`` (the linked container's env
    #: and an /etc/hosts entry at start).
    links: tuple[str, ...] = ()
    ports: tuple[PortSpec, ...] = ()
    publish_all: bool = False
    mounts: tuple[MountSpec, ...] = ()
    #: Anonymous volumes at these paths (Docker's ``Config.Volumes``).
    volumes: tuple[str, ...] = ()
    #: ``container[:ro|rw]``: mount what that container mounts.
    volumes_from: tuple[str, ...] = ()
    #: The image's ``VOLUME``s become ``anonymous`` volumes, ``tmpfs`` mounts, or are ``ignore``d.
    image_volume_mode: str = "anonymous"
    privileged: bool = False
    readonly_rootfs: bool = False
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    security_opt: tuple[str, ...] = ()
    init: bool = False
    resources: Resources = field(factory=Resources)
    ulimits: tuple[Ulimit, ...] = ()
    shm_size: int | None = None
    restart_policy: RestartPolicy = field(factory=RestartPolicy)
    auto_remove: bool = False
    log_max_size: int | None = None
    #: The log driver asked for ("": the default, ``json-file`` to Docker clients), and its
    #: options as given (``max-size`` is applied; the others are kept and shown).
    log_driver: str = ""
    log_options: Mapping[str, str] = field(factory=dict)
    #: ``HostConfig.NanoCpus`` as given (its CPU quota and period are in ``resources``).
    nano_cpus: int = 0
    #: ``c 7:128 rwm``: device cgroup rules (``HostConfig.DeviceCgroupRules``).
    device_cgroup_rules: tuple[str, ...] = ()
    #: ``private`` or ``host`` ("": not asked, a cgroup namespace of the host's).
    cgroupns_mode: str = ""
    #: The parent of the container's cgroup, relative to the server's ("": its pod's,
    #: else the default; :mod:`podapi.engine.cgroupplace`).
    cgroup_parent: str = ""
    #: Docker's ``HostConfig.Isolation`` (only ``default`` exists on Linux) and
    #: ``HostConfig.VolumeDriver``: kept and shown as given.
    isolation: str = ""
    volume_driver: str = ""
    extra_hosts: tuple[str, ...] = ()
    dns: tuple[str, ...] = ()
    dns_search: tuple[str, ...] = ()
    dns_options: tuple[str, ...] = ()
    group_add: tuple[str, ...] = ()
    sysctls: Mapping[str, str] = field(factory=dict)
    oom_score_adj: int | None = None
    pid_mode: str = ""
    ipc_mode: str = ""
    uts_mode: str = ""
    #: Secrets mounted as files, and ``{"VARIABLE": "secret name"}`` given as the process's
    #: environment at start (only the names are stored, never the data).
    secrets: tuple[SecretMount, ...] = ()
    env_secrets: Mapping[str, str] = field(factory=dict)
    #: The pod the container is in (its ID once created; a name or ID as asked), the
    #: pod's name (pods are never renamed), and whether it is the pod's infra container.
    pod: str = ""
    pod_name: str = ""
    infra: bool = False


@frozen
class RunConfig:
    """What runs: the spec merged with the image config at create time."""

    path: str
    args: tuple[str, ...]
    entrypoint: tuple[str, ...]
    command: tuple[str, ...]
    env: tuple[str, ...]
    working_dir: str
    user: str
    hostname: str
    labels: Mapping[str, str]
    stop_signal: str
    stop_timeout: int
    exposed_ports: tuple[str, ...]
    healthcheck: Healthcheck | None
    #: Every mount, resolved: volumes named, image volumes and ``volumes_from`` added.
    mounts: tuple[MountSpec, ...] = ()
    #: ``Config.Volumes``: the image's and the request's anonymous volume paths.
    volumes: tuple[str, ...] = ()


@frozen
class ExecSpec:
    """An exec session as the client described it (``POST /containers/{id}/exec``)."""

    command: tuple[str, ...]
    env: tuple[str, ...] = ()
    #: Empty: the container's user.
    user: str = ""
    #: Empty: the container's working directory.
    working_dir: str = ""
    tty: bool = False
    attach_stdin: bool = False
    attach_stdout: bool = False
    attach_stderr: bool = False
    privileged: bool = False
    #: None: the default (``ctrl-p,ctrl-q``); empty: detaching is off.
    detach_keys: str | None = None


_converter = cattrs.Converter()


def to_json(value: ContainerSpec | RunConfig | ExecSpec) -> dict[str, Any]:
    """A JSON-able dict of a spec or run config (for the state database)."""
    return _converter.unstructure(value)


def exec_spec_from_json(data: Mapping[str, Any]) -> ExecSpec:
    """The inverse of :func:`to_json` for an :class:`ExecSpec`."""
    return _converter.structure(data, ExecSpec)


def spec_from_json(data: Mapping[str, Any]) -> ContainerSpec:
    """The inverse of :func:`to_json` for a :class:`ContainerSpec`."""
    return _converter.structure(data, ContainerSpec)


def run_config_from_json(data: Mapping[str, Any]) -> RunConfig:
    """The inverse of :func:`to_json` for a :class:`RunConfig`."""
    return _converter.structure(data, RunConfig)


def check_name(name: str) -> str:
    """Docker's container name rule; returns the name without a leading ``/``."""
    if not NAME.match(name):
        raise InvalidArgument(
            f"Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed",
            cause="invalid container name",
        )
    return name.removeprefix("/")


def signal_number(value: str | int) -> int:
    """``SIGTERM``, ``TERM``, ``15`` or 15 -> 15; InvalidArgument for anything else."""
    text = str(value).strip().upper()
    if text.isdigit():
        number = int(text)
        if 0 < number < 65:
            return number
    else:
        name = text if text.startswith("SIG") else "SIG" + text
        if name.startswith("SIGRTMIN") or name.startswith("SIGRTMAX"):
            base = signals.SIGRTMIN if name.startswith("SIGRTMIN") else signals.SIGRTMAX
            offset = name[8:] or "0"
            try:
                return int(base) + int(offset)
            except ValueError:
                pass
        member = signals.Signals.__members__.get(name)
        if member is not None:
            return int(member)
    raise InvalidArgument(f"invalid signal: {value}", cause="invalid signal")


#: The kernel's bounds on ``cpu.shares`` (Docker clamps to them; runc refuses).
CPU_SHARES_MIN, CPU_SHARES_MAX = 2, 262_144
#: The CFS period's bounds and the quota's minimum, in microseconds (Docker's checks).
CPU_PERIOD_MIN, CPU_PERIOD_MAX, CPU_QUOTA_MIN = 1000, 1_000_000, 1000
#: The smallest memory limit Docker allows.
MEMORY_MIN = 6 * 1024 * 1024


def check_resources(resources: Resources) -> Resources:
    """Docker's checks of a container's limits (``verifyPlatformContainerResources``), so
    that whatever create accepts the runtime applies: CPU shares are clamped to the
    kernel's range, as Docker does; out-of-range values are a 400."""
    for label, value in (
        ("memory", resources.memory),
        ("memory swap", resources.memory_swap),
        ("memory reservation", resources.memory_reservation),
        ("pids limit", resources.pids_limit),
    ):
        if value is not None and value < -1:
            raise InvalidArgument(f"invalid {label}: {value}")
    if resources.memory is not None and 0 < resources.memory < MEMORY_MIN:
        raise InvalidArgument("Minimum memory limit allowed is 6MB", cause="invalid memory")
    if (
        resources.memory_swap is not None
        and resources.memory_swap > 0
        and resources.memory is not None
        and resources.memory_swap < resources.memory
    ):
        raise InvalidArgument("Minimum memoryswap limit should be larger than memory limit")
    period, quota = resources.cpu_period, resources.cpu_quota
    if period and not CPU_PERIOD_MIN <= period <= CPU_PERIOD_MAX:
        raise InvalidArgument(
            "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)"
        )
    if quota is not None and quota not in (0, -1) and quota < CPU_QUOTA_MIN:
        raise InvalidArgument("CPU cfs quota can not be less than 1ms (i.e. 1000)")
    shares = resources.cpu_shares
    if shares is not None and shares < 0:
        raise InvalidArgument(f"invalid CPU shares: {shares}")
    if shares:
        shares = min(max(shares, CPU_SHARES_MIN), CPU_SHARES_MAX)
    return evolve(resources, cpu_shares=shares)


#: Sysctls that live in a container's own namespaces (Podman's ``ValidateSysctls``):
#: IPC ones, and ``net.*`` unless the network is the host's.
SYSCTL_IPC = (
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
)


def check_sysctls(sysctls: Mapping[str, str], network_mode: str) -> None:
    """Refuse sysctls the runtime cannot set in the container's namespaces (runc would
    fail at start, after create said yes)."""
    for name in sysctls:
        if name in SYSCTL_IPC or name.startswith("fs.mqueue."):
            continue
        if name.startswith("net.") and network_mode != "host":
            continue
        raise InvalidArgument(
            f"sysctl {name!r} is not allowed: only namespaced sysctls (kernel.msg*, "
            "kernel.sem, kernel.shm*, fs.mqueue.*, net.* without the host network)",
            cause="invalid sysctl",
        )


def check_restart_policy(policy: RestartPolicy) -> RestartPolicy:
    """Validate a restart policy name and retry count."""
    name = policy.name or "no"
    if name not in RESTART_POLICIES:
        raise InvalidArgument(
            f"invalid restart policy: unknown policy '{name}'; use one of "
            "'no', 'always', 'on-failure', or 'unless-stopped'"
        )
    if policy.max_retries < 0:
        raise InvalidArgument("invalid restart policy: maximum retry count cannot be negative")
    if policy.max_retries and name != "on-failure":
        raise InvalidArgument(
            "invalid restart policy: maximum retry count can only be used with 'on-failure'"
        )
    return RestartPolicy(name, policy.max_retries)


def parse_size(value: str | int) -> int:
    """``512m``, ``1g``, ``1024`` -> bytes (Docker's ``RAMInBytes``)."""
    if isinstance(value, int):
        if value < 0:
            raise InvalidArgument(f"invalid size: {value}")
        return value
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgtp]?)b?\s*", value.lower())
    if not match:
        raise InvalidArgument(f"invalid size: {value!r}")
    number, unit = match.groups()
    return int(float(number) * 1024 ** " kmgtp".index(unit or " "))


def merge_env(
    base: Sequence[str], overrides: Sequence[str], *, keep_bare: bool = False
) -> tuple[str, ...]:
    """Image env then the client's, later keys replacing earlier ones, order kept.

    A client entry without ``=`` removes the variable (Docker's rule for the
    process's environment, and for exec's).  With ``keep_bare`` the bare name
    stays in its place instead, as Docker keeps it in a container's
    ``Config.Env``; the process never gets it (see :func:`process_env`).
    """
    merged: dict[str, str] = {}
    for item in base:
        merged[item.partition("=")[0]] = item
    for item in overrides:
        key, sep, _ = item.partition("=")
        if not key:
            raise InvalidArgument(f"invalid environment variable: {item!r}")
        if sep or keep_bare:
            merged[key] = item
        else:
            merged.pop(key, None)
    return tuple(merged.values())


def process_env(env: Sequence[str]) -> list[str]:
    """A container's ``Config.Env`` as its process gets it: bare names (unset) left out."""
    return [item for item in env if "=" in item]


#: The range of Go's int64, what every integer field of a request body decodes into.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
#: Protocols a port may name (netavark's).
PORT_PROTOCOLS = ("tcp", "udp", "sctp")


def parse_port(text: str) -> tuple[int, int, str]:
    """``80/tcp`` or ``8000-8010/udp`` -> ``(first port, count, protocol)``; 400 if malformed."""
    ports, _, protocol = text.partition("/")
    first, dash, last = ports.partition("-")
    try:
        start, end = int(first), int(last if dash else first)
    except ValueError:
        raise InvalidArgument(f"invalid port {text!r}: use PORT[-PORT][/PROTOCOL]") from None
    if not 0 < start <= end <= 65535:
        raise InvalidArgument(f"invalid port range {text!r}")
    return start, end - start + 1, (protocol or "tcp").lower()


def exposed_ports(items: Sequence[str], *, strict: bool = True) -> tuple[str, ...]:
    """``ExposedPorts`` keys as ``PORT/PROTOCOL``, one per port (ranges expanded).

    Every encoder reads these back as numbers, so a key that is not a port is
    refused at create (``strict``) or, in an image's config, left out.
    """
    found: dict[str, None] = {}
    for item in items:
        try:
            start, count, protocol = parse_port(item)
        except InvalidArgument:
            if strict:
                raise
            continue
        if protocol not in PORT_PROTOCOLS:
            if strict:
                raise InvalidArgument(f"invalid port {item!r}: the protocol is tcp, udp or sctp")
            continue
        found.update((f"{port}/{protocol}", None) for port in range(start, start + count))
    return tuple(found)


def healthcheck_from_docker(config: Mapping[str, Any]) -> Healthcheck:
    """Docker's ``HealthConfig`` JSON (``Test``, durations in ns) as a :class:`Healthcheck`."""
    test = config.get("Test") or config.get("test") or ()
    if not isinstance(test, list) or not all(isinstance(t, str) for t in test):
        raise InvalidArgument("Healthcheck.Test must be a list of strings")

    def duration(key: str) -> int:
        value = config.get(key) or 0
        if not isinstance(value, int) or value < 0:
            raise InvalidArgument(f"Healthcheck.{key} must be a non-negative integer (ns)")
        return value

    retries = config.get("Retries") or 0
    if not isinstance(retries, int) or retries < 0:
        raise InvalidArgument("Healthcheck.Retries must be a non-negative integer")
    return Healthcheck(
        test=tuple(test),
        interval=duration("Interval"),
        timeout=duration("Timeout"),
        start_period=duration("StartPeriod"),
        retries=retries,
    )
