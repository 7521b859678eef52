"""Libpod system routes: ``/libpod/info``, ``/libpod/events``, ``/libpod/system/df`` and
``/libpod/system/prune`` in Podman's shapes."""

from collections.abc import Mapping, Sequence
from typing import Any

from klein import Response
from twisted.internet.interfaces import IReactorTime

from podapi import COMPAT_API_VERSION, LIBPOD_API_VERSION
from podapi.engine.diskusage import DiskUsage
from podapi.engine.engine import Engine
from podapi.engine.eventfilters import EventFilter, docker_action, podman_action
from podapi.engine.events import Event
from podapi.engine.ocimodel import Component
from podapi.engine.system import Info
from podapi.engine.systemprune import SystemPruned
from podapi.engine.times import rfc3339_nano
from podapi.http.both.events import event_message, stream_events
from podapi.http.call import ApiCall, parse_version
from podapi.http.responses import json_response
from podapi.http.routing import Router

#: Podman's default capability set (containers.conf 0.50+), used for new containers.
DEFAULT_CAPABILITIES = (
    "CAP_CHOWN,CAP_DAC_OVERRIDE,CAP_FOWNER,CAP_FSETID,CAP_KILL,CAP_NET_BIND_SERVICE,"
    "CAP_SETFCAP,CAP_SETGID,CAP_SETPCAP,CAP_SETUID,CAP_SYS_CHROOT"
)


def encode_event(event: Event, call: ApiCall) -> dict[str, Any] | None:
    """Podman's ``entities.Event``: Podman's action names (``loadfromarchive`` for an
    image load), and always Docker's old fields.

    Every event carries the ``image``, ``name``, ``podId`` and ``containerExitCode``
    attributes, as Podman 4's ``ConvertToEntitiesEvent`` sent them: Podman 4's
    client (``ConvertToLibpodEvent``) drops an event whose ``containerExitCode`` is
    not an integer, and ``podman --remote events --format`` then fails on the nil
    event.  Newer Podman sends ``containerExitCode`` only when it is known; we keep
    sending ``"0"`` otherwise so the older clients work.  Health events also carry
    the top-level ``HealthStatus``.  Events the client's libpod API version cannot
    decode (Docker-only actions such as ``oom``; ``secret`` before 5.5) are left out.
    """
    action = podman_action(event, _client_version(call))
    if action is None:
        return None
    attributes = dict(event.attributes)
    for key in ("image", "name", "podId"):
        attributes.setdefault(key, "")
    attributes.setdefault("containerExitCode", "0")
    body = event_message(event, action, attributes, legacy=True)
    health = attributes.get("health_status")
    if event.action == "health_status" and health:
        body["HealthStatus"] = health
    return body


def _client_version(call: ApiCall) -> tuple[int, ...] | None:
    """The libpod API version in the path (Podman's clients send their own)."""
    return parse_version(call.version) if call.version else None


def event_filter(filters: Mapping[str, Sequence[str]], call: ApiCall) -> EventFilter:
    """Podman's names first (``died``), Docker's accepted too; labels OR-ed as Podman."""
    version = _client_version(call)
    return EventFilter.parse(filters, lambda e: podman_action(e, version), docker_action)


def _component(component: Component | None) -> dict[str, str]:
    if component is None:
        return {"name": "", "package": "", "path": "", "version": ""}
    return {
        "name": component.name,
        "package": component.package,
        "path": component.path,
        "version": component.version,
    }


