"""Exec sessions: a process run in a running container through conmon, as Podman does.

Each session gets a directory in its container's run dir that serves as
conmon's bundle (``attach`` socket, ``ctl`` FIFO, pid file) and exit dir.  The
exit code comes from conmon's sync socket while the server runs; a session
that outlived a server is settled from its exit file when it is next looked
at.  Sessions are stored until their container is removed.
"""

import contextlib
import json
import os
import secrets
from collections import defaultdict
from functools import partial

from twisted.internet import defer
from twisted.internet.defer import Deferred

from podapi import crashpoints
from podapi.engine.attach import AttachPoint, Connect
from podapi.engine.containers import ContainerService
from podapi.engine.containerspec import ExecSpec, merge_env
from podapi.engine.events import DETAIL
from podapi.engine.layout import Layout
from podapi.engine.lifecycle import Lifecycle
from podapi.engine.reactors import IContainerReactor
from podapi.engine.state import execs as rows
from podapi.engine.state.containers import PAUSED, ContainerRecord
from podapi.engine.state.database import State
from podapi.engine.state.execs import ExecRecord
from podapi.errors import Conflict, InvalidArgument
from podapi.logs import get_logger
from podapi.oci import capabilities, conmon, rootfs, spec
from podapi.oci.process import DEFAULT_PATH
from podapi.oci.runtime import RuntimeFailure
from podapi.threads import Blocking

log = get_logger(__name__)

#: Podman's exit codes for a command that cannot run (``define.ExecErrorCode*``); Docker
#: uses 126 for all.
NOT_FOUND, CANNOT_INVOKE, GENERIC = 127, 126, 125

#: Called with the session's attach point to connect to it.
Attach = Connect


class ExecFailed(InvalidArgument):
    """The runtime could not run the command (missing, not executable...).

    :ivar exit_code: what the session's inspect reports (127, 126 or 125).
    """

    cause = "exec failed"

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def failure_exit_code(message: str) -> int:
    """Podman's code for a runtime's refusal to run a command (``runc exec`` stderr)."""
    text = message.lower()
    if "executable file not found" in text or "no such file or directory" in text:
        return NOT_FOUND
    if "permission denied" in text or "not a directory" in text:
        return CANNOT_INVOKE
    return GENERIC


def check_running(container: ContainerRecord) -> None:
    """Exec needs a running, unpaused container (409 otherwise, as Docker)."""
    if container.state == PAUSED:
        raise Conflict(
            f"Container {container.id} is paused, unpause the container before exec",
            cause="container state improper",
        )
    if not container.alive:
        raise Conflict(f"Container {container.id} is not running", cause="container state improper")


#: How long a resize waits for its session to start.  Docker's daemon waits up to
#: 10 s (moby daemon/resize.go); a start on its way comes within milliseconds, and a
#: resize of a session nobody starts is answered sooner.
START_WAIT = 2.0


