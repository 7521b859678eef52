"""``docker top`` / ``podman top``: the host's ``ps`` rows of a container's processes.

Docker's approach: run ``ps`` on the host and keep the rows whose PID column
is one of the container's processes (``runc ps``), so it works whatever the
image contains.  Libpod descriptors become ``ps -o`` columns with Podman's
titles; unlike Podman (psgo), PIDs are the host's, and a PID column is needed
to pick the container's rows.
"""

from collections.abc import Callable

from attrs import frozen

from podapi.engine.state.containers import ContainerRecord
from podapi.errors import Conflict, InvalidArgument
from podapi.oci.process import Runner
from podapi.oci.runtime import OCIRuntime

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


def ps_argv(ps_args: str, *, libpod: bool) -> list[str]:
    """``ps`` arguments for ``ps_args``: Docker's are ``ps`` options (``-ef`` by default);
    libpod's are descriptors (``pid,args``; none: Podman's default set), or options."""
    if not libpod:
        return ["ps", *(ps_args or "-ef").split()]
    # Podman < 4.8 clients send ps_args split on commas; Docker sends one string.
    words = ps_args.split(",") if " " not in ps_args else ps_args.split()
    words = [w for w in words if w] or list(DEFAULT_DESCRIPTORS)
    if not all(w in PS_DESCRIPTORS for w in words):
        return ["ps", *words]
    return ["ps", "-e", *(f"-o{w}={PS_DESCRIPTORS[w]}" for w in words)]


@frozen
class TopTable:
    """``ps``'s column titles and the container's rows (fields as ``ps`` printed them)."""

    titles: list[str]
    processes: list[list[str]]


class ContainerTop:
    """Runs ``ps`` for containers.

    :param runtime: gives the OCI runtime (``runc ps``); raises when there is none.
    :param runner: runs ``ps``.
    :param emit: records a container event (Docker's ``top``).
    """

    def __init__(
        self,
        runtime: Callable[[], OCIRuntime],
        runner: Runner,
        emit: Callable[..., None] | None = None,
    ) -> None:
        self._runtime = runtime
        self._runner = runner
        self._emit = emit or (lambda *args, **kwargs: None)

    async def table(self, record: ContainerRecord, ps_args: str, *, libpod: bool) -> TopTable:
        """The rows of ``ps`` with ``ps_args`` for the container's processes.

        :raises Conflict: the container is not running.
        :raises InvalidArgument: ``ps`` failed, or printed no PID column.
        """
        if not record.alive:
            raise Conflict(
                f"container {record.id} is not running", cause="container state improper"
            )
        pids = set(await self._runtime().ps(record.id))
        argv = ps_argv(ps_args, libpod=libpod)
        args_text = " ".join(argv[1:])
        result = await self._runner.run(argv, timeout=30)
        if not result.ok:
            raise InvalidArgument(result.describe(), cause="ps failed")
        if not libpod:  # Docker's event; Podman has none (its streamed top would repeat it)
            self._emit(record, "top")
        lines = result.stdout.decode("utf-8", "replace").splitlines()
        if not lines:
            raise InvalidArgument("ps printed nothing")
        titles = lines[0].split()
        try:
            pid_column = titles.index("PID")
        except ValueError:
            raise InvalidArgument(
                f"ps output has no PID column with ps_args {args_text!r}"
            ) from None
        processes = []
        for line in lines[1:]:
            fields = line.split(None, len(titles) - 1)
            if (
                len(fields) > pid_column
                and fields[pid_column].isdigit()
                and int(fields[pid_column]) in pids
            ):
                processes.append(fields)
        return TopTable(titles, processes)
