"""An engine on a temporary root and a StubTreq client on the router (no sockets)."""

from collections.abc import Iterator
from pathlib import Path

import pytest
import pytest_twisted
from treq.testing import StubTreq
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock

from podapi.config import Config
from podapi.engine.engine import Engine
from podapi.http.app import build_router
from podapi.http.routing import Router
from podapi.listen import parse_uri
from podapi.testing.process import Expect, FakeRunner
from podapi.testing.threads import InlineBlocking

NOW_NS = 1_800_000_000 * 1_000_000_000


class Time:
    """A settable wall clock in nanoseconds."""

    def __init__(self) -> None:
        self.ns = NOW_NS

    def __call__(self) -> int:
        return self.ns


@pytest.fixture
def now() -> Time:
    return Time()


@pytest.fixture
def engine(tmp_path: Path, now: Time) -> Iterator[Engine]:
    config = Config(
        root=str(tmp_path / "root"),
        runroot=str(tmp_path / "run"),
        listen=parse_uri(f"unix://{tmp_path}/api.sock"),
    )
    runner = FakeRunner(default=Expect((), stdout=b"fake version 1.0\ncommit: x"))
    engine = Engine(
        config, io=InlineBlocking(), db=InlineBlocking(), runner=runner, reactor=Clock(), now_ns=now
    )
    pytest_twisted.blockon(Deferred.fromCoroutine(engine.start(serve=False)))
    yield engine
    pytest_twisted.blockon(Deferred.fromCoroutine(engine.stop()))


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def router(engine: Engine, clock: Clock) -> Router:
    return build_router(engine, clock)


@pytest.fixture
def api(router: Router) -> StubTreq:
    return StubTreq(router.app.resource())
