"""Event names per dialect, and the ``/events`` filters over them.

The log stores Podman's action names (``died``, ``remove``, ``exec``...) plus the
Docker-only actions Podman has no status for (``oom``, ``exec_create``, ``resize``,
``archive-path``...).  Each stream shows its own dialect:

- the compat stream (:func:`docker_action`) uses Docker's names: ``die``,
  ``destroy`` (containers, volumes, networks), ``delete`` (images),
  ``exec_start: CMD``, ``exec_die``, ``health_status: healthy``; Podman's own
  actions without a Docker name (``init``, ``cleanup``) pass as Podman's compat
  stream sends them;
- the libpod stream (:func:`podman_action`) uses Podman's names (``died``,
  ``remove``, ``loadfromarchive``) and leaves out what the client's version cannot
  decode: Podman's clients turn an unknown type or status into a nil event and
  fail on it (4.3.1: no ``secret`` type, no ``update`` status; no Podman knows
  Docker's ``oom``, ``exec_create``, ``resize``...).

Filters (:class:`EventFilter`) match the names of the stream they are given on:
``event=die`` on the compat stream, ``event=died`` on the libpod stream.  We also
accept the other tree's name for the same event (``died`` on the compat stream,
``die`` on libpod), as clients that cross trees send them (Podman #16857); Podman
4.3.1 matches only its internal names on both.  Unknown filter keys are a 400
(Podman 4.3.1: 500).
"""

from collections.abc import Callable, Iterable, Mapping

from attrs import field, frozen

from podapi.engine.events import DETAIL, Event
from podapi.engine.filters import label_matches
from podapi.errors import InvalidArgument

#: Filter keys either Docker or Podman documents for ``/events`` (Docker's swarm keys
#: ``daemon``, ``plugin``, ``node``, ``service``, ``config`` match nothing here;
#: ``status`` is Podman's alias of ``event``).
FILTER_KEYS = frozenset(
    {
        "type",
        "event",
        "status",
        "container",
        "image",
        "label",
        "volume",
        "network",
        "pod",
        "secret",
        "scope",
        "since",
        "until",
        "daemon",
        "plugin",
        "node",
        "service",
        "config",
    }
)

#: Stored (Podman) action -> Docker's name, per object type.
_DOCKER_NAMES = {
    ("container", "died"): "die",
    ("container", "remove"): "destroy",
    ("container", "exec_died"): "exec_die",
    ("image", "remove"): "delete",
    ("image", "loadfromarchive"): "load",
    ("network", "remove"): "destroy",
    ("volume", "remove"): "destroy",
}
#: Docker actions suffixed with ``": detail"`` (the exec command, the health status).
_DOCKER_SUFFIXED = {"exec": "exec_start", "exec_create": "exec_create", "health_status": ""}

#: Stored action -> Podman's name, where they differ.
_PODMAN_NAMES = {("image", "load"): "loadfromarchive"}
#: Actions only Docker has: no Podman client decodes them.
DOCKER_ONLY_ACTIONS = frozenset(
    {"oom", "exec_create", "resize", "top", "detach", "archive-path", "extract-to-dir"}
)
#: Object types and actions by the libpod API version that first decodes them.
_PODMAN_TYPES_SINCE = {"secret": (5, 5)}
_PODMAN_ACTIONS_SINCE = {"update": (5, 0)}

Version = tuple[int, ...] | None


def docker_action(event: Event) -> str:
    """The action as Docker shows it on the compat stream."""
    if event.action in _DOCKER_SUFFIXED:
        prefix = _DOCKER_SUFFIXED[event.action] or event.action
        detail = event.attributes.get(DETAIL) or event.attributes.get("health_status", "")
        return f"{prefix}: {detail}" if detail else prefix
    return _DOCKER_NAMES.get((event.type, event.action), event.action)


