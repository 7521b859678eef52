"""Libpod container routes: Podman's shapes (``ListContainer``, ``InspectContainerData``)
and Podman-only operations (exists, init, mount, unmount, showmounted,
healthcheck, shouldrestart).  Logs, top, changes, attach and the life-cycle
verbs share the compat handlers, as in Podman."""

from typing import Any, cast

from attrs import asdict, evolve
from klein import Response
from twisted.internet.interfaces import IReactorTime
from twisted.web.server import Request

from podapi.engine.containerspec import MountSpec, signal_number
from podapi.engine.engine import Engine
from podapi.engine.inspection import ContainerDetails
from podapi.engine.ocimodel import mount_propagation
from podapi.engine.state.containers import ContainerRecord
from podapi.engine.times import NS, rfc3339_nano
from podapi.errors import NoSuchContainer, NotFound
from podapi.http.both import netsettings
from podapi.http.both.attach import attach
from podapi.http.both.containers import prune_containers, selected_containers
from podapi.http.call import ApiCall, BadRequest
from podapi.http.compat.containerjson import encode_config, encode_host_config
from podapi.http.hijack import HijackResource
from podapi.http.libpod.specgen import decode_specgen, linux_resources
from podapi.http.responses import json_response, no_content, text_response
from podapi.http.routing import Router

ZERO_UNIX = -62135596800  # Go's zero time as Unix seconds, what Podman prints for "never"
#: ``condition`` values of libpod wait, mapped to our states.
WAIT_STATES = {
    "configured": "created",
    "created": "created",
    "initialized": "initialized",
    "running": "running",
    "paused": "paused",
    "exited": "exited",
    "stopped": "exited",
    "stopping": "stopping",
    "removing": "removing",
}


def encode_summary(record: ContainerRecord) -> dict[str, Any]:
    """Podman's ``ListContainer``."""
    exited = record.state == "exited"
    return {
        "AutoRemove": record.spec.auto_remove,
        "Command": [record.run.path, *record.run.args],
        "Created": rfc3339_nano(record.created),
        "CreatedAt": "",
        "Exited": exited,
        "ExitedAt": record.finished_at // NS if record.finished_at else ZERO_UNIX,
        "ExitCode": record.exit_code,
        "Id": record.id,
        "Image": record.image_name,
        "ImageID": record.image_id,
        "IsInfra": record.spec.infra,
        "Labels": dict(record.run.labels) or None,
        "Mounts": [m.destination for m in record.run.mounts],
        "Names": [record.name],
        "Namespaces": {},
        "Networks": [e.name for e in record.spec.networks],
        "Pid": record.pid,
        "Pod": record.spec.pod,
        "PodName": record.spec.pod_name,
        "Ports": [p.to_json() for p in record.network_status.ports] or None,
        "Restarts": record.restart_count,
        "Size": None,
        "StartedAt": record.started_at // NS if record.started_at else ZERO_UNIX,
        "State": record.state,
        "Status": (record.health_status and f"({record.health_status})") or "",
    }


def _inspect_mount(mount: MountSpec) -> dict[str, Any]:
    """Podman's ``InspectMount`` (``parseMountOptionsForInspect``: access, propagation and
    SELinux label pulled out of the options)."""
    body: dict[str, Any] = {"Type": mount.type}
    if mount.name:
        body["Name"] = mount.name
    label = [o for o in mount.options if o in ("z", "Z")]
    propagation = mount_propagation(mount.options)
    body.update(
        Source=mount.source,
        Destination=mount.destination,
        Driver="local" if mount.type == "volume" else "",
        Mode=label[0] if label else "",
        Options=[o for o in mount.options if o not in (*label, propagation)],
        RW=not mount.readonly,
        Propagation=propagation,
    )
    return body


