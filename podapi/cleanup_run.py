"""The work of ``podapi.cleanup`` when no server runs: the engine on a private reactor."""

from twisted.internet.defer import Deferred
from twisted.internet.task import react

from podapi.config import Config, ListenAddress
from podapi.engine.engine import Engine
from podapi.logs import get_logger
from podapi.oci.process import ProcessRunner
from podapi.threads import ThreadPoolService

log = get_logger(__name__)


async def _settle(reactor: object, root: str, runroot: str, container_id: str) -> None:
    config = Config(root=root, runroot=runroot, listen=ListenAddress(uri="", endpoint=None))
    io = ThreadPoolService(reactor, "cleanup-io", 2)  # type: ignore[arg-type]
    db = ThreadPoolService(reactor, "cleanup-db", 1)  # type: ignore[arg-type]
    io.startService()
    db.startService()
    engine = Engine(
        config,
        io=io,
        db=db,
        runner=ProcessRunner(reactor),  # type: ignore[arg-type]
        reactor=reactor,  # type: ignore[arg-type]
    )
    try:
        await engine.start(serve=False)
        await engine.lifecycle.handle_exit(container_id)
        await engine.lifecycle.settled(container_id)
    finally:
        await engine.stop()
        io.stopService()
        db.stopService()


def settle(root: str, runroot: str, container_id: str) -> int:
    """Run the exit handling to completion; the process exit status."""
    try:
        react(lambda reactor: Deferred.fromCoroutine(_settle(reactor, root, runroot, container_id)))
    except SystemExit as done:
        return int(done.code or 0)
    return 0