def podman_action(event: Event, version: Version = None) -> str | None:
    """The action as Podman shows it on the libpod stream; None when a client of
    libpod API ``version`` (None: the newest) cannot decode the event."""
    if event.action in DOCKER_ONLY_ACTIONS:
        return None
    if version is not None:
        if version < _PODMAN_TYPES_SINCE.get(event.type, ()):
            return None
        if version < _PODMAN_ACTIONS_SINCE.get(event.action, ()):
            return None
    return _PODMAN_NAMES.get((event.type, event.action), event.action)


#: A stream's naming: the name it shows for an event (None: not shown).
Naming = Callable[[Event], str | None]


@frozen
class EventFilter:
    """Docker/Podman event filters: values of one key OR-ed, keys AND-ed.

    :ivar names: the stream's naming, for ``event``.
    :ivar other: the other tree's naming, also accepted for ``event``.
    :ivar labels_all: ``label`` values AND-ed (Docker's ``MatchKVList``) rather
        than OR-ed (Podman's filter map).
    """

    filters: Mapping[str, tuple[str, ...]] = field(factory=dict)
    names: Naming = docker_action
    other: Naming = podman_action
    labels_all: bool = False

    @classmethod
    def parse(
        cls,
        filters: Mapping[str, Iterable[str]],
        names: Naming = docker_action,
        other: Naming = podman_action,
        *,
        labels_all: bool = False,
    ) -> "EventFilter":
        """Validate keys (400 for unknown ones); ``since``/``until`` are the caller's."""
        unknown = set(filters) - FILTER_KEYS
        if unknown:
            raise InvalidArgument(f"invalid filter {sorted(unknown)[0]!r}", cause="invalid filter")
        kept = {k: tuple(v) for k, v in filters.items() if k not in ("since", "until")}
        return cls(kept, names, other, labels_all)

    def matches(self, event: Event) -> bool:
        """Whether ``event`` passes every filter key."""
        return all(self._key_matches(key, values, event) for key, values in self.filters.items())

    def _key_matches(self, key: str, values: tuple[str, ...], event: Event) -> bool:
        if not values:
            return True
        if key == "type":
            return event.type in values
        if key in ("event", "status"):
            return self._action_matches(values, event)
        if key == "scope":
            return "local" in values
        if key == "label":
            labels = {k: v for k, v in event.attributes.items() if k != DETAIL}
            found = (label_matches(v, labels) for v in values)
            return all(found) if self.labels_all else any(found)
        if key == "image" and event.type != "image":
            return any(_names_image(v, event.attributes.get("image", "")) for v in values)
        if key == "image":
            return any(_is_image(v, event) for v in values)
        if event.type != key:
            return False
        return any(_is_actor(v.lstrip("/"), event) for v in values)

    def _action_matches(self, values: tuple[str, ...], event: Event) -> bool:
        shown = {event.action, self.names(event) or "", self.other(event) or ""}
        for value in values:
            if value in shown:
                return True
            # Docker's fuzzy match for the actions it suffixes ("exec_start: ls").
            if any(name.startswith(value + ":") for name in shown):
                return True
        return False


def _is_actor(wanted: str, event: Event) -> bool:
    """Podman's rule: the name, or a prefix of the ID.  Docker also takes a prefix of
    the name; we do not (``container=web`` would pick ``web2`` too)."""
    return bool(wanted) and (wanted == event.name or event.actor_id.startswith(wanted))


def _is_image(wanted: str, event: Event) -> bool:
    """An image event's image: ID (prefix, with or without ``sha256:``) or name."""
    bare = wanted.removeprefix("sha256:")
    if bare and event.actor_id.removeprefix("sha256:").startswith(bare):
        return True
    return _names_image(wanted, event.name)


def _names_image(wanted: str, image: str) -> bool:
    """Docker's rule: the name as given, or without its tag, short or qualified."""
    if not image or not wanted:
        return False
    untagged = _untagged(image)
    for name in (image, untagged):
        if wanted == name or name.endswith("/" + wanted):
            return True
    return wanted == untagged + ":latest"


def _untagged(image: str) -> str:
    """``image`` without its ``:tag`` or ``@digest``."""
    name = image.partition("@")[0]
    slash = name.rfind("/")
    colon = name.rfind(":")
    return name[:colon] if colon > slash else name
