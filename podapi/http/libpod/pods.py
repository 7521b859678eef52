"""Podman's pod routes (``/libpod/pods``): the 14 routes of Podman 4.3.1.

Shapes: ``entities.ListPodsReport``, ``define.InspectPodData``, the
``{"Errs", "Id"}`` reports (``Errs`` null when all went well; 409 with the
errors as strings otherwise), ``PodRmReport`` ``{"Err", "Id"}`` and
``PodStatsReport`` (``pkg/domain/entities/pods.go``,
``pkg/api/handlers/libpod/pods.go``).

Differences from Podman 4.3.1, on purpose: a malformed body, bad namespace
kind or unknown filter is 400 (Podman: 500 for several); ``pod rm`` without
``force`` of a pod with running containers is 409 (Podman: 500); ``pod stop``
of a Degraded pod stops it (Podman answers 304 to any pod not Running).
"""

from collections.abc import Mapping
from typing import Any

from klein import Response
from twisted.internet import task
from twisted.internet.interfaces import IReactorTime

from podapi.engine.cgroupplace import pod_cgroup, pod_parent, shown
from podapi.engine.containerspec import NetworkEndpoint, PortSpec
from podapi.engine.engine import Engine
from podapi.engine.podfilters import PodView
from podapi.engine.pods import PodReport, PodStats
from podapi.engine.podspec import DEFAULT_SHARE, PodSpec
from podapi.engine.times import rfc3339_nano
from podapi.http.both.containers import top_body
from podapi.http.call import ApiCall, BadRequest
from podapi.http.responses import json_response, no_content
from podapi.http.routing import Router
from podapi.http.streams import JsonLines


