"""The service tree: thread pools, the engine, the listener and the idle timer.

Start-up order: thread pools (child services) -> engine open (layout, database,
facts) -> listen -> idle timer -> engine reconcile (requests that need the
recovered state wait for it) -> READY=1 to systemd.  Shutdown (idle expiry or SIGTERM, both via
``reactor.stop``): stop the timer, stop listening (the socket file goes),
drain connections, stop the engine, then the thread pools.
"""

import os
import signal
import sys

from twisted.application.service import MultiService
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import (
    IListeningPort,
    IReactorCore,
    IReactorFromThreads,
    IReactorSocket,
    IReactorUNIX,
)
from twisted.python.failure import Failure

from podapi.access import over_tls, share_with_group
from podapi.config import Config
from podapi.engine.engine import Engine
from podapi.engine.reactors import IEngineReactor
from podapi.http.app import build_router
from podapi.http.site import HeaderPolicy, PodAPISite, max_connections
from podapi.idle import IdleTracker
from podapi.listen import adopt_listening_socket, listen_backlog
from podapi.logs import get_logger
from podapi.notify import notify_ready
from podapi.oci.process import DEFAULT_PATH, ProcessRunner
from podapi.threads import ThreadPoolService

log = get_logger(__name__)

#: Bounds on how long shutdown waits for in-flight requests (Podman waits T).
DRAIN_MIN, DRAIN_MAX = 1.0, 10.0
IO_THREADS = 4


class IServiceReactor(
    IEngineReactor, IReactorCore, IReactorFromThreads, IReactorUNIX, IReactorSocket
):
    """The service's reactor: the engine's, plus start/stop, threads and the listeners."""


class PodAPIService(MultiService):
    """Everything ``twistd podapi`` runs.

    :param config: the parsed command line.
    :param reactor: the reactor (time, processes, threads, endpoints).
    """

    def __init__(self, config: Config, reactor: IServiceReactor) -> None:
        super().__init__()
        self.config = config
        self._reactor = reactor
        self.io = ThreadPoolService(reactor, "podapi-io", IO_THREADS)
        self.io.setServiceParent(self)
        # SQLite and the event log: one connection, one thread, ordered writes.
        self.db = ThreadPoolService(reactor, "podapi-db", 1)
        self.db.setServiceParent(self)
        self.runner = ProcessRunner(reactor, env={"PATH": os.environ.get("PATH", DEFAULT_PATH)})
        self.engine = Engine(config, io=self.io, db=self.db, runner=self.runner, reactor=reactor)
        self.tracker = IdleTracker(reactor, config.timeout, self._idle)
        self.site: PodAPISite | None = None
        self.port: IListeningPort | None = None
        self._stopping = False

    def startService(self) -> None:
        super().startService()
        self._reactor.callWhenRunning(self._install_signal_handlers)
        Deferred.fromCoroutine(self._start()).addErrback(self._start_failed)

    def _install_signal_handlers(self) -> None:
        # Podman exits 0 on SIGTERM/SIGINT; twistd's handlers re-raise the
        # signal after shutdown (status -15).  The reactor installs them as it
        # starts running, so ours go in right after and replace them.
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._on_signal)

    def _on_signal(self, signum: int, frame: object) -> None:
        log.info("{signal} received: shutting down", signal=signal.Signals(signum).name)
        self._reactor.callFromThread(self._reactor.stop)

    async def _start(self) -> None:
        # Listen once the engine can serve reads; requests that need the state
        # recovered wait for the reconcile (Router's gate), which runs after.
        await self.engine.open()
        router = build_router(self.engine, self._reactor)
        self.site = PodAPISite(
            router.app.resource(),
            self.tracker,
            self._reactor,
            HeaderPolicy(cors=self.config.cors),
            spool_dir=self.engine.layout.spool_dir,
            header_timeout=self.config.header_timeout,
            max_connections=self.config.max_connections or max_connections(),
            body_receivers=router.body_receiver,
        )
        self.port = await self._listen(self.site)
        if self.config.listen.plain_tcp and self.config.tls is None:
            log.warn("serving the API over TCP without TLS: anyone who can connect is root")
        log.info("API service listening on {uri}", uri=self.config.listen.uri)
        try:
            await self.engine.reconcile()
        except Exception:
            if self._stopping:  # shut down mid-reconcile: what stopped is not a failure
                return
            raise
        # The idle window opens once started: an idle expiry must not cut the reconcile short.
        self.tracker.start()
        # READY=1 means started: recovered state included (tests and units rely on it).
        notify_ready()

    async def _listen(self, site: PodAPISite) -> IListeningPort:
        address = self.config.listen
        # bind() creates the socket file: the umask keeps it 0600 from the first
        # instant (Twisted chmods only afterwards).
        if address.inherited is not None:
            return adopt_listening_socket(self._reactor, address.inherited, site)
        previous = os.umask(0o177)
        try:
            if address.endpoint is None:
                assert address.socket_path is not None
                # listenUNIX's ``factory`` is a bare (invariant) Factory in Twisted's hints.
                port = self._reactor.listenUNIX(
                    address.socket_path,
                    site,  # type: ignore[arg-type]
                    mode=0o600,
                    backlog=listen_backlog(),
                )
                if self.config.socket_gid is not None:
                    share_with_group(address.socket_path, self.config.socket_gid)
                return port
            # Imported only when needed: endpoints pulls in TLS code at start-up.
            from twisted.internet.endpoints import serverFromString  # noqa: PLC0415

            factory = site if self.config.tls is None else over_tls(self.config.tls, site)
            return await serverFromString(self._reactor, address.endpoint).listen(factory)
        finally:
            os.umask(previous)

    def _start_failed(self, failure: Failure) -> None:
        log.failure("podapi could not start", failure)
        sys.stderr.write(f"podapi: could not start: {failure.getErrorMessage()}\n")
        sys.stderr.flush()
        # twistd exits 0 after a normal reactor.stop(); a failed start must not.
        self._reactor.addSystemEventTrigger("after", "shutdown", os._exit, 1)
        self._reactor.stop()

    def _idle(self) -> None:
        self._reactor.stop()

    def stopService(self) -> Deferred[None]:
        self._stopping = True
        done = Deferred.fromCoroutine(self._stop())
        done.addErrback(lambda f: log.failure("error during shutdown", f))
        done.addBoth(lambda _: MultiService.stopService(self))
        return done

    async def _stop(self) -> None:
        self.tracker.stop()
        if self.port is not None:
            port, self.port = self.port, None
            stopped = port.stopListening()
            if stopped is not None:
                await stopped
        if self.site is not None:
            await self.site.drain(min(max(self.config.timeout, DRAIN_MIN), DRAIN_MAX))
        await self.engine.stop()