def encode_info(info: Info) -> dict[str, Any]:
    """``podman info --format json`` (``define.Info``)."""
    facts = info.facts
    counts = info.counts
    conmon = _component(info.components.conmon)
    conmon["version"] = info.components.conmon.first_line if info.components.conmon else ""
    del conmon["name"]
    registries: dict[str, Any] = {
        registry.prefix: {
            "Prefix": registry.prefix,
            "Location": registry.location,
            "Insecure": registry.insecure,
            "Blocked": registry.blocked,
            "Mirrors": [{"Location": m.location, "Insecure": m.insecure} for m in registry.mirrors],
        }
        for registry in facts.registries.registries
    }
    # Podman (libpod/info.go) adds "search" only when there are search registries;
    # clients (Cockpit) read its presence as "short names can be searched".
    if facts.registries.unqualified_search:
        registries["search"] = list(facts.registries.unqualified_search)
    return {
        "host": {
            "arch": facts.arch,
            "buildahVersion": "",
            "cgroupManager": "cgroupfs",
            "cgroupVersion": facts.cgroup_mode.version,
            "cgroupControllers": list(facts.cgroup_controllers),
            "conmon": conmon,
            "cpus": facts.ncpu,
            "cpuUtilization": {
                "userPercent": info.cpu.user,
                "systemPercent": info.cpu.system,
                "idlePercent": info.cpu.idle,
            },
            "databaseBackend": "sqlite",
            "distribution": {
                "distribution": facts.os.id,
                "version": facts.os.version_id,
                "codename": facts.os.codename,
            },
            "eventLogger": "file",
            "hostname": facts.hostname,
            "idMappings": {"gidmap": None, "uidmap": None},
            "kernel": facts.kernel,
            "logDriver": "k8s-file",
            "memFree": info.memory.free,
            "memTotal": info.memory.total,
            "networkBackend": "netavark",
            "ociRuntime": _component(info.components.runtime),
            "os": "linux",
            "remoteSocket": {"path": info.socket_uri, "exists": True},
            "serviceIsRemote": False,
            "security": {
                "apparmorEnabled": facts.apparmor,
                "capabilities": DEFAULT_CAPABILITIES,
                "rootless": False,
                "seccompEnabled": facts.seccomp_profile is not None,
                "seccompProfilePath": facts.seccomp_profile or "",
                "selinuxEnabled": facts.selinux,
            },
            "swapFree": info.memory.swap_free,
            "swapTotal": info.memory.swap_total,
            "uptime": info.uptime_text,
            "linkmode": "dynamic",
        },
        "store": {
            "configFile": "",
            "containerStore": {
                "number": counts.containers,
                "paused": counts.paused,
                "running": counts.running,
                "stopped": counts.stopped,
            },
            "graphDriverName": facts.storage_driver,
            "graphOptions": {},
            "graphRoot": info.layout.root,
            "graphRootAllocated": info.disk.allocated,
            "graphRootUsed": info.disk.used,
            "graphStatus": {
                "Backing Filesystem": facts.backing_fs,
                "Native Overlay Diff": str(facts.storage_driver == "overlay").lower(),
                "Supports d_type": "true",
                "Using metacopy": "false",
            },
            "imageCopyTmpDir": info.layout.spool_dir,
            "imageStore": {"number": counts.images},
            "runRoot": info.layout.runroot,
            "volumePath": f"{info.layout.root}/volumes",
        },
        "registries": registries,
        "plugins": {
            "volume": ["local"],
            "network": ["bridge"],
            "log": ["k8s-file", "none", "passthrough"],
            "authorization": None,
        },
        "version": {
            "APIVersion": LIBPOD_API_VERSION,
            "Version": LIBPOD_API_VERSION,
            "GoVersion": f"python{facts.python_version}",
            "GitCommit": "",
            "BuiltTime": "",
            "Built": 0,
            "OsArch": f"linux/{facts.arch}",
            "Os": "linux",
            "DockerAPIVersion": COMPAT_API_VERSION,
            "PodapiVersion": info.podapi_version,
        },
    }


def _repository_tag(names: tuple[str, ...]) -> tuple[str, str]:
    if not names:
        return "<none>", "<none>"
    repository, _, tag = names[0].rpartition(":")
    return repository, tag


