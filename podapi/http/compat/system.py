"""Docker system routes: ``/info`` and ``/events`` in Docker's shapes."""

from collections.abc import Mapping, Sequence
from typing import Any

from klein import Response
from twisted.internet.interfaces import IReactorTime

from podapi import LIBPOD_API_VERSION
from podapi.engine.engine import Engine
from podapi.engine.eventfilters import EventFilter, docker_action, podman_action
from podapi.engine.events import Event
from podapi.engine.system import Info
from podapi.engine.times import rfc3339_nano
from podapi.http.both.events import event_message, stream_events
from podapi.http.call import ApiCall
from podapi.http.responses import json_response
from podapi.http.routing import Router
from podapi.storage import reference

#: Event types Docker sends the deprecated ``status``/``id``/``from`` fields for.
LEGACY_TYPES = frozenset({"container", "image"})


def encode_event(event: Event, call: ApiCall) -> dict[str, Any]:
    """Docker's names and ``exitCode``; the deprecated fields only before API 1.52,
    on container and image events, as Docker's daemon fills them."""
    action = docker_action(event)
    attributes = dict(event.attributes)
    # Docker shows image names the short way ("busybox:latest").
    for key in ("name", "image"):
        if key in attributes and (event.type == "image" or key == "image"):
            attributes[key] = reference.docker_name(attributes[key])
    if action == "die" and "containerExitCode" in attributes:
        attributes["exitCode"] = attributes["containerExitCode"]
    legacy = event.type in LEGACY_TYPES and not call.version_at_least(1, 52)
    return event_message(event, action, attributes, legacy=legacy)


def event_filter(filters: Mapping[str, Sequence[str]], call: ApiCall) -> EventFilter:
    """Docker's names first (``die``), Podman's accepted too; labels AND-ed as Docker."""
    return EventFilter.parse(filters, docker_action, podman_action, labels_all=True)


def encode_info(info: Info) -> dict[str, Any]:
    """Docker's ``system.Info`` plus Podman's additions."""
    facts = info.facts
    runtime = info.components.runtime
    runtimes = {runtime.name: {"path": runtime.path}} if runtime else {}
    counts = info.counts
    return {
        "ID": facts.server_id,
        "Containers": counts.containers,
        "ContainersRunning": counts.running,
        "ContainersPaused": counts.paused,
        "ContainersStopped": counts.stopped,
        "Images": counts.images,
        "Driver": facts.storage_driver,
        "DriverStatus": [
            ["Backing Filesystem", facts.backing_fs],
            ["Supports d_type", "true"],
            ["Native Overlay Diff", str(facts.storage_driver == "overlay").lower()],
            ["Using metacopy", "false"],
        ],
        "Plugins": {
            "Volume": ["local"],
            "Network": ["bridge"],
            "Authorization": None,
            "Log": ["k8s-file", "none", "passthrough"],
        },
        "MemoryLimit": True,
        "SwapLimit": True,
        "KernelMemory": False,
        "KernelMemoryTCP": False,
        "CpuCfsPeriod": True,
        "CpuCfsQuota": True,
        "CPUShares": True,
        "CPUSet": True,
        "PidsLimit": True,
        "IPv4Forwarding": True,
        "BridgeNfIptables": True,
        "BridgeNfIp6tables": True,
        "Debug": False,
        "NFd": 0,
        "OomKillDisable": True,
        "NGoroutines": 0,
        "SystemTime": rfc3339_nano(info.now_ns),
        "LoggingDriver": "json-file",
        "CgroupDriver": "cgroupfs",
        "CgroupVersion": facts.cgroup_mode.version.lstrip("v"),
        "NEventsListener": info.event_listeners,
        "KernelVersion": facts.kernel,
        "OperatingSystem": facts.os.pretty_name,
        "OSVersion": facts.os.version_id,
        "OSType": "linux",
        "Architecture": facts.arch,
        "IndexServerAddress": "https://index.docker.io/v1/",
        "RegistryConfig": {
            "AllowNondistributableArtifactsCIDRs": [],
            "AllowNondistributableArtifactsHostnames": [],
            "InsecureRegistryCIDRs": ["127.0.0.0/8", "::1/128"],
            "IndexConfigs": {},
            "Mirrors": [],
        },
        "NCPU": facts.ncpu,
        "MemTotal": info.memory.total,
        "GenericResources": None,
        "DockerRootDir": info.layout.root,
        "HttpProxy": "",
        "HttpsProxy": "",
        "NoProxy": "",
        "Name": facts.hostname,
        "Labels": [],
        "ExperimentalBuild": True,
        "ServerVersion": LIBPOD_API_VERSION,
        "Runtimes": runtimes,
        "DefaultRuntime": runtime.name if runtime else "",
        "Swarm": {
            "NodeID": "",
            "NodeAddr": "",
            "LocalNodeState": "inactive",
            "ControlAvailable": False,
            "Error": "",
            "RemoteManagers": None,
        },
        "LiveRestoreEnabled": True,
        "Isolation": "",
        "InitBinary": facts.init_binary or "",
        "ContainerdCommit": {"ID": "", "Expected": ""},
        "RuncCommit": {"ID": "", "Expected": ""},
        "InitCommit": {"ID": "", "Expected": ""},
        "SecurityOptions": ["name=seccomp,profile=default"] if facts.seccomp_profile else [],
        "ProductLicense": "Apache-2.0",
        "Warnings": [],
        "BuildahVersion": "",
        "CPURealtimePeriod": False,
        "CPURealtimeRuntime": False,
        "Rootless": False,
        "SwapFree": info.memory.swap_free,
        "SwapTotal": info.memory.swap_total,
        "Uptime": info.uptime_text,
    }


class CompatSystemRoutes:
    """``/info`` and ``/events`` on the compat tree."""

    def __init__(self, engine: Engine, clock: IReactorTime) -> None:
        self._engine = engine
        self._clock = clock

    def register(self, router: Router) -> None:
        """Add the routes."""
        router.compat("GET", "/info", self.info)
        router.compat("GET", "/events", self.events)

    async def info(self, call: ApiCall) -> Response:
        """``GET /info``: Docker's system information."""
        return json_response(encode_info(await self._engine.info()))

    async def events(self, call: ApiCall) -> None:
        """``GET /events``: Docker event names (``die``, ``destroy``, ``delete``); an
        unknown filter key is a 400 (Podman 4.3.1: 500)."""
        await stream_events(call, self._engine.events, self._clock, encode_event, event_filter)
