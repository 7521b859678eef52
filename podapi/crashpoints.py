"""Named points where a test makes the process stop dead (crash-safety tests only).

``PODAPI_CRASH_AT=<point>`` in the environment of a server makes it SIGKILL
itself when it reaches ``reached("<point>")``; ``<point>:stop`` makes it
SIGSTOP itself instead (the test lets it go on with SIGCONT).  It is the
deterministic way for ``tests/integration/test_crash_points.py`` to crash the
server exactly between two steps a real crash could separate.  conmon passes
the variable on to its exit command (``podapi.cleanup``), so a cleanup can be
stopped at its points too.  Unset, as always outside tests, a point costs one
dictionary lookup.
"""

import os
import signal

VARIABLE = "PODAPI_CRASH_AT"


def reached(point: str) -> None:
    """Stop here if the environment names this point."""
    wanted = os.environ.get(VARIABLE)
    if wanted == point:
        os.kill(os.getpid(), signal.SIGKILL)
    elif wanted == f"{point}:stop":
        os.kill(os.getpid(), signal.SIGSTOP)


def inherited() -> dict[str, str]:
    """The variable, for the environment of a helper process (conmon) that passes it on."""
    wanted = os.environ.get(VARIABLE)
    return {VARIABLE: wanted} if wanted else {}
