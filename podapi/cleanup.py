"""``python -m podapi.cleanup --root R --runroot RR ID``: conmon's exit command.

conmon runs this when a container exits.  While a server runs it follows
exits itself, so this returns at once; otherwise it settles the exit with the
same engine code the server uses: record the exit code, unmount, delete the
runtime container, log the event, and apply ``--rm`` or the restart policy.
The server and a cleanup never work at the same time
(:mod:`podapi.engine.serverlock`): a server starting meanwhile waits for us.
"""

import argparse
import os
import signal
import sys
from collections.abc import Sequence

from podapi import crashpoints
from podapi.engine.serverlock import enter_cleanup

#: Seconds a cleanup may take (a restart included) before SIGALRM ends it (and
#: with it the lock a starting server waits for).
CLEANUP_DEADLINE = 300


def main(argv: Sequence[str] | None = None) -> int:
    """Settle one container's exit unless a server is there to do it."""
    parser = argparse.ArgumentParser(prog="podapi.cleanup", description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True)
    parser.add_argument("--runroot", required=True)
    parser.add_argument("container_id")
    args = parser.parse_args(argv)
    lock = enter_cleanup(args.runroot)
    if lock is None:
        return 0
    # conmon runs us with SIGCHLD and SIGUSR1 blocked (it reads them from a
    # signalfd); the mask is inherited, and the reactor needs SIGCHLD to see
    # the processes it starts (a restart's conmon) end.
    signal.pthread_sigmask(signal.SIG_SETMASK, set())
    # conmon waits for us: never let a stuck cleanup keep it (and us) around.
    signal.alarm(CLEANUP_DEADLINE)
    crashpoints.reached("cleanup-locked")
    # Imported only here: the common case above must stay cheap, since conmon runs
    # this for every exit.
    from podapi.cleanup_run import settle  # noqa: PLC0415

    try:
        return settle(args.root, args.runroot, args.container_id)
    finally:
        os.close(lock)  # a server waiting to start may go on


if __name__ == "__main__":
    sys.exit(main())
