"""Exec routes, the same handlers on both trees as in Podman 4.3.1:
``POST /containers/{name}/exec``, ``POST /exec/{id}/start``, ``POST /exec/{id}/resize``,
``GET /exec/{id}/json``.

An attached start hijacks the connection (:class:`StreamSession`): the framing
follows the ``Tty`` of the *start* request, as in Docker; the connection closes
once the process's output has ended *and* its exit code is recorded, so a client
that inspects the session right after the stream sees the code.  A detached
start (or one with no stream to attach) answers 200 with an empty body.

Differences from Podman 4.3.1, on purpose: creating an exec session in a stopped
container is 409 (Docker's status; 4.3.1 says 500); a command the runtime cannot
run is reported in the stream as ``Error: ...`` and by the session's exit code,
or as 400 for a detached start.  That code is Docker's 126 on the compat tree
(moby sets 126 for any failed exec start; 4.3.1 answers Podman's codes there
too), Podman's on the libpod tree (127 not found, 126 not executable).
"""

from typing import Any

from klein import Response
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime

from podapi.engine.containerspec import ExecSpec
from podapi.engine.engine import Engine
from podapi.engine.execs import check_running
from podapi.engine.state.execs import ExecRecord
from podapi.errors import Conflict, PodapiError
from podapi.http.both.attach import content_type
from podapi.http.call import ApiCall, BadRequest
from podapi.http.detachkeys import DEFAULT_DETACH_KEYS, parse_detach_keys
from podapi.http.hijack import HijackResource, stream_head
from podapi.http.responses import json_response, no_content, text_response
from podapi.http.routing import Router
from podapi.http.streamsession import StreamSession
from podapi.logs import get_logger

log = get_logger(__name__)


def _strings(body: dict[str, Any], key: str) -> tuple[str, ...]:
    value = body.get(key.lower()) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadRequest(f"{key} must be a list of strings")
    return tuple(value)


def _flag(body: dict[str, Any], key: str) -> bool:
    value = body.get(key.lower(), False)
    if not isinstance(value, bool):
        raise BadRequest(f"{key} must be a boolean")
    return value


def _text(body: dict[str, Any], key: str) -> str:
    value = body.get(key.lower()) or ""
    if not isinstance(value, str):
        raise BadRequest(f"{key} must be a string")
    return value


def _go_fields(body: Any, what: str) -> dict[str, Any]:
    """A JSON object with lower-cased keys: Go's decoder matches fields case-insensitively.

    docker-py, for one, sends ``detachKeys`` for Docker's ``DetachKeys``.
    """
    if not isinstance(body, dict):
        raise BadRequest(f"the {what} must be a JSON object")
    return {key.lower(): value for key, value in body.items()}


def decode_exec(raw: Any) -> ExecSpec:
    """Docker's ``ExecConfig`` JSON as an :class:`ExecSpec` (400 for bad fields)."""
    body = _go_fields(raw, "exec configuration")
    command = _strings(body, "Cmd")
    if not command:
        raise BadRequest("No exec command specified")
    env = _strings(body, "Env")
    for item in env:
        if "=" not in item:
            raise BadRequest(f"environment variable {item!r} badly formed, must be key=value")
    detach_keys = body.get("detachkeys")
    if detach_keys is not None:
        if not isinstance(detach_keys, str):
            raise BadRequest("DetachKeys must be a string")
        parse_detach_keys(detach_keys)  # refuse bad keys now, not at start
    return ExecSpec(
        command=command,
        env=env,
        user=_text(body, "User"),
        working_dir=_text(body, "WorkingDir"),
        tty=_flag(body, "Tty"),
        attach_stdin=_flag(body, "AttachStdin"),
        attach_stdout=_flag(body, "AttachStdout"),
        attach_stderr=_flag(body, "AttachStderr"),
        privileged=_flag(body, "Privileged"),
        detach_keys=detach_keys or None,
    )


def encode_exec(record: ExecRecord) -> dict[str, Any]:
    """Podman 4.3.1's ``InspectExecSession`` (Docker's shape, an integer ``ExitCode``)."""
    spec = record.spec
    return {
        "CanRemove": not record.running,
        "ContainerID": record.container_id,
        "DetachKeys": DEFAULT_DETACH_KEYS if spec.detach_keys is None else spec.detach_keys,
        "ExitCode": record.exit_code or 0,
        "ID": record.id,
        "OpenStderr": spec.attach_stderr,
        "OpenStdin": spec.attach_stdin,
        "OpenStdout": spec.attach_stdout,
        "Running": record.running,
        "Pid": record.pid,
        "ProcessConfig": {
            "arguments": list(spec.command[1:]),
            "entrypoint": spec.command[0],
            "privileged": spec.privileged,
            "tty": spec.tty,
            "user": spec.user,
        },
    }


