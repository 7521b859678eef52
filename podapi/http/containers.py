"""Container handler pieces shared by both trees: lookup, list selection, logs, top, changes.

Podman serves logs, top and changes with the same (compat) handlers on both
trees; so do we.
"""

from typing import Any, cast

from klein import Response
from twisted.internet import task
from twisted.web.server import Request

from podapi.engine import containerfilters
from podapi.engine.engine import Engine
from podapi.engine.state.containers import ContainerRecord
from podapi.engine.times import parse_timestamp
from podapi.errors import Conflict, InvalidArgument, NotFound
from podapi.http.call import ApiCall, BadRequest
from podapi.http.framing import format_log_line
from podapi.http.responses import json_response
from podapi.http.streams import JsonLines
from podapi.storage.k8slog import LogFollower, LogLine, read_lines

MULTIPLEXED = "application/vnd.docker.multiplexed-stream"
RAW = "application/vnd.docker.raw-stream"


async def selected(call: ApiCall, engine: Engine) -> list[ContainerRecord]:
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


async def logs(call: ApiCall, engine: Engine, name: str) -> None:
    """``GET /containers/{name}/logs``: k8s-file lines, framed unless the container has a TTY.

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
    multiplexed = not record.spec.tty
    timestamps = call.flag("timestamps")
    request = cast(Request, call.request)
    request.setHeader(
        b"Content-Type",
        (MULTIPLEXED if multiplexed and call.version_at_least(1, 42) else RAW).encode()
        if not call.libpod
        else b"application/octet-stream",
    )
    path = engine.containers.paths(record.id).log

    def send(line: LogLine) -> None:
        wanted = (line.stream == "stdout" and want_out) or (line.stream == "stderr" and want_err)
        if wanted and (until_ns is None or line.time_ns <= until_ns):
            request.write(format_log_line(line, timestamps=timestamps, multiplexed=multiplexed))

    follow = call.flag("follow") and record.alive
    lines, offset = await engine.io(partial_read, path, since_ns, until_ns, tail, not follow)
    request.write(b"")
    for line in lines:
        send(line)
    if not follow:
        return
    follower = LogFollower(engine.clock, path, offset, engine.io, send)
    follower.start()
    try:
        await engine.lifecycle.next_exit(record)
        await follower.finish()
    finally:
        await follower.stop()


def partial_read(
    path: str, since_ns: int | None, until_ns: int | None, tail: int | None, include_partial: bool
) -> tuple[list[LogLine], int]:
    """:func:`read_lines` with positional arguments (for the thread pool)."""
    return read_lines(
        path, since_ns=since_ns, until_ns=until_ns, tail=tail, include_partial=include_partial
    )


#: Podman's (psgo's) AIX format descriptors that procps ``ps -o`` shows alike, with
#: psgo's column titles.
PS_DESCRIPTORS = {
    "args": "COMMAND",
    "comm": "COMMAND",
    "etime": "ELAPSED",
    "group": "GROUP",
    "nice": "NI",
    "pcpu": "%CPU",
    "pgid": "PGID",
    "pid": "PID",
    "ppid": "PPID",
    "rgroup": "RGROUP",
    "rss": "RSS",
    "ruser": "RUSER",
    "stime": "STIME",
    "time": "TIME",
    "tty": "TTY",
    "user": "USER",
    "vsz": "VSZ",
}
#: What ``podman top`` shows without descriptors.
DEFAULT_DESCRIPTORS = ("user", "pid", "ppid", "pcpu", "etime", "tty", "time", "args")


def _ps_argv(call: ApiCall) -> list[str]:
    """``ps`` arguments for ``ps_args``: Docker's are ``ps`` options (``-ef`` by default);
    libpod's are descriptors (``pid,args``; none: Podman's default set), or options."""
    text = call.text("ps_args") or ""
    if not call.libpod:
        return ["ps", *(text or "-ef").split()]
    # Podman < 4.8 clients send ps_args split on commas; Docker sends one string.
    words = text.split(",") if " " not in text else text.split()
    words = [w for w in words if w] or list(DEFAULT_DESCRIPTORS)
    if not all(w in PS_DESCRIPTORS for w in words):
        return ["ps", *words]
    return ["ps", "-e", *(f"-o{w}={PS_DESCRIPTORS[w]}" for w in words)]


async def top(call: ApiCall, engine: Engine, name: str) -> Response | None:
    """``GET /containers/{name}/top?ps_args=&stream=&delay=``: the host's ``ps`` rows of the
    container's pids.

    Docker's approach: run ``ps`` on the host and keep the rows whose PID
    column is one of the container's processes, so it works whatever the
    image contains.  Libpod descriptors become ``ps -o`` columns with Podman's
    titles; unlike Podman (psgo), PIDs are the host's, and a PID column is
    needed to pick the container's rows.  With ``stream`` (Podman's) a new
    table follows every ``delay`` seconds (default 5) until the container
    stops or the client leaves.
    """
    delay = call.integer("delay", 5)
    if delay is None or delay < 1:
        raise BadRequest(f'"delay" parameter of value {delay} < 1')
    record = await engine.containers.resolve(name)
    table = await _top_table(call, engine, record)
    if not call.flag("stream"):
        return json_response(table)
    out = JsonLines(call.request)
    while True:
        out.write(table)
        await task.deferLater(engine.clock, delay)
        try:
            table = await _top_table(call, engine, await engine.containers.get(record.id))
        except (Conflict, NotFound):
            return None  # stopped or removed: the stream ends (Podman ends on any error)


async def _top_table(call: ApiCall, engine: Engine, record: ContainerRecord) -> dict[str, Any]:
    if not record.alive:
        raise Conflict(f"container {record.id} is not running", cause="container state improper")
    pids = set(await engine.lifecycle.runtime.ps(record.id))
    argv = _ps_argv(call)
    args_text = " ".join(argv[1:])
    result = await engine.runner.run(argv, timeout=30)
    if not result.ok:
        raise InvalidArgument(result.describe(), cause="ps failed")
    lines = result.stdout.decode("utf-8", "replace").splitlines()
    if not lines:
        raise InvalidArgument("ps printed nothing")
    titles = lines[0].split()
    try:
        pid_column = titles.index("PID")
    except ValueError:
        raise InvalidArgument(f"ps output has no PID column with ps_args {args_text!r}") from None
    processes = []
    for line in lines[1:]:
        fields = line.split(None, len(titles) - 1)
        if (
            len(fields) > pid_column
            and fields[pid_column].isdigit()
            and int(fields[pid_column]) in pids
        ):
            processes.append(fields)
    return {"Titles": titles, "Processes": processes}


async def changes(call: ApiCall, engine: Engine, name: str) -> Response:
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


async def prune(call: ApiCall, engine: Engine) -> tuple[list[str], int]:
    """Remove stopped containers the filters (``until``, ``label``) select."""
    filters = call.filters()
    keep = containerfilters.build(filters, anchors={}, image_ids={}, now_ns=engine.events.now_ns())
    removed, space = [], 0
    for record in await engine.containers.prunable(lambda c: not keep(c)):
        size, _ = await engine.containers.sizes(record)
        try:
            await engine.lifecycle.remove(record)
        except NotFound:
            continue
        removed.append(record.id)
        space += size
    return removed, space
