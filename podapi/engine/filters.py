"""Pieces every list filter shares (containers, images, networks, volumes, events)."""

from collections.abc import Mapping

from podapi.engine.errors import InvalidArgument


def label_matches(spec: str, labels: Mapping[str, str]) -> bool:
    """``key`` (present) or ``key=value`` (equal), as Docker's ``label`` filter."""
    key, sep, value = spec.partition("=")
    return key in labels and (not sep or labels[key] == value)


def truth(key: str, value: str) -> bool:
    """A boolean filter value (``dangling=true``); 400 for anything else."""
    lowered = value.lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise InvalidArgument(f"invalid filter {key}={value!r}: expected true or false")
