"""Volume list and prune filters (Docker's and Podman's keys)."""

from collections.abc import Callable, Mapping, Sequence

from podapi.engine.filters import labels_excluded, labels_match, name_patterns, truth
from podapi.engine.state.volumes import VolumeRecord, VolumeUsage
from podapi.engine.times import parse_timestamp
from podapi.errors import InvalidArgument

LIST_FILTERS = frozenset(
    {"name", "driver", "scope", "label", "label!", "opt", "until", "dangling", "anonymous"}
    | {"since", "after"}
)
PRUNE_FILTERS = frozenset({"label", "label!", "until", "anonymous", "since", "after"})

Predicate = Callable[[VolumeUsage], bool]


def _option(spec: str, options: Mapping[str, str]) -> bool:
    key, sep, value = spec.partition("=")
    return key in options and (not sep or not value or options[key] == value)


def _filter(
    key: str, values: Sequence[str], anchors: Mapping[str, VolumeRecord], now_ns: int
) -> Predicate:
    if key == "name":
        patterns = name_patterns(values)
        return lambda v: any(p.search(v.record.name) for p in patterns)
    if key == "driver":
        return lambda v: v.record.driver in values
    if key == "scope":
        return lambda v: "local" in values
    if key == "label":
        return lambda v: labels_match(values, v.record.labels)
    if key == "label!":
        return lambda v: labels_excluded(values, v.record.labels)
    if key == "opt":
        return lambda v: any(_option(s, v.record.options) for s in values)
    if key in ("dangling", "anonymous"):
        wanted = {truth(key, value) for value in values}
        if key == "dangling":
            return lambda v: v.dangling in wanted
        return lambda v: v.record.anonymous in wanted
    if key in ("since", "after"):
        return lambda v: any(v.record.created > anchors[value].created for value in values)
    limits = [parse_timestamp(value, now_ns) for value in values]  # until
    return lambda v: any(v.record.created < limit for limit in limits)


def build_filter(
    filters: Mapping[str, Sequence[str]],
    *,
    prune: bool,
    anchors: Mapping[str, VolumeRecord],
    now_ns: int,
) -> Predicate:
    """A predicate for list (or prune) ``filters``: values of a key OR-ed, keys AND-ed.

    ``label`` values must all match and ``label!`` values none (Podman's
    ``MatchLabelFilters``); ``since``/``after`` name a volume (``anchors``).
    """
    allowed = PRUNE_FILTERS if prune else LIST_FILTERS
    for key in filters:
        if key not in allowed:
            raise InvalidArgument(f'"{key}" is an invalid volume filter')
    tests = [_filter(k, v, anchors, now_ns) for k, v in filters.items() if v]
    return lambda usage: all(test(usage) for test in tests)
