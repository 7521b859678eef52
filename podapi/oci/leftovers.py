"""Helper processes a killed server left running: wait for them before reconciling.

SIGKILL ends the server, not the helpers it had started: a ``netavark setup``
(under ``flock``), an ``unshare`` making a namespace, a ``runc`` call.  They go
on, and would change the host after the next server's reconcile has looked at
it (a setup wiring a veth into a namespace the reconcile had just torn down
leaves the bridge and its rules behind).  Every such helper names the runroot
in its command line.  Only these short-lived helpers are waited for: conmon,
aardvark-dns and a created container's ``runc init`` name it too, but they
outlive servers by design.
"""

import contextlib
import os
import select
import time

from podapi.logs import get_logger

log = get_logger(__name__)

#: The helpers' process names (``flock`` runs netavark under the runroot's lock).
HELPERS = frozenset({"flock", "netavark", "unshare", "runc", "crun"})


def helpers_naming(path: str, proc: str = "/proc") -> list[int]:
    """Helper processes (:data:`HELPERS`) whose command line mentions ``path``."""
    needle = os.fsencode(path)
    found = []
    for name in os.listdir(proc):
        if not name.isdigit():
            continue
        try:
            with open(os.path.join(proc, name, "cmdline"), "rb") as f:
                cmdline = f.read()
            with open(os.path.join(proc, name, "comm"), "rb") as f:
                comm = f.read().strip().decode(errors="replace")
        except OSError:
            continue  # gone meanwhile
        if comm in HELPERS and needle in cmdline:
            found.append(int(name))
    return found


def wait_for_exit(pids: list[int], timeout: float) -> list[int]:
    """Wait until ``pids`` have exited (pidfds: woken by the kernel), at most
    ``timeout`` seconds; the ones still running (blocking)."""
    poller = select.poll()
    fds: dict[int, int] = {}
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            fd = os.pidfd_open(pid)
            fds[fd] = pid
            poller.register(fd, select.POLLIN)
    deadline = time.monotonic() + timeout
    try:
        while fds:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            for fd, _ in poller.poll(remaining * 1000):
                poller.unregister(fd)
                os.close(fd)
                del fds[fd]
    finally:
        for fd in fds:
            os.close(fd)
    return sorted(fds.values())


def wait_for_helpers(path: str, timeout: float) -> list[int]:
    """Wait (bounded) for the helpers a killed server left running under ``path``;
    the ones still running after ``timeout`` seconds (blocking)."""
    return wait_for_exit(helpers_naming(path), timeout)
