"""Containers under conmon, launched the way Podman 4 launches them.

conmon is the container's monitor: it runs ``runc create``, holds the
container's stdio (k8s-file log, ``attach`` socket, ``ctl``/``winsz`` FIFOs in
the bundle), writes the exit file when the container ends and then runs the
exit command.  It double-forks, so the process we spawn exits within
milliseconds and the real conmon is reparented: containers outlive the API
service, which rediscovers them from pid files and exit files.

The launch protocol (conmon 2.1.6 ``conmon.c``, ``parent_pipe_fd.c``): two
SOCK_SEQPACKET socketpairs are inherited as fd 3 (``_OCI_SYNCPIPE``) and fd 4
(``_OCI_STARTPIPE``).  conmon blocks until something is written on the start
socket (Podman first moves conmon into a cgroup), then reports
``{"data": <init pid>}`` on the sync socket, or ``{"data": -1, "message": "..."}``
when ``runc create`` failed.  The caller runs ``runc start`` afterwards
(:meth:`podapi.oci.runtime.OCIRuntime.start`).

Exec sessions (:func:`exec_in_container`) use
the same launch with ``-e`` and, when attached, a third socketpair on fd 5
(``_OCI_ATTACHPIPE``): conmon reports there when the exec's ``attach``
socket listens, and waits for a second write on the start socket before it
runs ``runc exec``.  The sync socket then gives the exec's pid and, when it
ends, its exit code.
"""

import contextlib
import errno
import json
import os
import signal
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import cast

from attrs import field, frozen
from twisted.internet.defer import (
    CancelledError,
    Deferred,
    DeferredQueue,
    TimeoutError,
    succeed,
)
from twisted.internet.error import ProcessExitedAlready, ProcessTerminated
from twisted.internet.interfaces import (
    IProcessTransport,
    IReactorFDSet,
    IReactorProcess,
    IReactorTime,
)
from twisted.internet.protocol import ProcessProtocol
from twisted.python.failure import Failure

from podapi.logs import get_logger
from podapi.oci.runtime import RuntimeFailure, runc_messages
from podapi.oci.seqpacket import SeqPacketSocket, SocketPair, socketpair

log = get_logger(__name__)

#: How much of conmon's and runc's log files goes into an error message.
_TAIL_BYTES = 4096

#: Seconds to wait for a SIGKILLed launcher to be reaped.
_REAP_TIMEOUT = 5.0

#: ``ctl`` FIFO message types (conmon ``ctrl.c``).
_CTL_RESIZE = 1
_CTL_REOPEN_LOG = 2


def _env(value: Mapping[str, str]) -> dict[str, str]:
    return dict(value)


