"""Container handler pieces shared by both trees: lookup, list selection, logs, top, changes.

Podman serves logs, top and changes with the same (compat) handlers on both
trees; so do we.
"""

from typing import Any, cast

from klein import Response
from twisted.internet import task
from twisted.internet.interfaces import IReactorTime
from twisted.web.server import Request

from podapi.engine import containerfilters
from podapi.engine.engine import Engine
from podapi.engine.logs import LogQuery
from podapi.engine.removal import Pruned
from podapi.engine.state.containers import ContainerRecord
from podapi.engine.times import parse_timestamp
from podapi.engine.top import TopTable
from podapi.errors import Conflict, NotFound
from podapi.http.call import ApiCall, BadRequest
from podapi.http.framing import format_log_line
from podapi.http.responses import json_response
from podapi.http.streams import JsonLines
from podapi.storage.k8slog import LogLine

MULTIPLEXED = "application/vnd.docker.multiplexed-stream"
RAW = "application/vnd.docker.raw-stream"


async def selected_containers(call: ApiCall, engine: Engine) -> list[ContainerRecord]:
    """``GET /containers/json``: ``all``, ``limit``, ``filters``; newest first.

    Libpod also takes ``last``, which overrides ``limit`` (Podman's old name;
    its client still sends ``last=-1``).
    """
    filters = call.filters()
    everything = await engine.containers.all()
    anchors = {}
    for key in ("before", "since"):
        for value in filters.get(key, []):
            anchors[value] = await engine.containers.resolve(value)
    image_ids: dict[str, set[str]] = {}
    for value in filters.get("ancestor", []):
        try:
            image_ids[value] = {
                (await engine.images.resolve(value, short_names=call.short_names)).id
            }
        except NotFound:
            image_ids[value] = set()
    keep = containerfilters.build(
        filters, anchors=anchors, image_ids=image_ids, now_ns=engine.events.now_ns()
    )
    limit = call.integer("limit", 0) or 0
    if call.libpod and call.has("last"):
        limit = call.integer("last", 0) or 0
    show_all = call.flag("all") or limit > 0 or "status" in filters or "exited" in filters
    found = [c for c in everything if (show_all or c.alive) and keep(c)]
    found.sort(key=lambda c: c.created, reverse=True)
    return found[:limit] if limit > 0 else found


async def send_logs(call: ApiCall, engine: Engine, name: str) -> None:
    """``GET /containers/{name}/logs``: k8s-file lines, framed unless the container has a TTY
    and the request is Docker's.

    With ``follow`` the stream stays open until the container exits (then the
    rest of the log is sent) or the client leaves.
    """
    record = await engine.containers.resolve(name)
    want_out, want_err = call.flag("stdout"), call.flag("stderr")
    if call.libpod and not (call.has("stdout") or call.has("stderr")):
        want_out = want_err = True
    if not (want_out or want_err):
        raise BadRequest("you must choose at least one stream: stdout or stderr")
    now = engine.events.now_ns()
    since = call.text("since")
    until = call.text("until")
    tail_text = call.text("tail") or "all"
    if tail_text == "all" or tail_text.startswith("-"):
        tail = None
    elif tail_text.isdigit():
        tail = int(tail_text)
    else:
        raise BadRequest(f'invalid tail value {tail_text!r}: a number or "all"')
    # podman-remote sends Go's zero time ("0001-01-01T00:00:00Z") for "not set".
    since_ns = parse_timestamp(since, now) if since else None
    until_ns = parse_timestamp(until, now) if until else None
    since_ns = since_ns if since_ns and since_ns > 0 else None
    until_ns = until_ns if until_ns and until_ns > 0 else None
    # Podman frames every libpod logs stream (containers_logs.go: writeHeader for libpod
    # requests); only Docker's API sends a TTY container's log raw.
    multiplexed = call.libpod or not record.spec.tty
    timestamps = call.flag("timestamps")
    request = cast(Request, call.request)
    request.setHeader(
        b"Content-Type",
        (MULTIPLEXED if multiplexed and call.version_at_least(1, 42) else RAW).encode()
        if not call.libpod
        else b"application/octet-stream",
    )

    def send(line: LogLine) -> None:
        wanted = (line.stream == "stdout" and want_out) or (line.stream == "stderr" and want_err)
        if wanted and (until_ns is None or line.time_ns <= until_ns):
            request.write(format_log_line(line, timestamps=timestamps, multiplexed=multiplexed))

    query = LogQuery(since_ns, until_ns, tail, follow=call.flag("follow"))
    found = await engine.logs.read(record, query)
    request.write(b"")
    for line in found.lines:
        send(line)
    if found.follow is not None:
        await found.follow.drain(send)


async def top_response(
    call: ApiCall, engine: Engine, clock: IReactorTime, name: str
) -> Response | None:
    """``GET /containers/{name}/top?ps_args=&stream=&delay=``: the host's ``ps`` rows of the
    container's pids (see :mod:`podapi.engine.top`).

    With ``stream`` (Podman's) a new table follows every ``delay`` seconds
    (default 5, paced by ``clock``) until the container stops or the client
    leaves.
    """
    delay = call.integer("delay", 5)
    if delay is None or delay < 1:
        raise BadRequest(f'"delay" parameter of value {delay} < 1')
    record = await engine.containers.resolve(name)
    ps_args = call.text("ps_args") or ""
    table = await engine.top.table(record, ps_args, libpod=call.libpod)
    if not call.flag("stream"):
        return json_response(top_body(table))
    out = JsonLines(call.request)
    while True:
        out.write(top_body(table))
        await task.deferLater(clock, delay)
        try:
            current = await engine.containers.get(record.id)
            table = await engine.top.table(current, ps_args, libpod=call.libpod)
        except (Conflict, NotFound):
            return None  # stopped or removed: the stream ends (Podman ends on any error)


def top_body(table: TopTable) -> dict[str, Any]:
    return {"Titles": table.titles, "Processes": table.processes}


async def changes_response(call: ApiCall, engine: Engine, name: str) -> Response:
    """``GET /containers/{name}/changes``: ``[{"Path", "Kind"}]``; 0 changed, 1 added, 2 deleted.

    Podman's ``diffType`` (``all``/``container``: the container's writes) is
    checked; ``image`` names an image, not a container, and a ``parent`` to
    diff against is not supported here (400; Podman compares the two layers).
    """
    diff_type = call.text("diffType") or "all"
    if diff_type not in ("all", "container", "image"):
        raise BadRequest(f'invalid diffType value "{diff_type}"')
    if diff_type == "image":
        raise BadRequest(f"diffType image compares images: {name} is a container")
    if call.text("parent"):
        raise BadRequest("a parent to compare with is not supported: changes are against the image")
    record = await engine.containers.resolve(name)
    found = await engine.containers.changes(record)
    return json_response([{"Path": path, "Kind": kind} for path, kind in found] or None)


def stop_timeout(call: ApiCall) -> int | None:
    """``t`` (Docker) or ``timeout`` (Podman) in seconds."""
    value = call.integer("t")
    if value is None:
        value = call.integer("timeout")
    if value is not None and value < -1:
        raise BadRequest("the stop timeout cannot be negative")
    return value


def wait_body(record: ContainerRecord) -> dict[str, Any]:
    """Docker's wait response."""
    error = {"Message": record.error} if record.error else None
    return {"StatusCode": record.exit_code, "Error": error}


async def prune_containers(call: ApiCall, engine: Engine) -> Pruned:
    """Remove stopped containers the filters (``until``, ``label``) select."""
    return await engine.removal.prune(call.filters())
