"""The OCI runtime (runc) as async calls: start, kill, pause, state, delete, update, exec.

Every call passes ``--root`` with podapi's private state directory, so our
containers never mix with those of other runc users on the host (``/run/runc``),
and ``--log-format json`` so runc's own messages can be told apart from a
container's output and shown as plain text (:func:`runc_messages`).
Container creation is not here: conmon runs ``runc create`` (``oci/conmon.py``).
"""

import json
import os
import signal as signals
from collections.abc import Iterable, Mapping, Sequence

from attrs import evolve, frozen

from podapi.errors import PodapiError
from podapi.oci.process import ProcessResult, Runner

#: runc's wording when the id is unknown under ``--root``.
_DOES_NOT_EXIST = "container does not exist"


class RuntimeFailure(PodapiError):
    """The OCI runtime refused or failed an operation.

    :param message: what failed, with runc's own messages as readable text.
    :param result: the runc process, when one ran.
    """

    # Podman's cause for errors coming out of the runtime (libpod/define/errors.go).
    cause = "OCI runtime error"

    def __init__(self, message: str, result: ProcessResult | None = None) -> None:
        super().__init__(message)
        self.result = result


class NotInRuntime(RuntimeFailure):
    """runc does not know the container (never created, or already deleted)."""


@frozen
class RuntimeState:
    """``runc state``: what the runtime knows about one container."""

    id: str
    #: ``created``, ``running``, ``paused`` or ``stopped``.
    status: str
    #: The init process on the host, 0 once stopped.
    pid: int
    bundle: str
    #: RFC 3339 creation time as runc reports it.
    created: str


def runc_messages(stderr: bytes) -> str:
    """Turn runc's ``--log-format json`` stderr into readable text.

    Each JSON record (``{"level": "error", "msg": "...", "time": "..."}``)
    becomes its ``msg``; other lines (a container's own stderr, a Go panic) are
    kept as they are.  Lines are joined with newlines.
    """
    lines: list[str] = []
    for raw in stderr.decode("utf-8", "replace").splitlines():
        line = raw.strip()
        if not line:
            continue
        lines.append(_log_record_text(line) or line)
    return "\n".join(lines)


def _log_record_text(line: str) -> str | None:
    """The message of one runc JSON log record, or None if it is not one."""
    if not line.startswith("{"):
        return None
    try:
        record = json.loads(line)
    except ValueError:
        return None
    if not isinstance(record, dict) or "msg" not in record:
        return None
    level = record.get("level", "")
    text = str(record["msg"])
    return text if level in ("error", "fatal", "panic", "") else f"{level}: {text}"


def signal_name(sig: str | int) -> str:
    """The name runc accepts for ``sig`` (``KILL`` for 9, ``SIGTERM`` unchanged)."""
    if isinstance(sig, int):
        try:
            return signals.Signals(sig).name.removeprefix("SIG")
        except ValueError:
            # Real-time signals have no name in Python; runc takes numbers too.
            return str(sig)
    return sig


