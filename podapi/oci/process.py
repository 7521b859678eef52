"""The one way podapi runs short-lived helper processes (runc, netavark, probes).

Modelled on Buildbot's ``RunProcess``: argv and environment are always
explicit, output is collected, a timeout escalates TERM then KILL, and the
result says exactly how the process ended.  Long-lived children with extra
pipes (conmon) use their own ``ProcessProtocol`` in ``oci/conmon.py``.
"""

import contextlib
import os
import shutil
from collections.abc import Mapping, Sequence
from typing import Protocol

from attrs import frozen
from twisted.internet.defer import Deferred
from twisted.internet.error import ProcessExitedAlready, ProcessTerminated
from twisted.internet.interfaces import IDelayedCall, IReactorProcess, IReactorTime
from twisted.internet.protocol import ProcessProtocol
from twisted.python.failure import Failure

#: The environment helpers get unless a caller passes its own.
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@frozen
class ProcessResult:
    """How a process ended and what it printed."""

    argv: tuple[str, ...]
    exit_code: int | None
    signal: int | None
    stdout: bytes
    stderr: bytes
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        """True when the process exited by itself with status 0."""
        return self.exit_code == 0 and not self.timed_out

    def describe(self) -> str:
        """A one-line account for error messages (stderr preferred)."""
        if self.timed_out:
            how = "timed out"
        elif self.signal is not None:
            how = f"killed by signal {self.signal}"
        else:
            how = f"exit status {self.exit_code}"
        text = (self.stderr or self.stdout).decode("utf-8", "replace").strip()
        return f"{self.argv[0]}: {how}" + (f": {text}" if text else "")


class ProcessFailed(Exception):
    """Raised by ``run(..., check=True)`` when a process does not end with status 0."""

    def __init__(self, result: ProcessResult) -> None:
        super().__init__(result.describe())
        self.result = result


class Runner(Protocol):
    """What the engine needs from a process runner (real or fake)."""

    async def run(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        stdin: bytes | None = None,
        cwd: str | None = None,
        timeout: float | None = None,
        check: bool = False,
    ) -> ProcessResult:
        """Run ``argv`` to completion and report how it ended."""
        ...


class _Collect(ProcessProtocol):
    """Collects output; settles when the process has exited and its pipes closed.

    A child that daemonises a grandchild (aardvark-dns, conmon) can leave our
    pipes open forever; once the child itself has exited we give the pipes
    ``pipe_grace`` seconds, then close our ends.
    """

    def __init__(self, stdin: bytes | None, clock: IReactorTime, pipe_grace: float) -> None:
        self._stdin = stdin
        self._clock = clock
        self._pipe_grace = pipe_grace
        self._grace: IDelayedCall | None = None
        self.out: list[bytes] = []
        self.err: list[bytes] = []
        self.ended: Deferred[tuple[int | None, int | None]] = Deferred()

    def connectionMade(self) -> None:
        assert self.transport is not None
        if self._stdin:
            self.transport.write(self._stdin)
        self.transport.closeStdin()

    def outReceived(self, data: bytes) -> None:
        self.out.append(data)

    def errReceived(self, data: bytes) -> None:
        self.err.append(data)

    def processExited(self, reason: Failure) -> None:
        self._grace = self._clock.callLater(self._pipe_grace, self._close_pipes)

    def _close_pipes(self) -> None:
        self._grace = None
        if self.transport is not None:
            self.transport.loseConnection()

    def processEnded(self, reason: Failure) -> None:
        if self._grace is not None and self._grace.active():
            self._grace.cancel()
        if isinstance(reason.value, ProcessTerminated):
            self.ended.callback((reason.value.exitCode, reason.value.signal))
        else:
            self.ended.callback((0, None))


class ProcessRunner:
    """Spawn processes with ``spawnProcess`` and collect their output.

    :param reactor: provides ``spawnProcess`` and ``callLater``.
    :param env: the base environment every child gets (``PATH`` at least).
    :param kill_grace: seconds between SIGTERM and SIGKILL after a timeout.
    :param pipe_grace: seconds to wait for pipes held open by a grandchild.
    """

    def __init__(
        self,
        reactor: IReactorProcess,
        env: Mapping[str, str] | None = None,
        kill_grace: float = 5.0,
        pipe_grace: float = 1.0,
    ) -> None:
        self._reactor = reactor
        self._env = dict(env) if env is not None else {"PATH": DEFAULT_PATH}
        self._kill_grace = kill_grace
        self._pipe_grace = pipe_grace
        self._resolved: dict[tuple[str, str], str] = {}

    def executable(self, name: str, env: Mapping[str, str] | None = None) -> str:
        """The absolute path ``name`` resolves to in ``env``'s PATH (cached)."""
        if os.path.isabs(name):
            return name
        path = (env or self._env).get("PATH", DEFAULT_PATH)
        key = (name, path)
        if key not in self._resolved:
            found = shutil.which(name, path=path)
            if found is None:
                raise FileNotFoundError(f"executable file {name!r} not found in $PATH")
            self._resolved[key] = found
        return self._resolved[key]

    async def run(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        stdin: bytes | None = None,
        cwd: str | None = None,
        timeout: float | None = None,
        check: bool = False,
    ) -> ProcessResult:
        """Run ``argv``; see :class:`Runner`.  ``env`` replaces the base environment."""
        full_env = dict(env) if env is not None else dict(self._env)
        executable = self.executable(argv[0], full_env)
        clock: IReactorTime = self._reactor  # type: ignore[assignment]
        proto = _Collect(stdin, clock, self._pipe_grace)
        transport = self._reactor.spawnProcess(
            proto, executable, list(argv), env=full_env, path=cwd
        )
        timers: list[IDelayedCall] = []
        timed_out = False

        def signal(name: str) -> None:
            with contextlib.suppress(ProcessExitedAlready):
                transport.signalProcess(name)

        def on_timeout() -> None:
            nonlocal timed_out
            timed_out = True
            signal("TERM")
            timers.append(clock.callLater(self._kill_grace, signal, "KILL"))

        if timeout is not None:
            timers.append(clock.callLater(timeout, on_timeout))
        try:
            exit_code, sig = await proto.ended
        finally:
            for timer in timers:
                if timer.active():
                    timer.cancel()
        result = ProcessResult(
            argv=tuple(argv),
            exit_code=exit_code,
            signal=sig,
            stdout=b"".join(proto.out),
            stderr=b"".join(proto.err),
            timed_out=timed_out,
        )
        if check and not result.ok:
            raise ProcessFailed(result)
        return result
