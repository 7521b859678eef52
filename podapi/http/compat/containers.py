"""Docker container routes: create, list, inspect, start/stop/restart/kill, pause,
wait, remove, rename, update, prune, logs, top, changes, resize.

Differences from Podman 4.3.1, on purpose: a conflicting name and removing a
running container without force are 409 (Docker's status; 4.3.1 says 500).
"""

from typing import cast

from attrs import evolve
from klein import Response
from twisted.internet.interfaces import IReactorTime
from twisted.web.server import Request

from podapi.engine.containerspec import RestartPolicy, check_restart_policy
from podapi.engine.engine import Engine
from podapi.engine.state.containers import ContainerRecord
from podapi.errors import Conflict, NoSuchContainer
from podapi.http.both.attach import attach, attach_ws
from podapi.http.both.containers import (
    changes_response,
    prune_containers,
    selected_containers,
    send_logs,
    stop_timeout,
    top_response,
    wait_body,
)
from podapi.http.call import ApiCall, BadRequest
from podapi.http.compat.containerjson import encode_inspect, encode_summary
from podapi.http.compat.createbody import decode_create
from podapi.http.hijack import HijackResource
from podapi.http.responses import encode_json, json_response, no_content
from podapi.http.routing import Router

WAIT_CONDITIONS = ("not-running", "next-exit", "removed")


async def wait_for(engine: Engine, record: ContainerRecord, condition: str) -> ContainerRecord:
    """Docker's wait conditions; the record holding the exit code."""
    lifecycle = engine.lifecycle
    if condition == "not-running" and not record.alive:
        return record
    if condition in ("not-running", "next-exit"):
        return await lifecycle.next_exit(record)
    # removed: the exit (for its code), then the removal
    if record.alive:
        record = await lifecycle.next_exit(record)
    while True:
        changed = await lifecycle.next_change(record.id)
        if changed is None:
            return record
        if not changed.alive:
            record = changed


