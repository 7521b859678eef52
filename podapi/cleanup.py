"""``python -m podapi.cleanup --root R --runroot RR ID``: conmon's exit command.

conmon runs this when a container exits.  While a server runs it follows
exits itself (it holds ``<runroot>/server.lock``), so this returns at once;
otherwise it settles the exit with the same engine code the server uses:
record the exit code, unmount, delete the runtime container, log the event,
and apply ``--rm`` or the restart policy.
"""

import argparse
import fcntl
import os
import signal
import sys
from collections.abc import Sequence

#: Seconds a cleanup may take (a restart included) before SIGALRM ends it.
CLEANUP_DEADLINE = 300


def server_running(lock_path: str) -> bool:
    """Whether a podapi server holds the runroot's lock right now."""
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops our lock again: we only looked
    return False


def main(argv: Sequence[str] | None = None) -> int:
    """Settle one container's exit unless a server is there to do it."""
    parser = argparse.ArgumentParser(prog="podapi.cleanup", description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True)
    parser.add_argument("--runroot", required=True)
    parser.add_argument("container_id")
    args = parser.parse_args(argv)
    if server_running(os.path.join(args.runroot, "server.lock")):
        return 0
    # conmon runs us with SIGCHLD and SIGUSR1 blocked (it reads them from a
    # signalfd); the mask is inherited, and the reactor needs SIGCHLD to see
    # the processes it starts (a restart's conmon) end.
    signal.pthread_sigmask(signal.SIG_SETMASK, set())
    # conmon waits for us: never let a stuck cleanup keep it (and us) around.
    signal.alarm(CLEANUP_DEADLINE)
    # Imported only here: the common case above must stay cheap, since conmon runs
    # this for every exit.
    from podapi.cleanup_run import settle  # noqa: PLC0415

    return settle(args.root, args.runroot, args.container_id)


if __name__ == "__main__":
    sys.exit(main())
