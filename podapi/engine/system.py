"""System facts for ``/info`` and ``/version``: gathered once, then cheap per request.

Static facts (OS, cgroup mode, runtime choice, registries) are read once in a
thread at start-up; helper versions are probed once, on first use (spawning
``runc --version`` per request is what makes Podman's ``/info`` take hundreds
of milliseconds).  Per request only procfs counters and ``statvfs``
are read.
"""

import os
import sys
import uuid

from attrs import frozen

from podapi import __version__
from podapi.engine.layout import Layout
from podapi.engine.shared import SharedResult
from podapi.oci import host
from podapi.oci.cgroups import CgroupMode, cgroup_mode, controllers
from podapi.oci.probe import Component, RuntimeChoice, choose_runtime, find_binary, probe_component
from podapi.oci.process import Runner
from podapi.storage import registries
from podapi.threads import Blocking

SECCOMP_PROFILES = ("/usr/share/containers/seccomp.json", "/etc/containers/seccomp.json")
INIT_BINARIES = ("catatonit", "tini", "tini-static")


@frozen
class HostFacts:
    """What does not change while the server runs."""

    server_id: str
    hostname: str
    kernel: str
    os: host.OSRelease
    arch: str
    ncpu: int
    cgroup_mode: CgroupMode
    cgroup_controllers: tuple[str, ...]
    storage_driver: str
    backing_fs: str
    runtime: RuntimeChoice | None
    registries: registries.RegistriesConfig
    init_binary: str | None
    seccomp_profile: str | None
    apparmor: bool
    selinux: bool
    python_version: str


@frozen
class Components:
    """Helper binaries and their versions (probed once)."""

    runtime: Component | None
    conmon: Component | None


@frozen
class ObjectCounts:
    """How many containers (by state) and images the engine holds."""

    containers: int = 0
    running: int = 0
    paused: int = 0
    stopped: int = 0
    images: int = 0


@frozen
class Info:
    """Everything ``/info`` reports, in neither dialect's shape."""

    facts: HostFacts
    components: Components
    memory: host.Memory
    uptime: float
    cpu: host.CPUUtilization
    disk: host.DiskSpace
    counts: ObjectCounts
    layout: Layout
    socket_uri: str
    event_listeners: int
    now_ns: int
    podapi_version: str = __version__

    @property
    def uptime_text(self) -> str:
        """The host's uptime as Podman writes it (``0h 6m 49.00s``)."""
        return host.format_uptime(self.uptime)


@frozen
class Versions:
    """Everything ``/version`` reports: the host's facts and the helpers' versions."""

    facts: HostFacts
    components: Components


def gather_facts(layout: Layout, requested_runtime: str | None, server_id: str) -> HostFacts:
    """Read the static facts (blocking: call from a thread)."""
    mode = cgroup_mode()
    filesystems = host.kernel_filesystems()
    return HostFacts(
        server_id=server_id,
        hostname=host.hostname(),
        kernel=host.kernel_release(),
        os=host.os_release(),
        arch=host.go_arch(),
        ncpu=os.cpu_count() or 1,
        cgroup_mode=mode,
        cgroup_controllers=tuple(controllers(mode)),
        storage_driver="overlay" if "overlay" in filesystems else "vfs",
        backing_fs=host.backing_filesystem(layout.root),
        runtime=choose_runtime(requested_runtime, mode),
        registries=registries.load(),
        init_binary=next(filter(None, (find_binary(n) for n in INIT_BINARIES)), None),
        seccomp_profile=next((p for p in SECCOMP_PROFILES if os.path.exists(p)), None),
        apparmor=_enabled("/sys/module/apparmor/parameters/enabled"),
        selinux=os.path.exists("/sys/fs/selinux/enforce"),
        python_version=sys.version.split()[0],
    )


def _enabled(path: str) -> bool:
    try:
        with open(path, encoding="ascii") as f:
            return f.read().strip() == "Y"
    except OSError:
        return False


def server_id(existing: str | None) -> str:
    """The persistent ID ``/info`` reports (a new UUID the first time)."""
    return existing or str(uuid.uuid4())


class System:
    """Facts and versions, loaded once.

    :param layout: the engine's paths.
    :param io: where blocking reads run.
    :param runner: runs the version probes.
    :param socket_uri: where the API is served, for ``/info``.
    """

    def __init__(self, layout: Layout, io: Blocking, runner: Runner, socket_uri: str) -> None:
        self._layout = layout
        self._io = io
        self._runner = runner
        self.socket_uri = socket_uri
        self.facts: HostFacts | None = None
        self._components: SharedResult[Components] | None = None

    async def load(self, requested_runtime: str | None, persistent_id: str) -> HostFacts:
        """Gather the static facts.  Helper versions are probed on first use
        (:meth:`components`), not at start: a cold start (socket activation) is
        often for a ``/_ping`` or a request that never asks for them."""
        self.facts = await self._io(gather_facts, self._layout, requested_runtime, persistent_id)
        return self.facts

    async def _probe(self, facts: HostFacts) -> Components:
        runtime = None
        if facts.runtime is not None:
            runtime = await probe_component(self._runner, facts.runtime.name, facts.runtime.path)
        conmon_path = find_binary("conmon")
        conmon = await probe_component(self._runner, "conmon", conmon_path) if conmon_path else None
        return Components(runtime=runtime, conmon=conmon)

    async def components(self) -> Components:
        """The probed versions (probed once, the first time they are asked for)."""
        if self.facts is None:
            raise RuntimeError("system facts are not loaded")
        if self._components is None:
            self._components = SharedResult(self._probe(self.facts))
        return await self._components.get()

    async def versions(self) -> Versions:
        """What ``/version`` reports (the helpers' versions probed once, as :meth:`components`)."""
        components = await self.components()
        assert self.facts is not None  # components() checked
        return Versions(facts=self.facts, components=components)
