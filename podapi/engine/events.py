"""Events: an in-process bus plus a persisted JSON-lines log under ``--root``.

Every event is appended to ``events.log`` (rotated at ``max_size`` bytes into
``events.log.1``) so ``since`` works across restarts, and published to live
subscribers (``/events`` streams).  Appends are ``O_APPEND`` writes of whole
lines, so ``podapi.cleanup`` can log events while no server runs.

Events are stored with Podman's action names (``died``, ``remove``); each stream
shows its dialect's names (``podapi.engine.eventfilters``: ``die``, ``destroy``,
``delete`` for Docker clients), and filters match those.
"""

import json
import os
from collections.abc import Callable, Iterator, Mapping

from attrs import field, frozen

from podapi.logs import get_logger
from podapi.threads import Blocking

log = get_logger(__name__)

Subscriber = Callable[["Event"], None]

#: Object types on the bus.  Pods and secrets call ``emit`` like the rest:
#: ``emit("pod", action, pod_id, name=pod_name)`` (create, start, stop, kill,
#: pause, unpause, remove) and ``emit("secret", action, secret_id, name=name)``
#: (create, remove) -- never the secret's data.
TYPES = frozenset({"container", "image", "volume", "network", "pod", "secret", "system"})
#: An attribute the encoders never show: Docker's action suffix (the exec command
#: of ``exec_start: CMD``).  Emitters pass it as ``**{DETAIL: text}``.
DETAIL = "podapi.detail"


@frozen
class Event:
    """Something that happened to an object.

    :ivar type: one of :data:`TYPES`.
    :ivar action: Podman's action name (``create``, ``died``, ``remove``, ``pull``...),
        or Docker's for what Podman does not record (``oom``, ``resize``...).
    :ivar actor_id: the object's full ID ("" for system events).
    :ivar attributes: ``name``, ``image``, labels, ``containerExitCode``...
    :ivar time_nano: nanoseconds since the epoch.
    """

    type: str
    action: str
    actor_id: str
    time_nano: int
    attributes: Mapping[str, str] = field(factory=dict)

    @property
    def name(self) -> str:
        """The actor's name attribute, when it has one."""
        return self.attributes.get("name", "")

    def to_record(self) -> dict[str, object]:
        """The JSON object stored in the log."""
        return {
            "type": self.type,
            "action": self.action,
            "id": self.actor_id,
            "timeNano": self.time_nano,
            "attributes": dict(self.attributes),
        }

    @classmethod
    def from_record(cls, record: Mapping[str, object]) -> "Event":
        """Rebuild an event from a log record."""
        attributes = record.get("attributes") or {}
        assert isinstance(attributes, dict)
        return cls(
            type=str(record["type"]),
            action=str(record["action"]),
            actor_id=str(record.get("id", "")),
            time_nano=int(record["timeNano"]),  # type: ignore[call-overload]
            attributes={str(k): str(v) for k, v in attributes.items()},
        )

    @property
    def key(self) -> tuple[int, str, str, str]:
        """Identity used to avoid sending an event twice (history then live)."""
        return (self.time_nano, self.type, self.action, self.actor_id)


class EventLog:
    """The JSON-lines file behind the bus (blocking methods: call from a thread)."""

    def __init__(self, directory: str, max_size: int = 1024 * 1024) -> None:
        self.path = os.path.join(directory, "events.log")
        self.rotated = self.path + ".1"
        self._max_size = max_size

    def append(self, event: Event) -> None:
        """Append one event, rotating first when the file is full."""
        line = (json.dumps(event.to_record(), separators=(",", ":")) + "\n").encode()
        try:
            if os.path.getsize(self.path) + len(line) > self._max_size:
                os.replace(self.path, self.rotated)
        except FileNotFoundError:
            pass
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                # A writer died mid-line: end that torn line so ours stays readable.
                line = b"\n" + line
            os.write(fd, line)
        finally:
            os.close(fd)

    def read(self, since_ns: int | None, until_ns: int | None) -> list[Event]:
        """Events logged in ``[since, until]``, oldest first."""
        return [
            e
            for e in self._all()
            if (since_ns is None or e.time_nano >= since_ns)
            and (until_ns is None or e.time_nano <= until_ns)
        ]

    def _all(self) -> Iterator[Event]:
        for path in (self.rotated, self.path):
            try:
                with open(path, encoding="utf-8") as f:
                    for line in f:
                        try:
                            yield Event.from_record(json.loads(line))
                        except (ValueError, KeyError, TypeError, AssertionError):
                            # A torn line from a crash: skip it, keep the rest.
                            continue
            except FileNotFoundError:
                continue


class EventBus:
    """Publish events to live subscribers and to the persisted log.

    :param log_file: the persisted log.
    :param blocking: a serial executor; appends and reads run there in order.
    :param now_ns: the clock, in nanoseconds since the epoch.
    """

    def __init__(self, log_file: EventLog, blocking: Blocking, now_ns: Callable[[], int]) -> None:
        self._log = log_file
        self._blocking = blocking
        self.now_ns = now_ns
        self._subscribers: list[Subscriber] = []

    @property
    def listeners(self) -> int:
        """Live subscribers (``NEventsListener`` in ``/info``)."""
        return len(self._subscribers)

    def emit(self, type: str, action: str, actor_id: str = "", /, **attributes: str) -> Event:
        """Record and publish an event now; returns it."""
        event = Event(
            type=type,
            action=action,
            actor_id=actor_id,
            time_nano=self.now_ns(),
            attributes=attributes,
        )
        self._blocking(self._log.append, event).addErrback(
            lambda f: log.failure("could not persist event", f)
        )
        for subscriber in list(self._subscribers):
            try:
                subscriber(event)
            except Exception:
                log.failure("event subscriber failed")
        return event

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Call ``subscriber`` for every new event; returns the unsubscribe function."""
        self._subscribers.append(subscriber)

        def unsubscribe() -> None:
            if subscriber in self._subscribers:
                self._subscribers.remove(subscriber)

        return unsubscribe

    async def history(self, since_ns: int | None, until_ns: int | None) -> list[Event]:
        """Persisted events in the window (reads queue behind pending appends)."""
        return await self._blocking(self._log.read, since_ns, until_ns)