def _strings(body: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = body.get(key)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadRequest(f"invalid PodSpecGenerator.{key}: a list of strings is required")
    return tuple(value)


def _text(body: Mapping[str, Any], key: str) -> str:
    value = body.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise BadRequest(f"invalid PodSpecGenerator.{key}: {value!r}")
    return value


def _ports(body: Mapping[str, Any]) -> tuple[PortSpec, ...]:
    found = []
    items = body.get("portmappings") or []
    if not isinstance(items, list):
        raise BadRequest("invalid PodSpecGenerator.portmappings: a list is required")
    for item in items:
        if not isinstance(item, dict):
            raise BadRequest(f"invalid PodSpecGenerator.portmappings entry: {item!r}")
        try:
            found.append(
                PortSpec(
                    container_port=int(item.get("container_port") or 0),
                    host_port=int(item.get("host_port") or 0),
                    protocol=str(item.get("protocol") or "tcp"),
                    host_ip=str(item.get("host_ip") or ""),
                    range=int(item.get("range") or 0) or 1,
                )
            )
        except (TypeError, ValueError):
            raise BadRequest(f"invalid PodSpecGenerator.portmappings entry: {item!r}") from None
    return tuple(found)


def _networks(body: Mapping[str, Any]) -> tuple[NetworkEndpoint, ...]:
    networks = body.get("Networks") or body.get("networks") or {}
    if not isinstance(networks, dict):
        raise BadRequest("invalid PodSpecGenerator.Networks: an object is required")
    found = []
    for name, given in networks.items():
        options = given or {}
        if not isinstance(options, dict):
            raise BadRequest(f"invalid PodSpecGenerator.Networks.{name}: {options!r}")
        found.append(
            NetworkEndpoint(
                name=name,
                aliases=_strings(options, "aliases"),
                static_ips=_strings(options, "static_ips"),
                static_mac=_text(options, "static_mac"),
            )
        )
    return tuple(found)


def decode_pod_spec(body: Any) -> PodSpec:
    """Podman's ``PodSpecGenerator`` JSON as a :class:`PodSpec`."""
    if not isinstance(body, dict):
        raise BadRequest("the pod create body must be a JSON object (PodSpecGenerator)")
    labels = body.get("labels") or {}
    if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
        raise BadRequest("invalid PodSpecGenerator.labels: an object of strings is required")
    netns = body.get("netns") or {}
    if not isinstance(netns, dict):
        raise BadRequest("invalid PodSpecGenerator.netns")
    mode = str(netns.get("nsmode") or "")
    network_mode = {"host": "host", "none": "none"}.get(mode, "bridge")
    share = _strings(body, "share") if body.get("share") is not None else DEFAULT_SHARE
    if share == ("none",):
        share = ()
    return PodSpec(
        name=_text(body, "name"),
        labels=labels,
        hostname=_text(body, "hostname"),
        share=tuple(k for s in share for k in s.split(",")),
        no_infra=bool(body.get("no_infra")),
        ports=_ports(body),
        network_mode=network_mode,
        networks=_networks(body),
        dns=_strings(body, "dns_server"),
        dns_search=_strings(body, "dns_search"),
        dns_options=_strings(body, "dns_option"),
        extra_hosts=_strings(body, "hostadd"),
        cgroup_parent=_text(body, "cgroup_parent"),
    )


def encode_summary(view: PodView) -> dict[str, Any]:
    """Podman's ``ListPodsReport``."""
    pod = view.record
    return {
        "Cgroup": shown(pod_parent(pod)),
        "Containers": [{"Id": c.id, "Names": c.name, "Status": c.state} for c in view.containers],
        "Created": rfc3339_nano(pod.created),
        "Id": pod.id,
        "InfraId": pod.infra_id,
        "Name": pod.name,
        "Namespace": "",
        "Networks": view.networks,
        "Status": view.status,
        "Labels": dict(pod.spec.labels),
    }


def encode_inspect(view: PodView) -> dict[str, Any]:
    """Podman's ``InspectPodData`` (``omitempty`` fields left out when empty)."""
    pod, spec = view.record, view.record.spec
    body: dict[str, Any] = {
        "Id": pod.id,
        "Name": pod.name,
        "Created": rfc3339_nano(pod.created),
        "State": view.status,
        "Hostname": spec.hostname or (pod.name if "uts" in spec.share else ""),
        "CreateCgroup": True,
        "CreateInfra": bool(pod.infra_id),
    }
    if spec.labels:
        body["Labels"] = dict(spec.labels)
    body["CgroupParent"] = shown(pod_parent(pod))
    body["CgroupPath"] = shown(pod_cgroup(pod))
    if pod.infra_id:
        body["InfraContainerID"] = pod.infra_id
        bindings: dict[str, list[dict[str, str]]] = {}
        for port in spec.ports:
            for i in range(port.range):
                bindings.setdefault(f"{port.container_port + i}/{port.protocol}", []).append(
                    {
                        "HostIp": port.host_ip,
                        "HostPort": str(port.host_port + i if port.host_port else ""),
                    }
                )
        infra = view.infra
        body["InfraConfig"] = {
            "PortBindings": bindings,
            "HostNetwork": spec.network_mode == "host",
            "StaticIP": "",
            "StaticMAC": "",
            "NoManageResolvConf": False,
            "DNSServer": list(spec.dns) or None,
            "DNSSearch": list(spec.dns_search) or None,
            "DNSOption": list(spec.dns_options) or None,
            "NoManageHosts": False,
            "HostAdd": list(spec.extra_hosts) or None,
            "Networks": view.networks if infra is not None else None,
            "NetworkOptions": None,
        }
        if "pid" in spec.share:
            body["InfraConfig"]["pid_ns"] = "private"
        if "uts" in spec.share:
            body["InfraConfig"]["uts_ns"] = "private"
    if spec.share:
        body["SharedNamespaces"] = list(spec.share)
    body["NumContainers"] = len(view.containers)
    if view.containers:
        body["Containers"] = [
            {"Id": c.id, "Name": c.name, "State": c.state} for c in view.containers
        ]
    return body


def encode_report(report: PodReport) -> Response:
    """``{"Errs", "Id"}``: 200, or 409 when a container failed."""
    errors = list(report.errors) or None
    return json_response({"Errs": errors, "Id": report.id}, 409 if errors else 200)


def human_size(size: float) -> str:
    """go-units ``HumanSize``: decimal units, four significant digits."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.4g}{unit}"
        size /= 1000
    return f"{size:.4g}PB"


def bytes_size(size: float) -> str:
    """go-units ``BytesSize``: binary units, four significant digits."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.4g}{unit}"
        size /= 1024
    return f"{size:.4g}PiB"


def _pair(a: int, b: int, fmt: Any) -> str:
    return "-- / --" if a == 0 and b == 0 else f"{fmt(a)} / {fmt(b)}"


def _percent(value: float) -> str:
    return "--" if value == 0 else f"{value:.2f}%"


def encode_stats(row: PodStats) -> dict[str, str]:
    """Podman's ``PodStatsReport``."""
    s = row.stats
    return {
        "CPU": _percent(s.cpu),
        "MemUsage": _pair(s.mem_usage, s.mem_limit, human_size),
        "MemUsageBytes": _pair(s.mem_usage, s.mem_limit, bytes_size),
        "Mem": _percent(s.mem_percent),
        "NetIO": _pair(s.net_input, s.net_output, human_size),
        "BlockIO": _pair(s.block_input, s.block_output, human_size),
        "PIDS": str(s.pids) if s.pids else "--",
        "Pod": row.pod.id[:12],
        "CID": s.container_id[:12],
        "Name": s.name,
    }


class LibpodPodRoutes:
    """``/libpod/pods``.

    :param clock: paces the stats and top streams.
    """

    def __init__(self, engine: Engine, clock: IReactorTime) -> None:
        self._pods = engine.pods
        self._clock = clock

    def register(self, router: Router) -> None:
        """Add the routes."""
        add = router.libpod
        add("GET", "/pods/json", self.list_pods)
        add("POST", "/pods/create", self.create)
        add("POST", "/pods/prune", self.prune)
        add("GET", "/pods/stats", self.stats)
        add("DELETE", "/pods/<name>", self.remove)
        add("GET", "/pods/<name>/json", self.inspect)
        add("GET", "/pods/<name>/exists", self.exists)
        add("POST", "/pods/<name>/kill", self.kill)
        add("POST", "/pods/<name>/pause", self.pause)
        add("POST", "/pods/<name>/restart", self.restart)
        add("POST", "/pods/<name>/start", self.start)
        add("POST", "/pods/<name>/stop", self.stop)
        add("POST", "/pods/<name>/unpause", self.unpause)
        add("GET", "/pods/<name>/top", self.top)

    async def create(self, call: ApiCall) -> Response:
        """``POST /libpod/pods/create`` (PodSpecGenerator): 201 ``{"Id"}``."""
        record = await self._pods.create(decode_pod_spec(call.json_body(empty_ok=False)))
        return json_response({"Id": record.id}, 201)

    async def list_pods(self, call: ApiCall) -> Response:
        """``GET /libpod/pods/json?filters=``: ``[ListPodsReport]``."""
        return json_response([encode_summary(v) for v in await self._pods.select(call.filters())])

    async def inspect(self, call: ApiCall, name: str) -> Response:
        """``GET /libpod/pods/{name}/json``: ``InspectPodData``."""
        return json_response(encode_inspect(await self._pods.view(name)))

    async def exists(self, call: ApiCall, name: str) -> Response:
        """``GET /libpod/pods/{name}/exists``: 204 or 404."""
        await self._pods.resolve(name)
        return no_content()

    async def start(self, call: ApiCall, name: str) -> Response:
        """``POST /libpod/pods/{name}/start``: 304 when the pod is Running."""
        return encode_report(await self._pods.start(name))

    async def stop(self, call: ApiCall, name: str) -> Response:
        """``POST /libpod/pods/{name}/stop?t=``: 304 when nothing runs.

        ``t=0`` kills at once; no ``t`` (or a negative one, Podman's -1) gives each
        container its own stop timeout."""
        timeout = call.integer("t")
        if timeout is not None and timeout < 0:
            timeout = None
        return encode_report(await self._pods.stop(name, timeout))

    async def restart(self, call: ApiCall, name: str) -> Response:
        """``POST /libpod/pods/{name}/restart``."""
        return encode_report(await self._pods.restart(name))

    async def kill(self, call: ApiCall, name: str) -> Response:
        """``POST /libpod/pods/{name}/kill?signal=`` (SIGKILL by default)."""
        return encode_report(await self._pods.kill(name, call.text("signal") or "SIGKILL"))

    async def pause(self, call: ApiCall, name: str) -> Response:
        """``POST /libpod/pods/{name}/pause``."""
        return encode_report(await self._pods.pause(name))

    async def unpause(self, call: ApiCall, name: str) -> Response:
        """``POST /libpod/pods/{name}/unpause``."""
        return encode_report(await self._pods.unpause(name))

    async def remove(self, call: ApiCall, name: str) -> Response:
        """``DELETE /libpod/pods/{name}?force=&timeout=``: ``{"Err", "Id"}``."""
        pod_id = await self._pods.remove(
            name, force=call.flag("force"), timeout=call.integer("timeout")
        )
        return json_response({"Err": None, "Id": pod_id})

    async def prune(self, call: ApiCall) -> Response:
        """``POST /libpod/pods/prune``: ``[{"Err", "Id"}]`` of the pods with nothing running."""
        done = await self._pods.prune()
        return json_response([{"Err": error or None, "Id": pod_id} for pod_id, error in done])

    async def top(self, call: ApiCall, name: str) -> Response | None:
        """``GET /libpod/pods/{name}/top?ps_args=&stream=&delay=``."""
        delay = call.integer("delay", 5)
        if delay is None or delay < 1:
            raise BadRequest(f'"delay" parameter of value {delay} < 1')
        ps_args = call.text("ps_args") or ""
        table = await self._pods.top(name, ps_args)
        if not call.flag("stream"):
            return json_response(top_body(table))
        out = JsonLines(call.request)
        while True:
            out.write(top_body(table))
            await task.deferLater(self._clock, delay)
            try:
                table = await self._pods.top(name, ps_args)
            except Exception:
                return None  # stopped or removed: the stream ends

    async def stats(self, call: ApiCall) -> None:
        """``GET /libpod/pods/stats?namesOrIDs=&all=&stream=&delay=``: JSON lists.

        In a stream, each report after the first has the CPU used since the one before
        (Podman's reports all have the CPU since each container started)."""
        names = call.texts("namesOrIDs")
        delay = call.integer("delay", 5) or 5
        stream = call.flag("stream")
        rows = await self._pods.stats(names, all=call.flag("all"))
        out = JsonLines(call.request)
        out.start()
        while True:
            out.write([encode_stats(r) for r in rows])
            if not stream:
                return
            await task.deferLater(self._clock, delay)
            previous = {r.stats.container_id: r.stats for r in rows}
            rows = await self._pods.stats(names, all=call.flag("all"), previous=previous)
