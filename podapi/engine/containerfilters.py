"""Container list and prune filters, as Docker and Podman accept them.

``id`` (prefix), ``name`` (regular expression, as Docker), ``label``
(``key``/``key=value``, ``label!`` negated), ``status``, ``exited`` (exit
code), ``ancestor`` (an image, by name or ID), ``before``/``since`` (a
container), ``health``, ``until`` (a time; prune).  Values of one key are
OR-ed, keys AND-ed.
"""

from collections.abc import Callable, Mapping, Sequence

from podapi.engine.filters import labels_excluded, labels_match, name_patterns
from podapi.engine.state.containers import ContainerRecord
from podapi.engine.times import parse_timestamp
from podapi.errors import InvalidArgument

KEYS = frozenset(
    {
        "id",
        "name",
        "label",
        "label!",
        "status",
        "exited",
        "ancestor",
        "before",
        "since",
        "health",
        "until",
    }
)
STATUSES = frozenset(
    {
        "created",
        "restarting",
        "running",
        "removing",
        "paused",
        "exited",
        "dead",
        "configured",
        "initialized",
        "stopped",
        "stopping",
    }
)
HEALTH = frozenset({"starting", "healthy", "unhealthy", "none"})

Predicate = Callable[[ContainerRecord], bool]


def docker_state(state: str) -> str:
    """Docker's word for a container state (never Podman's ``initialized``/``stopping``)."""
    return {"initialized": "created", "stopping": "running"}.get(state, state)


def _predicate(
    key: str,
    values: Sequence[str],
    anchors: Mapping[str, ContainerRecord],
    image_ids: Mapping[str, set[str]],
    now_ns: int,
) -> Predicate:
    if key == "id":
        return lambda c: any(c.id.startswith(v) for v in values)
    if key == "name":
        patterns = name_patterns(v.removeprefix("/") for v in values)
        return lambda c: any(p.search(c.name) for p in patterns)
    if key == "label":
        return lambda c: labels_match(values, c.run.labels)
    if key == "label!":
        return lambda c: labels_excluded(values, c.run.labels)
    if key == "status":
        bad = set(values) - STATUSES
        if bad:
            raise InvalidArgument(f"invalid filter 'status={sorted(bad)[0]}'")
        wanted = {{"configured": "created", "stopped": "exited"}.get(v, v) for v in values}
        return lambda c: docker_state(c.state) in wanted or c.state in wanted
    if key == "exited":
        try:
            codes = {int(v) for v in values}
        except ValueError:
            raise InvalidArgument("exited filter values must be exit codes") from None
        return lambda c: c.state == "exited" and c.exit_code in codes
    if key == "ancestor":
        wanted_ids = set().union(*(image_ids.get(v, set()) for v in values))
        return lambda c: c.image_id in wanted_ids or c.spec.image in values
    if key == "before":
        return lambda c: any(c.created < anchors[v].created for v in values)
    if key == "since":
        return lambda c: any(c.created > anchors[v].created for v in values)
    if key == "health":
        bad = set(values) - HEALTH
        if bad:
            raise InvalidArgument(f"invalid health filter {sorted(bad)[0]!r}")
        return lambda c: (
            (c.health_status or ("none" if c.run.healthcheck is None else "starting")) in values
        )
    limits = [parse_timestamp(v, now_ns) for v in values]  # until
    return lambda c: any(c.created <= t for t in limits)


def build(
    filters: Mapping[str, Sequence[str]],
    *,
    anchors: Mapping[str, ContainerRecord],
    image_ids: Mapping[str, set[str]],
    now_ns: int,
) -> Predicate:
    """A predicate for ``filters``.

    :param anchors: before/since values -> containers.
    :param image_ids: ancestor values -> the image IDs they name.
    """
    unknown = set(filters) - KEYS
    if unknown:
        raise InvalidArgument(f"invalid filter {sorted(unknown)[0]!r}")
    tests = [_predicate(k, v, anchors, image_ids, now_ns) for k, v in filters.items() if v]
    return lambda record: all(test(record) for test in tests)
