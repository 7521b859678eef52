"""``GET /events`` for both trees: history from the log, then live events.

Semantics (Docker's, which Podman follows): ``since``/``until`` select
history from the persisted log; ``stream=false`` ends after the history;
otherwise the response stays open with live events until ``until`` (if given)
or until the client leaves.  Headers are flushed before anything else.
"""

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from twisted.internet.defer import DeferredQueue
from twisted.internet.interfaces import IReactorTime

from podapi.engine.eventfilters import EventFilter
from podapi.engine.events import DETAIL, Event, EventBus
from podapi.engine.times import parse_timestamp
from podapi.http.call import ApiCall
from podapi.http.streams import JsonLines

#: An event in a dialect's shape, or None for an event the dialect does not have.
Encoder = Callable[[Event, ApiCall], dict[str, Any] | None]
#: The dialect's filter over the request's ``filters`` (400 for unknown keys).
FilterFactory = Callable[[Mapping[str, Sequence[str]], ApiCall], EventFilter]


def event_message(
    event: Event, action: str, attributes: dict[str, str], legacy: bool
) -> dict[str, Any]:
    """Docker's ``events.Message`` shape, which both trees use.

    :param action: the action name in the caller's dialect.
    :param legacy: include the deprecated ``status``/``id``/``from`` fields (Docker
        sends them for container and image events only; Podman on every event).
    """
    attributes.pop(DETAIL, None)
    if event.type == "container":
        attributes.setdefault("podId", "")
    body: dict[str, Any] = {}
    if legacy:
        body["status"] = action
        body["id"] = event.actor_id
        if "image" in attributes:
            body["from"] = attributes["image"]
    body.update(
        Type=event.type,
        Action=action,
        Actor={"ID": event.actor_id, "Attributes": attributes},
        scope="local",
        time=event.time_nano // 1_000_000_000,
        timeNano=event.time_nano,
    )
    return body


async def stream_events(
    call: ApiCall,
    bus: EventBus,
    clock: IReactorTime,
    encode: Encoder,
    make_filter: FilterFactory,
) -> None:
    """Answer an events request with ``encode`` as the dialect's shape and
    ``make_filter`` as its filter (over the log and the live events alike)."""
    now = bus.now_ns()
    filters = call.filters()
    since_text = call.text("since") or next(iter(filters.get("since", [])), None)
    until_text = call.text("until") or next(iter(filters.get("until", [])), None)
    since = parse_timestamp(since_text, now) if since_text else None
    until = parse_timestamp(until_text, now) if until_text else None
    wanted = make_filter(filters, call)
    follow = call.flag("stream", default=True) and (until is None or until > now)

    out = JsonLines(call.request)

    def send(event: Event) -> None:
        if wanted.matches(event):
            body = encode(event, call)
            if body is not None:
                out.write(body)

    queue: DeferredQueue[Event | None] = DeferredQueue()
    unsubscribe = bus.subscribe(queue.put) if follow else None
    timer = clock.callLater((until - now) / 1e9, queue.put, None) if follow and until else None
    try:
        out.start()
        sent: set[tuple[int, str, str, str]] = set()
        if since is not None or until is not None or not follow:
            for event in await bus.history(since, until):
                send(event)
                if event.time_nano >= now:  # may also be queued as live: skip it there
                    sent.add(event.key)
        while follow:
            live = await queue.get()
            if live is None:
                break
            if live.key not in sent:
                send(live)
    finally:
        if unsubscribe is not None:
            unsubscribe()
        if timer is not None and timer.active():
            timer.cancel()