def encode_inspect(details: ContainerDetails) -> dict[str, Any]:
    """Podman's ``InspectContainerData`` (``podman container inspect``)."""
    record, paths, caps = details.record, details.paths, details.capabilities
    config = encode_config(record)
    config.update(
        {
            "Entrypoint": " ".join(record.run.entrypoint),
            "StopSignal": signal_number(record.run.stop_signal),
            "Annotations": dict(record.spec.annotations),
            "Umask": "0022",
            "Timeout": 0,
            "Passwd": True,
            "HealthcheckOnFailureAction": "none",
        }
    )
    host = encode_host_config(record, details.default_network)
    host.update(
        {
            "CapDrop": [],
            "CapAdd": list(caps),
            "CgroupManager": "cgroupfs",
            "CgroupMode": "host",
            "LogConfig": {
                "Type": "k8s-file",
                "Path": paths.log,
                "Tag": "",
                "Size": str(record.spec.log_max_size or "0B"),
            },
        }
    )
    state = {
        "OciVersion": "1.0.2-dev",
        "Status": record.state,
        "Running": record.state in ("running", "stopping"),
        "Paused": record.state == "paused",
        "Restarting": False,
        "OOMKilled": record.oom_killed,
        "Dead": False,
        "Pid": record.pid,
        "ConmonPid": record.conmon_pid,
        "ExitCode": record.exit_code,
        "Error": record.error,
        "StartedAt": rfc3339_nano(record.started_at),
        "FinishedAt": rfc3339_nano(record.finished_at),
        "Health": {
            "Status": record.health_status,
            "FailingStreak": record.health_failing,
            "Log": list(record.health_log) or None,
        },
        "CgroupPath": details.cgroup_path,
        "CheckpointedAt": rfc3339_nano(0),
        "RestoredAt": rfc3339_nano(0),
        "StoppedByUser": record.stopped_by_user,
    }
    return {
        "Id": record.id,
        "Created": rfc3339_nano(record.created),
        "Path": record.run.path,
        "Args": list(record.run.args),
        "State": state,
        "Image": record.image_id,
        "ImageDigest": "",
        "ImageName": record.image_name,
        "Rootfs": "",
        "Pod": record.spec.pod,
        "ResolvConfPath": paths.resolv_conf,
        "HostnamePath": paths.hostname,
        "HostsPath": paths.hosts,
        "StaticDir": paths.userdata,
        "OCIConfigPath": paths.config_json,
        "OCIRuntime": details.runtime,
        "ConmonPidFile": paths.conmon_pidfile,
        "PidFile": paths.pidfile,
        "Name": record.name,
        "RestartCount": record.restart_count,
        "Driver": "overlay",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "EffectiveCaps": list(caps),
        "BoundingCaps": list(caps),
        "ExecIDs": [],
        "GraphDriver": {
            "Name": "overlay",
            "Data": {"MergedDir": paths.merged, "UpperDir": paths.upper, "WorkDir": paths.work},
        },
        "Mounts": [_inspect_mount(m) for m in record.run.mounts if m.type != "tmpfs"],
        "Dependencies": [],
        "NetworkSettings": netsettings.settings(record, details.default_network, compat=False),
        "Namespace": "",
        "IsInfra": record.spec.infra,
        "IsService": False,
        "Config": config,
        "HostConfig": host,
    }