def _strings(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


def _has_path(_inst: object, attribute: object, value: dict[str, str]) -> None:
    # conmon's environment is all runc and the exit command get.
    if "PATH" not in value:
        raise ValueError("conmon's environment needs PATH")


def _no_colon(_inst: object, attribute: object, value: str | None) -> None:
    # conmon splits every -l value at ':' (driver:path), so such a path
    # would be cut short (conmon's ``parse_log_path``).
    if value is not None and ":" in value:
        raise ValueError(f"conmon log path must not contain ':': {value!r}")


def _absolute_command(_inst: object, attribute: object, value: tuple[str, ...]) -> None:
    # conmon execv()s the exit command: no shell, no PATH lookup.
    if value and not os.path.isabs(value[0]):
        raise ValueError(f"exit command must be an absolute path: {value[0]!r}")


@frozen
class ExecProcess:
    """What turns a conmon launch into an exec session in a running container."""

    #: The session's id (conmon's ``-u``).
    exec_id: str
    #: A JSON file holding the OCI ``process`` to run (``--exec-process-spec``).
    process_spec: str
    #: Serve an ``attach`` socket in the bundle and wait for a client before running.
    attach: bool


@frozen
class ConmonConfig:
    """Everything conmon needs to create one container.

    The bundle's ``config.json`` must already be written; its
    ``process.terminal`` must match :attr:`terminal`.
    """

    #: Container id: the runtime's id and the exit file's name.
    container_id: str
    #: Container name, shown by conmon in its own messages.
    name: str
    #: Bundle directory; conmon creates ``attach``, ``ctl`` and ``winsz`` in it.
    bundle: str
    #: Absolute path of the OCI runtime.
    runtime: str
    #: The runtime's ``--root`` (the same one :class:`OCIRuntime` uses).
    runtime_root: str
    #: Absolute path of conmon.
    conmon: str
    #: Directory conmon writes the exit file ``<container_id>`` to.
    exit_dir: str
    #: Where runc writes the container init pid (``-p``).
    pid_file: str
    #: Where conmon writes its own (daemonised) pid.
    conmon_pid_file: str
    #: The container's k8s-file log (None: no log, as for exec sessions).
    log_path: str | None = field(validator=_no_colon)
    #: Where conmon's own stdout and stderr go.
    conmon_log: str
    #: conmon's entire environment (``PATH`` at least); it hands it on to runc
    #: and to the exit command unchanged.
    env: dict[str, str] = field(converter=_env, validator=_has_path)
    #: Bytes after which conmon starts the log over (no rotation).
    log_size_max: int | None = None
    #: Give the container a terminal (``-t``).
    terminal: bool = False
    #: Keep a pipe to the container's stdin (``-i``).
    stdin: bool = False
    #: Run after the container has exited: absolute executable, then arguments.
    exit_command: tuple[str, ...] = field(
        default=(), converter=_strings, validator=_absolute_command
    )
    #: Seconds conmon waits before running the exit command.
    exit_delay: int | None = None
    #: Set for an exec session instead of a container.
    exec_process: ExecProcess | None = None

    @property
    def runtime_log(self) -> str:
        """runc's ``--log`` file, read when creation fails."""
        return os.path.join(self.bundle, "oci-log")

    @property
    def ctl_path(self) -> str:
        """conmon's control FIFO."""
        return os.path.join(self.bundle, "ctl")

    @property
    def attach_path(self) -> str:
        """conmon's attach socket (SOCK_SEQPACKET)."""
        return os.path.join(self.bundle, "attach")


def conmon_argv(config: ConmonConfig) -> list[str]:
    """conmon's command line for a container, as Podman 4.3 writes it.

    ``--api-version`` is a flag; Podman's stray ``1`` is ignored by conmon and
    kept here for fidelity.  ``-s`` is *not* passed: it means systemd cgroups.
    """
    argv = [
        config.conmon,
        "--api-version",
        "1",
        "-c",
        config.container_id,
        "-u",
        config.exec_process.exec_id if config.exec_process else config.container_id,
        "-r",
        config.runtime,
        "-b",
        config.bundle,
        "-p",
        config.pid_file,
        "-n",
        config.name,
        "--exit-dir",
        config.exit_dir,
        "--full-attach",
        "-l",
        f"k8s-file:{config.log_path}" if config.log_path else "none",
        "--log-level",
        "warning",
        "--runtime-arg",
        f"--root={config.runtime_root}",
        "--runtime-arg",
        "--log-format=json",
        "--runtime-arg",
        "--log",
        f"--runtime-arg={config.runtime_log}",
        "--conmon-pidfile",
        config.conmon_pid_file,
    ]
    if config.exec_process is not None:
        argv += ["-e", "--exec-process-spec", config.exec_process.process_spec]
        if config.exec_process.attach:
            argv.append("--exec-attach")
    # Podman (oci_conmon_common.go): -t for a terminal, else -i when stdin is kept
    # open.  With both, conmon serves input and output to the first attach only.
    if config.terminal:
        argv.append("-t")
    elif config.stdin:
        argv.append("-i")
    if config.log_size_max is not None:
        argv += ["--log-size-max", str(config.log_size_max)]
    if config.exit_command:
        argv += ["--exit-command", config.exit_command[0]]
        for arg in config.exit_command[1:]:
            argv += ["--exit-command-arg", arg]
    if config.exit_delay is not None:
        argv += ["--exit-delay", str(config.exit_delay)]
    return argv


@frozen
class Created:
    """A container conmon has created (state ``created``, not yet started)."""

    #: The container's init process on the host.
    pid: int
    #: The daemonised conmon watching it.
    conmon_pid: int


@frozen
class SyncMessage:
    """One line from conmon's sync socket."""

    #: A pid (>= 0) or exit status; negative when the runtime failed.
    data: int
    #: The runtime's stderr when ``data`` is negative.
    message: str = ""


class SyncChannel:
    """conmon's sync socket: newline-terminated JSON objects with a ``data`` key.

    conmon sends one object per message today, but lines are reassembled
    anyway, so a split or merged message is still read correctly.
    """

    def __init__(self, sock: SocketPair, reactor: IReactorFDSet) -> None:
        self._buffer = b""
        self._queue: DeferredQueue[SyncMessage | None] = DeferredQueue()
        self._socket = SeqPacketSocket(sock.parent, self._received, self._lost, reactor).start()

    def _received(self, data: bytes) -> None:
        self._buffer += data
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            message = _parse_sync(line)
            if message is not None:
                self._queue.put(message)

    def _lost(self, reason: Failure) -> None:
        # A final unterminated line still counts.
        message = _parse_sync(self._buffer)
        self._buffer = b""
        if message is not None:
            self._queue.put(message)
        self._queue.put(None)

    async def next(self) -> SyncMessage | None:
        """The next message; None once conmon has closed the socket."""
        return await self._queue.get()

    def close(self) -> None:
        """Stop reading and close our end."""
        self._socket.close()


def _parse_sync(line: bytes) -> SyncMessage | None:
    """A :class:`SyncMessage` from one line, or None for anything else."""
    try:
        obj = json.loads(line)
    except ValueError:
        return None
    if not isinstance(obj, dict) or not isinstance(obj.get("data"), int):
        return None
    return SyncMessage(data=obj["data"], message=str(obj.get("message", "")))


class _Launcher(ProcessProtocol):
    """The conmon process we spawn: it only lives until conmon has forked."""

    def __init__(self) -> None:
        self._status: tuple[int | None, int | None] | None = None
        self._waiters: list[Deferred[tuple[int | None, int | None]]] = []

    def processEnded(self, reason: Failure) -> None:
        if isinstance(reason.value, ProcessTerminated):
            self._status = (reason.value.exitCode, reason.value.signal)
        else:
            self._status = (0, None)
        waiters, self._waiters = self._waiters, []
        for d in waiters:
            d.callback(self._status)

    def ended(self) -> Deferred[tuple[int | None, int | None]]:
        """Fires with ``(exit_code, signal)`` once the process is reaped.

        A new Deferred per call, so cancelling one wait leaves later ones intact.
        """
        if self._status is not None:
            return succeed(self._status)
        d: Deferred[tuple[int | None, int | None]] = Deferred(self._waiters.remove)
        self._waiters.append(d)
        return d


async def create_container(
    reactor: IReactorProcess, config: ConmonConfig, timeout: float = 30.0
) -> Created:
    """Have conmon run ``runc create`` for ``config``; the container is left ``created``.

    :param reactor: provides ``spawnProcess``, ``callLater`` and the fd set.
    :param timeout: seconds for the whole launch, ``runc create`` included.
    :raises RuntimeFailure: runc create failed (runc's message, plus the tail of
        its ``--log``), conmon died (its own log), or the timeout passed.
        The caller then runs ``runc delete --force`` to drop what runc made.
    """
    created, channel = await _launch_within(reactor, config, None, timeout)
    channel.close()
    return created


@frozen
class ExecStarted:
    """A running exec session."""

    #: The exec'd process on the host.
    pid: int
    #: The daemonised conmon watching it.
    conmon_pid: int
    #: Fires with the exit code when the process has ended (None when conmon
    #: went away without saying; its exit file may still tell).
    exited: Deferred[int | None]


async def exec_in_container(
    reactor: IReactorProcess,
    config: ConmonConfig,
    attach: Callable[[], Awaitable[None]] | None,
    timeout: float = 30.0,
) -> ExecStarted:
    """Have conmon ``runc exec`` ``config.exec_process`` in a running container.

    :param attach: for an attached session: connects to the session's attach
        socket (``<bundle>/attach``) once conmon listens there; conmon runs the
        process only after it returns, so no output is missed.
    :raises RuntimeFailure: runc exec failed (the message says why: a missing
        executable, permission denied...), conmon died, or the timeout passed.
    """
    created, channel = await _launch_within(reactor, config, attach, timeout)
    return ExecStarted(created.pid, created.conmon_pid, Deferred.fromCoroutine(_exit_code(channel)))


async def _exit_code(channel: SyncChannel) -> int | None:
    try:
        message = await channel.next()
        return None if message is None else message.data
    finally:
        channel.close()


async def _launch_within(
    reactor: IReactorProcess,
    config: ConmonConfig,
    attach: Callable[[], Awaitable[None]] | None,
    timeout: float,
) -> tuple[Created, SyncChannel]:
    d = Deferred.fromCoroutine(_launch(reactor, config, attach))
    d.addTimeout(timeout, cast(IReactorTime, reactor))
    try:
        return await d
    except TimeoutError as e:
        what = "exec session" if config.exec_process else "container"
        raise RuntimeFailure(
            f"conmon: the {what} {config.container_id} was not created within {timeout:g}s"
            + _diagnostics(config)
        ) from e


async def _launch(
    reactor: IReactorProcess,
    config: ConmonConfig,
    attach: Callable[[], Awaitable[None]] | None,
) -> tuple[Created, SyncChannel]:
    """Spawn conmon, let it go, and read the pid; the sync channel stays open."""
    # Stale files from an earlier run must not be taken for this one's.
    _unlink(config.conmon_pid_file)
    _unlink(config.runtime_log)
    fds = cast(IReactorFDSet, reactor)
    sync, start = socketpair(), socketpair()
    pairs = {3: sync, 4: start}
    if attach is not None:
        pairs[5] = socketpair()
    channel = SyncChannel(sync, fds)
    attach_ready = SyncChannel(pairs[5], fds) if attach is not None else None
    launcher = _Launcher()
    transport: IProcessTransport | None = None
    launched = False
    try:
        transport = _spawn(
            reactor,
            launcher,
            conmon_argv(config),
            env=config.env,
            conmon_log=config.conmon_log,
            pairs=pairs,
        )
        # "Go": Podman would first move conmon into its cgroup.
        # EPIPE: conmon already died (bad arguments); its exit status says why.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            start.parent.send(b"0")
        exit_code, signo = await launcher.ended()
        if exit_code != 0:
            how = f"signal {signo}" if signo is not None else f"status {exit_code}"
            raise RuntimeFailure(
                f"conmon for {config.container_id} exited with {how}" + _diagnostics(config)
            )
        if attach is not None and attach_ready is not None:
            await _attach_then_go(config, attach_ready, attach, start)
        message = await channel.next()
        if message is None:
            raise RuntimeFailure(
                f"conmon for {config.container_id} exited before reporting the pid"
                + _diagnostics(config)
            )
        if message.data < 0:
            text = runc_messages(message.message.encode()) or "runtime failed"
            raise RuntimeFailure(text + _diagnostics(config, said=text, conmon_log=False))
        launched = True
        return Created(message.data, _read_pid(config.conmon_pid_file)), channel
    except CancelledError:
        # Timed out or the caller went away: do not leave conmon waiting.
        if transport is not None:
            _kill(transport)
            # Reaped before we report, so nothing of this launch lingers.
            with contextlib.suppress(TimeoutError):
                await launcher.ended().addTimeout(_REAP_TIMEOUT, cast(IReactorTime, reactor))
        _kill_conmon(config.conmon_pid_file)
        raise
    finally:
        if not launched:
            channel.close()
            sync.close()
        if attach_ready is not None:
            attach_ready.close()
            pairs[5].close()
        start.close()


async def _attach_then_go(
    config: ConmonConfig,
    attach_ready: SyncChannel,
    attach: Callable[[], Awaitable[None]],
    start: SocketPair,
) -> None:
    """Wait for the exec's attach socket, let the client connect, then say go again."""
    listening = await attach_ready.next()
    if listening is None or listening.data < 0:
        raise RuntimeFailure(
            f"conmon for {config.container_id} did not open the attach socket"
            + _diagnostics(config)
        )
    await attach()
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        start.parent.send(b"0")


def _spawn(
    reactor: IReactorProcess,
    protocol: ProcessProtocol,
    argv: list[str],
    *,
    env: Mapping[str, str],
    conmon_log: str,
    pairs: Mapping[int, SocketPair],
) -> IProcessTransport:
    """Spawn conmon with ``pairs`` as its extra fds and its output in ``conmon_log``.

    There are no pipes to us: conmon's grandchild would hold them open for
    the container's lifetime, and a log file nobody reads cannot fill up.
    """
    full_env = dict(env)
    names = {3: "_OCI_SYNCPIPE", 4: "_OCI_STARTPIPE", 5: "_OCI_ATTACHPIPE"}
    for fd in pairs:
        full_env[names[fd]] = str(fd)
    devnull = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    logfd = os.open(conmon_log, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
    try:
        child_fds: dict[int, int | str] = {0: devnull, 1: logfd, 2: logfd}
        child_fds.update({fd: pair.child_fd() for fd, pair in pairs.items()})
        # No ``path``: Twisted then uses posix_spawn instead of fork(), and
        # conmon and runc only ever see absolute paths.
        return reactor.spawnProcess(
            protocol, argv[0], argv, env=full_env, path=None, childFDs=child_fds
        )
    finally:
        os.close(devnull)
        os.close(logfd)
        for pair in pairs.values():
            pair.close_child()


def _kill(transport: IProcessTransport) -> None:
    with contextlib.suppress(ProcessExitedAlready):
        transport.signalProcess("KILL")


def _kill_conmon(pid_file: str) -> None:
    """SIGKILL the daemonised conmon whose pid we wrote (a launch we are abandoning)."""
    try:
        pid = _read_pid(pid_file)
    except RuntimeFailure:
        return
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    log.warn("killed conmon {pid} after an abandoned launch", pid=pid)


def running(pid_file: str) -> bool:
    """Whether the conmon whose pid ``pid_file`` holds still runs (blocking but tiny).

    A missing file is a conmon that never started; the process's name guards
    against a pid reused since.
    """
    try:
        pid = _read_pid(pid_file)
        with open(f"/proc/{pid}/comm", encoding="utf-8") as f:
            return f.read().strip() == "conmon"
    except (RuntimeFailure, OSError):
        return False


def _read_pid(path: str) -> int:
    try:
        with open(path, encoding="ascii") as f:
            return int(f.read().strip())
    except (OSError, ValueError) as e:
        raise RuntimeFailure(f"conmon pid file {path}: {e}") from e


def _unlink(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _tail(path: str) -> str:
    """The end of a small log file, or empty if there is none."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - _TAIL_BYTES))
            return f.read().decode("utf-8", "replace").strip()
    except OSError:
        return ""


def _diagnostics(config: ConmonConfig, said: str = "", conmon_log: bool = True) -> str:
    """Text from conmon's and runc's log files to append to an error message.

    runc's log lines already in ``said`` (conmon relays runc's stderr) are
    not repeated.
    """
    parts = []
    runtime = [
        line
        for line in runc_messages(_tail(config.runtime_log).encode()).splitlines()
        if line not in said
    ]
    if runtime:
        parts.append("runtime log: " + "\n".join(runtime))
    if conmon_log:
        own = _tail(config.conmon_log)
        if own:
            parts.append(f"conmon log: {own}")
    return "".join(f"; {part}" for part in parts)


def read_exit_file(exit_dir: str, container_id: str) -> int | None:
    """The exit code conmon wrote for ``container_id``, None if there is none yet.

    conmon writes a decimal without a newline (128 + n for a death by signal
    n), atomically (write a temporary file, rename).  Blocking but tiny.
    """
    try:
        with open(os.path.join(exit_dir, container_id), encoding="ascii") as f:
            text = f.read().strip()
    except FileNotFoundError:
        return None
    return int(text) if text else None


def _write_ctl(bundle: str, kind: int, height: int, width: int) -> None:
    """Write one ``"<type> <h> <w>\\n"`` line to conmon's ``ctl`` FIFO without blocking."""
    path = os.path.join(bundle, "ctl")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        if e.errno in (errno.ENXIO, errno.ENOENT):
            # ENXIO: a FIFO with no reader; conmon has exited.
            raise RuntimeFailure(f"conmon is not running for {bundle}: {path}: {e.strerror}") from e
        raise
    try:
        os.write(fd, f"{kind} {height} {width}\n".encode())
    finally:
        os.close(fd)


def resize(bundle: str, height: int, width: int) -> None:
    """Set the terminal size of a ``-t`` container through conmon."""
    _write_ctl(bundle, _CTL_RESIZE, height, width)


def reopen_log(bundle: str) -> None:
    """Ask conmon to reopen its log file (after it was moved away)."""
    _write_ctl(bundle, _CTL_REOPEN_LOG, 0, 0)
