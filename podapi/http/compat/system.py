"""Docker system routes: ``/info``, ``/events`` and ``/system/df`` in Docker's shapes."""

from collections.abc import Mapping, Sequence
from typing import Any

from klein import Response
from twisted.internet.interfaces import IReactorTime

from podapi import LIBPOD_API_VERSION
from podapi.engine.diskusage import DiskUsage
from podapi.engine.engine import Engine
from podapi.engine.eventfilters import EventFilter, docker_action, podman_action
from podapi.engine.events import Event
from podapi.engine.system import Info
from podapi.engine.times import rfc3339_nano
from podapi.http.both.events import event_message, stream_events
from podapi.http.call import ApiCall
from podapi.http.compat import containerjson, images, volumes
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


def encode_disk_usage(usage: DiskUsage, engine: Engine, call: ApiCall) -> dict[str, Any]:
    """Docker's ``DiskUsage``: the list entries of ``GET /images/json``,
    ``/containers/json?size=1`` and ``/volumes`` with their usage fields filled in.

    Unlike Podman 4.3.1 (``LayersSize`` 0, ``RepoTags`` holding only the tag,
    ``Names`` without the ``/``, ``Image`` as the ID, ``Mounts`` null, volumes
    without ``Driver``/``Mountpoint``), what ``docker system df`` computes from it
    is right: its reclaimable image bytes are ``LayersSize`` less the unique bytes
    of images in use, and ``-v`` shows names whole.  A kind ``type`` left out is null.
    """
    now = engine.events.now_ns()
    default = engine.networks.default.name
    found_images = None
    if usage.images is not None:
        found_images = []
        for item in usage.images:
            summary = images.encode_summary(item.image, call)
            summary.update(SharedSize=item.shared, Containers=item.containers)
            found_images.append(summary)
    found_containers = None
    if usage.containers is not None:
        found_containers = []
        for entry in usage.containers:
            summary = containerjson.encode_summary(entry.record, now, False, default)
            summary.update(SizeRw=entry.rw, SizeRootFs=entry.rootfs)
            found_containers.append(summary)
    found_volumes = None
    if usage.volumes is not None:
        found_volumes = []
        for volume in usage.volumes:
            body = volumes.encode_compat(engine.volumes, volume.usage.record)
            body["UsageData"] = {"Size": volume.size, "RefCount": volume.links}
            found_volumes.append(body)
    return {
        "LayersSize": usage.layers_size,
        "Images": found_images,
        "Containers": found_containers,
        "Volumes": found_volumes,
        "BuildCache": usage.build_cache,
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
        router.compat("GET", "/system/df", self.disk_usage)

    async def info(self, call: ApiCall) -> Response:
        """``GET /info``: Docker's system information."""
        return json_response(encode_info(await self._engine.info()))

    async def events(self, call: ApiCall) -> None:
        """``GET /events``: Docker event names (``die``, ``destroy``, ``delete``); an
        unknown filter key is a 400 (Podman 4.3.1: 500)."""
        await stream_events(call, self._engine.events, self._clock, encode_event, event_filter)

    async def disk_usage(self, call: ApiCall) -> Response:
        """``GET /system/df?type=``: ``type`` (API >= 1.42, repeatable: ``container``,
        ``image``, ``volume``, ``build-cache``) limits the report to those kinds; an
        unknown one is a 400.  ``verbose`` (API 1.52) changes nothing below 1.52."""
        kinds = call.texts("type") if call.version_at_least(1, 42) else []
        usage = await self._engine.disk_usage.usage(kinds)
        return json_response(encode_disk_usage(usage, self._engine, call))
