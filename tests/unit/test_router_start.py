"""A starting server's router (Router.resource): ``_ping`` at once, every other request
held until the rest of the API is added, then served by it; 503 when it never comes."""

import json

import pytest_twisted
from klein import Response
from treq.testing import StubTreq
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.web.test.requesthelper import DummyRequest

from podapi.http.both.ping import ping_router
from podapi.http.call import ApiCall
from podapi.http.responses import body_response
from podapi.http.routing import START_WAIT, Router


class Info:
    """A route added once the server has loaded; records its calls."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, call: ApiCall) -> Response:
        self.calls += 1
        return body_response(b"info", "text/plain")

    def add_to(self, router: Router) -> None:
        router.compat("GET", "/info", self)
        router.complete()


def answered(response: Deferred) -> list[bool]:
    """Becomes ``[True]`` once ``response`` has its answer (Deferred.called does not
    say that: treq's is called as soon as it waits on another)."""
    seen: list[bool] = []

    def see(result: object) -> object:
        seen.append(True)
        return result

    response.addBoth(see)
    return seen


async def answer(response: Deferred) -> tuple[int, bytes]:
    got = await response
    return got.code, await got.content()


@pytest_twisted.ensureDeferred
async def test_ping_answers_and_other_requests_wait_for_the_rest() -> None:
    router, clock = ping_router(), Clock()
    api = StubTreq(router.resource(clock))
    assert await answer(api.get("http://d/v1.44/_ping")) == (200, b"OK")
    info, unknown = api.get("http://d/v1.44/info"), api.get("http://d/v1.44/nope")
    seen = (answered(info), answered(unknown))
    clock.advance(START_WAIT - 1)
    api.flush()
    assert seen == ([], [])
    Info().add_to(router)
    api.flush()
    assert await answer(info) == (200, b"info")
    code, body = await answer(unknown)
    assert code == 404 and json.loads(body)["response"] == 404
    # Complete: served at once from now on.
    assert await answer(api.get("http://d/info")) == (200, b"info")


@pytest_twisted.ensureDeferred
async def test_a_request_held_too_long_is_a_503() -> None:
    router, clock = ping_router(), Clock()
    api = StubTreq(router.resource(clock, timeout=5))
    info = api.get("http://d/v1.44/info")
    clock.advance(5)
    api.flush()
    code, body = await answer(info)
    assert code == 503
    assert json.loads(body) == {
        "cause": "service unavailable",
        "message": "the server is still starting: retry later",
        "response": 503,
    }


@pytest_twisted.ensureDeferred
async def test_held_requests_get_a_503_when_the_server_stops_first() -> None:
    router, clock = ping_router(), Clock()
    api = StubTreq(router.resource(clock))
    info = api.get("http://d/v1.44/info")
    router.abandon("the server is shutting down")
    api.flush()
    code, body = await answer(info)
    assert code == 503
    assert json.loads(body)["message"] == "the server is shutting down"
    assert clock.getDelayedCalls() == []  # the wait's timeout went with it
    # Still draining: a newcomer is refused too, not routed to what is missing (404).
    code, body = await answer(api.get("http://d/v1.44/info"))
    assert (code, json.loads(body)["message"]) == (503, "the server is shutting down")
    assert await answer(api.get("http://d/_ping")) == (200, b"OK")


@pytest_twisted.ensureDeferred
async def test_stopping_once_complete_changes_nothing() -> None:
    router, clock = ping_router(), Clock()
    api = StubTreq(router.resource(clock))
    Info().add_to(router)
    router.abandon("the server is shutting down")
    assert await answer(api.get("http://d/v1.44/info")) == (200, b"info")


def test_a_client_that_left_while_held_is_not_served() -> None:
    router, clock = ping_router(), Clock()
    request = DummyRequest([b"info"])
    request.path, request.uri = b"/info", b"/info"
    request.render(router.resource(clock))
    request.processingFailed(Failure(ConnectionDone()))  # the connection went away
    info = Info()
    info.add_to(router)
    clock.advance(START_WAIT)
    assert (info.calls, request.written, request.finished) == (0, [], 0)
    assert clock.getDelayedCalls() == []