class OCIRuntime:
    """runc (or a compatible runtime) behind podapi's process runner.

    :param runner: runs the short-lived runtime commands.
    :param path: the runtime's absolute path.
    :param state_dir: the runtime's ``--root``: podapi's own, never ``/run/runc``.
    :param timeout: seconds any one command may take before it is killed.
    """

    def __init__(self, runner: Runner, path: str, state_dir: str, timeout: float = 60.0) -> None:
        self._runner = runner
        self.path = path
        self.state_dir = state_dir
        self._timeout = timeout

    @property
    def name(self) -> str:
        """The runtime's name as Podman shows it (``runc``)."""
        return self.path.rsplit("/", 1)[-1]

    def argv(self, *args: str) -> list[str]:
        """The full command line for a runtime subcommand."""
        return [self.path, "--root", self.state_dir, "--log-format", "json", *args]

    async def _call(
        self, *args: str, stdin: bytes | None = None, missing_ok: bool = False
    ) -> ProcessResult:
        """Run a subcommand; a failure raises :class:`RuntimeFailure`."""
        result = await self._runner.run(self.argv(*args), stdin=stdin, timeout=self._timeout)
        if result.ok:
            return result
        text = runc_messages(result.stderr) or result.describe()
        if _DOES_NOT_EXIST in text:
            if missing_ok:
                return result
            raise NotInRuntime(f"{self.name} {args[0]}: {text}", result)
        if result.timed_out:
            text = f"timed out after {self._timeout:g}s" + (f": {text}" if text else "")
        raise RuntimeFailure(f"{self.name} {args[0]}: {text}", result)

    def container_ids(self) -> set[str]:
        """IDs the runtime keeps state for (blocking; runc and crun keep a directory each)."""
        try:
            return {e.name for e in os.scandir(self.state_dir) if e.is_dir()}
        except FileNotFoundError:
            return set()

    async def start(self, container_id: str) -> None:
        """``runc start``: run the user process of a ``created`` container."""
        await self._call("start", container_id)

    async def kill(self, container_id: str, signal: str | int, all: bool = False) -> None:
        """``runc kill``: send ``signal`` to the init process (every process with ``all``)."""
        args = ["kill", *(["--all"] if all else []), container_id, signal_name(signal)]
        await self._call(*args)

    async def pause(self, container_id: str) -> None:
        """``runc pause``: freeze every process of the container."""
        await self._call("pause", container_id)

    async def resume(self, container_id: str) -> None:
        """``runc resume``: thaw a paused container."""
        await self._call("resume", container_id)

    async def delete(self, container_id: str, force: bool = False) -> None:
        """``runc delete``: forget the container and remove its leaf cgroups.

        ``force`` kills a container that is still running first.  A container
        runc does not know is not an error: deleting is idempotent.
        """
        args = ["delete", *(["--force"] if force else []), container_id]
        await self._call(*args, missing_ok=True)

    async def state(self, container_id: str) -> RuntimeState | None:
        """``runc state``, or None when runc does not know the container."""
        result = await self._call("state", container_id, missing_ok=True)
        if not result.ok:
            return None
        try:
            data = json.loads(result.stdout)
            return RuntimeState(
                id=str(data["id"]),
                status=str(data["status"]),
                pid=int(data.get("pid") or 0),
                bundle=str(data.get("bundle", "")),
                created=str(data.get("created", "")),
            )
        except (ValueError, KeyError, TypeError) as e:
            raise RuntimeFailure(f"{self.name} state: unreadable output: {e}", result) from e

    async def ps(self, container_id: str) -> list[int]:
        """``runc ps --format json``: host pids of every process in the container."""
        result = await self._call("ps", "--format", "json", container_id)
        try:
            # runc prints ``null`` when the cgroup is empty.
            pids = json.loads(result.stdout) or []
            return [int(pid) for pid in pids]
        except (ValueError, TypeError) as e:
            raise RuntimeFailure(f"{self.name} ps: unreadable output: {e}", result) from e

    async def update(self, container_id: str, resources: Mapping[str, object]) -> None:
        """``runc update --resources -``: apply an OCI ``linux.resources`` object."""
        body = json.dumps(dict(resources)).encode()
        await self._call("update", "--resources", "-", container_id, stdin=body)

    async def exec_simple(
        self,
        container_id: str,
        args: Sequence[str],
        *,
        env: Iterable[str] | Mapping[str, str] | None = None,
        user: str | None = None,
        cwd: str | None = None,
        timeout: float | None = None,
    ) -> ProcessResult:
        """``runc exec`` without a terminal or stdin, collecting output (health checks).

        The result is the process's own: its exit code, stdout and stderr.
        When runc itself fails (no such container, executable not found) it
        exits 255 and its messages, made readable, are in ``stderr``.  On
        ``timeout`` runc is sent TERM, which it forwards to the process, then KILL.

        :param env: ``KEY=VALUE`` strings or a mapping, added to the container's.
        :param user: ``uid[:gid]`` as runc takes it.
        """
        pairs = [f"{k}={v}" for k, v in env.items()] if isinstance(env, Mapping) else env or []
        argv = ["exec"]
        for pair in pairs:
            argv += ["--env", pair]
        if user is not None:
            argv += ["--user", user]
        if cwd is not None:
            argv += ["--cwd", cwd]
        argv += [container_id, *args]
        result = await self._runner.run(self.argv(*argv), timeout=timeout)
        if result.exit_code == 255 and result.stderr:
            result = evolve(result, stderr=(runc_messages(result.stderr) + "\n").encode())
        return result
