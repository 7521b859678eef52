"""The service tree: thread pools, the engine, the listener and the idle timer.

Start-up order: thread pools (child services) -> the storage layout -> listen,
answering ``_ping`` -> import the engine and the API in a thread (most of a
cold start: some 190 modules; other requests wait for them) -> engine open
(database, facts) -> every route served -> engine reconcile (requests that need
the recovered state wait for it) -> idle timer -> READY=1 to systemd.
Shutdown (idle expiry or SIGTERM, both via ``reactor.stop``): stop the timer,
answer requests still waiting for the API 503, stop listening (the socket file
goes), drain connections, stop the engine, then the thread pools.
"""

import gc
import os
import signal
import sys
from typing import TYPE_CHECKING

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
from podapi.engine.layout import Layout
from podapi.http.both.ping import ping_router
from podapi.http.routing import Router
from podapi.http.site import HeaderPolicy, PodAPISite, max_connections
from podapi.idle import IdleTracker
from podapi.listen import adopt_listening_socket, listen_backlog
from podapi.logs import get_logger
from podapi.notify import notify_ready
from podapi.oci.process import DEFAULT_PATH, ProcessRunner
from podapi.threads import ThreadPoolService

if TYPE_CHECKING:
    from podapi.engine.engine import Engine
    from podapi.engine.reactors import IEngineReactor

    class IServiceReactor(
        IEngineReactor, IReactorCore, IReactorFromThreads, IReactorUNIX, IReactorSocket
    ):
        """The service's reactor: the engine's, plus start/stop, threads and the listeners."""


log = get_logger(__name__)

#: Bounds on how long shutdown waits for in-flight requests (Podman waits T).
DRAIN_MIN, DRAIN_MAX = 1.0, 10.0
IO_THREADS = 4


class PodAPIService(MultiService):
    """Everything ``twistd podapi`` runs.

    :param config: the parsed command line.
    :param reactor: the reactor (time, processes, threads, endpoints).
    """

    def __init__(self, config: Config, reactor: "IServiceReactor") -> None:
        super().__init__()
        self.config = config
        self._reactor = reactor
        self.io = ThreadPoolService(reactor, "podapi-io", IO_THREADS)
        self.io.setServiceParent(self)
        # SQLite and the event log: one connection, one thread, ordered writes.
        self.db = ThreadPoolService(reactor, "podapi-db", 1)
        self.db.setServiceParent(self)
        self.runner = ProcessRunner(reactor, env={"PATH": os.environ.get("PATH", DEFAULT_PATH)})
        self.layout = Layout(config.root, config.runroot)
        #: Made once imported (:meth:`_start`).
        self.engine: Engine | None = None
        self.router: Router | None = None
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
        # Listen as soon as request bodies have their spool directory, answering
        # _ping at once; the rest of the API waits for the engine (Router.resource).
        await self.io(self.layout.create)
        self.router = ping_router()
        self.site = PodAPISite(
            self.router.resource(self._reactor),
            self.tracker,
            self._reactor,
            HeaderPolicy(cors=self.config.cors),
            spool_dir=self.layout.spool_dir,
            header_timeout=self.config.header_timeout,
            max_connections=self.config.max_connections or max_connections(),
            body_receivers=self.router.body_receiver,
        )
        self.port = await self._listen(self.site)
        if self.config.listen.plain_tcp and self.config.tls is None:
            log.warn("serving the API over TCP without TLS: anyone who can connect is root")
        log.info("API service listening on {uri}", uri=self.config.listen.uri)
        # In a thread: the reactor answers _ping meanwhile (imports take the GIL
        # only between bytecodes; the reactor's wake-ups get it within the switch
        # interval).
        await self.io(_import_api)
        if self._stopping:  # stopped while importing: there is nothing to open
            return
        from podapi.engine.engine import Engine  # noqa: PLC0415 (imported above)
        from podapi.http.app import add_api  # noqa: PLC0415

        self.engine = Engine(
            self.config, io=self.io, db=self.db, runner=self.runner, reactor=self._reactor
        )
        await self.engine.open()
        # Reads are served from here; requests that need the recovered state wait
        # for the reconcile (Router's gate), which is under way before they come.
        reconciling = Deferred.fromCoroutine(self.engine.reconcile())
        add_api(self.router, self.engine, self._reactor)
        # twistd's podapi plugin started us with the cyclic collector off (the start
        # makes little garbage and many long-lived objects): on for serving.
        gc.enable()
        try:
            await reconciling
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
        if self.router is not None:
            self.router.abandon("the server is shutting down")
        if self.port is not None:
            port, self.port = self.port, None
            stopped = port.stopListening()
            if stopped is not None:
                await stopped
        if self.site is not None:
            await self.site.drain(min(max(self.config.timeout, DRAIN_MIN), DRAIN_MAX))
        if self.engine is not None:
            await self.engine.stop()


def _import_api() -> None:
    """Import every route group and, through them, the engine (blocking: run in a thread)."""
    import podapi.http.app  # noqa: F401, PLC0415