class ExecService:
    """Creating, starting and following exec sessions.

    :param lifecycle: gives the runtime and conmon (a clear error when missing).
    """

    def __init__(
        self,
        containers: ContainerService,
        *,
        layout: Layout,
        state: State,
        io: Blocking,
        clock: IContainerReactor,
        lifecycle: Lifecycle,
    ) -> None:
        self._containers = containers
        self._layout = layout
        self._state = state
        self._io = io
        self._clock = clock
        self._lifecycle = lifecycle
        self._live: set[str] = set()
        self._waiters: defaultdict[str, list[Deferred[ExecRecord]]] = defaultdict(list)
        #: Resizes waiting for a session to start (or fail to).
        self._start_waiters: defaultdict[str, list[Deferred[None]]] = defaultdict(list)

    async def create(self, container: ContainerRecord, exec_spec: ExecSpec) -> ExecRecord:
        """Store a new session for a running container."""
        check_running(container)
        if not exec_spec.command:
            raise InvalidArgument("No exec command specified", cause="no command")
        record = ExecRecord(
            id=secrets.token_hex(32),
            container_id=container.id,
            spec=exec_spec,
            created=self._containers.now(),
        )
        await self._state.write(partial(rows.insert, record=record))
        self._containers.emit(container, "exec_create", execID=record.id, **_detail(exec_spec))
        return record

    async def get(self, exec_id: str) -> ExecRecord:
        """A session by ID (404 if unknown), settled from its exit file if it ended unseen."""
        record = await self._state.read(partial(rows.load, exec_id=exec_id))
        if record.running and record.id not in self._live:
            container = await self._containers.get(record.container_id)
            directory = self._containers.paths(container.id).exec_dir(record.id)
            code = await self._io(conmon.read_exit_file, _exit_dir(directory), container.id)
            if code is None and not (
                container.alive and await self._io(conmon.running, _conmon_pid_file(directory))
            ):
                # Killed with its container, or its conmon is gone (or never ran: a
                # server killed between the claim and conmon) without an exit file.
                code = CANNOT_INVOKE if record.pid == 0 else 137
            if code is not None:
                record = await self._finish(record, code)
        return record

    async def start(
        self,
        record: ExecRecord,
        attach: Attach | None,
        size: tuple[int, int] | None = None,
        *,
        docker_exit_codes: bool = False,
    ) -> ExecRecord:
        """Run the session (once); ``attach`` is connected before the process starts.

        :param size: ``(height, width)`` of the session's terminal.
        :param docker_exit_codes: a command the runtime cannot run exits 126
            whatever the reason, as Docker's does (moby ``daemon/exec.go``: any
            error starting the exec sets ``ExitCode`` 126); otherwise Podman's
            codes (127 not found, 126 cannot invoke, 125 other;
            :func:`failure_exit_code`).
        :raises ExecFailed: the runtime refused the command; the session is
            then exited with that code.
        """
        container = await self._containers.get(record.container_id)
        check_running(container)
        claimed = await self._state.write(partial(rows.claim_start, exec_id=record.id))
        if claimed is None:
            raise Conflict(
                f"exec session {record.id} has already been started",
                cause="exec session state improper",
            )
        # Live from the claim on: a look at the session meanwhile must not take it
        # for one a crash left behind.
        self._live.add(record.id)
        crashpoints.reached("exec-claimed")
        directory = self._containers.paths(container.id).exec_dir(record.id)
        try:
            process = await self._io(self._write_process, container, record.spec, directory)
            config = self._conmon_config(container, record, directory, process, attach is not None)
            connect = (lambda: _connected(attach, directory)) if attach is not None else None
            started = await conmon.exec_in_container(self._clock, config, connect)
        except RuntimeFailure as e:
            self._live.discard(record.id)
            code = CANNOT_INVOKE if docker_exit_codes else failure_exit_code(e.message)
            await self._finish(claimed, code)
            raise ExecFailed(e.message, code) from e
        except BaseException:
            self._live.discard(record.id)
            await self._finish(claimed, GENERIC)
            raise
        else:
            await self._state.write(partial(rows.set_pid, exec_id=record.id, pid=started.pid))
        finally:
            for waiter in self._start_waiters.pop(record.id, []):
                if not waiter.called:  # not timed out
                    waiter.callback(None)
        self._containers.emit(container, "exec", execID=record.id, **_detail(record.spec))
        started.exited.addCallback(self._exited, claimed, directory)
        if size is not None and record.spec.tty:
            await self.resize(claimed, *size)
        return await self._state.read(partial(rows.load, exec_id=record.id))

    async def resize(
        self, record: ExecRecord, height: int, width: int, *, wait: bool = True
    ) -> None:
        """Set a running TTY session's terminal size through its conmon.

        With ``wait``, a session not started yet, or starting, is waited for (at
        most :data:`START_WAIT`), as Docker's daemon does: clients such as
        Cockpit's console send the start and the first resize together, on two
        connections.
        """
        if wait and record.pid == 0 and record.exit_code is None:
            waiter: Deferred[None] = Deferred()
            self._start_waiters[record.id].append(waiter)
            waiter.addTimeout(START_WAIT, self._clock)
            with contextlib.suppress(defer.TimeoutError):
                await waiter
            record = await self.get(record.id)
        if not record.running or record.pid == 0:
            raise Conflict(
                f"exec session {record.id} is not running", cause="exec session state improper"
            )
        directory = self._containers.paths(record.container_id).exec_dir(record.id)
        await self._io(conmon.resize, directory, height, width)

    def finished(self, exec_id: str) -> Deferred[ExecRecord]:
        """Fires with the exited record once a live session's exit is recorded."""
        if exec_id not in self._live:
            return Deferred.fromCoroutine(self.get(exec_id))
        d: Deferred[ExecRecord] = Deferred()
        self._waiters[exec_id].append(d)
        return d

    def _exited(self, code: int | None, record: ExecRecord, directory: str) -> Deferred[None]:
        async def settle() -> None:
            exit_code = code
            if exit_code is None:
                exit_code = await self._io(
                    conmon.read_exit_file, _exit_dir(directory), record.container_id
                )
            done = await self._finish(record, 137 if exit_code is None else exit_code)
            self._live.discard(record.id)
            for waiter in self._waiters.pop(record.id, []):
                waiter.callback(done)

        d = Deferred.fromCoroutine(settle())
        d.addErrback(lambda f: log.failure("settling exec {id}", f, id=record.id))
        return d

    async def _finish(self, record: ExecRecord, code: int) -> ExecRecord:
        # The container is read first so exec_died goes out as the finish is written:
        # a client that sees the session ended (inspect, the start stream's end)
        # already finds the event (the load bench saw it missing for a moment).
        container = None
        with contextlib.suppress(Exception):
            container = await self._containers.get(record.container_id)
        done = await self._state.write(partial(rows.finish, exec_id=record.id, exit_code=code))
        if done is None:
            return await self._state.read(partial(rows.load, exec_id=record.id))
        if container is not None:
            self._containers.emit(container, "exec_died", execID=record.id, exitCode=str(code))
        return done

    def _write_process(
        self, container: ContainerRecord, exec_spec: ExecSpec, directory: str
    ) -> str:
        """The session's directory and OCI process file (blocking); returns the file."""
        paths = self._containers.paths(container.id)
        with open(paths.config_json, encoding="utf-8") as f:
            base = json.load(f)["process"]
        user = None
        if exec_spec.user:
            found = rootfs.resolve_user(paths.merged, exec_spec.user, container.spec.group_add)
            user = (found.uid, found.gid, found.additional_gids)
        env = merge_env(base.get("env") or (), exec_spec.env)
        if not any(e.startswith("PATH=") for e in env):
            env = (f"PATH={DEFAULT_PATH}", *env)
        process = spec.exec_process(
            base,
            args=exec_spec.command,
            env=env,
            cwd=exec_spec.working_dir or base.get("cwd") or "/",
            terminal=exec_spec.tty,
            user=user,
            capabilities=capabilities.effective([], [], True) if exec_spec.privileged else None,
        )
        os.makedirs(_exit_dir(directory), mode=0o700, exist_ok=True)
        path = os.path.join(directory, "process.json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(process, f)
        return path

    def _conmon_config(
        self,
        container: ContainerRecord,
        record: ExecRecord,
        directory: str,
        process: str,
        attached: bool,
    ) -> conmon.ConmonConfig:
        tty = record.spec.tty
        return conmon.ConmonConfig(
            container_id=container.id,
            name=container.name,
            bundle=directory,
            runtime=self._lifecycle.runtime.path,
            runtime_root=self._layout.runtime_state,
            conmon=self._lifecycle.conmon_path,
            exit_dir=_exit_dir(directory),
            pid_file=os.path.join(directory, "exec_pid"),
            conmon_pid_file=_conmon_pid_file(directory),
            log_path=None,
            conmon_log=os.path.join(directory, "conmon.log"),
            env={"PATH": os.environ.get("PATH", DEFAULT_PATH)},
            terminal=tty,
            stdin=attached and record.spec.attach_stdin,
            exec_process=conmon.ExecProcess(
                exec_id=record.id, process_spec=process, attach=attached
            ),
        )


def _conmon_pid_file(directory: str) -> str:
    return os.path.join(directory, "conmon.pid")


def _exit_dir(directory: str) -> str:
    # Not the container's exit dir: conmon names the file after the container.
    return os.path.join(directory, "exit")


async def _connected(attach: Attach, directory: str) -> None:
    attach(AttachPoint(directory))


def _detail(exec_spec: ExecSpec) -> dict[str, str]:
    """The command Docker's ``exec_create: CMD`` / ``exec_start: CMD`` actions name."""
    return {DETAIL: " ".join(exec_spec.command)}
