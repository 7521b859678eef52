"""Persistent network namespaces: a file under the runroot with a namespace bound to it.

netavark configures a namespace it is given as a path, before the container
exists, and the runtime joins it (``linux.namespaces[].path``); the file keeps
the namespace alive between the two and after the container's processes end,
until teardown.  ``unshare --net=FILE true`` (util-linux) creates and binds it
in a short-lived process, so no thread of ours ever changes namespace.
"""

import contextlib
import os

from podapi.oci import rootfs
from podapi.oci.process import Runner
from podapi.oci.runtime import RuntimeFailure


def prepare(path: str) -> None:
    """The empty file a namespace is bound to (blocking); one left by a crash goes first."""
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    remove(path)
    with open(path, "x", encoding="ascii"):
        pass


async def create(runner: Runner, path: str) -> None:
    """Bind a new network namespace to ``path`` (made with :func:`prepare`)."""
    result = await runner.run(["unshare", f"--net={path}", "true"], timeout=30)
    if not result.ok:
        raise RuntimeFailure(f"creating the network namespace {path}: {result.describe()}")


def remove(path: str) -> None:
    """Unbind and delete a namespace file (blocking; a missing one is no error).

    A server killed between creating a namespace and recording it may have
    bound several to the same file: unbind them all.
    """
    rootfs.unmount_all(path)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