class LibpodContainerRoutes:
    """Container routes of the Libpod API.

    :param clock: times hijacked connections out.
    """

    def __init__(self, engine: Engine, compat: Any, clock: IReactorTime) -> None:
        self._engine = engine
        self._compat = compat
        self._clock = clock

    def register(self, router: Router) -> None:
        """Add the routes (life-cycle verbs reuse the compat handlers, as Podman does)."""
        add = router.libpod
        compat = self._compat
        add("POST", "/containers/create", self.create)
        add("GET", "/containers/json", self.list_containers)
        add("POST", "/containers/prune", self.prune)
        add("GET", "/containers/showmounted", self.showmounted)
        add("GET", "/containers/<name>/json", self.inspect)
        add("GET", "/containers/<name>/exists", self.exists)
        add("POST", "/containers/<name>/start", compat.start)
        add("POST", "/containers/<name>/stop", compat.stop)
        add("POST", "/containers/<name>/restart", compat.restart)
        add("POST", "/containers/<name>/kill", compat.kill)
        add("POST", "/containers/<name>/pause", compat.pause)
        add("POST", "/containers/<name>/unpause", compat.unpause)
        add("POST", "/containers/<name>/rename", compat.rename)
        add("POST", "/containers/<name>/resize", compat.resize)
        add("POST", "/containers/<name>/update", self.update)
        add("GET", "/containers/<name>/logs", compat.logs)
        add("GET", "/containers/<name>/top", compat.top)
        add("GET", "/containers/<name>/changes", compat.changes)
        add("POST", "/containers/<name>/attach", self.attach)
        add("POST", "/containers/<name>/wait", self.wait)
        add("POST", "/containers/<name>/init", self.init)
        add("POST", "/containers/<name>/mount", self.mount)
        add("POST", "/containers/<name>/unmount", self.unmount)
        add("GET", "/containers/<path:name>/healthcheck", self.healthcheck)
        add("POST", "/containers/<name>/shouldrestart", self.shouldrestart)
        add("DELETE", "/containers/<name>", self.remove)

    async def _get(self, name: str) -> ContainerRecord:
        return await self._engine.containers.resolve(name)

    async def create(self, call: ApiCall) -> Response:
        """``POST /libpod/containers/create`` (SpecGenerator): 201 ``{"Id", "Warnings"}``."""
        record = await self._engine.containers.create(
            decode_specgen(call.json_body(empty_ok=False)), short_names=call.short_names
        )
        return json_response({"Id": record.id, "Warnings": []}, 201)

    async def list_containers(self, call: ApiCall) -> Response:
        """``GET /libpod/containers/json``; ``size`` and ``namespace`` add what they name."""
        with_size, with_namespaces = call.flag("size"), call.flag("namespace")
        found = []
        for record in await selected_containers(call, self._engine):
            summary = encode_summary(record)
            if with_size:
                rw, rootfs = await self._engine.containers.sizes(record)
                summary["Size"] = {"rootFsSize": rootfs, "rwSize": rw}
            if with_namespaces and record.alive:
                summary["Namespaces"] = self._engine.processes.namespaces(record)
            found.append(summary)
        return json_response(found)

    async def inspect(self, call: ApiCall, name: str) -> Response:
        """``GET /libpod/containers/{name}/json``."""
        details = await self._engine.inspect_container(name)
        body = encode_inspect(details)
        if call.flag("size"):
            sizes = await self._engine.containers.sizes(details.record)
            body["SizeRw"], body["SizeRootFs"] = sizes
        return json_response(body)

    async def exists(self, call: ApiCall, name: str) -> Response:
        """``GET /libpod/containers/{name}/exists``: 204 or 404."""
        await self._get(name)
        return no_content()

    async def attach(self, call: ApiCall, name: str) -> HijackResource:
        """``POST /libpod/containers/{name}/attach``."""
        return await attach(call, self._engine, self._clock, name)

    async def wait(self, call: ApiCall, name: str) -> Response:
        """``POST /libpod/containers/{name}/wait?condition=...``: the exit code as text.

        Waits until the container is in one of the states (default: stopped).
        The exit code of a container removed meanwhile is still reported.
        """
        conditions = call.texts("condition") or ["stopped"]
        unknown = [c for c in conditions if c not in WAIT_STATES]
        if unknown:
            raise BadRequest(f"invalid condition {unknown[0]!r}")
        wanted = {WAIT_STATES[c] for c in conditions}
        record = await self._get(name)
        request = cast(Request, call.request)
        request.setHeader(b"Content-Type", b"text/plain; charset=us-ascii")
        while record.state not in wanted:
            changed = await self._engine.lifecycle.next_change(record.id)
            if changed is None:
                break
            record = changed
        return text_response(str(record.exit_code), content_type="text/plain; charset=us-ascii")

    async def init(self, call: ApiCall, name: str) -> Response:
        """``POST /libpod/containers/{name}/init``: created in the runtime, not started."""
        record = await self._get(name)
        if record.state == "initialized":
            return no_content(304)
        await self._engine.lifecycle.init(record)
        return no_content()

    async def mount(self, call: ApiCall, name: str) -> Response:
        """``POST /libpod/containers/{name}/mount``: the rootfs path.

        As Podman's ``utils.WriteResponse`` writes a string: text and a newline
        (``fmt.Fprintln``), ``text/plain; charset=us-ascii``, not JSON.
        """
        path = await self._engine.lifecycle.mount(await self._get(name))
        return text_response(path, content_type="text/plain; charset=us-ascii")

    async def unmount(self, call: ApiCall, name: str) -> Response:
        """``POST /libpod/containers/{name}/unmount``."""
        await self._engine.lifecycle.unmount(await self._get(name))
        return no_content()

    async def showmounted(self, call: ApiCall) -> Response:
        """``GET /libpod/containers/showmounted``: ``{id: mount point}``."""
        return json_response(await self._engine.lifecycle.mounted())

    async def healthcheck(self, call: ApiCall, name: str) -> Response:
        """``GET /libpod/containers/{name}/healthcheck``: run the check now."""
        record = await self._engine.lifecycle.check_health(await self._get(name))
        return json_response(
            {
                "Status": record.health_status,
                "FailingStreak": record.health_failing,
                "Log": list(record.health_log),
            }
        )

    async def shouldrestart(self, call: ApiCall, name: str) -> Response:
        """``POST /libpod/containers/{name}/shouldrestart``: 204 if the policy restarts it."""
        record = await self._get(name)
        if self._engine.lifecycle.should_restart(record):
            return no_content()
        raise NoSuchContainer(f"container {record.id} should not be restarted")

    async def update(self, call: ApiCall, name: str) -> Response:
        """``POST /libpod/containers/{name}/update``: the body is OCI ``LinuxResources``;
        201 with the container's ID.

        Podman replaces all the container's resources with the body; we change
        only the limits the body sets, as ``docker update`` does, so updating the
        memory keeps a CPU limit set before.
        """
        given = linux_resources(call.json_body(empty_ok=False), "body")
        changes = {key: value for key, value in asdict(given).items() if value is not None}
        record = await self._get(name)
        resources = evolve(record.spec.resources, **changes) if changes else None
        await self._engine.lifecycle.update(record, resources=resources, restart_policy=None)
        return json_response(record.id, 201)

    async def remove(self, call: ApiCall, name: str) -> Response:
        """``DELETE /libpod/containers/{name}?force=&ignore=&volumes=``: ``[{"Id", "RawInput"}]``.

        Podman's handler reads ``volumes`` (what its clients send) and ignores
        the ``v`` its swagger documents; we honour both.  With ``force`` and
        ``timeout`` a running container gets its stop signal first.  ``depend``
        removes the containers that join its network namespace first (and
        theirs); without it they stay, where Podman refuses the removal.
        """
        try:
            record = await self._get(name)
        except NotFound:
            if call.flag("ignore"):
                return json_response([])
            raise
        ordered = await self._engine.removal.remove(
            record,
            force=call.flag("force"),
            volumes=call.flag("volumes") or call.flag("v"),
            stop_timeout=call.integer("timeout"),
            depend=call.flag("depend"),
        )
        return json_response(
            [{"Id": c.id, "RawInput": name if c.id == record.id else c.id} for c in ordered]
        )

    async def prune(self, call: ApiCall) -> Response:
        """``POST /libpod/containers/prune``: ``[{"Id", "Size"}]``, each with the bytes
        its writable layer held."""
        pruned = await prune_containers(call, self._engine)
        return json_response([{"Id": i, "Size": size} for i, size in pruned.sizes])
