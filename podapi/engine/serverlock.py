"""The server and ``podapi.cleanup`` never work on the same runroot at once.

Two ``flock`` files in the runroot:

- ``server.lock``: held exclusively by the server for its life; a second server
  is refused.
- ``cleanup.lock``: each ``podapi.cleanup`` holds it *shared* for the whole of
  its work (several exits settle side by side); the server takes it
  *exclusively*, after ``server.lock``, and keeps it.

A cleanup takes its shared lock first and only then looks at ``server.lock``,
and the server takes ``server.lock`` first and only then waits for the
exclusive one, so whatever the interleaving either the cleanup sees the server
and leaves the exit to it, or the server waits until the cleanup is done
before it reconciles (a cleanup removing a ``--rm`` container or restarting a
``--restart always`` one while the server's reconcile worked from a list it had
read, or tore down the netns the restart had just made, broke both).  The wait
is a blocking ``flock`` (woken by the kernel when the last cleanup lets go);
it is bounded by the cleanups' own deadline (``podapi.cleanup.CLEANUP_DEADLINE``,
a SIGALRM that ends a cleanup and with it its lock).
"""

import fcntl
import os

from podapi.errors import PodapiError


class ServerRunning(PodapiError):
    """Another server already uses this runroot."""

    cause = "runroot in use"


def take_server_lock(path: str) -> int:
    """Hold ``path`` locked for the server's life; refuse a second server (blocking)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise ServerRunning(f"another podapi server uses {os.path.dirname(path)}") from None
    return fd


def cleanups_running(path: str) -> bool:
    """Whether a ``podapi.cleanup`` holds ``cleanup.lock`` now (blocking but instant)."""
    return _held(path)


def exclude_cleanups(path: str) -> int:
    """Wait until no cleanup runs and keep them out for the server's life (blocking)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
    except BaseException:
        os.close(fd)
        raise
    return fd


def enter_cleanup(runroot: str) -> int | None:
    """For ``podapi.cleanup``: the shared lock it holds while it works, or None when a
    server runs (or is starting) and settles the exit itself."""
    try:
        fd = os.open(os.path.join(runroot, "cleanup.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC)
    except FileNotFoundError:  # no runroot: nothing to settle there
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:  # the server holds it
        os.close(fd)
        return None
    if _held(os.path.join(runroot, "server.lock")):  # a server starting: it waits for us
        os.close(fd)
        return None
    return fd


def _held(path: str) -> bool:
    """Whether someone holds a lock on ``path`` now (we take it and let go at once)."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False
