"""Image list and prune filters, as Docker and Podman accept them.

``reference`` (glob over names, with or without the tag), ``dangling``,
``label`` (``key`` or ``key=value``, negated with ``label!``), ``before`` and
``since`` (an image: older/newer than it), ``until`` (a time), ``id``.
Values of one key are OR-ed, keys are AND-ed.
"""

import fnmatch
from collections.abc import Callable, Mapping, Sequence

from podapi.engine.filters import labels_excluded, labels_match, truth
from podapi.engine.state.images import ImageRecord
from podapi.engine.times import parse_timestamp
from podapi.errors import InvalidArgument
from podapi.storage import reference

KEYS = frozenset({"reference", "dangling", "label", "label!", "before", "since", "until", "id"})

Predicate = Callable[[ImageRecord], bool]


def _reference_candidates(name: str) -> set[str]:
    """What a ``reference`` pattern is matched against for one name: libimage's
    ``filterReferences`` forms (the full name, without domain, the last path
    component, each with and without its tag or digest) and Docker's familiar name."""
    short = reference.docker_name(name)
    trimmed = name.split("@", 1)[0]
    if ":" in trimmed.rsplit("/", 1)[-1]:
        trimmed = trimmed.rsplit(":", 1)[0]
    suffix = name[len(trimmed) :]
    path = trimmed.split("/", 1)[-1]
    last = trimmed.rsplit("/", 1)[-1]
    familiar = short[: len(short) - len(suffix)] if short.endswith(suffix) else short
    return {name, short, trimmed, familiar, path, path + suffix, last, last + suffix}


def _reference_matches(pattern: str, image: ImageRecord) -> bool:
    return any(
        fnmatch.fnmatchcase(candidate, pattern)
        for name in image.names
        for candidate in _reference_candidates(name)
    )


def _predicate(
    key: str, values: Sequence[str], anchors: Mapping[str, ImageRecord], now_ns: int
) -> Predicate:
    if key == "reference":
        return lambda i: any(_reference_matches(p, i) for p in values)
    if key == "dangling":
        wanted = {truth(key, v) for v in values}
        return lambda i: i.dangling in wanted
    if key == "label":
        return lambda i: labels_match(values, i.labels)
    if key == "label!":
        return lambda i: labels_excluded(values, i.labels)
    if key == "before":
        return lambda i: any(i.created < anchors[v].created for v in values)
    if key == "since":
        return lambda i: any(i.created > anchors[v].created for v in values)
    if key == "until":
        limits = [parse_timestamp(v, now_ns) for v in values]
        return lambda i: any(i.created <= t for t in limits)
    ids = [v.removeprefix("sha256:") for v in values]  # "id"
    return lambda i: any(i.id.startswith(v) for v in ids)


def build(
    filters: Mapping[str, Sequence[str]], anchors: Mapping[str, ImageRecord], now_ns: int
) -> Predicate:
    """A predicate for ``filters``; ``anchors`` maps before/since values to images."""
    unknown = set(filters) - KEYS
    if unknown:
        raise InvalidArgument(f"invalid filter {sorted(unknown)[0]!r}")
    tests = [_predicate(k, v, anchors, now_ns) for k, v in filters.items() if v]
    return lambda image: all(test(image) for test in tests)