class CompatContainerRoutes:
    """Container routes of the Docker API (attach lives in ``http/attach.py``).

    :param clock: paces ``top``'s stream, times hijacked connections out.
    """

    def __init__(self, engine: Engine, clock: IReactorTime) -> None:
        self._engine = engine
        self._clock = clock

    def register(self, router: Router) -> None:
        """Add the routes."""
        add = router.compat
        add("POST", "/containers/create", self.create)
        add("GET", "/containers/json", self.list_containers)
        add("POST", "/containers/prune", self.prune)
        add("GET", "/containers/<name>/json", self.inspect)
        add("POST", "/containers/<name>/start", self.start)
        add("POST", "/containers/<name>/stop", self.stop)
        add("POST", "/containers/<name>/restart", self.restart)
        add("POST", "/containers/<name>/kill", self.kill)
        add("POST", "/containers/<name>/pause", self.pause)
        add("POST", "/containers/<name>/unpause", self.unpause)
        add("POST", "/containers/<name>/wait", self.wait)
        add("POST", "/containers/<name>/rename", self.rename)
        add("POST", "/containers/<name>/update", self.update)
        add("POST", "/containers/<name>/resize", self.resize)
        add("GET", "/containers/<name>/logs", self.logs)
        add("GET", "/containers/<name>/top", self.top)
        add("GET", "/containers/<name>/changes", self.changes)
        add("POST", "/containers/<name>/attach", self.attach)
        add("GET", "/containers/<name>/attach/ws", self.attach_ws)
        add("DELETE", "/containers/<name>", self.remove)
        add("DELETE", "/containers/<name>/<alias>", self.remove_link)

    async def _get(self, name: str) -> ContainerRecord:
        return await self._engine.containers.resolve(name)

    async def create(self, call: ApiCall) -> Response:
        """``POST /containers/create?name=``: 201 ``{"Id", "Warnings"}``."""
        spec = decode_create(call.json_body(empty_ok=False), call.text("name"))
        record = await self._engine.containers.create(spec, short_names=call.short_names)
        return json_response({"Id": record.id, "Warnings": []}, 201)

    async def list_containers(self, call: ApiCall) -> Response:
        """``GET /containers/json``; ``size`` adds ``SizeRw`` and ``SizeRootFs``."""
        found = await selected_containers(call, self._engine)
        now = self._engine.events.now_ns()
        health = call.version_at_least(1, 52)
        default = self._engine.networks.default.name
        with_size = call.flag("size")
        summaries = []
        for record in found:
            summary = encode_summary(record, now, health, default)
            if with_size:
                sizes = await self._engine.containers.sizes(record)
                summary["SizeRw"], summary["SizeRootFs"] = sizes
            summaries.append(summary)
        return json_response(summaries)

    async def inspect(self, call: ApiCall, name: str) -> Response:
        """``GET /containers/{name}/json``."""
        details = await self._engine.inspect_container(name)
        body = encode_inspect(details)
        if call.flag("size"):
            sizes = await self._engine.containers.sizes(details.record)
            body["SizeRw"], body["SizeRootFs"] = sizes
        return json_response(body)

    async def start(self, call: ApiCall, name: str) -> Response:
        """``POST /containers/{name}/start``: 204, 304 if running."""
        await self._engine.lifecycle.start(await self._get(name))
        return no_content()

    async def stop(self, call: ApiCall, name: str) -> Response:
        """``POST /containers/{name}/stop?t=&signal=``: 204, 304 if not running."""
        await self._engine.lifecycle.stop(
            await self._get(name), stop_timeout(call), call.text("signal")
        )
        return no_content()

    async def restart(self, call: ApiCall, name: str) -> Response:
        """``POST /containers/{name}/restart?t=``."""
        await self._engine.lifecycle.restart(await self._get(name), stop_timeout(call))
        return no_content()

    async def kill(self, call: ApiCall, name: str) -> Response:
        """``POST /containers/{name}/kill?signal=``: 409 if not running.

        On the compat tree a SIGKILL answers once the container is dead, as Docker
        and Podman's compat handler do; the libpod tree answers at once, as Podman's.
        """
        await self._engine.lifecycle.kill(
            await self._get(name), call.text("signal") or "KILL", wait_killed=not call.libpod
        )
        return no_content()

    async def pause(self, call: ApiCall, name: str) -> Response:
        """``POST /containers/{name}/pause``."""
        await self._engine.lifecycle.pause(await self._get(name))
        return no_content()

    async def unpause(self, call: ApiCall, name: str) -> Response:
        """``POST /containers/{name}/unpause``."""
        await self._engine.lifecycle.unpause(await self._get(name))
        return no_content()

    async def wait(self, call: ApiCall, name: str) -> None:
        """``POST /containers/{name}/wait?condition=``: 200 headers at once, body at the exit.

        The docker CLI sends wait before start and blocks until it has the
        status line, so the headers go out before waiting (as Podman does).
        """
        record = await self._get(name)
        condition = call.text("condition") or "not-running"
        if condition not in WAIT_CONDITIONS:
            raise BadRequest(f"invalid condition {condition!r}: use {', '.join(WAIT_CONDITIONS)}")
        request = cast(Request, call.request)
        request.setHeader(b"Content-Type", b"application/json")
        request.write(b"")
        try:
            final = await wait_for(self._engine, record, condition)
        except NoSuchContainer:
            final = record
        request.write(encode_json(wait_body(final)))

    async def remove(self, call: ApiCall, name: str) -> Response:
        """``DELETE /containers/{name}?force=&v=``: 204; 409 if running without force.

        ``link=true`` removes a legacy link, named ``parent/alias`` (see
        :meth:`remove_link`): a bare name is a container's own name, which Docker
        refuses to remove as a link (409).
        """
        if call.flag("link"):
            await self._get(name)
            raise Conflict(
                "Conflict, cannot remove the default link name of the container",
                cause="conflict",
            )
        await self._engine.lifecycle.remove(
            await self._get(name), force=call.flag("force"), volumes=call.flag("v")
        )
        return no_content()

    async def remove_link(self, call: ApiCall, name: str, alias: str) -> Response:
        """``DELETE /containers/{parent}/{alias}?link=true``: 204, the container ``parent``
        forgets its legacy link ``alias`` (both containers stay); 404 without ``link``
        (no container has a name with ``/``) or when there is no such link."""
        if not call.flag("link"):
            raise NoSuchContainer(f'no container with name or ID "{name}/{alias}" found')
        await self._engine.containers.remove_link(await self._get(name), alias)
        return no_content()

    async def rename(self, call: ApiCall, name: str) -> Response:
        """``POST /containers/{name}/rename?name=``."""
        new_name = call.text("name")
        if not new_name:
            raise BadRequest("name is required")
        await self._engine.containers.rename(await self._get(name), new_name)
        return no_content()

    async def update(self, call: ApiCall, name: str) -> Response:
        """``POST /containers/{name}/update``: resources and restart policy."""
        body = call.json_body()
        if not isinstance(body, dict):
            raise BadRequest("the update body must be a JSON object")
        record = await self._get(name)
        resources = record.spec.resources
        values = {
            key: body.get(field)
            for key, field in (
                ("memory", "Memory"),
                ("memory_swap", "MemorySwap"),
                ("memory_reservation", "MemoryReservation"),
                ("cpu_shares", "CpuShares"),
                ("cpu_quota", "CpuQuota"),
                ("cpu_period", "CpuPeriod"),
                ("cpuset_cpus", "CpusetCpus"),
                ("cpuset_mems", "CpusetMems"),
                ("pids_limit", "PidsLimit"),
            )
            if body.get(field)
        }
        policy = None
        if isinstance(body.get("RestartPolicy"), dict) and body["RestartPolicy"].get("Name"):
            restart = body["RestartPolicy"]
            policy = check_restart_policy(
                RestartPolicy(str(restart["Name"]), int(restart.get("MaximumRetryCount", 0)))
            )
        updated = evolve(resources, **values) if values else None
        await self._engine.lifecycle.update(record, resources=updated, restart_policy=policy)
        return json_response({"Warnings": []})

    async def resize(self, call: ApiCall, name: str) -> Response:
        """``POST /containers/{name}/resize?h=&w=``: the TTY size, through conmon; 409 unless
        the container is initialized or running (Podman's ``AttachResize``)."""
        record = await self._get(name)
        height, width = call.integer("h", 0) or 0, call.integer("w", 0) or 0
        await self._engine.processes.resize(record, height, width)
        return no_content(200)

    async def logs(self, call: ApiCall, name: str) -> None:
        """``GET /containers/{name}/logs``."""
        await send_logs(call, self._engine, name)

    async def top(self, call: ApiCall, name: str) -> Response | None:
        """``GET /containers/{name}/top?ps_args=&stream=&delay=``."""
        return await top_response(call, self._engine, self._clock, name)

    async def changes(self, call: ApiCall, name: str) -> Response:
        """``GET /containers/{name}/changes``."""
        return await changes_response(call, self._engine, name)

    async def attach(self, call: ApiCall, name: str) -> HijackResource:
        """``POST /containers/{name}/attach``: hijacks the connection (see ``http/attach``)."""
        return await attach(call, self._engine, self._clock, name)

    async def attach_ws(self, call: ApiCall, name: str) -> HijackResource:
        """``GET /containers/{name}/attach/ws``: attach over a WebSocket (Docker's)."""
        return await attach_ws(call, self._engine, self._clock, name)

    async def prune(self, call: ApiCall) -> Response:
        """``POST /containers/prune?filters=``: stopped containers."""
        pruned = await prune_containers(call, self._engine)
        return json_response(
            {"ContainersDeleted": pruned.removed or None, "SpaceReclaimed": pruned.space}
        )