def encode_disk_usage(usage: DiskUsage) -> dict[str, Any]:
    """Podman's ``SystemDfReport``.

    One image entry per image (its first name; Podman 4.3.1 lists one per name,
    so ``podman system df`` counted an image with two tags twice), with
    ``SharedSize`` the bytes of its layers other images use too and
    ``UniqueSize`` the rest (Podman 4.3.1 derives them from the parent image).
    """
    found_images = []
    for item in usage.images or []:
        repository, tag = _repository_tag(item.image.names)
        found_images.append(
            {
                "Repository": repository,
                "Tag": tag,
                "ImageID": item.image.id,
                "Created": rfc3339_nano(item.image.created),
                "Size": item.size,
                "SharedSize": item.shared,
                "UniqueSize": item.unique,
                "Containers": item.containers,
            }
        )
    found_containers = [
        {
            "ContainerID": entry.record.id,
            "Image": entry.record.image_id,
            "Command": [entry.record.run.path, *entry.record.run.args],
            "LocalVolumes": sum(1 for m in entry.record.run.mounts if m.type == "volume"),
            "Size": entry.rootfs,
            "RWSize": entry.rw,
            "Created": rfc3339_nano(entry.record.created),
            "Status": entry.record.state,
            "Names": entry.record.name,
        }
        for entry in usage.containers or []
    ]
    found_volumes = [
        {
            "VolumeName": volume.usage.record.name,
            "Links": volume.links,
            "Size": volume.size,
            "ReclaimableSize": 0 if volume.links else volume.size,
        }
        for volume in usage.volumes or []
    ]
    return {"Images": found_images, "Containers": found_containers, "Volumes": found_volumes}


def encode_system_prune(report: SystemPruned) -> dict[str, Any]:
    """Podman's ``SystemPruneReport`` (no errors: what could not go is left out)."""

    def sized(items: list[tuple[str, int]]) -> list[dict[str, Any]]:
        return [{"Id": i, "Err": None, "Size": size} for i, size in items]

    return {
        "PodPruneReport": [{"Err": None, "Id": i} for i in report.pods],
        "ContainerPruneReports": sized(report.containers),
        "ImagePruneReports": sized(report.images),
        "NetworkPruneReports": [{"Name": n, "Error": None} for n in report.networks],
        "VolumePruneReports": sized(report.volumes),
        "ReclaimedSpace": report.reclaimed,
    }


class LibpodSystemRoutes:
    """``/libpod/info`` and ``/libpod/events``."""

    def __init__(self, engine: Engine, clock: IReactorTime) -> None:
        self._engine = engine
        self._clock = clock

    def register(self, router: Router) -> None:
        """Add the routes."""
        router.libpod("GET", "/info", self.info)
        router.libpod("GET", "/events", self.events)
        router.libpod("GET", "/system/df", self.disk_usage)
        router.libpod("POST", "/system/prune", self.prune)

    async def info(self, call: ApiCall) -> Response:
        """``GET /libpod/info``: the same document as ``podman info``."""
        return json_response(encode_info(await self._engine.info()))

    async def events(self, call: ApiCall) -> None:
        """``GET /libpod/events``: Podman event names (``died``, ``loadfromarchive``)."""
        await stream_events(call, self._engine.events, self._clock, encode_event, event_filter)

    async def disk_usage(self, call: ApiCall) -> Response:
        """``GET /libpod/system/df``: Podman's ``SystemDfReport``."""
        return json_response(encode_disk_usage(await self._engine.disk_usage.usage()))

    async def prune(self, call: ApiCall) -> Response:
        """``POST /libpod/system/prune?all=&volumes=&filters=``: stopped containers,
        pods without containers, dangling (``all``: unused) images, unused networks,
        with ``volumes`` unused volumes, build cache; ``filters`` ``until``, ``label``,
        ``label!`` (another is a 400; Podman 4.3.1 answers 500)."""
        report = await self._engine.system_prune.prune(
            all_images=call.flag("all"), volumes=call.flag("volumes"), filters=call.filters()
        )
        return json_response(encode_system_prune(report))
