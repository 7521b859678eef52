"""Pieces every list filter shares (containers, images, networks, volumes, events)."""

import re
from collections.abc import Iterable, Mapping

from podapi.errors import InvalidArgument


def label_matches(spec: str, labels: Mapping[str, str]) -> bool:
    """``key`` (present) or ``key=value`` (equal), as Docker's ``label`` filter."""
    key, sep, value = spec.partition("=")
    return key in labels and (not sep or labels[key] == value)


def labels_match(specs: Iterable[str], labels: Mapping[str, str]) -> bool:
    """The ``label`` filter: every value matches (Podman's ``MatchLabelFilters``)."""
    return all(label_matches(spec, labels) for spec in specs)


def labels_excluded(specs: Iterable[str], labels: Mapping[str, str]) -> bool:
    """The ``label!`` filter: no value matches."""
    return not any(label_matches(spec, labels) for spec in specs)


def name_patterns(values: Iterable[str]) -> list[re.Pattern[str]]:
    """``name`` filter values as regular expressions (searched, as Docker's); 400 if bad."""
    patterns = []
    for value in values:
        try:
            patterns.append(re.compile(value))
        except re.error:
            raise InvalidArgument(
                f"invalid name filter {value!r}: not a regular expression"
            ) from None
    return patterns


def truth(key: str, value: str) -> bool:
    """A boolean filter value (``dangling=true``); 400 for anything else."""
    lowered = value.lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise InvalidArgument(f"invalid filter {key}={value!r}: expected true or false")