class ExecRoutes:
    """Exec sessions on both trees.

    :param clock: times hijacked connections out.
    """

    def __init__(self, engine: Engine, clock: IReactorTime) -> None:
        self._engine = engine
        self._clock = clock

    def register(self, router: Router) -> None:
        """Add the routes to both trees."""
        for add in (router.compat, router.libpod):
            add("POST", "/containers/<name>/exec", self.create)
            add("POST", "/exec/<exec_id>/start", self.start)
            add("POST", "/exec/<exec_id>/resize", self.resize)
            add("GET", "/exec/<exec_id>/json", self.inspect)

    async def create(self, call: ApiCall, name: str) -> Response:
        """201 ``{"Id"}``; 409 when the container is not running or paused."""
        spec = decode_exec(call.json_body(empty_ok=False))
        container = await self._engine.containers.resolve(name)
        record = await self._engine.execs.create(container, spec)
        return json_response({"Id": record.id}, 201)

    async def inspect(self, call: ApiCall, exec_id: str) -> Response:
        """The session, with its exit code once it has ended."""
        return json_response(encode_exec(await self._engine.execs.get(exec_id)))

    async def resize(self, call: ApiCall, exec_id: str) -> Response:
        """``?h=&w=&running=``: the session's terminal size (201, as Podman); a
        session that is not running (after a short wait for its start) is a 409,
        or ignored at once with ``running=true`` (what podman's client sends)."""
        record = await self._engine.execs.get(exec_id)
        height, width = call.integer("h", 0) or 0, call.integer("w", 0) or 0
        ignore = call.flag("running")
        try:
            await self._engine.execs.resize(record, height, width, wait=not ignore)
        except Conflict:
            if not ignore:
                raise
        return no_content(201)

    async def start(self, call: ApiCall, exec_id: str) -> Response | HijackResource:
        """Body ``{"Detach", "Tty", "h", "w"}``: hijack and stream, or run detached."""
        body = _go_fields(call.json_body(), "exec start configuration")
        detach, tty = _flag(body, "Detach"), _flag(body, "Tty")
        size = _size(body)
        execs = self._engine.execs
        record = await execs.get(exec_id)
        check_running(await self._engine.containers.get(record.container_id))
        spec = record.spec
        if detach or not (spec.attach_stdin or spec.attach_stdout or spec.attach_stderr):
            await execs.start(record, None, size, docker_exit_codes=not call.libpod)
            return text_response("", newline=False)  # Docker's empty body (Podman adds "\n")

        started_exec: Deferred[None] = Deferred()

        async def run(session: StreamSession) -> None:
            try:
                await execs.start(record, session.connect, size, docker_exit_codes=not call.libpod)
            except PodapiError as e:
                # Written before anything closes the stream (see before_end).
                session.write_error(str(e))
                session.finish()
            except Exception:
                log.failure("starting exec {id}", id=record.id)
                session.finish()

        def started(session: StreamSession) -> None:
            Deferred.fromCoroutine(run(session)).chainDeferred(started_exec)

        async def before_end() -> None:
            await started_exec
            await execs.finished(record.id)

        session = StreamSession(
            multiplexed=not tty,
            stdin=spec.attach_stdin,
            stdout=spec.attach_stdout,
            stderr=spec.attach_stderr,
            detach_keys=parse_detach_keys(
                DEFAULT_DETACH_KEYS if spec.detach_keys is None else spec.detach_keys
            ),
            on_start=started,
            before_end=before_end,
        )
        return HijackResource(lambda: session, stream_head(content_type(call, tty)), self._clock)


def _size(body: dict[str, Any]) -> tuple[int, int] | None:
    """``(height, width)`` from ``h``/``w`` or ``ConsoleSize``, if given."""
    console = body.get("consolesize")
    if isinstance(console, list) and len(console) == 2 and all(isinstance(v, int) for v in console):
        height, width = console
    else:
        height, width = body.get("h") or 0, body.get("w") or 0
    if not isinstance(height, int) or not isinstance(width, int):
        raise BadRequest("h and w must be integers")
    return (height, width) if height > 0 and width > 0 else None
